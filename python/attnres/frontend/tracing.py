"""Tracing a PyTorch module through concrete shapes into an aten graph.

``trace_aten`` runs the module once under
``torch.fx.experimental.proxy_tensor.make_fx`` (torch 1.13 and later), so
Python control flow on shapes, ``arange``/``full`` with traced sizes, slices
with traced bounds and modules returning tuples all trace: every size is a
concrete int while the graph is recorded. Parameters and buffers are passed
explicitly (``functional_call``), so they are placeholders of the graph.

The trace runs with autograd on and the parameters requiring grad: PyTorch's
inference fast paths (``aten._transformer_encoder_layer_fwd``,
``aten._native_multi_head_attention`` in ``nn.TransformerEncoderLayer`` and
``nn.MultiheadAttention``) are only taken without grad, so the graph shows the
plain aten ops (addmm, bmm, _softmax, native_layer_norm, add, ...) and with
them the residual stream.

Opaque submodules become one ``attnres_opaque.call`` node each: a custom op
whose implementation runs the submodule's real ``forward``. Its non-tensor
inputs and outputs (flags, ``None`` attention weights) are fixed at trace
time; only tensors flow through the op.
"""

import inspect
import itertools
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.fx as fx
import torch.nn as nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from .emitter import FrontendError

__all__ = ["AtenTrace", "trace_aten", "OPAQUE_OP_NAMESPACE"]

OPAQUE_OP_NAMESPACE = "attnres_opaque"

# -- opaque submodules ----------------------------------------------------------

_opaque_lib = None
_opaque_keys = itertools.count()
# key -> (qualified module name, function from the tensor inputs to the
# tensor outputs). Entries live as long as the process: a traced graph can be
# run again (the importer does, to record every value).
_opaque_registry: Dict[int, Tuple[str, Any]] = {}


def _opaque_impl(args, key):
    return _opaque_registry[key][1](list(args))


def _opaque_op():
    global _opaque_lib
    if _opaque_lib is None:
        lib = torch.library.Library(OPAQUE_OP_NAMESPACE, "DEF")
        lib.define("call(Tensor[] args, int key) -> Tensor[]")
        lib.impl("call", _opaque_impl, "CompositeExplicitAutograd")
        _opaque_lib = lib
    return torch.ops.attnres_opaque.call.default


def opaque_callee(key: int) -> str:
    """The qualified module name of an opaque call node's key."""
    return _opaque_registry[key][0]


def _opaque_forward(qualname: str, orig_forward):
    op = _opaque_op()

    def forward(*args, **kwargs):
        flat, spec = tree_flatten((args, kwargs))
        tpos = [i for i, x in enumerate(flat) if isinstance(x, torch.Tensor)]
        produced = {}

        def run(tensors):
            f = list(flat)
            for i, t in zip(tpos, tensors):
                f[i] = t
            a, k = tree_unflatten(f, spec)
            out = orig_forward(*a, **k)
            oflat, ospec = tree_flatten(out)
            produced["flat"], produced["spec"] = oflat, ospec
            return [x for x in oflat if isinstance(x, torch.Tensor)]

        key = next(_opaque_keys)
        _opaque_registry[key] = (qualname, run)
        touts = op([flat[i] for i in tpos], key)
        it = iter(touts)
        oflat = [next(it) if isinstance(x, torch.Tensor) else x for x in produced["flat"]]
        return tree_unflatten(oflat, produced["spec"])

    return forward


# -- where nodes come from ------------------------------------------------------

_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_FRONTEND_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame(stop) -> Optional[Tuple[str, int]]:
    """file:line of the innermost frame of model code (not torch, not this
    frontend) on the stack below the frame running code object `stop` (the
    traced function); None when the op comes from torch's own modules."""
    f = sys._getframe(2)
    while f is not None and f.f_code is not stop:
        fn = os.path.abspath(f.f_code.co_filename)
        if not fn.startswith(_TORCH_DIR) and not fn.startswith(_FRONTEND_DIR) and \
                not fn.startswith("<"):
            return fn, f.f_lineno
        f = f.f_back
    return None


class _Scopes:
    """The qualified names of the modules being called, via global forward
    hooks (torch >= 1.13)."""

    def __init__(self, root: nn.Module):
        self.names = {id(m): n for n, m in _all_modules(root)}
        self.stack: List[str] = []
        self.handles = []

    def __enter__(self):
        from torch.nn.modules import module as M

        def pre(mod, args):
            self.stack.append(self.names.get(id(mod), self.stack[-1] if self.stack else ""))

        def post(mod, args, out):
            if self.stack:
                self.stack.pop()

        self.handles = [M.register_module_forward_pre_hook(pre),
                        M.register_module_forward_hook(post)]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()

    def current(self) -> str:
        return self.stack[-1] if self.stack else ""


def _all_modules(root: nn.Module, prefix: str = ""):
    """(qualified name, module) of every submodule, shared ones under each
    name (nn.Module.named_modules drops duplicates)."""
    yield prefix, root
    for name, child in root._modules.items():
        if child is not None:
            yield from _all_modules(child, prefix + "." + name if prefix else name)


def _all_tensors(root: nn.Module, attr: str):
    """(qualified name, tensor) of every parameter or buffer, tied ones under
    each of their names."""
    out = []
    for mname, m in _all_modules(root):
        for name, t in getattr(m, attr).items():
            if t is not None:
                out.append((mname + "." + name if mname else name, t))
    return out


# -- the trace ------------------------------------------------------------------


@dataclass
class AtenTrace:
    """An aten graph with its placeholders classified."""

    gm: fx.GraphModule
    # Per placeholder, in order: ("input", name) | ("param", name) |
    # ("buffer", name).
    kinds: List[Tuple[str, str]]
    # The tensors fed to the placeholders, in order.
    flat_args: List[torch.Tensor] = field(repr=False)
    # Node -> (scope, (file, line) or None).
    origins: Dict[fx.Node, Tuple[str, Optional[Tuple[str, int]]]] = field(repr=False)


def _functional_call():
    f = getattr(getattr(torch, "func", None), "functional_call", None)
    if f is not None:
        return f
    from torch.nn.utils.stateless import functional_call
    return functional_call


def _input_names(module: nn.Module, n: int) -> List[str]:
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else "arg%d" % i for i in range(n)]


def trace_aten(module: nn.Module, example_inputs: Sequence[Any],
               opaque: Tuple[type, ...] = ()) -> AtenTrace:
    from torch.fx.experimental import proxy_tensor

    params = _all_tensors(module, "_parameters")
    buffers = _all_tensors(module, "_buffers")
    # One traced tensor per distinct parameter, shared by tied names. The
    # copies require grad so that PyTorch's fused inference paths stay off.
    # Tied ones are named after their first name (named_parameters' order).
    copies: Dict[int, torch.Tensor] = {}
    first: Dict[int, str] = {}
    flat_params, kinds, names = [], [], []
    for name, t in params:
        if id(t) not in copies:
            c = t.detach()
            if c.is_floating_point():
                c = c.clone().requires_grad_(True)
            copies[id(t)] = c
            first[id(t)] = name
        flat_params.append(copies[id(t)])
        kinds.append(("param", first[id(t)]))
        names.append(name)
    for name, t in buffers:
        first.setdefault(id(t), name)
        flat_params.append(t)
        kinds.append(("buffer", first[id(t)]))
        names.append(name)

    inputs = list(example_inputs)
    tpos = [i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor)]
    in_names = _input_names(module, len(inputs))
    kinds += [("input", in_names[i]) for i in tpos]
    fcall = _functional_call()

    def f(flat, tensors):
        args = list(inputs)
        for i, t in zip(tpos, tensors):
            args[i] = t
        return fcall(module, dict(zip(names, flat)), tuple(args))

    origins: Dict[fx.Node, Tuple[str, Optional[Tuple[str, int]]]] = {}
    scopes = _Scopes(module)
    base = proxy_tensor.PythonKeyTracer

    class Tracer(base):
        def create_node(self, *args, **kwargs):
            node = super().create_node(*args, **kwargs)
            origins[node] = (scopes.current(), _user_frame(f.__code__))
            return node

    # Opaque submodules: an instance-level forward override, removed after.
    overridden = []
    for qualname, m in _all_modules(module):
        if opaque and m is not module and isinstance(m, opaque) and "forward" not in m.__dict__:
            m.forward = _opaque_forward(qualname, m.forward)
            overridden.append(m)
    training = [(m, m.training) for _, m in _all_modules(module)]
    module.eval()
    tensors = [inputs[i] for i in tpos]
    proxy_tensor.PythonKeyTracer = Tracer
    try:
        with scopes, torch.enable_grad():
            gm = proxy_tensor.make_fx(f)(flat_params, tensors)
    except FrontendError:
        raise
    except Exception as e:  # tracing raises many kinds of errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "data-dependent" in str(e) or "value out of a tracing tensor" in str(e):
            msg = "data-dependent control flow or a tensor value used as a Python value (%s)" % msg
        raise FrontendError("could not trace %s through concrete shapes: %s"
                            % (type(module).__name__, msg)) from e
    finally:
        proxy_tensor.PythonKeyTracer = base
        for m in overridden:
            del m.forward
        for m, t in training:
            m.training = t
    return AtenTrace(gm, kinds, flat_params + tensors, origins)
