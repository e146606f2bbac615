"""PyTorch -> linalg-on-tensors MLIR text.

The module is traced through concrete shapes into aten ops (tracing.py:
``make_fx`` with parameters and buffers as graph inputs), run once more on the
example inputs to record every value, and translated node by node:

- Nodes that depend on no input and no parameter (``arange``, ``full``,
  ``finfo`` constants, causal masks sliced from buffers, rotary tables) are
  folded: their recorded values become ``arith.constant`` tensors where a
  computed value uses them.
- Supported aten ops become linalg/tensor/arith/math ops.
- Any other op, and every opaque submodule, becomes a ``func.call`` of a
  private declaration with the call's tensor operands and results, so that
  the residual structure of the model stays visible to
  attnres-detect-residual-chains.
"""

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn

from .emitter import Emitter, FrontendError, Val
from .tracing import OPAQUE_OP_NAMESPACE, AtenTrace, opaque_callee, trace_aten

__all__ = ["TraceResult", "trace", "import_module", "treat_as_aten"]

_DTYPES = {
    torch.float32: "f32",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
    torch.float64: "f64",
    torch.int64: "i64",
    torch.int32: "i32",
    torch.bool: "i1",
}
_FLOATS = ("f32", "f16", "bf16", "f64")


def _et(t: torch.Tensor) -> str:
    try:
        return _DTYPES[t.dtype]
    except KeyError:
        raise FrontendError("unsupported dtype %s" % t.dtype)


@dataclass
class TraceResult:
    """What :func:`import_module` returns."""

    ir: str
    func_name: str
    input_names: List[str]
    # Qualified names of the parameters (and of buffers read as they are), in
    # argument order after the inputs.
    param_names: List[str]
    # The tensors of the parameters and buffers, in the same order.
    params: List[torch.Tensor] = field(repr=False)
    # Private functions standing for opaque modules and functions.
    opaque_calls: List[str]
    graph_module: Any = field(repr=False, default=None)


def _sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not s or s[0].isdigit():
        s = "f_" + s
    return s


class _Param:
    """A parameter placeholder: an argument of the function once used."""

    __slots__ = ("name", "t")

    def __init__(self, name, t):
        self.name, self.t = name, t


class _Unsupported(Exception):
    pass


# Custom ops translated as an aten op of the same schema: "ns::op" -> aten
# name (see treat_as_aten).
_ALIASES: Dict[str, str] = {}


def treat_as_aten(qualified_name: str, aten_name: str) -> None:
    """Translates the custom op ``qualified_name`` ("mylib::attention") as the
    aten op ``aten_name`` ("scaled_dot_product_attention"); its schema must
    use the aten op's argument names. Other non-aten ops are opaque calls."""
    if aten_name not in _HANDLERS:
        raise FrontendError("aten op %s is not translated by the frontend" % aten_name)
    if "::" not in qualified_name:
        raise FrontendError("expected a qualified op name such as mylib::op, got %s"
                            % qualified_name)
    _ALIASES[qualified_name] = aten_name


def _op_name(n: fx.Node) -> str:
    """`add` for aten.add.Tensor, `getitem` for operator.getitem, the
    qualified name (`mylib::op`) of another namespace's op."""
    t = n.target
    schema = getattr(t, "_schema", None)
    if schema is not None:
        if schema.name in _ALIASES:
            return _ALIASES[schema.name]
        ns, _, name = schema.name.rpartition("::")
        return name if ns == "aten" else schema.name
    return getattr(t, "__name__", str(t))


def _is_opaque_call(n: fx.Node) -> bool:
    schema = getattr(n.target, "_schema", None)
    return schema is not None and schema.name == OPAQUE_OP_NAMESPACE + "::call"


# Ops whose result depends on their tensor operands' shapes only.
_SHAPE_ONLY = {"zeros_like", "ones_like", "full_like", "empty_like", "new_zeros", "new_ones",
               "new_full", "new_empty", "sym_size", "size"}


def _flatten(x) -> List:
    if isinstance(x, (list, tuple)):
        out = []
        for y in x:
            out.extend(_flatten(y))
        return out
    return [x]


class _Recorder(fx.Interpreter):
    """Runs the graph and keeps every node's value; tensors are snapshots, so
    that a later in-place op does not change what an earlier node computed."""

    def __init__(self, gm):
        super().__init__(gm)
        self.values: Dict[fx.Node, Any] = {}

    def run_node(self, n):
        r = super().run_node(n)
        if n.op == "placeholder":
            self.values[n] = r
        else:
            self.values[n] = torch.utils._pytree.tree_map(
                lambda x: x.detach().clone() if isinstance(x, torch.Tensor) else x, r)
        return r


class _Importer:
    def __init__(self, tr: AtenTrace, values: Dict[fx.Node, Any], func_name: str):
        self.tr = tr
        self.gm = tr.gm
        self.values = values
        self.func_name = func_name
        self.e = Emitter()
        self.env: Dict[fx.Node, Any] = {}
        self.dynamic: Dict[fx.Node, bool] = {}
        self.args: List[Tuple[str, str]] = []  # (ssa name, type)
        self.input_names: List[str] = []
        self.param_names: List[str] = []
        self.params: List[torch.Tensor] = []
        self.param_vals: Dict[int, Val] = {}
        self.buffer_names: Dict[int, str] = {}
        self.consts: Dict[int, Val] = {}
        self.opaque: List[str] = []
        self._decl_sig: Dict[str, Any] = {}

    # -- values ------------------------------------------------------------

    def _new_arg(self, t: torch.Tensor) -> Val:
        name = "%%arg%d" % len(self.args)
        v = Val(name, tuple(t.shape), _et(t))
        self.args.append((name, v.type))
        return v

    def param(self, qualname: str, t: torch.Tensor) -> Val:
        key = id(t)
        if key not in self.param_vals:
            self.param_vals[key] = self._new_arg(t)
            self.param_names.append(qualname)
            self.params.append(t)
        return self.param_vals[key]

    def tensor(self, x) -> Val:
        """The IR value of a tensor operand: computed, a parameter (an
        argument from its first use on), a buffer read whole (an argument
        too) or a folded constant (an arith.constant)."""
        if isinstance(x, Val):
            return x
        if isinstance(x, _Param):
            return self.param(x.name, x.t)
        if isinstance(x, torch.Tensor):
            if id(x) in self.buffer_names:
                return self.param(self.buffer_names[id(x)], x)
            if id(x) not in self.consts:
                self.consts[id(x)] = self.constant(x)
            return self.consts[id(x)]
        raise _Unsupported()

    def constant(self, t: torch.Tensor) -> Val:
        et = _et(t)
        t = t.detach().contiguous()
        shape = tuple(t.shape)
        flat = t.reshape(-1)
        if flat.numel() > 0 and bool((flat == flat[0]).all()) and not (
                et in _FLOATS and torch.isnan(flat[0])):
            v = flat[0].item()
            if et == "i1":
                lit = "true" if v else "false"
            elif et in _FLOATS:
                lit = _float_bits(flat[0:1], et)
            else:
                lit = str(int(v))
            return self.e.constant(b"", None, shape, et, splat=lit)
        if et == "i1":
            return self.e.constant(b"", [bool(v) for v in flat.tolist()], shape, et)
        return self.e.constant(_raw_bytes(flat), None, shape, et)

    def operand(self, x):
        """An elementwise operand: a Val, or a Python number for scalars and
        folded 0-d tensors."""
        if isinstance(x, bool):
            return float(x)
        if isinstance(x, (int, float)):
            return x
        if isinstance(x, torch.Tensor) and not isinstance(x, nn.Parameter) and \
                x.dim() == 0 and id(x) not in self.buffer_names and x.dtype != torch.bool:
            return x.item()
        return self.tensor(x)

    def arg(self, a):
        """The IR value, folded tensor or Python value of an argument."""
        if isinstance(a, fx.Node):
            if a not in self.env:
                raise FrontendError("node %s used before definition" % a.name)
            return self.env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(self.arg(x) for x in a)
        if isinstance(a, dict):
            return {k: self.arg(v) for k, v in a.items()}
        return a

    def bind(self, n: fx.Node) -> Dict[str, Any]:
        """The node's arguments by schema name, defaults filled in."""
        schema = n.target._schema
        out = {}
        for i, a in enumerate(schema.arguments):
            if i < len(n.args) and not a.kwarg_only:
                out[a.name] = self.arg(n.args[i])
            elif a.name in n.kwargs:
                out[a.name] = self.arg(n.kwargs[a.name])
            elif a.has_default_value():
                out[a.name] = a.default_value
            else:
                out[a.name] = None
        return out

    # -- the graph ---------------------------------------------------------

    def _is_dynamic(self, n: fx.Node) -> bool:
        if n.op == "placeholder":
            return self.dynamic[n]
        if n.op == "get_attr":
            return False
        if n.op == "call_function" and _op_name(n) in _SHAPE_ONLY:
            return False
        return any(self.dynamic.get(i, False) for i in n.all_input_nodes)

    def _set_loc(self, n: fx.Node):
        scope, frame = self.tr.origins.get(n, ("", None))
        name = scope or n.name
        if frame is not None:
            self.e.loc = (name, frame[0], frame[1])
        else:
            self.e.loc = name

    def run(self) -> TraceResult:
        nodes = list(self.gm.graph.nodes)
        placeholders = [n for n in nodes if n.op == "placeholder"]
        if len(placeholders) != len(self.tr.kinds):
            raise FrontendError("internal error: %d placeholders for %d traced tensors"
                                % (len(placeholders), len(self.tr.kinds)))
        # Inputs first, then parameters in order of use.
        for n, (kind, name) in zip(placeholders, self.tr.kinds):
            t = self.values[n]
            if kind == "input":
                self.env[n] = self._new_arg(t)
                self.input_names.append(name)
                self.dynamic[n] = True
            elif kind == "param":
                self.env[n] = _Param(name, t)
                self.dynamic[n] = True
            else:
                self.env[n] = t
                self.buffer_names.setdefault(id(t), name)
                self.dynamic[n] = False
        results: List[Val] = []
        for n in nodes:
            if n.op == "placeholder":
                continue
            self._set_loc(n)
            if n.op == "output":
                flat = _flatten(self.arg(n.args[0]))
                results = [self.tensor(v) for v in flat
                           if isinstance(v, (Val, _Param, torch.Tensor))]
                if not results:
                    raise FrontendError("the module returns no tensor")
                continue
            self.dynamic[n] = self._is_dynamic(n)
            if not self.dynamic[n]:
                self.env[n] = self.values[n]
                continue
            self.env[n] = self.node(n)
        self.e.loc = None
        lines = ["module {"]
        lines.extend(self.e.decls.values())
        arg_txt = ", ".join("%s: %s" % a for a in self.args)
        res_types = [v.type for v in results]
        res_txt = res_types[0] if len(res_types) == 1 else "(%s)" % ", ".join(res_types)
        lines.append("  func.func @%s(%s) -> %s {" % (self.func_name, arg_txt, res_txt))
        lines.extend(self.e.lines)
        lines.append("    return %s : %s" % (", ".join(v.name for v in results),
                                             ", ".join(res_types)))
        lines.append("  }")
        lines.append("}")
        return TraceResult("\n".join(lines) + "\n", self.func_name, self.input_names,
                           self.param_names, self.params, self.opaque, self.gm)

    def node(self, n: fx.Node):
        value = self.values[n]
        if n.op == "get_attr":
            return value
        if n.op != "call_function":
            raise FrontendError("unsupported node %s (%s)" % (n.name, n.op))
        if n.target is operator.getitem:
            seq, idx = self.arg(n.args[0]), n.args[1]
            if isinstance(seq, (list, tuple)):
                return seq[idx]
            raise FrontendError("%s: getitem of a %s" % (n.name, type(seq).__name__))
        if _is_opaque_call(n):
            key = n.args[1]
            tensors = [self.tensor(x) for x in self.arg(n.args[0])]
            return self.opaque_call(n, opaque_callee(key), tensors, value)
        name = _op_name(n)
        if not hasattr(n.target, "_schema"):
            raise FrontendError("%s: unsupported Python function %s in the traced graph"
                                % (n.name, name))
        if not any(isinstance(x, torch.Tensor) for x in _flatten(value)):
            return value
        handler = _HANDLERS.get(name)
        if handler is None and name.endswith("_") and not name.endswith("__"):
            handler = _HANDLERS.get(name[:-1])  # in-place: the graph uses its result
        if handler is None and name.endswith("_copy"):
            handler = _HANDLERS.get(name[:-len("_copy")])  # functionalized views
        if handler is not None:
            try:
                r = handler(self, n, value, self.bind(n))
            except _Unsupported:
                r = None
            except FrontendError:
                raise
            except Exception as e:
                raise FrontendError("%s (aten.%s): cannot translate: %s: %s"
                                    % (n.name, name, type(e).__name__, e)) from e
            if r is not None:
                return r
        tensors = []
        for a in list(n.args) + list(n.kwargs.values()):
            for v in _flatten(self.arg(a)):
                if isinstance(v, (Val, _Param)) or (isinstance(v, torch.Tensor)):
                    tensors.append(self.tensor(v))
        return self.opaque_call(n, name, tensors, value)

    # -- opaque calls -------------------------------------------------------

    def opaque_call(self, n: fx.Node, callee: str, tensors: List[Val], value):
        outs = [o for o in _flatten(value) if isinstance(o, torch.Tensor)]
        if not outs:
            raise FrontendError("%s (%s) returns no tensor and cannot be an opaque call"
                                % (n.name, callee))
        callee = _sanitize(callee)
        base, k = callee, 1
        sig = ([v.type for v in tensors], [(tuple(o.shape), _et(o)) for o in outs])
        while callee in self._decl_sig and self._decl_sig[callee] != sig:
            k += 1
            callee = "%s_%d" % (base, k)
        self._decl_sig[callee] = sig
        if callee not in self.opaque:
            self.opaque.append(callee)
        res = self.e.call(callee, tensors, [(tuple(o.shape), _et(o)) for o in outs])
        if isinstance(value, torch.Tensor):
            return res[0]
        it = iter(res)

        def rebuild(v):
            if isinstance(v, (list, tuple)):
                return type(v)(rebuild(x) for x in v)
            if isinstance(v, torch.Tensor):
                return next(it)
            return v

        return rebuild(value)

    # -- building blocks --------------------------------------------------------

    def linear(self, x: Val, w: Val, b: Optional[Val], value) -> Val:
        out_shape = tuple(value.shape)
        et = _et(value)
        y = self.e.matmul(x if x.rank >= 2 else self.e.reshape(x, (1,) + x.shape), w,
                          out_shape if x.rank >= 2 else (1,) + out_shape, et,
                          transpose_b=True)
        if x.rank < 2:
            y = self.e.reshape(y, out_shape)
        if b is not None:
            y = self.binary("add", [y, b], value)
        return y

    def embedding(self, idx: Val, w: Val, value) -> Val:
        out_shape = tuple(value.shape)
        et = _et(value)
        r = idx.rank

        def body(bb, a, o):
            i = a[0]
            if idx.et != "index":
                i = bb.op("arith.index_cast %s : %s to index" % (i, idx.et))
            d = bb.index(r)
            return bb.op("tensor.extract %s[%s, %s] : %s" % (w.name, i, d, w.type))

        return self.e.generic([(idx, ["d%d" % k for k in range(r)])], out_shape, et,
                              ["parallel"] * (r + 1), body)

    def rms_norm(self, x: Val, w: Optional[Val], eps: float, value) -> Val:
        et = _et(value)
        sq = self.e.elementwise([x], x.shape, et,
                                lambda bb, a, t: bb.op("arith.mulf %s, %s : %s" % (a[0], a[0], t)))
        ms = self.e.reduce(sq, [-1], True, "mean", et)
        r = self.e.elementwise([ms, float(eps)], ms.shape, et, lambda bb, a, t: bb.op(
            "math.rsqrt %s : %s" % (bb.op("arith.addf %s, %s : %s" % (a[0], a[1], t)), t)))
        ops = [x, r] + ([w] if w is not None else [])

        def fn(bb, a, t):
            y = bb.op("arith.mulf %s, %s : %s" % (a[0], a[1], t))
            if w is not None:
                y = bb.op("arith.mulf %s, %s : %s" % (y, a[2], t))
            return y

        return self.e.elementwise(ops, x.shape, et, fn)

    def layer_norm(self, x: Val, w: Optional[Val], b: Optional[Val], eps: float,
                   value) -> Val:
        et = _et(value)
        mean = self.e.reduce(x, [-1], True, "mean", et)
        xc = self.e.elementwise([x, mean], x.shape, et,
                                lambda bb, a, t: bb.op("arith.subf %s, %s : %s" % (a[0], a[1], t)))
        sq = self.e.elementwise([xc], x.shape, et,
                                lambda bb, a, t: bb.op("arith.mulf %s, %s : %s" % (a[0], a[0], t)))
        var = self.e.reduce(sq, [-1], True, "mean", et)
        r = self.e.elementwise([var, float(eps)], var.shape, et, lambda bb, a, t: bb.op(
            "math.rsqrt %s : %s" % (bb.op("arith.addf %s, %s : %s" % (a[0], a[1], t)), t)))
        ops = [xc, r] + ([w] if w is not None else []) + ([b] if b is not None else [])

        def fn(bb, a, t):
            y = bb.op("arith.mulf %s, %s : %s" % (a[0], a[1], t))
            k = 2
            if w is not None:
                y = bb.op("arith.mulf %s, %s : %s" % (y, a[k], t))
                k += 1
            if b is not None:
                y = bb.op("arith.addf %s, %s : %s" % (y, a[k], t))
            return y

        return self.e.elementwise(ops, x.shape, et, fn)

    _BINARY = {"add": "arith.addf", "sub": "arith.subf", "mul": "arith.mulf",
               "div": "arith.divf", "maximum": "arith.maximumf",
               "minimum": "arith.minimumf"}

    def binary(self, kind: str, operands: List, value, alpha=None) -> Val:
        if not isinstance(value, torch.Tensor):
            raise _Unsupported()
        et = _et(value)
        if et not in ("f32", "f16", "bf16", "f64"):
            raise _Unsupported()
        for o in operands:
            if not isinstance(o, (Val, int, float)) or isinstance(o, bool):
                raise _Unsupported()
        opname = self._BINARY[kind]
        if kind == "pow":
            raise _Unsupported()

        def fn(bb, a, t):
            y = a[1]
            if alpha is not None and alpha != 1:
                y = bb.op("arith.mulf %s, %s : %s" % (y, bb.const(alpha, t), t))
            return bb.op("%s %s, %s : %s" % (opname, a[0], y, t))

        return self.e.elementwise(list(operands), tuple(value.shape), et, fn)

    def select(self, cond, a, b, value) -> Val:
        """where(cond, a, b): cond an i1 tensor, a and b tensors or numbers."""
        et = _et(value)
        if et not in _FLOATS:
            raise _Unsupported()
        c = self.tensor(cond)
        if c.et != "i1":
            raise _Unsupported()
        x, y = self.operand(a), self.operand(b)
        out_shape = tuple(value.shape)
        ops = [c, x, y]
        ins = [(v, self.e.broadcast_exprs(v.shape, out_shape)) for v in ops if isinstance(v, Val)]

        def body(bb, ar, o):
            it = iter(ar)
            vals = []
            for v in ops:
                if isinstance(v, Val):
                    s = next(it)
                    vals.append(s if v is c else bb.cast(s, v.et, et))
                else:
                    vals.append(bb.const(float(v), et))
            return bb.op("arith.select %s, %s, %s : %s" % (vals[0], vals[1], vals[2], et))

        return self.e.generic(ins, out_shape, et, ["parallel"] * len(out_shape), body)

    def unary(self, kind: str, x: Val, value, approximate: str = "none", **kw) -> Val:
        et = _et(value)
        if et not in ("f32", "f16", "bf16", "f64"):
            raise _Unsupported()

        def fn(bb, a, t):
            v = a[0]
            c = lambda x: bb.const(x, t)  # noqa: E731
            if kind == "neg":
                return bb.op("arith.negf %s : %s" % (v, t))
            if kind in ("exp", "tanh", "rsqrt", "sqrt", "log", "erf", "absf", "cos", "sin"):
                return bb.op("math.%s %s : %s" % (kind, v, t))
            if kind == "relu":
                return bb.op("arith.maximumf %s, %s : %s" % (v, c(0.0), t))
            if kind == "sigmoid" or kind == "silu":
                e = bb.op("math.exp %s : %s" % (bb.op("arith.negf %s : %s" % (v, t)), t))
                s = bb.op("arith.divf %s, %s : %s" % (c(1.0), bb.op(
                    "arith.addf %s, %s : %s" % (c(1.0), e, t)), t))
                if kind == "silu":
                    return bb.op("arith.mulf %s, %s : %s" % (v, s, t))
                return s
            if kind == "gelu":
                if approximate == "tanh":
                    x3 = bb.op("arith.mulf %s, %s : %s" % (v, bb.op("arith.mulf %s, %s : %s" % (v, v, t)), t))
                    inner = bb.op("arith.addf %s, %s : %s" % (v, bb.op(
                        "arith.mulf %s, %s : %s" % (x3, c(0.044715), t)), t))
                    th = bb.op("math.tanh %s : %s" % (bb.op("arith.mulf %s, %s : %s" % (
                        inner, c(math.sqrt(2.0 / math.pi)), t)), t))
                else:
                    th = bb.op("math.erf %s : %s" % (bb.op("arith.mulf %s, %s : %s" % (
                        v, c(1.0 / math.sqrt(2.0)), t)), t))
                one = bb.op("arith.addf %s, %s : %s" % (c(1.0), th, t))
                return bb.op("arith.mulf %s, %s : %s" % (bb.op(
                    "arith.mulf %s, %s : %s" % (v, c(0.5), t)), one, t))
            if kind == "reciprocal":
                return bb.op("arith.divf %s, %s : %s" % (c(1.0), v, t))
            if kind == "square":
                return bb.op("arith.mulf %s, %s : %s" % (v, v, t))
            if kind == "pow":
                p = float(kw["exponent"])
                if p == 2.0:
                    return bb.op("arith.mulf %s, %s : %s" % (v, v, t))
                if p == 1.0:
                    return v
                if p == 0.5:
                    return bb.op("math.sqrt %s : %s" % (v, t))
                if p == -0.5:
                    return bb.op("math.rsqrt %s : %s" % (v, t))
                return bb.op("math.powf %s, %s : %s" % (v, c(p), t))
            if kind == "scale":
                return bb.op("arith.mulf %s, %s : %s" % (v, c(kw["factor"]), t))
            raise _Unsupported()

        return self.e.elementwise([x], tuple(value.shape), et, fn)

    def sdpa(self, q: Val, k: Val, v: Val, value, mask=None, is_causal=False,
             scale=None) -> Val:
        et = _et(value)
        L, S = q.shape[-2], k.shape[-2]
        batch = tuple(value.shape[:-2])
        scores_shape = batch + (L, S)
        s = self.e.matmul(q, k, scores_shape, et, transpose_b=True)
        factor = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
        nd = len(scores_shape)

        def fn(bb, a, t):
            y = bb.op("arith.mulf %s, %s : %s" % (a[0], bb.const(factor, t), t))
            if is_causal:
                i = bb.index(nd - 2)
                j = bb.index(nd - 1)
                future = bb.op("arith.cmpi ugt, %s, %s : index" % (j, i))
                y = bb.op("arith.select %s, %s, %s : %s" % (future, bb.const(-math.inf, t), y, t))
            if mask is not None:
                if mask.et == "i1":
                    y = bb.op("arith.select %s, %s, %s : %s" % (a[1], y, bb.const(-math.inf, t), t))
                else:
                    y = bb.op("arith.addf %s, %s : %s" % (y, bb.cast(a[1], mask.et, t), t))
            return y

        ins = [(s, ["d%d" % i for i in range(nd)])]
        if mask is not None:
            ins.append((mask, self.e.broadcast_exprs(mask.shape, scores_shape)))

        def body(bb, a, o):
            return fn(bb, a, et)

        s = self.e.generic(ins, scores_shape, et, ["parallel"] * nd, body)
        p = self.e.softmax(s, -1, et)
        return self.e.matmul(p, v, tuple(value.shape), et)


def _raw_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def _float_bits(t: torch.Tensor, et: str) -> str:
    """The hex literal of one float (exact, and valid for inf and finfo.min)."""
    return "0x" + _raw_bytes(t)[::-1].hex().upper()


# -- handlers: (importer, node, value, bound args) -> IR value or None ---------


def _vals(imp, *xs):
    return [imp.tensor(x) for x in xs]


def _dim(d, rank):
    return d % rank if rank else 0


def _h_binary(kind):
    def h(imp, n, value, a):
        x, y = a["self"], a["other"]
        if not isinstance(value, torch.Tensor) or _et(value) not in _FLOATS:
            raise _Unsupported()
        if a.get("rounding_mode") is not None:
            raise _Unsupported()
        alpha = a.get("alpha")
        return imp.binary(kind, [imp.operand(x), imp.operand(y)], value, alpha=alpha)
    return h


def _h_rsub(imp, n, value, a):
    if _et(value) not in _FLOATS:
        raise _Unsupported()
    return imp.binary("sub", [imp.operand(a["other"]), imp.operand(a["self"])], value,
                      alpha=a.get("alpha"))


def _h_unary(kind):
    def h(imp, n, value, a):
        x = imp.tensor(a["self"])
        kw = {}
        if kind == "gelu":
            kw["approximate"] = a.get("approximate") or "none"
        return imp.unary(kind, x, value, **kw)
    return h


def _h_pow(imp, n, value, a):
    p = a["exponent"]
    if isinstance(p, torch.Tensor) and not isinstance(p, nn.Parameter) and p.dim() == 0:
        p = p.item()
    if not isinstance(p, (int, float)) or isinstance(a["self"], (int, float)):
        raise _Unsupported()
    return imp.unary("pow", imp.tensor(a["self"]), value, exponent=p)


def _h_identity(imp, n, value, a):
    x = a.get("self", a.get("input"))
    return imp.tensor(x)


def _h_dropout(imp, n, value, a):
    if a.get("train") and a.get("p"):
        raise _Unsupported()
    return imp.tensor(a["input"])


def _h_cast(imp, n, value, a):
    x = imp.tensor(a["self"])
    et = _et(value)
    if et == x.et:
        return x
    return imp.e.generic([(x, ["d%d" % i for i in range(x.rank)])], x.shape, et,
                         ["parallel"] * x.rank, lambda bb, ar, o: bb.cast(ar[0], x.et, et))


def _reshaped(imp, v: Val, shape) -> Val:
    """`v` reshaped to `shape`, remembering `v` so that reshaping back gives
    `v` itself (not a collapse/expand pair that hides where it came from)."""
    shape = tuple(shape)
    if v.shape == shape:
        return v
    if v.src is not None and v.src.shape == shape:
        return v.src
    r = imp.e.reshape(v, shape)
    if r is not v:
        r.src = v
    return r


def _batched_lhs(x: Val) -> Optional[Val]:
    """The [..., M, K] value a 2-D [B*M, K] matmul operand was flattened from."""
    s = x.src
    if s is not None and x.rank == 2 and s.rank > 2 and s.shape[-1] == x.shape[1] and \
            math.prod(s.shape[:-1]) == x.shape[0]:
        return s
    return None


def _h_mm(imp, n, value, a):
    x, y = _vals(imp, a["self"], a.get("mat2", a.get("other")))
    if x.rank < 2 or y.rank < 2:
        raise _Unsupported()
    big = _batched_lhs(x) if y.rank == 2 else None
    if big is not None:
        # view -> mm -> view, as torch 1.13 spells linear on 3-D inputs: one
        # batched matmul, so the values keep the model's [..., D] shape.
        out = big.shape[:-1] + (y.shape[1],)
        r = imp.e.matmul(big, y, out, _et(value))
        return _reshaped(imp, r, tuple(value.shape))
    return imp.e.matmul(x, y, tuple(value.shape), _et(value))


def _h_addmm(imp, n, value, a):
    """beta * self + alpha * (mat1 @ mat2): addmm, baddbmm."""
    bias = imp.operand(a["self"])
    x, y = _vals(imp, a.get("mat1", a.get("batch1")), a.get("mat2", a.get("batch2")))
    beta, alpha = a.get("beta", 1), a.get("alpha", 1)
    out_shape = tuple(value.shape)
    big = _batched_lhs(x) if y.rank == 2 else None
    if big is not None:
        out_shape = big.shape[:-1] + (y.shape[1],)
    proto = torch.empty(out_shape, dtype=value.dtype)
    mm = imp.e.matmul(big if big is not None else x, y, out_shape, _et(value))
    if alpha != 1:
        mm = imp.unary("scale", mm, proto, factor=float(alpha))
    if beta != 0:
        if beta != 1:
            if not isinstance(bias, Val):
                bias = bias * beta
            else:
                bias = imp.unary("scale", bias, torch.empty(bias.shape, dtype=value.dtype),
                                 factor=float(beta))
        mm = imp.binary("add", [mm, bias], proto)
    return _reshaped(imp, mm, tuple(value.shape))


def _h_linear(imp, n, value, a):
    x, w = _vals(imp, a["input"], a["weight"])
    b = imp.tensor(a["bias"]) if a.get("bias") is not None else None
    return imp.linear(x, w, b, value)


def _h_embedding(imp, n, value, a):
    w, idx = _vals(imp, a["weight"], a["indices"])
    return imp.embedding(idx, w, value)


def _h_index(imp, n, value, a):
    """x[..., idx, ...] with one integer index tensor (a gather)."""
    x = imp.tensor(a["self"])
    idxs = list(a["indices"])
    pos = [i for i, t in enumerate(idxs) if t is not None]
    if len(pos) != 1:
        raise _Unsupported()
    d = pos[0]
    idx = imp.tensor(idxs[d])
    if idx.et not in ("i64", "i32"):
        raise _Unsupported()
    out_shape = tuple(value.shape)
    ir = idx.rank
    nd = len(out_shape)

    def body(bb, ar, o):
        i = bb.op("arith.index_cast %s : %s to index" % (ar[0], idx.et))
        coords = ["d%d" % k for k in range(d)] + [None] + \
            ["d%d" % (k + ir - 1) for k in range(d + 1, x.rank)]
        subs = [i if c is None else bb.index(int(c[1:])) for c in coords]
        return bb.op("tensor.extract %s[%s] : %s" % (x.name, ", ".join(subs), x.type))

    return imp.e.generic([(idx, ["d%d" % (d + k) for k in range(ir)])], out_shape,
                         _et(value), ["parallel"] * nd, body)


def _h_layer_norm(imp, n, value, a):
    x = imp.tensor(a["input"])
    if len(a["normalized_shape"]) != 1:
        raise _Unsupported()
    out = value[0] if isinstance(value, (tuple, list)) else value
    w = imp.tensor(a["weight"]) if a.get("weight") is not None else None
    b = imp.tensor(a["bias"]) if a.get("bias") is not None else None
    y = imp.layer_norm(x, w, b, a["eps"], out)
    if isinstance(value, (tuple, list)):  # native_layer_norm: (out, mean, rstd)
        return (y, None, None)
    return y


def _h_rms_norm(imp, n, value, a):
    x = imp.tensor(a["input"])
    if len(a["normalized_shape"]) != 1:
        raise _Unsupported()
    eps = a.get("eps")
    if eps is None:
        eps = torch.finfo(value.dtype).eps
    w = imp.tensor(a["weight"]) if a.get("weight") is not None else None
    return imp.rms_norm(x, w, eps, value)


def _h_softmax(imp, n, value, a):
    x = imp.tensor(a["self"])
    return imp.e.softmax(x, a["dim"], _et(value))


def _h_reduce(kind):
    def h(imp, n, value, a):
        x = imp.tensor(a["self"])
        if a.get("dtype") is not None and _DTYPES.get(a["dtype"]) != x.et:
            raise _Unsupported()
        dims = a.get("dim")
        if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
            dims = list(range(x.rank))
        elif not isinstance(dims, (list, tuple)):
            dims = [dims]
        r = imp.e.reduce(x, list(dims), bool(a.get("keepdim", False)), kind, _et(value))
        return imp.e.reshape(r, tuple(value.shape))
    return h


def _h_reshape(imp, n, value, a):
    return _reshaped(imp, imp.tensor(a["self"]), tuple(value.shape))


def _h_expand(imp, n, value, a):
    x = imp.tensor(a["self"])
    out_shape = tuple(value.shape)
    if x.shape == out_shape:
        return x
    return imp.e.generic([(x, imp.e.broadcast_exprs(x.shape, out_shape))], out_shape, x.et,
                         ["parallel"] * len(out_shape), lambda bb, ar, o: ar[0])


def _h_transpose(imp, n, value, a):
    x = imp.tensor(a["self"])
    perm = list(range(x.rank))
    d0, d1 = _dim(a["dim0"], x.rank), _dim(a["dim1"], x.rank)
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return imp.e.permute(x, perm)


def _h_t(imp, n, value, a):
    x = imp.tensor(a["self"])
    return imp.e.permute(x, list(range(x.rank))[::-1])


def _h_permute(imp, n, value, a):
    x = imp.tensor(a["self"])
    return imp.e.permute(x, list(a["dims"]))


def _h_cat(imp, n, value, a):
    xs = [imp.tensor(x) for x in a["tensors"]]
    xs = [x for x in xs if math.prod(x.shape) > 0 or x.rank > 1]
    out_shape = tuple(value.shape)
    return imp.e.concat(xs, _dim(a["dim"], len(out_shape)), out_shape)


def _h_stack(imp, n, value, a):
    xs = [imp.tensor(x) for x in a["tensors"]]
    dim = _dim(a["dim"], xs[0].rank + 1)
    ys = [imp.e.unsqueeze(x, dim) for x in xs]
    return imp.e.concat(ys, dim, tuple(value.shape))


def _h_slice(imp, n, value, a):
    x = imp.tensor(a["self"])
    d = _dim(a["dim"], x.rank)
    start, stop, step = slice(a.get("start"), a.get("end"), a.get("step") or 1).indices(x.shape[d])
    offsets, strides = [0] * x.rank, [1] * x.rank
    offsets[d], strides[d] = start, step
    return imp.e.extract_slice(x, offsets, list(value.shape), tuple(value.shape), strides)


def _h_select(imp, n, value, a):
    x = imp.tensor(a["self"])
    d = _dim(a["dim"], x.rank)
    offsets, sizes = [0] * x.rank, list(x.shape)
    offsets[d], sizes[d] = a["index"] % x.shape[d], 1
    return imp.e.extract_slice(x, offsets, sizes, tuple(value.shape))


def _h_split(imp, n, value, a):
    """split, split_with_sizes, chunk, unbind: one slice per result."""
    x = imp.tensor(a["self"])
    d = _dim(a.get("dim") or 0, x.rank)
    outs, off = [], 0
    for t in value:
        size = t.shape[d] if t.dim() == x.rank else 1
        offsets, sizes = [0] * x.rank, list(x.shape)
        offsets[d], sizes[d] = off, size
        off += size
        outs.append(imp.e.extract_slice(x, offsets, sizes, tuple(t.shape)))
    return type(value)(outs) if isinstance(value, tuple) else outs


def _h_where(imp, n, value, a):
    return imp.select(a["condition"], a["self"], a["other"], value)


def _h_masked_fill(imp, n, value, a):
    return imp.select(a["mask"], a["value"], a["self"], value)


def _h_compare(pred):
    def h(imp, n, value, a):
        x, y = imp.operand(a["self"]), imp.operand(a["other"])
        ets = [v.et for v in (x, y) if isinstance(v, Val)]
        if any(et not in _FLOATS for et in ets):
            raise _Unsupported()
        cet = ets[0]
        return imp.e.elementwise([x, y], tuple(value.shape), "i1", lambda bb, ar, t: bb.op(
            "arith.cmpf %s, %s, %s : %s" % (pred, ar[0], ar[1], t)), compute_et=cet)
    return h


def _h_sdpa(imp, n, value, a):
    if a.get("dropout_p") or a.get("dropout_mask") is not None:
        raise _Unsupported()
    if a.get("enable_gqa"):
        raise _Unsupported()
    q, k, v = _vals(imp, a["query"], a["key"], a["value"])
    m = a.get("attn_mask", a.get("attn_bias"))
    mask = imp.tensor(m) if m is not None else None
    return imp.sdpa(q, k, v, value, mask=mask, is_causal=bool(a.get("is_causal")),
                    scale=a.get("scale"))


def _h_sdpa_variant(imp, n, value, a):
    """torch 2's CPU/CUDA/math forms of scaled_dot_product_attention return
    (output, logsumexp or weights, ...): the output is translated, the other
    results are not available."""
    out = _h_sdpa(imp, n, value[0], a)
    return (out,) + (None,) * (len(value) - 1)


def _table(groups):
    """{aten name: handler} from (handler, name, aliases...) groups."""
    table = {}
    for handler, *names in groups:
        for name in names:
            table[name] = handler
    return table


_BINARY = ("add", "sub", "mul", "div", "maximum", "minimum")
# aten name -> the arith/math op spelling of _h_unary.
_UNARY = dict({n: n for n in ("neg", "exp", "tanh", "rsqrt", "sqrt", "log", "sigmoid", "relu",
                              "gelu", "silu", "erf", "reciprocal", "square", "cos", "sin")},
              abs="absf")
_COMPARE = {"lt": "olt", "le": "ole", "gt": "ogt", "ge": "oge", "eq": "oeq", "ne": "une"}

_HANDLERS = _table([
    (_h_sdpa_variant, "_scaled_dot_product_flash_attention_for_cpu",
     "_scaled_dot_product_attention_math", "_scaled_dot_product_efficient_attention",
     "_scaled_dot_product_flash_attention"),
    (_h_rsub, "rsub"), (_h_pow, "pow"),
    (_h_identity, "clone", "contiguous", "detach", "alias", "lift_fresh_copy", "lift_fresh"),
    (_h_dropout, "dropout", "feature_dropout"),
    (_h_cast, "_to_copy", "to", "type_as"),
    (_h_mm, "mm", "bmm", "matmul"), (_h_addmm, "addmm", "baddbmm"),
    (_h_linear, "linear"), (_h_embedding, "embedding"), (_h_index, "index"),
    (_h_layer_norm, "native_layer_norm", "layer_norm"), (_h_rms_norm, "rms_norm"),
    (_h_softmax, "_softmax", "softmax"),
    (_h_reshape, "view", "_unsafe_view", "_reshape_alias", "reshape", "flatten", "squeeze",
     "unsqueeze", "view_as"),
    (_h_expand, "expand"), (_h_transpose, "transpose"), (_h_t, "t"), (_h_permute, "permute"),
    (_h_cat, "cat", "concat"), (_h_stack, "stack"), (_h_slice, "slice"),
    (_h_select, "select"),
    (_h_split, "split", "split_with_sizes", "chunk", "unbind", "unsafe_split"),
    (_h_where, "where"), (_h_masked_fill, "masked_fill"),
    (_h_sdpa, "scaled_dot_product_attention"),
])
_HANDLERS.update({n: _h_binary(n) for n in _BINARY})
_HANDLERS.update({n: _h_unary(op) for n, op in _UNARY.items()})
_HANDLERS.update({n: _h_compare(p) for n, p in _COMPARE.items()})
_HANDLERS.update({"sum": _h_reduce("sum"), "mean": _h_reduce("mean"),
                  "amax": _h_reduce("max")})


def import_module(module: nn.Module, example_inputs: Sequence[Any], *,
                  opaque: Sequence[type] = (), func_name: str = "forward") -> TraceResult:
    """Traces ``module`` through concrete shapes on ``example_inputs`` and
    returns linalg-on-tensors MLIR text.

    The emitted ``func.func @<func_name>`` takes the tensor inputs, then every
    parameter (and every buffer read whole) that is used, names in
    ``TraceResult.param_names``, and returns the module's tensor outputs.
    ``opaque`` lists module types to keep as opaque ``func.call``s. The module
    is traced in eval mode (its training flags are restored afterwards).
    Errors are :class:`FrontendError` with the reason.
    """
    if not isinstance(module, nn.Module):
        raise FrontendError("import_module expects an nn.Module, got %s" % type(module).__name__)
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (list, tuple)):
        raise FrontendError("example_inputs must be a tensor or a tuple of inputs, got %s"
                            % type(example_inputs).__name__)
    opaque = tuple(opaque)
    if not all(isinstance(t, type) for t in opaque):
        raise FrontendError("opaque= takes module types")
    tr = trace_aten(module, tuple(example_inputs), opaque)
    rec = _Recorder(tr.gm)
    try:
        with torch.no_grad():
            rec.run(*tr.flat_args)
    except Exception as e:
        raise FrontendError("the traced graph of %s does not run again: %s"
                            % (type(module).__name__, e)) from e
    imp = _Importer(tr, rec.values, func_name)
    return imp.run()


def trace(module: nn.Module, example_inputs, **kwargs) -> str:
    """The MLIR text of :func:`import_module`."""
    return import_module(module, example_inputs, **kwargs).ir
