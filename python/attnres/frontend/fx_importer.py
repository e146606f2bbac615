"""torch.fx -> linalg-on-tensors MLIR text.

The module is traced with torch.fx and run once on example inputs, so every
shape is static and every non-tensor value (sizes, dims) is known. Supported
modules and functions become linalg/tensor/arith/math ops; any other leaf
module or function becomes a `func.call` of a private declaration, so that the
residual structure of the model stays visible to
attnres-detect-residual-chains.
"""

import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from .emitter import Emitter, FrontendError, Val

__all__ = ["TraceResult", "trace", "import_module"]

_DTYPES = {
    torch.float32: "f32",
    torch.float16: "f16",
    torch.bfloat16: "bf16",
    torch.float64: "f64",
    torch.int64: "i64",
    torch.int32: "i32",
    torch.bool: "i1",
}


def _et(t: torch.Tensor) -> str:
    try:
        return _DTYPES[t.dtype]
    except KeyError:
        raise FrontendError("unsupported dtype %s" % t.dtype)


_ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid)
_IDENTITIES = (nn.Dropout, nn.Identity)


def _rmsnorm_types():
    t = getattr(nn, "RMSNorm", None)  # torch >= 2.4
    return (t,) if t is not None else ()


def _supported_module_types():
    return (nn.Linear, nn.Embedding, nn.LayerNorm, nn.Softmax) + _ACTIVATIONS + \
        _IDENTITIES + _rmsnorm_types()


class _Tracer(fx.Tracer):
    def __init__(self, opaque: Tuple[type, ...]):
        super().__init__()
        self.opaque = opaque

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if self.opaque and isinstance(m, self.opaque):
            return True
        if isinstance(m, _supported_module_types()):
            return True
        return super().is_leaf_module(m, qualname)


class _Recorder(fx.Interpreter):
    """Runs the graph and keeps every node's value."""

    def __init__(self, gm):
        super().__init__(gm)
        self.values: Dict[fx.Node, Any] = {}

    def run_node(self, n):
        r = super().run_node(n)
        self.values[n] = r
        return r


@dataclass
class TraceResult:
    """What :func:`import_module` returns."""

    ir: str
    func_name: str
    input_names: List[str]
    # Qualified names of the parameters and buffers, in argument order after
    # the inputs.
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


def _target_name(node: fx.Node) -> str:
    t = node.target
    if node.op == "call_method":
        return t
    name = getattr(t, "__name__", None) or str(t)
    return name


class _Importer:
    def __init__(self, gm: fx.GraphModule, values: Dict[fx.Node, Any],
                 func_name: str):
        self.gm = gm
        self.values = values
        self.func_name = func_name
        self.e = Emitter()
        self.env: Dict[fx.Node, Any] = {}
        self.args: List[Tuple[str, str]] = []  # (ssa name, type)
        self.input_names: List[str] = []
        self.param_names: List[str] = []
        self.params: List[torch.Tensor] = []
        self.param_vals: Dict[int, Val] = {}
        self.opaque: List[str] = []

    # -- values ------------------------------------------------------------

    def _new_arg(self, t: torch.Tensor, hint: str) -> Val:
        name = "%%arg%d" % len(self.args)
        v = Val(name, tuple(t.shape), _et(t))
        self.args.append((name, v.type))
        return v

    def param(self, qualname: str, t: torch.Tensor) -> Val:
        key = id(t)
        if key not in self.param_vals:
            self.param_vals[key] = self._new_arg(t, qualname)
            self.param_names.append(qualname)
            self.params.append(t)
        return self.param_vals[key]

    def arg(self, a):
        """The IR value (tensor) or the concrete Python value of an argument."""
        if isinstance(a, fx.Node):
            if a not in self.env:
                raise FrontendError("node %s used before definition" % a.name)
            return self.env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(self.arg(x) for x in a)
        if isinstance(a, dict):
            return {k: self.arg(v) for k, v in a.items()}
        return a

    # -- the graph ---------------------------------------------------------

    def run(self) -> TraceResult:
        nodes = list(self.gm.graph.nodes)
        # Inputs first, then parameters in order of use.
        for n in nodes:
            if n.op == "placeholder":
                t = self.values[n]
                if not isinstance(t, torch.Tensor):
                    raise FrontendError("input %s is not a tensor" % n.name)
                self.env[n] = self._new_arg(t, n.name)
                self.input_names.append(n.name)
        results: List[Val] = []
        for n in nodes:
            if n.op == "placeholder":
                continue
            self.e.loc = n.name
            if n.op == "output":
                flat = self._flatten(self.arg(n.args[0]))
                results = [v for v in flat if isinstance(v, Val)]
                if not results:
                    raise FrontendError("the module returns no tensor")
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

    @staticmethod
    def _flatten(x) -> List:
        if isinstance(x, (list, tuple)):
            out = []
            for y in x:
                out.extend(_Importer._flatten(y))
            return out
        return [x]

    def node(self, n: fx.Node):
        value = self.values[n]
        if n.op == "get_attr":
            t = self.values[n]
            if isinstance(t, torch.Tensor):
                return self.param(n.target, t)
            return t
        if n.op == "call_module":
            mod = self.gm.get_submodule(n.target)
            return self.call_module(n, mod, value)
        if n.op in ("call_function", "call_method"):
            return self.call(n, value)
        raise FrontendError("unsupported node %s (%s)" % (n.name, n.op))

    # -- opaque calls -------------------------------------------------------

    def opaque_call(self, n: fx.Node, callee: str, value):
        tensors = []
        for a in list(n.args) + list(n.kwargs.values()):
            tensors.extend(v for v in self._flatten(self.arg(a)) if isinstance(v, Val))
        outs = self._flatten(value)
        if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
            raise FrontendError(
                "%s (%s) returns non-tensor values and cannot be an opaque call"
                % (n.name, callee))
        callee = _sanitize(callee)
        base, k = callee, 1
        sig = ([v.type for v in tensors], [(tuple(o.shape), _et(o)) for o in outs])
        while callee in self.e.decls and self._decl_sig.get(callee) != sig:
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
            return next(it)

        return rebuild(value)

    _decl_sig: Dict[str, Any] = {}

    # -- modules ------------------------------------------------------------

    def call_module(self, n: fx.Node, mod: nn.Module, value):
        args = [self.arg(a) for a in n.args]
        kwargs = {k: self.arg(v) for k, v in n.kwargs.items()}
        q = n.target
        if isinstance(mod, nn.Linear) and isinstance(args[0], Val):
            w = self.param(q + ".weight", mod.weight)
            b = self.param(q + ".bias", mod.bias) if mod.bias is not None else None
            return self.linear(args[0], w, b, value)
        if isinstance(mod, nn.Embedding) and isinstance(args[0], Val):
            return self.embedding(args[0], self.param(q + ".weight", mod.weight), value)
        if isinstance(mod, nn.LayerNorm) and isinstance(args[0], Val) and \
                len(mod.normalized_shape) == 1:
            w = self.param(q + ".weight", mod.weight) if mod.weight is not None else None
            b = self.param(q + ".bias", mod.bias) if mod.bias is not None else None
            return self.layer_norm(args[0], w, b, mod.eps, value)
        if _rmsnorm_types() and isinstance(mod, _rmsnorm_types()) and \
                isinstance(args[0], Val) and len(mod.normalized_shape) == 1:
            w = self.param(q + ".weight", mod.weight) if mod.weight is not None else None
            eps = mod.eps if mod.eps is not None else torch.finfo(value.dtype).eps
            return self.rms_norm(args[0], w, eps, value)
        if isinstance(mod, nn.Softmax) and isinstance(args[0], Val):
            return self.e.softmax(args[0], mod.dim if mod.dim is not None else -1, _et(value))
        if isinstance(mod, _IDENTITIES):
            return args[0]
        if isinstance(mod, _ACTIVATIONS) and isinstance(args[0], Val):
            kind = {nn.ReLU: "relu", nn.GELU: "gelu", nn.SiLU: "silu", nn.Tanh: "tanh",
                    nn.Sigmoid: "sigmoid"}[type(mod)]
            approx = getattr(mod, "approximate", "none")
            return self.unary(kind, args[0], value, approximate=approx)
        return self.opaque_call(n, q, value)

    # -- functions and methods --------------------------------------------------

    def call(self, n: fx.Node, value):
        name = _target_name(n)
        args = [self.arg(a) for a in n.args]
        kwargs = {k: self.arg(v) for k, v in n.kwargs.items()}
        # Pure Python values (sizes, dims, shapes): no IR.
        if not any(isinstance(x, torch.Tensor) for x in self._flatten(value)):
            return value
        handler = _HANDLERS.get(name)
        if handler is not None:
            try:
                r = handler(self, n, value, args, kwargs)
            except _Unsupported:
                r = None
            if r is not None:
                return r
        return self.opaque_call(n, name, value)

    # -- building blocks ----------------------------------------------------

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

    def unary(self, kind: str, x: Val, value, approximate: str = "none", **kw) -> Val:
        et = _et(value)
        if et not in ("f32", "f16", "bf16", "f64"):
            raise _Unsupported()

        def fn(bb, a, t):
            v = a[0]
            c = lambda x: bb.const(x, t)  # noqa: E731
            if kind == "neg":
                return bb.op("arith.negf %s : %s" % (v, t))
            if kind in ("exp", "tanh", "rsqrt", "sqrt", "log", "erf", "absf"):
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


class _Unsupported(Exception):
    pass


# -- handlers: (importer, node, value, args, kwargs) -> IR value or None ------

def _dims(args, kwargs, pos, key="dim"):
    d = kwargs.get(key, args[pos] if len(args) > pos else None)
    if d is None:
        return None
    return list(d) if isinstance(d, (list, tuple)) else [d]


def _h_binary(kind):
    def h(imp, n, value, args, kwargs):
        if len(args) < 2:
            raise _Unsupported()
        a, b = args[0], args[1]
        alpha = kwargs.get("alpha")
        if kind in ("add", "sub") and not isinstance(a, Val) and not isinstance(b, Val):
            raise _Unsupported()
        if kwargs.get("rounding_mode") is not None:
            raise _Unsupported()
        return imp.binary(kind, [a, b], value, alpha=alpha)
    return h


def _h_unary(kind):
    def h(imp, n, value, args, kwargs):
        if not args or not isinstance(args[0], Val) or not isinstance(value, torch.Tensor):
            raise _Unsupported()
        approx = kwargs.get("approximate", args[1] if kind == "gelu" and len(args) > 1 else "none")
        return imp.unary(kind, args[0], value, approximate=approx)
    return h


def _h_pow(imp, n, value, args, kwargs):
    x = args[0]
    p = args[1] if len(args) > 1 else kwargs.get("exponent")
    if not isinstance(x, Val) or not isinstance(p, (int, float)):
        raise _Unsupported()
    return imp.unary("pow", x, value, exponent=p)


def _h_identity(imp, n, value, args, kwargs):
    if not isinstance(args[0], Val):
        raise _Unsupported()
    return args[0]


def _h_cast(imp, n, value, args, kwargs):
    x = args[0]
    if not isinstance(x, Val) or not isinstance(value, torch.Tensor):
        raise _Unsupported()
    et = _et(value)
    if et == x.et:
        return x
    return imp.e.generic([(x, ["d%d" % i for i in range(x.rank)])], x.shape, et,
                         ["parallel"] * x.rank, lambda bb, a, o: bb.cast(a[0], x.et, et))


def _h_matmul(imp, n, value, args, kwargs):
    a, b = args[0], args[1]
    if not isinstance(a, Val) or not isinstance(b, Val) or a.rank < 2 or b.rank < 2:
        raise _Unsupported()
    return imp.e.matmul(a, b, tuple(value.shape), _et(value))


def _h_linear(imp, n, value, args, kwargs):
    x = args[0]
    w = args[1] if len(args) > 1 else kwargs.get("weight")
    b = args[2] if len(args) > 2 else kwargs.get("bias")
    if not isinstance(x, Val) or not isinstance(w, Val):
        raise _Unsupported()
    return imp.linear(x, w, b if isinstance(b, Val) else None, value)


def _h_embedding(imp, n, value, args, kwargs):
    idx, w = args[0], args[1]
    if not isinstance(idx, Val) or not isinstance(w, Val):
        raise _Unsupported()
    return imp.embedding(idx, w, value)


def _h_layer_norm(imp, n, value, args, kwargs):
    x = args[0]
    shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
    w = args[2] if len(args) > 2 else kwargs.get("weight")
    b = args[3] if len(args) > 3 else kwargs.get("bias")
    eps = args[4] if len(args) > 4 else kwargs.get("eps", 1e-5)
    if not isinstance(x, Val) or len(shape) != 1:
        raise _Unsupported()
    return imp.layer_norm(x, w if isinstance(w, Val) else None,
                          b if isinstance(b, Val) else None, eps, value)


def _h_rms_norm(imp, n, value, args, kwargs):
    x = args[0]
    shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
    w = args[2] if len(args) > 2 else kwargs.get("weight")
    eps = args[3] if len(args) > 3 else kwargs.get("eps")
    if eps is None:
        eps = torch.finfo(value.dtype).eps
    if not isinstance(x, Val) or len(shape) != 1:
        raise _Unsupported()
    return imp.rms_norm(x, w if isinstance(w, Val) else None, eps, value)


def _h_softmax(imp, n, value, args, kwargs):
    x = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    if not isinstance(x, Val) or dim is None:
        raise _Unsupported()
    return imp.e.softmax(x, dim, _et(value))


def _h_reduce(kind):
    def h(imp, n, value, args, kwargs):
        x = args[0]
        if not isinstance(x, Val) or not isinstance(value, torch.Tensor):
            raise _Unsupported()
        dims = _dims(args, kwargs, 1)
        keep = kwargs.get("keepdim", args[2] if len(args) > 2 else False)
        if kwargs.get("dtype") is not None:
            raise _Unsupported()
        if dims is None:
            dims = list(range(x.rank))
        r = imp.e.reduce(x, dims, bool(keep), kind, _et(value))
        return imp.e.reshape(r, tuple(value.shape))
    return h


def _h_reshape(imp, n, value, args, kwargs):
    x = args[0]
    if not isinstance(x, Val):
        raise _Unsupported()
    return imp.e.reshape(x, tuple(value.shape))


def _h_transpose(imp, n, value, args, kwargs):
    x = args[0]
    if not isinstance(x, Val):
        raise _Unsupported()
    d0 = args[1] if len(args) > 1 else kwargs.get("dim0")
    d1 = args[2] if len(args) > 2 else kwargs.get("dim1")
    perm = list(range(x.rank))
    d0, d1 = d0 % x.rank, d1 % x.rank
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return imp.e.permute(x, perm)


def _h_t(imp, n, value, args, kwargs):
    x = args[0]
    if not isinstance(x, Val) or x.rank != 2:
        raise _Unsupported()
    return imp.e.permute(x, [1, 0])


def _h_permute(imp, n, value, args, kwargs):
    x = args[0]
    if not isinstance(x, Val):
        raise _Unsupported()
    perm = args[1:] if len(args) > 1 else kwargs.get("dims")
    if len(perm) == 1 and isinstance(perm[0], (list, tuple)):
        perm = perm[0]
    return imp.e.permute(x, list(perm))


def _h_stack(imp, n, value, args, kwargs):
    xs = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if not all(isinstance(x, Val) for x in xs):
        raise _Unsupported()
    dim %= xs[0].rank + 1
    ys = [imp.e.unsqueeze(x, dim) for x in xs]
    return imp.e.concat(ys, dim, tuple(value.shape))


def _h_cat(imp, n, value, args, kwargs):
    xs = args[0]
    dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
    if not all(isinstance(x, Val) for x in xs):
        raise _Unsupported()
    return imp.e.concat(list(xs), dim % xs[0].rank, tuple(value.shape))


def _h_unsqueeze(imp, n, value, args, kwargs):
    x = args[0]
    if not isinstance(x, Val):
        raise _Unsupported()
    return imp.e.reshape(x, tuple(value.shape))


def _h_getitem(imp, n, value, args, kwargs):
    x, idx = args[0], args[1]
    if isinstance(x, (list, tuple)):
        return x[idx]
    if not isinstance(x, Val):
        raise _Unsupported()
    if not isinstance(idx, tuple):
        idx = (idx,)
    # Basic indexing: ints, unit-step slices, one Ellipsis.
    if any(i is None for i in idx) or sum(i is Ellipsis for i in idx) > 1:
        raise _Unsupported()
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        fill = x.rank - (len(idx) - 1)
        idx = idx[:k] + (slice(None),) * fill + idx[k + 1:]
    idx = idx + (slice(None),) * (x.rank - len(idx))
    offsets, sizes = [], []
    for d, i in enumerate(idx):
        if isinstance(i, int):
            offsets.append(i % x.shape[d])
            sizes.append(1)
        elif isinstance(i, slice):
            start, stop, step = i.indices(x.shape[d])
            if step != 1:
                raise _Unsupported()
            offsets.append(start)
            sizes.append(max(0, stop - start))
        else:
            raise _Unsupported()
    return imp.e.extract_slice(x, offsets, sizes, tuple(value.shape))


def _h_split(imp, n, value, args, kwargs):
    x = args[0]
    if not isinstance(x, Val):
        raise _Unsupported()
    name = _target_name(n)
    dim = kwargs.get("dim", args[2] if len(args) > 2 else 0) % x.rank
    outs, off = [], 0
    for t in value:
        sizes = list(x.shape)
        sizes[dim] = t.shape[dim]
        offsets = [0] * x.rank
        offsets[dim] = off
        off += t.shape[dim]
        outs.append(imp.e.extract_slice(x, offsets, sizes, tuple(t.shape)))
    return tuple(outs)


def _h_sdpa(imp, n, value, args, kwargs):
    q, k, v = args[0], args[1], args[2]
    mask = kwargs.get("attn_mask", args[3] if len(args) > 3 else None)
    dropout = kwargs.get("dropout_p", args[4] if len(args) > 4 else 0.0)
    causal = kwargs.get("is_causal", args[5] if len(args) > 5 else False)
    scale = kwargs.get("scale", args[6] if len(args) > 6 else None)
    if not all(isinstance(t, Val) for t in (q, k, v)) or dropout:
        raise _Unsupported()
    if mask is not None and not isinstance(mask, Val):
        raise _Unsupported()
    return imp.sdpa(q, k, v, value, mask=mask, is_causal=bool(causal), scale=scale)


_HANDLERS = {
    "add": _h_binary("add"), "iadd": _h_binary("add"), "sub": _h_binary("sub"),
    "isub": _h_binary("sub"), "mul": _h_binary("mul"), "imul": _h_binary("mul"),
    "truediv": _h_binary("div"), "div": _h_binary("div"), "itruediv": _h_binary("div"),
    "maximum": _h_binary("maximum"), "minimum": _h_binary("minimum"),
    "neg": _h_unary("neg"), "exp": _h_unary("exp"), "tanh": _h_unary("tanh"),
    "rsqrt": _h_unary("rsqrt"), "sqrt": _h_unary("sqrt"), "log": _h_unary("log"),
    "sigmoid": _h_unary("sigmoid"), "relu": _h_unary("relu"), "gelu": _h_unary("gelu"),
    "silu": _h_unary("silu"), "erf": _h_unary("erf"), "abs": _h_unary("absf"),
    "reciprocal": _h_unary("reciprocal"), "square": _h_unary("square"),
    "pow": _h_pow,
    "contiguous": _h_identity, "clone": _h_identity, "detach": _h_identity,
    "dropout": _h_identity,
    "float": _h_cast, "half": _h_cast, "bfloat16": _h_cast, "to": _h_cast,
    "type_as": _h_cast,
    "matmul": _h_matmul, "bmm": _h_matmul,
    "linear": _h_linear, "embedding": _h_embedding,
    "layer_norm": _h_layer_norm, "rms_norm": _h_rms_norm,
    "softmax": _h_softmax,
    "sum": _h_reduce("sum"), "mean": _h_reduce("mean"), "amax": _h_reduce("max"),
    "view": _h_reshape, "reshape": _h_reshape, "flatten": _h_reshape,
    "squeeze": _h_reshape, "unsqueeze": _h_unsqueeze, "expand_as": None,
    "transpose": _h_transpose, "permute": _h_permute, "t": _h_t,
    "stack": _h_stack, "cat": _h_cat, "concat": _h_cat,
    "getitem": _h_getitem, "split": _h_split, "chunk": _h_split,
    "scaled_dot_product_attention": _h_sdpa,
}
_HANDLERS = {k: v for k, v in _HANDLERS.items() if v is not None}


def import_module(module: nn.Module, example_inputs: Sequence[torch.Tensor], *,
                  opaque: Sequence[type] = (), func_name: str = "forward") -> TraceResult:
    """Traces ``module`` with torch.fx, runs it once on ``example_inputs`` (for
    static shapes and sizes) and returns linalg-on-tensors MLIR text.

    The emitted ``func.func @<func_name>`` takes the inputs, then every
    parameter and buffer used (names in ``TraceResult.param_names``), and
    returns the module's tensor outputs. ``opaque`` lists module types to keep
    as opaque ``func.call``s even if they could be traced through.
    """
    if not isinstance(module, nn.Module):
        raise TypeError("module must be an nn.Module")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    tracer = _Tracer(tuple(opaque))
    try:
        graph = tracer.trace(module)
    except Exception as e:  # fx raises many kinds of errors
        raise FrontendError("torch.fx could not trace %s: %s (mark the offending "
                            "submodule type as opaque=)" % (type(module).__name__, e))
    gm = fx.GraphModule(tracer.root, graph)
    rec = _Recorder(gm)
    with torch.no_grad():
        rec.run(*example_inputs)
    imp = _Importer(gm, rec.values, func_name)
    imp._decl_sig = {}
    return imp.run()


def trace(module: nn.Module, example_inputs, **kwargs) -> str:
    """The MLIR text of :func:`import_module`."""
    return import_module(module, example_inputs, **kwargs).ir
