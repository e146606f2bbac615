"""Text emission of linalg-on-tensors MLIR (no torch dependency here)."""

import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["FrontendError", "Val", "Emitter", "tensor_type", "float_literal"]


class FrontendError(Exception):
    """The module cannot be traced or translated."""


FLOAT_TYPES = ("f32", "f16", "bf16", "f64")


class Val:
    """An SSA value of a ranked tensor type."""

    __slots__ = ("name", "shape", "et", "src")

    def __init__(self, name: str, shape: Sequence[int], et: str):
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.et = et
        # A value of another shape this one is a reshape of (the frontend
        # undoes `view -> mm -> view` round trips with it).
        self.src: Optional["Val"] = None

    @property
    def type(self) -> str:
        return tensor_type(self.shape, self.et)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "Val(%s : %s)" % (self.name, self.type)


def tensor_type(shape: Sequence[int], et: str) -> str:
    if len(shape) == 0:
        return "tensor<%s>" % et
    return "tensor<%sx%s>" % ("x".join(str(int(s)) for s in shape), et)


_NEG_INF = {"f32": "0xFF800000", "f16": "0xFC00", "bf16": "0xFF80",
            "f64": "0xFFF0000000000000"}
_POS_INF = {"f32": "0x7F800000", "f16": "0x7C00", "bf16": "0x7F80",
            "f64": "0x7FF0000000000000"}


def float_literal(x: float, et: str) -> str:
    x = float(x)
    if math.isinf(x):
        return (_NEG_INF if x < 0 else _POS_INF)[et]
    if math.isnan(x):
        raise FrontendError("NaN constants are not supported")
    return "%.9e" % x


def _escape(s: str) -> str:
    return str(s).replace("\\", "\\\\").replace('"', '\\"')


def affine_map(num_dims: int, exprs: Sequence[str]) -> str:
    dims = ", ".join("d%d" % i for i in range(num_dims))
    return "affine_map<(%s) -> (%s)>" % (dims, ", ".join(exprs))


class Body:
    """Builder of a linalg.generic body."""

    def __init__(self, emitter: "Emitter", indent: str):
        self.e = emitter
        self.indent = indent
        self.lines: List[str] = []

    def op(self, text: str) -> str:
        name = self.e.fresh("s")
        self.lines.append("%s%s = %s" % (self.indent, name, text))
        return name

    def const(self, x: float, et: str) -> str:
        if et in FLOAT_TYPES:
            return self.op("arith.constant %s : %s" % (float_literal(x, et), et))
        return self.op("arith.constant %d : %s" % (int(x), et))

    def index(self, dim: int) -> str:
        return self.op("linalg.index %d : index" % dim)

    def cast(self, x: str, src: str, dst: str) -> str:
        if src == dst:
            return x
        fbits = {"f16": 16, "bf16": 16, "f32": 32, "f64": 64}
        if src in FLOAT_TYPES and dst in FLOAT_TYPES:
            if src in ("f16", "bf16") and dst in ("f16", "bf16"):
                x = self.op("arith.extf %s : %s to f32" % (x, src))
                return self.op("arith.truncf %s : f32 to %s" % (x, dst))
            if fbits[dst] > fbits[src]:
                return self.op("arith.extf %s : %s to %s" % (x, src, dst))
            return self.op("arith.truncf %s : %s to %s" % (x, src, dst))
        if src.startswith("i") and dst in FLOAT_TYPES:
            if src == "i1":
                return self.op("arith.uitofp %s : i1 to %s" % (x, dst))
            return self.op("arith.sitofp %s : %s to %s" % (x, src, dst))
        if src in FLOAT_TYPES and dst.startswith("i"):
            return self.op("arith.fptosi %s : %s to %s" % (x, src, dst))
        if src.startswith("i") and dst.startswith("i"):
            sb, db = int(src[1:]), int(dst[1:])
            if db > sb:
                return self.op("arith.extsi %s : %s to %s" % (x, src, dst))
            return self.op("arith.trunci %s : %s to %s" % (x, src, dst))
        raise FrontendError("cannot convert %s to %s" % (src, dst))


class Emitter:
    """Accumulates the body of one func.func and its private declarations."""

    def __init__(self):
        self.counter = 0
        self.lines: List[str] = []
        self.decls: Dict[str, str] = {}
        self.loc: Optional[str] = None

    # -- naming ------------------------------------------------------------

    def fresh(self, prefix: str = "v") -> str:
        self.counter += 1
        return "%%%s%d" % (prefix, self.counter)

    def _loc(self) -> str:
        """`loc` is a name, or (name, file, line): a NameLoc around the
        Python source line the op comes from, which diagnostics print as
        file:line."""
        if not self.loc:
            return ""
        if isinstance(self.loc, tuple):
            name, file, line = self.loc
            if file:
                return ' loc("%s"("%s":%d:1))' % (_escape(name), _escape(file), line)
            return ' loc("%s")' % _escape(name)
        return ' loc("%s")' % _escape(self.loc)

    def emit(self, text: str) -> None:
        self.lines.append("    " + text)

    def op(self, text: str, shape: Sequence[int], et: str) -> Val:
        name = self.fresh()
        self.emit("%s = %s%s" % (name, text, self._loc()))
        return Val(name, shape, et)

    # -- basic ops ---------------------------------------------------------

    def empty(self, shape: Sequence[int], et: str) -> Val:
        return self.op("tensor.empty() : %s" % tensor_type(shape, et), shape, et)

    def scalar_const(self, x: float, et: str) -> str:
        name = self.fresh("c")
        if et in FLOAT_TYPES:
            self.emit("%s = arith.constant %s : %s" % (name, float_literal(x, et), et))
        else:
            self.emit("%s = arith.constant %d : %s" % (name, int(x), et))
        return name

    def fill(self, x: float, shape: Sequence[int], et: str) -> Val:
        c = self.scalar_const(x, et)
        e = self.empty(shape, et)
        t = tensor_type(shape, et)
        return self.op("linalg.fill ins(%s : %s) outs(%s : %s) -> %s"
                       % (c, et, e.name, t, t), shape, et)

    def generic(self, ins: List[Tuple[Val, List[str]]], out_shape: Sequence[int],
                out_et: str, iterators: List[str],
                body: Callable[[Body, List[str], str], str],
                init: Optional[Val] = None,
                out_exprs: Optional[List[str]] = None) -> Val:
        """linalg.generic with one output. `ins` pairs a value with the affine
        expressions (over d0..d{n-1}, n = len(iterators)) of its indexing map;
        the output map is `out_exprs` (default: the parallel dims in order).
        `body(bb, in_args, out_arg)` returns the yielded value."""
        n = len(iterators)
        if out_exprs is None:
            out_exprs = ["d%d" % i for i, it in enumerate(iterators) if it == "parallel"]
        if init is None:
            init = self.empty(out_shape, out_et)
        maps = [affine_map(n, ex) for _, ex in ins] + [affine_map(n, out_exprs)]
        in_args = [self.fresh("a") for _ in ins]
        out_arg = self.fresh("a")
        bb = Body(self, "      ")
        result = body(bb, in_args, out_arg)
        t = tensor_type(out_shape, out_et)
        name = self.fresh()
        ins_txt = ""
        if ins:
            ins_txt = " ins(%s : %s)" % (", ".join(v.name for v, _ in ins),
                                         ", ".join(v.type for v, _ in ins))
        bb_args = ", ".join(["%s: %s" % (a, v.et) for a, (v, _) in zip(in_args, ins)]
                            + ["%s: %s" % (out_arg, out_et)])
        self.emit("%s = linalg.generic {indexing_maps = [%s], iterator_types = [%s]}%s "
                  "outs(%s : %s) {"
                  % (name, ", ".join(maps), ", ".join('"%s"' % it for it in iterators),
                     ins_txt, init.name, init.type))
        self.lines.append("    ^bb0(%s):" % bb_args)
        self.lines.extend(bb.lines)
        self.lines.append("      linalg.yield %s : %s" % (result, out_et))
        self.lines.append("    } -> %s%s" % (t, self._loc()))
        return Val(name, out_shape, out_et)

    # -- shapes ------------------------------------------------------------

    @staticmethod
    def broadcast_exprs(shape: Sequence[int], out_shape: Sequence[int]) -> List[str]:
        """Indexing expressions of an operand broadcast (numpy rules) to
        `out_shape`: size-1 dims read index 0."""
        off = len(out_shape) - len(shape)
        if off < 0:
            raise FrontendError("cannot broadcast %s to %s" % (list(shape), list(out_shape)))
        exprs = []
        for i, s in enumerate(shape):
            o = out_shape[off + i]
            if s == o:
                exprs.append("d%d" % (off + i))
            elif s == 1:
                exprs.append("0")
            else:
                raise FrontendError("cannot broadcast %s to %s" % (list(shape), list(out_shape)))
        return exprs

    def reshape(self, x: Val, shape: Sequence[int]) -> Val:
        shape = tuple(int(s) for s in shape)
        if shape == x.shape:
            return x
        if math.prod(shape) != math.prod(x.shape):
            raise FrontendError("reshape of %s to %s" % (list(x.shape), list(shape)))
        cur = x
        if cur.rank == 0 or len(shape) == 0:
            # Through tensor<1x...>: reassociation with rank 0 is [].
            if cur.rank > 1:
                cur = self._collapse(cur, [list(range(cur.rank))], (math.prod(cur.shape),))
            if cur.rank == 0:
                cur = self.op("tensor.expand_shape %s [] output_shape [1] : %s into %s"
                              % (cur.name, cur.type, tensor_type((1,), cur.et)), (1,), cur.et)
            if len(shape) == 0:
                return self.op("tensor.collapse_shape %s [] : %s into %s"
                               % (cur.name, cur.type, tensor_type((), cur.et)), (), cur.et)
            return self._expand(cur, [list(range(len(shape)))], shape)
        if cur.rank > 1:
            cur = self._collapse(cur, [list(range(cur.rank))], (math.prod(cur.shape),))
        if len(shape) > 1:
            cur = self._expand(cur, [list(range(len(shape)))], shape)
        return cur

    def _collapse(self, x: Val, reassoc, shape) -> Val:
        return self.op("tensor.collapse_shape %s %s : %s into %s"
                       % (x.name, reassoc, x.type, tensor_type(shape, x.et)), shape, x.et)

    def _expand(self, x: Val, reassoc, shape) -> Val:
        return self.op("tensor.expand_shape %s %s output_shape [%s] : %s into %s"
                       % (x.name, reassoc, ", ".join(map(str, shape)), x.type,
                          tensor_type(shape, x.et)), shape, x.et)

    def unsqueeze(self, x: Val, dim: int) -> Val:
        shape = list(x.shape)
        shape.insert(dim, 1)
        if x.rank == 0:
            return self.reshape(x, shape)
        # Reassociation: dim `dim` joins its neighbour.
        groups: List[List[int]] = []
        for i in range(x.rank):
            j = i if i < dim else i + 1
            groups.append([j])
        if dim < x.rank:
            groups[dim] = [dim, dim + 1]
        else:
            groups[-1] = groups[-1] + [dim]
        return self._expand(x, groups, shape)

    def permute(self, x: Val, perm: Sequence[int]) -> Val:
        perm = [p % x.rank for p in perm]
        if perm == list(range(x.rank)):
            return x
        out_shape = [x.shape[p] for p in perm]
        # out[i_0..] = x[j] with j[perm[k]] = i_k.
        exprs = [""] * x.rank
        for k, p in enumerate(perm):
            exprs[p] = "d%d" % k
        return self.generic([(x, exprs)], out_shape, x.et, ["parallel"] * x.rank,
                            lambda bb, a, o: a[0])

    def extract_slice(self, x: Val, offsets, sizes, result_shape, strides=None) -> Val:
        strides = list(strides) if strides is not None else [1] * x.rank
        return self.op("tensor.extract_slice %s[%s] [%s] [%s] : %s to %s"
                       % (x.name, ", ".join(map(str, offsets)), ", ".join(map(str, sizes)),
                          ", ".join(map(str, strides)), x.type,
                          tensor_type(result_shape, x.et)), result_shape, x.et)

    def constant(self, data: bytes, values: Optional[Sequence], shape: Sequence[int],
                 et: str, splat: Optional[str] = None) -> Val:
        """A constant tensor: `splat` (one literal for every element), or the
        raw little-endian bytes `data` (hex form; exact for every float type),
        or for i1 the Python bools `values`."""
        shape = tuple(int(s) for s in shape)
        t = tensor_type(shape, et)
        if splat is not None:
            return self.op("arith.constant dense<%s> : %s" % (splat, t), shape, et)
        if et == "i1":
            flat = (math.prod(shape),)
            c = self.op("arith.constant dense<[%s]> : %s"
                        % (", ".join("true" if v else "false" for v in values),
                           tensor_type(flat, et)), flat, et)
            return self.reshape(c, shape)
        return self.op('arith.constant dense<"0x%s"> : %s' % (data.hex().upper(), t), shape, et)

    def concat(self, xs: List[Val], dim: int, out_shape) -> Val:
        if len(xs) == 1:
            return xs[0]
        et = xs[0].et
        return self.op("tensor.concat dim(%d) %s : (%s) -> %s"
                       % (dim, ", ".join(v.name for v in xs), ", ".join(v.type for v in xs),
                          tensor_type(out_shape, et)), out_shape, et)

    # -- computations --------------------------------------------------------

    def elementwise(self, operands: List, out_shape: Sequence[int], out_et: str,
                    fn: Callable[[Body, List[str], str], str],
                    compute_et: Optional[str] = None) -> Val:
        """Elementwise op over tensor operands (broadcast) and Python scalars.
        `fn(bb, args, et)` gets every operand as a scalar of `et` (the
        computation type: `compute_et`, default out_et)."""
        ins = [(v, self.broadcast_exprs(v.shape, out_shape)) for v in operands
               if isinstance(v, Val)]
        cet = compute_et or out_et

        def body(bb: Body, in_args: List[str], out_arg: str) -> str:
            args = []
            it = iter(zip(in_args, ins))
            for v in operands:
                if isinstance(v, Val):
                    a, (val, _) = next(it)
                    args.append(bb.cast(a, val.et, cet))
                else:
                    args.append(bb.const(float(v), cet))
            return fn(bb, args, cet)

        return self.generic(ins, out_shape, out_et, ["parallel"] * len(out_shape), body)

    def reduce(self, x: Val, dims: Sequence[int], keepdim: bool, kind: str,
               out_et: Optional[str] = None) -> Val:
        """sum, mean or max over `dims`."""
        out_et = out_et or x.et
        dims = sorted(set(d % x.rank for d in dims)) if x.rank else []
        kept = [i for i in range(x.rank) if i not in dims]
        # Loops: every input dim, in order; output map = kept dims.
        iters = ["reduction" if i in dims else "parallel" for i in range(x.rank)]
        red_shape = [x.shape[i] for i in kept]
        init_val = -math.inf if kind == "max" else 0.0
        init = self.fill(init_val, red_shape, out_et)

        def body(bb: Body, a: List[str], o: str) -> str:
            v = bb.cast(a[0], x.et, out_et)
            if kind == "max":
                return bb.op("arith.maximumf %s, %s : %s" % (o, v, out_et))
            return bb.op("arith.addf %s, %s : %s" % (o, v, out_et))

        r = self.generic([(x, ["d%d" % i for i in range(x.rank)])], red_shape, out_et,
                         iters, body, init=init, out_exprs=["d%d" % i for i in kept])
        if kind == "mean":
            count = math.prod(x.shape[i] for i in dims) if dims else 1
            r = self.elementwise([r, float(count)], red_shape, out_et,
                                 lambda bb, a, et: bb.op("arith.divf %s, %s : %s" % (a[0], a[1], et)))
        if keepdim:
            shape = [1 if i in dims else x.shape[i] for i in range(x.rank)]
            r = self.reshape(r, shape)
        return r

    def matmul(self, a: Val, b: Val, out_shape: Sequence[int], out_et: str,
               transpose_b: bool = False) -> Val:
        """a[..., M, K] @ b[..., K, N] (b[..., N, K] with transpose_b), batch
        dims broadcast; a 2-D b is shared by every batch."""
        if a.rank < 2 or b.rank < 2:
            raise FrontendError("matmul of 1-D tensors is not supported")
        nb = len(out_shape) - 2
        iters = ["parallel"] * (nb + 2) + ["reduction"]
        m, n, k = "d%d" % nb, "d%d" % (nb + 1), "d%d" % (nb + 2)
        batch = list(out_shape[:nb])

        def batch_exprs(v: Val) -> List[str]:
            return self.broadcast_exprs(v.shape[:-2], batch) if v.rank > 2 else []

        a_ex = batch_exprs(a) + [m, k]
        b_ex = batch_exprs(b) + ([n, k] if transpose_b else [k, n])
        init = self.fill(0.0, out_shape, out_et)

        def body(bb: Body, args: List[str], o: str) -> str:
            x = bb.cast(args[0], a.et, out_et)
            y = bb.cast(args[1], b.et, out_et)
            p = bb.op("arith.mulf %s, %s : %s" % (x, y, out_et))
            return bb.op("arith.addf %s, %s : %s" % (o, p, out_et))

        return self.generic([(a, a_ex), (b, b_ex)], out_shape, out_et, iters, body,
                            init=init, out_exprs=["d%d" % i for i in range(nb + 2)])

    def softmax(self, x: Val, dim: int, out_et: Optional[str] = None) -> Val:
        out_et = out_et or x.et
        dim %= x.rank
        mx = self.reduce(x, [dim], True, "max", out_et)
        e = self.elementwise([x, mx], x.shape, out_et, lambda bb, a, et: bb.op(
            "math.exp %s : %s" % (bb.op("arith.subf %s, %s : %s" % (a[0], a[1], et)), et)))
        s = self.reduce(e, [dim], True, "sum", out_et)
        return self.elementwise([e, s], x.shape, out_et,
                                lambda bb, a, et: bb.op("arith.divf %s, %s : %s" % (a[0], a[1], et)))

    def call(self, callee: str, args: List[Val], results: List[Tuple[Tuple[int, ...], str]]) -> List[Val]:
        arg_types = ", ".join(v.type for v in args)
        res_types = [tensor_type(s, et) for s, et in results]
        sig = "(%s) -> %s" % (arg_types, res_types[0] if len(res_types) == 1
                              else "(%s)" % ", ".join(res_types))
        decl = "  func.func private @%s(%s) -> %s" % (
            callee, arg_types,
            res_types[0] if len(res_types) == 1 else "(%s)" % ", ".join(res_types))
        prev = self.decls.get(callee)
        if prev is not None and prev != decl:
            raise FrontendError("callee @%s used with two signatures" % callee)
        self.decls[callee] = decl
        if not results:
            raise FrontendError("opaque call without tensor results")
        name = self.fresh()
        res = ""
        if len(results) > 1:
            res = ":%d" % len(results)
        self.emit("%s%s = func.call @%s(%s) : %s%s"
                  % (name, res, callee, ", ".join(v.name for v in args), sig, self._loc()))
        if len(results) == 1:
            return [Val(name, results[0][0], results[0][1])]
        return [Val("%s#%d" % (name, i), s, et) for i, (s, et) in enumerate(results)]
