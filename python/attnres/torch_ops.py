"""AttnRes as PyTorch operators, running AOT-compiled kernels on CUDA tensors.

Four operators, the attnres dialect's ops in PyTorch (docs/spec.md A, D, E):

    h        = aggregate(query, norm_weight, sources, eps)
    out, lse = block_score(queries, norm_weights, sources, eps)     phase 1
    h, p_new = merge(out, lse, query, norm_weight, update, partial, eps)  phase 2
    hn, p_new = merge_norm(out, lse, query, norm_weight, update, partial,
                           norm_gain, eps, norm_eps)    phase 2 + the sublayer's
                                                        RMSNorm (spec E.5)

merge_norm returns RMSNorm(h) (gain ``norm_gain``, epsilon ``norm_eps``,
computed from h rounded to the storage type) instead of h, which the kernel
does not store: the sublayer then starts from hn without its own norm.

With torch >= 2.4 they are registered as ``torch.library`` custom ops
(``torch.ops.attnres.aggregate``, ``.block_score``, ``.merge``,
``.merge_norm``) with fake
(meta) implementations, so ``torch.compile`` traces around them and calls
the compiled kernels at run time. On CUDA tensors they run the kernels of the
kernel packs loaded with :func:`load_kernel_pack` (attnres.kernel_pack: AOT
libraries made on the build machine; no MLIR needed here), enqueued on
``torch.cuda.current_stream()``; on CPU tensors they run the plain PyTorch
reference (``*_reference``, f32 math, or f64 for float64 tensors, one rounding to the storage type).
A CUDA call that no loaded pack covers raises :class:`KernelPackError`
unless ``set_fallback("reference")``.

Shapes: ``sources`` are ``[..., D]`` tensors of one shape and dtype (f32,
f16 or bf16; any leading token dimensions); ``query``/``norm_weight`` are
``[D]`` (cast to the sources' dtype for the kernels); ``queries`` and
``norm_weights`` ``[S, D]``; ``out`` of block_score is ``[S, ..., D]`` and
``lse`` ``[S, ...]`` in f32. Every operator is differentiable (autograd
formulas registered with ``torch.library.register_autograd``, or an
``autograd.Function`` on older torch): the backward evaluates the gradient
formulas of attnres.reference in f32 with PyTorch ops (compiled backward
kernels are issue 12's next step: :func:`set_backward` swaps in another
backward per operator without touching the autograd glue).

This module imports under torch 1.13 (Debian's CPU torch): the custom ops
are then not registered and :func:`aggregate` etc. call the implementations
directly. See docs/python.md.
"""

import os
import struct
import threading
from typing import List, Optional, Tuple

import torch

from . import reference
from .aot import packed_descriptor
from .defaults import resolve_epsilon as _eps
from .kernel_pack import KernelPack, KernelPackError, dtype_name, f32

__all__ = [
    "AttnResAggregate", "KernelPackError", "aggregate", "aggregate_reference",
    "block_score", "block_score_reference", "clear_kernel_packs", "custom_ops_available",
    "f32", "kernel_packs", "load_kernel_pack", "merge", "merge_norm", "merge_norm_reference",
    "merge_reference", "rms_norm_reference", "set_backward", "backward_impl", "set_fallback",
    "set_compiled_backward", "stats",
]

Tensor = torch.Tensor

# --- The CPU path: attnres.reference in f32, one rounding ---------------------------


def _compute(t):
    """f32 math (what the kernels do) unless the tensor is float64."""
    return "f64" if t.dtype == torch.float64 else "f32"


def _fresh(result, *inputs):
    """`result`, copied when it is one of `inputs` (custom ops must not
    return an alias of an input)."""
    for t in inputs:
        if t is not None and result.data_ptr() == t.data_ptr() and result.numel():
            return result.clone()
    return result


def aggregate_reference(query, norm_weight, sources, eps=None):
    """spec A (attnres.reference.aggregate in f32), rounded to the sources' dtype."""
    sources = list(sources)
    h = reference.aggregate(query, norm_weight, sources, _eps(eps), compute=_compute(sources[0]))
    return _fresh(h.to(sources[0].dtype), *sources)


def block_score_reference(queries, norm_weights, sources, eps=None):
    """spec D: phase 1 of S queries over the completed summaries.
    Returns (out [S, ..., D] in the sources' dtype, lse [S, ...] in f32)."""
    sources = list(sources)
    out, lse = reference.block_score(queries, norm_weights, sources, _eps(eps),
                                     compute=_compute(sources[0]))
    return out.to(sources[0].dtype), lse


def merge_reference(out, lse, query, norm_weight, update, partial=None, eps=None):
    """spec E.1: p' = partial + update (f32); c = inv_rms(p') (w*g).p';
    h = out + sigmoid(c - lse) (p' - out). Returns (h, round(p'))."""
    dtype = update.dtype
    h, p = reference.merge(out, lse, query, norm_weight, update, partial, _eps(eps),
                           compute=_compute(update))
    return _fresh(h.to(dtype), out, update), _fresh(p.to(dtype), update, partial)


def rms_norm_reference(h, gain, eps):
    """spec E.5: round(f32(h) * rsqrt(mean_d f32(h)^2 + eps) * gain), the
    sublayer's RMSNorm of the stored h (f32 math, one rounding)."""
    return reference.rms_norm(h, gain, eps, compute=_compute(h)).to(h.dtype)


def merge_norm_reference(out, lse, query, norm_weight, update, partial, norm_gain, eps=None,
                         norm_eps=None):
    """spec E.5: merge, then the RMSNorm of h rounded to the storage type.
    Returns (hn, round(p'))."""
    dtype = update.dtype
    hn, p = reference.merge_norm(out, lse, query, norm_weight, update, partial, norm_gain,
                                 _eps(eps), _eps(norm_eps), round_h=lambda h: h.to(dtype),
                                 compute=_compute(update))
    return hn.to(dtype), _fresh(p.to(dtype), update, partial)


# --- Kernel packs ---------------------------------------------------------------------

_PACKS = []
_FALLBACK = {"mode": os.environ.get("ATTNRES_TORCH_FALLBACK", "error")}
_STATS = {"kernel": 0, "reference": 0}
_LOCK = threading.Lock()


# (op, dtype, device kind, d, keywords) -> the (lib, fn) or None that
# _kernel_for found: a call's lookup is a dict hit, not a manifest search.
# Emptied whenever the packs or the fallback mode change.
_HITS = {}


def load_kernel_pack(path):
    """Loads a kernel pack directory (kernel_pack.json + libraries) and makes
    its kernels available to the operators; later packs are searched first.
    Returns the KernelPack."""
    pack = KernelPack(path)
    with _LOCK:
        _PACKS.insert(0, pack)
        _HITS.clear()
    return pack


def kernel_packs():
    return list(_PACKS)


def clear_kernel_packs():
    with _LOCK:
        del _PACKS[:]
        _HITS.clear()


def set_fallback(mode):
    """What a CUDA call with no kernel in the loaded packs does: "error"
    (raise KernelPackError, the default) or "reference" (run the PyTorch
    reference)."""
    if mode not in ("error", "reference"):
        raise ValueError("fallback must be 'error' or 'reference', got %r" % (mode,))
    with _LOCK:
        _FALLBACK["mode"] = mode
        _HITS.clear()


def stats(reset=False):
    """Counts of operator calls that ran a compiled kernel or the reference."""
    s = dict(_STATS)
    if reset:
        _STATS["kernel"] = _STATS["reference"] = 0
    return s


def _find(op, dtype, d, device="cuda", **kw):
    """(lib, fn) of the newest loaded pack for `device` ("cuda" or "cpu")
    that has the kernel, or None."""
    for pack in _PACKS:
        if pack.device != device:
            continue
        hit = pack.find(op, dtype, d, **kw)
        if hit is not None:
            return hit
    return None


_PACK_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _device_kind(t):
    """"cuda" for CUDA tensors; "cpu" for CPU tensors of a pack dtype when a
    CPU pack is loaded; else None (no kernel to look for)."""
    if t.is_cuda:
        return "cuda"
    if t.device.type == "cpu" and t.dtype in _PACK_DTYPES and any(
            p.device == "cpu" for p in _PACKS):
        return "cpu"
    return None


def _kernel_for(t, op, d, **kw):
    """The kernel of a call on tensors like `t`: on CUDA _kernel (the
    fallback rule applies); on the CPU the loaded CPU packs' kernel, else
    None (the reference: CPU packs are optional). Remembered in _HITS (a
    missing CUDA kernel under the "error" fallback raises each time)."""
    key = (op, t.dtype, t.device.type, d, tuple(kw.items()))
    try:
        return _HITS[key]
    except KeyError:
        pass
    kind = _device_kind(t)
    if kind == "cuda":
        hit = _kernel(op, dtype_name(t.dtype), d, **kw)
    elif kind == "cpu":
        hit = _find(op, dtype_name(t.dtype), d, device="cpu", **kw)
    else:
        hit = None
    _HITS[key] = hit
    return hit


def _missing(op, dtype, d, **kw):
    desc = ", ".join("%s=%s" % (k, v) for k, v in sorted(kw.items()) if v is not None)
    have = [line for p in _PACKS for line in p.summary()] or ["(no kernel pack loaded)"]
    return KernelPackError(
        "attnres.%s: no compiled kernel for dtype=%s D=%d %s in the loaded kernel packs; "
        "build one with scripts/build_kernel_pack.py and load_kernel_pack(), or "
        "set_fallback('reference'). Loaded:\n  %s" % (op, dtype, d, desc, "\n  ".join(have)))


def _kernel(op, dtype, d, **kw):
    """(lib, fn) or None (run the reference) or raise."""
    hit = _find(op, dtype, d, **kw)
    if hit is None and _FALLBACK["mode"] != "reference":
        raise _missing(op, dtype, d, **kw)
    return hit


def _rows(t, tokens, d):
    """t as a contiguous, 16-byte aligned [tokens, d] tensor."""
    if t.dim() != 2 or t.shape[0] != tokens:
        t = t.reshape(tokens, d)
    if not t.is_contiguous():
        t = t.contiguous()
    if t.data_ptr() % 16:
        t = t.clone()
    return t


def _flat(t, n):
    """t as a contiguous, 16-byte aligned [n] tensor."""
    t = t.reshape(n)
    if not t.is_contiguous():
        t = t.contiguous()
    if t.data_ptr() % 16:
        t = t.clone()
    return t


def _vec(t, dtype, shape):
    """t as a contiguous, 16-byte aligned tensor of `dtype` and `shape` (the
    caller checked the element count). The common case, already so, costs
    no conversion or reshape call."""
    if t.dtype != dtype or tuple(t.shape) != shape:
        t = t.to(dtype).reshape(shape)
    if not t.is_contiguous() or t.data_ptr() % 16:
        t = t.contiguous().clone()
    return t


# torch's current CUDA stream as a raw handle (what Triton's launcher
# reads): about 0.2 us against 6 us for torch.cuda.current_stream(), which
# builds a Stream object (bench/host_overhead.py, run 31).
_RAW_STREAM = getattr(torch._C, "_cuda_getCurrentRawStream", None)
_PACKERS = {}


def _descriptors(tensors):
    """The packed memref descriptors of `tensors` (aot.packed_descriptor's
    layout); a contiguous tensor's strides follow from its shape, which
    saves the stride() call. A `bytes` entry is a descriptor packed already
    (_source_descriptors)."""
    out = []
    for t in tensors:
        if type(t) is bytes:
            out.append(t)
            continue
        if not t.is_contiguous():
            out.append(packed_descriptor(t))
            continue
        shape = t.shape
        rank = len(shape)
        packer = _PACKERS.get(rank)
        if packer is None:
            packer = _PACKERS[rank] = struct.Struct("=%dq" % (3 + 2 * rank))
        ptr = t.data_ptr()
        if rank == 1:
            out.append(packer.pack(ptr, ptr, 0, shape[0], 1))
        elif rank == 2:
            out.append(packer.pack(ptr, ptr, 0, shape[0], shape[1], shape[1], 1))
        else:
            strides, acc = [], 1
            for n in reversed(shape):
                strides.append(acc)
                acc *= n
            out.append(packer.pack(ptr, ptr, 0, *shape, *reversed(strides)))
    return out


def _launch(lib, fn, device, tensors):
    # `tensors` stays referenced until the call returns: the descriptors
    # point into their storage.
    if lib.cpu:
        fn.call_descriptors(*_descriptors(tensors))
        _STATS["kernel"] += 1
        return
    index = device.index
    if index is not None and index != torch.cuda.current_device():
        with torch.cuda.device(device):
            return _launch(lib, fn, device, tensors)
    if _RAW_STREAM is not None:
        lib.use_stream(_RAW_STREAM(torch.cuda.current_device() if index is None else index))
    else:
        lib.use_stream(torch.cuda.current_stream(device))
    fn.call_descriptors(*_descriptors(tensors))
    err = lib.error()
    if err:
        lib.clear_error()
        raise KernelPackError("attnres runtime error %d in %s: %s" % (err[0], fn.name, err[1]))
    _STATS["kernel"] += 1


_ROWS_DESCRIPTOR = struct.Struct("=7q")


def _source_descriptors(op, sources, tokens, d):
    """_check_sources and the [tokens, d] row descriptors of `sources` in one
    pass: a contiguous, 16-byte aligned source (the usual case) is described
    as it is, whatever its leading dimensions, with no reshape; any other
    goes through _rows, and the copies it makes are returned in `keep`,
    which the caller holds until the launch returns. Returns (descriptors,
    keep). Per call with 10 sources this replaces three loops over them
    (bench/NOTES.md run 32: _check_sources 3.6 us, _rows 5.3 us and their
    descriptors' share of 11.3 us)."""
    if not sources:
        raise ValueError("attnres.%s needs at least one source" % op)
    s0 = sources[0]
    shape, dtype, device = s0.shape, s0.dtype, s0.get_device()
    pack = _ROWS_DESCRIPTOR.pack
    descs, keep = [], []
    for s in sources:
        if s.shape != shape or s.dtype != dtype or s.get_device() != device:
            _check_sources(op, sources)
        if s.is_contiguous():
            ptr = s.data_ptr()
            if not ptr % 16:
                descs.append(pack(ptr, ptr, 0, tokens, d, d, 1))
                continue
        r = _rows(s, tokens, d)
        keep.append(r)
        ptr = r.data_ptr()
        descs.append(pack(ptr, ptr, 0, tokens, d, d, 1))
    return descs, keep


def _source_shape(op, sources):
    """(source 0, D, tokens) of a non-empty list of sources of rank >= 2
    (else _check_sources' error). The other sources are checked by
    _source_descriptors where a kernel runs, by _check_sources where the
    reference does (which then copies nothing it does not need)."""
    if not sources or sources[0].dim() < 2:
        _check_sources(op, sources)
    s0 = sources[0]
    d = s0.shape[-1]
    return s0, d, (s0.numel() // d if d else 0)


def _check_sources(op, sources):
    if not sources:
        raise ValueError("attnres.%s needs at least one source" % op)
    s0 = sources[0]
    shape, dtype, device = s0.shape, s0.dtype, s0.get_device()
    for i, s in enumerate(sources):
        # get_device(): an int, much cheaper per call than comparing .device
        if s.shape != shape or s.dtype != dtype or s.get_device() != device:
            raise ValueError("attnres.%s: source %d is %s %s on %s, source 0 is %s %s on %s"
                             % (op, i, tuple(s.shape), s.dtype, s.device, tuple(s0.shape),
                                s0.dtype, s0.device))
    if s0.dim() < 2:
        raise ValueError("attnres.%s: sources need a token dimension and D ([..., D])" % op)


def _aggregate_impl(query, norm_weight, sources, eps):
    sources = list(sources)
    s0, d, tokens = _source_shape("aggregate", sources)
    if query.shape != (d,) or norm_weight.shape != (d,):
        raise ValueError("attnres.aggregate: query and norm_weight must be [%d]" % d)
    hit = _kernel_for(s0, "aggregate", d, num_sources=len(sources), epsilon=eps)
    if hit is None:
        _check_sources("aggregate", sources)
        _STATS["reference"] += 1
        return _fresh(aggregate_reference(query, norm_weight, sources, eps), *sources)
    descs, keep = _source_descriptors("aggregate", sources, tokens, d)
    lib, fn = hit
    lead = s0.shape[:-1]
    out = torch.empty((tokens, d), dtype=s0.dtype, device=s0.device)
    if tokens:
        # `sources` and `keep` hold the storage the descriptors point into.
        _launch(lib, fn, s0.device, [_vec(query, s0.dtype, (d,)),
                                     _vec(norm_weight, s0.dtype, (d,))]
                + descs + [out])
    del keep
    return out.view(*lead, d)


# --- Training kernels of aggregate (issue 12) -------------------------------------------
#
# On CUDA, when a gradient is needed and the loaded packs have the training
# kernels of the aggregation (a pack built with ``grad=1``), aggregate runs
# attnres.aggregate_stats forward (h plus the per-token log-sum-exp and
# inverse RMS of each source, O(T n) floats) and attnres.aggregate_grad
# backward (the source gradients and the f32 query and gain gradients, summed
# over the tokens in a fixed order: deterministic, docs/spec.md I.2.1) instead
# of the PyTorch formulas. set_compiled_backward(False) turns this off.

_COMPILED_BACKWARD = {"on": True}


def set_compiled_backward(on):
    """Whether aggregate uses the compiled training kernels when a loaded
    pack has them (default True). Returns the previous setting."""
    previous = _COMPILED_BACKWARD["on"]
    _COMPILED_BACKWARD["on"] = bool(on)
    return previous


def _train_kernels(sources, eps):
    """((lib, stats fn), (lib, grad fn)) for a CUDA aggregation of two or
    more sources when the loaded packs have both, else None."""
    s0 = sources[0]
    kind = _device_kind(s0)
    if not (_COMPILED_BACKWARD["on"] and kind and len(sources) >= 2):
        return None
    dt, d, n = dtype_name(s0.dtype), s0.shape[-1], len(sources)
    stats = _find("aggregate_stats", dt, d, kind, num_sources=n, epsilon=eps)
    grad = _find("aggregate_grad", dt, d, kind, num_sources=n, epsilon=eps) if stats else None
    return (stats, grad) if grad else None


def _token_rows(n, tokens, device):
    """n f32 vectors of `tokens` each, 16-byte aligned: rows of one
    [n, tokens rounded up to 4] tensor."""
    buf = torch.empty((n, -(-tokens // 4) * 4), dtype=torch.float32, device=device)
    return buf[:, :tokens]


def _aggregate_train_impl(query, norm_weight, sources, eps):
    """aggregate's training forward: (h, lse [tokens] f32, inverse RMS
    [n, tokens] f32), by the compiled kernel on CUDA, else the reference."""
    sources = list(sources)
    s0, d, tokens = _source_shape("aggregate", sources)
    n = len(sources)
    hits = _train_kernels(sources, eps)
    if hits is None:
        _check_sources("aggregate", sources)
        _STATS["reference"] += 1
        lse, rs = reference.aggregate_stats(query, norm_weight, sources, eps,
                                            compute=_compute(s0))
        h = aggregate_reference(query, norm_weight, sources, eps)
        return (_fresh(h, *sources), lse.reshape(tokens).float(),
                torch.stack([r.reshape(tokens) for r in rs]).float())
    (lib, fn), _ = hits
    descs, keep = _source_descriptors("aggregate", sources, tokens, d)
    out = torch.empty((tokens, d), dtype=s0.dtype, device=s0.device)
    lse = _token_rows(1, tokens, s0.device)[0]
    rs = _token_rows(n, tokens, s0.device)
    if tokens:
        _launch(lib, fn, s0.device, [_vec(query, s0.dtype, (d,)), _vec(norm_weight, s0.dtype, (d,))]
                + descs + [out, lse] + list(rs))
    del keep
    return out.view(s0.shape), lse, rs


def _aggregate_train_backward(query, norm_weight, sources, lse, rs, eps, grad):
    """(dquery, dgain, [dv_i]) from the saved statistics: the compiled
    aggregate_grad on CUDA, else the reference formulas."""
    s0 = sources[0]
    hits = _train_kernels(sources, eps)
    if grad is None:
        grad = torch.zeros_like(s0)
    if hits is None:
        return _BACKWARD["aggregate"](query, norm_weight, sources, eps, grad)
    _, (lib, fn) = hits
    s0, d, tokens = _source_shape("aggregate", sources)
    descs, keep = _source_descriptors("aggregate", sources, tokens, d)
    dvs = [torch.empty((tokens, d), dtype=s0.dtype, device=s0.device) for _ in sources]
    dq = torch.empty((d,), dtype=torch.float32, device=s0.device)
    dg = torch.empty((d,), dtype=torch.float32, device=s0.device)
    if tokens:
        _launch(lib, fn, s0.device, [_vec(query, s0.dtype, (d,)), _vec(norm_weight, s0.dtype, (d,))]
                + descs + [lse] + list(rs)
                + [_rows(grad.to(s0.dtype), tokens, d)] + dvs + [dq, dg])
    else:
        dq.zero_()
        dg.zero_()
    del keep
    return dq.to(query.dtype), dg.to(norm_weight.dtype), [dv.view(s0.shape) for dv in dvs]


def _block_score_impl(queries, norm_weights, sources, eps):
    sources = list(sources)
    s0, d, tokens = _source_shape("block_score", sources)
    if queries.dim() != 2 or queries.shape[1] != d or norm_weights.shape != queries.shape:
        raise ValueError("attnres.block_score: queries and norm_weights must be [S, %d]" % d)
    s = queries.shape[0]
    hit = _kernel_for(s0, "block_score", d, num_sources=len(sources), num_queries=s,
                      epsilon=eps)
    if hit is None:
        _check_sources("block_score", sources)
        _STATS["reference"] += 1
        return block_score_reference(queries, norm_weights, sources, eps)
    descs, keep = _source_descriptors("block_score", sources, tokens, d)
    lib, fn = hit
    lead = tuple(s0.shape[:-1])
    out = torch.empty((s, tokens, d), dtype=s0.dtype, device=s0.device)
    lse = torch.empty((s, tokens), dtype=torch.float32, device=s0.device)
    if tokens:
        _launch(lib, fn, s0.device, [_vec(queries, s0.dtype, (s, d)),
                                     _vec(norm_weights, s0.dtype, (s, d))]
                + descs + [out, lse])
    del keep
    return out.view((s,) + lead + (d,)), lse.view((s,) + lead)


def _merge_common(op, out, lse, query, norm_weight, update, partial, eps, norm_gain=None,
                  norm_eps=None):
    """attnres.merge (norm_gain None) or attnres.merge_norm: checks, then the
    pack's kernel on CUDA or the reference. Returns (h or hn, new partial)."""
    d = update.shape[-1]
    for name, t in (("out", out), ("partial", partial)):
        if t is not None and (t.shape != update.shape or t.dtype != update.dtype):
            raise ValueError("attnres.%s: %s must be %s %s like update" % (
                op, name, tuple(update.shape), update.dtype))
    if tuple(lse.shape) != tuple(update.shape[:-1]):
        raise ValueError("attnres.%s: lse must be %s" % (op, tuple(update.shape[:-1])))
    if norm_gain is None:
        if query.shape != (d,) or norm_weight.shape != (d,):
            raise ValueError("attnres.merge: query and norm_weight must be [%d]" % d)
    else:
        for name, t in (("query", query), ("norm_weight", norm_weight), ("norm_gain", norm_gain)):
            if t.shape != (d,):
                raise ValueError("attnres.%s: %s must be [%d]" % (op, name, d))
    if update.dim() < 2:
        raise ValueError("attnres.%s: update needs a token dimension and D ([..., D])" % op)
    norm_key = {} if norm_gain is None else {"norm_epsilon": norm_eps}
    hit = _kernel_for(update, op, d, partial=partial is not None, epsilon=eps, **norm_key)
    if hit is None:
        _STATS["reference"] += 1
        if norm_gain is None:
            h, p = merge_reference(out, lse, query, norm_weight, update, partial, eps)
        else:
            h, p = merge_norm_reference(out, lse, query, norm_weight, update, partial,
                                        norm_gain, eps, norm_eps)
        return h, (p if partial is not None else _NO_PARTIAL(update))
    lib, fn = hit
    lead = update.shape[:-1]
    tokens = update.numel() // d
    h = torch.empty((tokens, d), dtype=update.dtype, device=update.device)
    # Without a partial the new partial sum is the update itself: the
    # kernel does not return it (no copy); merge() hands back `update`.
    p_new = (torch.empty((tokens, d), dtype=update.dtype, device=update.device)
             if partial is not None else None)
    if tokens:
        args = [_rows(out, tokens, d), _flat(lse.float(), tokens),
                _vec(query, update.dtype, (d,)), _vec(norm_weight, update.dtype, (d,)),
                _rows(update, tokens, d)]
        if partial is not None:
            args.append(_rows(partial, tokens, d))
        if norm_gain is not None:
            args.append(_vec(norm_gain, update.dtype, (d,)))
        _launch(lib, fn, update.device, args + [h] + ([p_new] if p_new is not None else []))
    return h.view(*lead, d), (p_new.view(*lead, d) if p_new is not None
                              else _NO_PARTIAL(update))


def _NO_PARTIAL(update):
    """The second output of the merge operators without a partial sum: an
    empty tensor (the new partial sum is the update itself, which merge()
    and merge_norm() return in its place: no copy, and a custom op may not
    return one of its inputs)."""
    return update.new_empty((0,))


def _partial_result(update, partial, p_new):
    """What merge() / merge_norm() return as the new partial sum."""
    return update if partial is None else p_new


def _merge_impl(out, lse, query, norm_weight, update, partial, eps):
    return _merge_common("merge", out, lse, query, norm_weight, update, partial, eps)


def _merge_norm_impl(out, lse, query, norm_weight, update, partial, norm_gain, eps, norm_eps):
    return _merge_common("merge_norm", out, lse, query, norm_weight, update, partial, eps,
                         norm_gain, norm_eps)


# --- torch.library registration ------------------------------------------------------

_CUSTOM_OPS = hasattr(torch, "library") and hasattr(torch.library, "custom_op")


def custom_ops_available():
    """True when torch.ops.attnres.* are registered (torch >= 2.4)."""
    return _CUSTOM_OPS


if _CUSTOM_OPS:
    @torch.library.custom_op("attnres::aggregate", mutates_args=())
    def _aggregate_op(query: Tensor, norm_weight: Tensor, sources: List[Tensor],
                      eps: float) -> Tensor:
        return _aggregate_impl(query, norm_weight, sources, eps)

    @_aggregate_op.register_fake
    def _aggregate_fake(query, norm_weight, sources, eps):
        s0 = sources[0]
        return s0.new_empty(s0.shape)

    @torch.library.custom_op("attnres::block_score", mutates_args=())
    def _block_score_op(queries: Tensor, norm_weights: Tensor, sources: List[Tensor],
                        eps: float) -> Tuple[Tensor, Tensor]:
        return _block_score_impl(queries, norm_weights, sources, eps)

    @_block_score_op.register_fake
    def _block_score_fake(queries, norm_weights, sources, eps):
        s0 = sources[0]
        s = queries.shape[0]
        return (s0.new_empty((s,) + tuple(s0.shape)),
                s0.new_empty((s,) + tuple(s0.shape[:-1]), dtype=torch.float32))

    @torch.library.custom_op("attnres::merge", mutates_args=())
    def _merge_op(out: Tensor, lse: Tensor, query: Tensor, norm_weight: Tensor,
                  update: Tensor, partial: Optional[Tensor], eps: float) -> Tuple[Tensor, Tensor]:
        return _merge_impl(out, lse, query, norm_weight, update, partial, eps)

    @_merge_op.register_fake
    def _merge_fake(out, lse, query, norm_weight, update, partial, eps):
        return update.new_empty(update.shape), (
            update.new_empty(update.shape) if partial is not None else _NO_PARTIAL(update))

    @torch.library.custom_op("attnres::merge_norm", mutates_args=())
    def _merge_norm_op(out: Tensor, lse: Tensor, query: Tensor, norm_weight: Tensor,
                       update: Tensor, partial: Optional[Tensor], norm_gain: Tensor, eps: float,
                       norm_eps: float) -> Tuple[Tensor, Tensor]:
        return _merge_norm_impl(out, lse, query, norm_weight, update, partial, norm_gain, eps,
                                norm_eps)

    @_merge_norm_op.register_fake
    def _merge_norm_fake(out, lse, query, norm_weight, update, partial, norm_gain, eps,
                         norm_eps):
        return update.new_empty(update.shape), (
            update.new_empty(update.shape) if partial is not None else _NO_PARTIAL(update))


if _CUSTOM_OPS:
    @torch.library.custom_op("attnres::aggregate_train", mutates_args=())
    def _aggregate_train_op(query: Tensor, norm_weight: Tensor, sources: List[Tensor],
                            eps: float) -> Tuple[Tensor, Tensor, Tensor]:
        return _aggregate_train_impl(query, norm_weight, sources, eps)

    @_aggregate_train_op.register_fake
    def _aggregate_train_fake(query, norm_weight, sources, eps):
        s0 = sources[0]
        tokens = s0.numel() // s0.shape[-1]
        return (s0.new_empty(s0.shape), s0.new_empty((tokens,), dtype=torch.float32),
                s0.new_empty((len(sources), tokens), dtype=torch.float32))


# --- Autograd ---------------------------------------------------------------------------
#
# The gradients are the formulas of attnres.reference (*_grad), evaluated with
# PyTorch ops in f32 (f64 for f64 inputs) on the inputs' device and rounded to
# each input's dtype: a correct backward for training today, not yet the
# compiled backward kernels of issue 12. The forward saves its inputs (the
# sources are needed by any backward: the op recomputes its logits from them).


def _like(g, t):
    return None if g is None or t is None else g.to(t.dtype)


def _zeros_if_none(g, t):
    return torch.zeros_like(t) if g is None else g


def _aggregate_backward(query, norm_weight, sources, eps, grad):
    dv, dq, dg = reference.aggregate_grad(query, norm_weight, sources, eps, grad,
                                          compute=_compute(sources[0]))
    return _like(dq, query), _like(dg, norm_weight), [dv[i].to(s.dtype) for i, s in
                                                       enumerate(sources)]


def _block_score_backward(queries, norm_weights, sources, eps, dout, dlse):
    out_like = sources[0].new_zeros((queries.shape[0],) + tuple(sources[0].shape))
    dout = _zeros_if_none(dout, out_like)
    dlse = torch.zeros(out_like.shape[:-1], dtype=torch.float32,
                       device=out_like.device) if dlse is None else dlse
    dv, dW, dG = reference.block_score_grad(queries, norm_weights, sources, eps, dout, dlse,
                                            compute=_compute(sources[0]))
    return _like(dW, queries), _like(dG, norm_weights), [dv[i].to(s.dtype) for i, s in
                                                         enumerate(sources)]


def _block_score_grad_compiled(hit, queries, norm_weights, sources, eps, dout, dlse, lse):
    """attnres.block_score_grad by the pack's kernel from the forward's lse:
    (dqueries, dnorm_weights, [dsource_i]) in the inputs' shapes and dtypes;
    None incoming gradients count as zeros. The inverse RMS of each summary
    is recomputed in f32 (one read of each summary; the forward kernel does
    not return it)."""
    lib, fn = hit
    s0 = sources[0]
    d, s = s0.shape[-1], queries.shape[0]
    tokens = s0.numel() // d
    dev, dt = s0.device, s0.dtype
    dbs = [torch.empty((tokens, d), dtype=dt, device=dev) for _ in sources]
    params = _token_rows(2, s * d, dev)
    if tokens:
        rs = _token_rows(len(sources), tokens, dev)
        for i, b in enumerate(sources):
            ss = torch.linalg.vector_norm(b.reshape(tokens, d), dim=-1,
                                          dtype=torch.promote_types(b.dtype, torch.float32))
            rs[i].copy_(torch.rsqrt(ss * ss / d + eps))
        dout = (torch.zeros((s, tokens, d), dtype=dt, device=dev) if dout is None
                else dout.to(dt).reshape(s, tokens, d).contiguous())
        dlse = (torch.zeros((s, tokens), dtype=torch.float32, device=dev) if dlse is None
                else dlse.float().reshape(s, tokens).contiguous())
        _launch(lib, fn, dev, [_vec(queries, dt, (s, d)), _vec(norm_weights, dt, (s, d))]
                + [_rows(b, tokens, d) for b in sources]
                + [lse.float().reshape(s, tokens).contiguous()] + list(rs) + [dout, dlse]
                + dbs + [params[0].view(s, d), params[1].view(s, d)])
    else:
        params.zero_()
    return (params[0].view(s, d).to(queries.dtype), params[1].view(s, d).to(norm_weights.dtype),
            [db.view(s0.shape) for db in dbs])


def _block_score_grad_kernel(queries, sources, eps):
    """(lib, fn) of the compiled backward of block_score for these tensors,
    or None (CPU, no such kernel loaded, or turned off)."""
    s0 = sources[0]
    kind = _device_kind(s0)
    if not (_COMPILED_BACKWARD["on"] and kind):
        return None
    return _find("block_score_grad", dtype_name(s0.dtype), s0.shape[-1], kind,
                 num_sources=len(sources), num_queries=queries.shape[0], epsilon=eps)


def _block_score_backward_auto(queries, norm_weights, sources, eps, dout, dlse, lse=None):
    """block_score's backward: the compiled block_score_grad when a loaded
    pack has it (built with grad=1) and the forward's lse is given, else the
    formulas."""
    hit = None if lse is None else _block_score_grad_kernel(queries, sources, eps)
    if hit is None:
        return _block_score_backward(queries, norm_weights, sources, eps, dout, dlse)
    return _block_score_grad_compiled(hit, queries, norm_weights, sources, eps, dout, dlse, lse)


def _score_backward(queries, norm_weights, sources, eps, dout, dlse, lse):
    """The registered backward of block_score, given the forward's lse (only
    the built-in backward takes it: set_backward's contract is unchanged)."""
    fn = _BACKWARD["block_score"]
    if fn is _block_score_backward_auto:
        return fn(queries, norm_weights, sources, eps, dout, dlse, lse)
    return fn(queries, norm_weights, sources, eps, dout, dlse)


def _merge_backward(out, lse, query, norm_weight, update, partial, eps, dh, dp_new):
    dh = _zeros_if_none(dh, update)
    dp_new = _zeros_if_none(dp_new, update)
    do, dl, dq, dg, du, dp = reference.merge_grad(out, lse, query, norm_weight, update, partial,
                                                  eps, dh, dp_new, compute=_compute(update))
    return (_like(do, out), _like(dl, lse), _like(dq, query), _like(dg, norm_weight),
            _like(du, update), _like(dp, partial))


def _merge_norm_backward(out, lse, query, norm_weight, update, partial, norm_gain, eps,
                         norm_eps, dhn, dp_new):
    """merge_norm = rms_norm(round(h)) of merge: the RMSNorm's gradient at
    the stored h (recomputed), then merge's."""
    with torch.no_grad():
        h, _ = merge_reference(out, lse, query, norm_weight, update, partial, eps)
    dhn = _zeros_if_none(dhn, update)
    dh, dgn = reference.rms_norm_grad(h, norm_gain, norm_eps, dhn, compute=_compute(update))
    grads = _merge_backward(out, lse, query, norm_weight, update, partial, eps, dh, dp_new)
    return grads + (_like(dgn, norm_gain),)


def _merge_grad_kernel(op, update, partial, eps, norm_eps):
    """(lib, fn) of the compiled backward of merge / merge_norm for these
    tensors, or None (CPU, no such kernel loaded, or turned off)."""
    kind = _device_kind(update)
    if not (_COMPILED_BACKWARD["on"] and kind):
        return None
    kw = {} if op == "merge" else {"norm_epsilon": norm_eps}
    return _find(op + "_grad", dtype_name(update.dtype), update.shape[-1], kind,
                 partial=partial is not None, epsilon=eps, **kw)


def _merge_grad_compiled(hit, out, lse, query, norm_weight, update, partial, eps, dh, dp_new,
                         norm_gain=None, dhn=None):
    """attnres.merge_grad by the pack's kernel: (dout, dlse, dquery, dgain,
    dupdate, dpartial[, dnorm_gain]) in the inputs' shapes and dtypes; None
    incoming gradients count as zeros."""
    lib, fn = hit
    d = update.shape[-1]
    tokens = update.numel() // d
    dev, dt = update.device, update.dtype
    zeros = lambda: torch.zeros((tokens, d), dtype=dt, device=dev)  # noqa: E731
    rows = lambda t: zeros() if t is None else _rows(t.to(dt), tokens, d)  # noqa: E731
    dout = torch.empty((tokens, d), dtype=dt, device=dev)
    dp = torch.empty((tokens, d), dtype=dt, device=dev)
    dlse = _token_rows(1, tokens, dev)[0]
    params = _token_rows(3 if norm_gain is not None else 2, d, dev)
    args = [_rows(out, tokens, d), _flat(lse.float(), tokens), _vec(query, dt, (d,)),
            _vec(norm_weight, dt, (d,)), _rows(update, tokens, d)]
    if partial is not None:
        args.append(_rows(partial, tokens, d))
    if norm_gain is not None:
        args.append(_vec(norm_gain, dt, (d,)))
    # merge_norm_grad kernels (pack format 3) take no dh: h is not an output
    # of merge_norm, its gradient is zero and the kernel does not read it.
    if norm_gain is None:
        args.append(rows(dh))
    args += [rows(dp_new)] + ([rows(dhn)] if norm_gain is not None else [])
    if tokens:
        _launch(lib, fn, dev, args + [dout, dlse, params[0], params[1], dp] + list(params[2:]))
    else:
        params.zero_()
    shape = update.shape
    grads = (dout.view(shape), dlse.view(lse.shape).to(lse.dtype), params[0].to(query.dtype),
             params[1].to(norm_weight.dtype), dp.view(shape),
             None if partial is None else dp.view(shape))
    if norm_gain is not None:
        grads += (params[2].to(norm_gain.dtype),)
    return grads


def _merge_backward_auto(out, lse, query, norm_weight, update, partial, eps, dh, dp_new):
    """merge's backward: the compiled merge_grad when a loaded pack has it
    (pack built with grad=1), else the formulas."""
    hit = _merge_grad_kernel("merge", update, partial, eps, None)
    if hit is None:
        return _merge_backward(out, lse, query, norm_weight, update, partial, eps, dh, dp_new)
    return _merge_grad_compiled(hit, out, lse, query, norm_weight, update, partial, eps, dh,
                                dp_new)


def _merge_norm_backward_auto(out, lse, query, norm_weight, update, partial, norm_gain, eps,
                              norm_eps, dhn, dp_new):
    """merge_norm's backward: merge_grad with the fused norm (h is not an
    output, its own gradient is zero) when loaded, else the formulas."""
    hit = _merge_grad_kernel("merge_norm", update, partial, eps, norm_eps)
    if hit is None:
        return _merge_norm_backward(out, lse, query, norm_weight, update, partial, norm_gain,
                                    eps, norm_eps, dhn, dp_new)
    return _merge_grad_compiled(hit, out, lse, query, norm_weight, update, partial, eps, None,
                                dp_new, norm_gain, dhn)


# The backward of each operator, one replaceable function per operator: the
# autograd glue below (torch.library.register_autograd and the
# autograd.Function fallbacks) calls _BACKWARD[op] and nothing else, so compiled
# backward kernels (issue 12 item 4) replace the PyTorch formulas with one
# set_backward() call per operator, no change to the autograd code. Contract:
#   "aggregate":   fn(query, norm_weight, sources, eps, dh)
#                  -> (dquery, dnorm_weight, [dsource_i ...])
#   "block_score": fn(queries, norm_weights, sources, eps, dout, dlse)
#                  -> (dqueries, dnorm_weights, [dsource_i ...])
#   "merge":       fn(out, lse, query, norm_weight, update, partial, eps, dh, dp_new)
#                  -> (dout, dlse, dquery, dnorm_weight, dupdate, dpartial)
#   "merge_norm":  fn(out, lse, query, norm_weight, update, partial, norm_gain, eps,
#                     norm_eps, dhn, dp_new)
#                  -> (dout, dlse, dquery, dnorm_weight, dupdate, dpartial, dnorm_gain)
# The tensors are the forward's inputs as it received them (sources as a list;
# partial may be None, then dpartial must be None); an incoming gradient is
# None when that output was not used (block_score's dlse, the merges' dp_new,
# ...). Each returned gradient has its input's shape and dtype, on its device.
# merge and merge_norm use the compiled merge_grad where a loaded pack has it
# (the formulas otherwise), and so does block_score (block_score_grad, from the
# forward's lse); aggregate's compiled backward goes through its own custom op
# (aggregate_train).
_BACKWARD_REFERENCE = {"aggregate": _aggregate_backward,
                       "block_score": _block_score_backward_auto,
                       "merge": _merge_backward_auto, "merge_norm": _merge_norm_backward_auto}
_BACKWARD = dict(_BACKWARD_REFERENCE)


def set_backward(op, fn=None):
    """Makes `fn` the backward of operator `op` ("aggregate", "block_score",
    "merge", "merge_norm"; signatures in the comment above _BACKWARD_REFERENCE),
    for every later backward pass (eager, custom op or torch.compile); None
    restores the PyTorch-formula backward. Returns the previous function."""
    if op not in _BACKWARD_REFERENCE:
        raise ValueError("set_backward: unknown operator %r (one of %s)"
                         % (op, ", ".join(sorted(_BACKWARD_REFERENCE))))
    if fn is not None and not callable(fn):
        raise TypeError("set_backward: %r is not callable" % (fn,))
    previous = _BACKWARD[op]
    _BACKWARD[op] = _BACKWARD_REFERENCE[op] if fn is None else fn
    return previous


def backward_impl(op):
    """The function that computes operator `op`'s gradients now."""
    return _BACKWARD[op]


if _CUSTOM_OPS and hasattr(torch.library, "register_autograd"):
    def _agg_setup(ctx, inputs, output):
        query, norm_weight, sources, eps = inputs
        ctx.save_for_backward(query, norm_weight, *sources)
        ctx.eps = eps

    def _agg_bwd(ctx, grad):
        query, norm_weight, *sources = ctx.saved_tensors
        dq, dg, dv = _BACKWARD["aggregate"](query, norm_weight, sources, ctx.eps, grad)
        return dq, dg, dv, None

    def _score_setup(ctx, inputs, output):
        queries, norm_weights, sources, eps = inputs
        ctx.save_for_backward(queries, norm_weights, output[1], *sources)
        ctx.eps = eps

    def _score_bwd(ctx, dout, dlse):
        queries, norm_weights, lse, *sources = ctx.saved_tensors
        dW, dG, dv = _score_backward(queries, norm_weights, sources, ctx.eps, dout, dlse, lse)
        return dW, dG, dv, None

    def _merge_setup(ctx, inputs, output):
        out, lse, query, norm_weight, update, partial, eps = inputs
        ctx.has_partial = partial is not None
        ctx.save_for_backward(out, lse, query, norm_weight, update,
                              *([partial] if partial is not None else []))
        ctx.eps = eps

    def _merge_bwd(ctx, dh, dp_new):
        saved = ctx.saved_tensors
        partial = saved[5] if ctx.has_partial else None
        dp_new = dp_new if ctx.has_partial else None
        return tuple(_BACKWARD["merge"](*saved[:5], partial, ctx.eps, dh, dp_new)) + (None,)

    def _merge_norm_setup(ctx, inputs, output):
        out, lse, query, norm_weight, update, partial, norm_gain, eps, norm_eps = inputs
        ctx.has_partial = partial is not None
        ctx.save_for_backward(out, lse, query, norm_weight, update, norm_gain,
                              *([partial] if partial is not None else []))
        ctx.eps, ctx.norm_eps = eps, norm_eps

    def _merge_norm_bwd(ctx, dhn, dp_new):
        out, lse, query, norm_weight, update, norm_gain, *rest = ctx.saved_tensors
        partial = rest[0] if ctx.has_partial else None
        dp_new = dp_new if ctx.has_partial else None
        g = tuple(_BACKWARD["merge_norm"](out, lse, query, norm_weight, update, partial,
                                          norm_gain, ctx.eps, ctx.norm_eps, dhn, dp_new))
        return g[:6] + (g[6], None, None)

    def _agg_train_setup(ctx, inputs, output):
        query, norm_weight, sources, eps = inputs
        _, lse, rs = output
        ctx.mark_non_differentiable(lse, rs)
        ctx.save_for_backward(query, norm_weight, lse, rs, *sources)
        ctx.eps = eps

    def _agg_train_bwd(ctx, grad, _dlse, _drs):
        query, norm_weight, lse, rs, *sources = ctx.saved_tensors
        dq, dg, dv = _aggregate_train_backward(query, norm_weight, sources, lse, rs, ctx.eps,
                                               grad)
        return dq, dg, dv, None

    torch.library.register_autograd("attnres::aggregate", _agg_bwd, setup_context=_agg_setup)
    torch.library.register_autograd("attnres::aggregate_train", _agg_train_bwd,
                                    setup_context=_agg_train_setup)
    torch.library.register_autograd("attnres::block_score", _score_bwd,
                                    setup_context=_score_setup)
    torch.library.register_autograd("attnres::merge", _merge_bwd, setup_context=_merge_setup)
    torch.library.register_autograd("attnres::merge_norm", _merge_norm_bwd,
                                    setup_context=_merge_norm_setup)
    _AUTOGRAD_REGISTERED = True
else:
    _AUTOGRAD_REGISTERED = False


class _AggregateFunction(torch.autograd.Function):
    """The autograd path where torch.library.register_autograd is missing
    (torch < 2.4, e.g. Debian's 1.13): same formulas."""

    @staticmethod
    def forward(ctx, query, norm_weight, eps, *sources):
        ctx.save_for_backward(query, norm_weight, *sources)
        ctx.eps = eps
        return _aggregate_impl(query, norm_weight, list(sources), eps)

    @staticmethod
    def backward(ctx, grad):
        query, norm_weight, *sources = ctx.saved_tensors
        dq, dg, dv = _BACKWARD["aggregate"](query, norm_weight, sources, ctx.eps, grad)
        return (dq, dg, None, *dv)


class _AggregateTrainFunction(torch.autograd.Function):
    """aggregate with the training kernels where register_autograd is missing."""

    @staticmethod
    def forward(ctx, query, norm_weight, eps, *sources):
        h, lse, rs = _aggregate_train_impl(query, norm_weight, list(sources), eps)
        ctx.mark_non_differentiable(lse, rs)
        ctx.save_for_backward(query, norm_weight, lse, rs, *sources)
        ctx.eps = eps
        return h, lse, rs

    @staticmethod
    def backward(ctx, grad, _dlse, _drs):
        query, norm_weight, lse, rs, *sources = ctx.saved_tensors
        dq, dg, dv = _aggregate_train_backward(query, norm_weight, sources, lse, rs, ctx.eps,
                                               grad)
        return (dq, dg, None, *dv)


class _BlockScoreFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, queries, norm_weights, eps, *sources):
        ctx.eps = eps
        out, lse = _block_score_impl(queries, norm_weights, list(sources), eps)
        ctx.save_for_backward(queries, norm_weights, lse, *sources)
        return out, lse

    @staticmethod
    def backward(ctx, dout, dlse):
        queries, norm_weights, lse, *sources = ctx.saved_tensors
        dW, dG, dv = _score_backward(queries, norm_weights, sources, ctx.eps, dout, dlse, lse)
        return (dW, dG, None, *dv)


class _MergeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out, lse, query, norm_weight, update, partial, eps):
        ctx.has_partial = partial is not None
        ctx.save_for_backward(out, lse, query, norm_weight, update,
                              *([partial] if partial is not None else []))
        ctx.eps = eps
        return _merge_impl(out, lse, query, norm_weight, update, partial, eps)

    @staticmethod
    def backward(ctx, dh, dp_new):
        saved = ctx.saved_tensors
        partial = saved[5] if ctx.has_partial else None
        dp_new = dp_new if ctx.has_partial else None
        return tuple(_BACKWARD["merge"](*saved[:5], partial, ctx.eps, dh, dp_new)) + (None,)


class _MergeNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out, lse, query, norm_weight, update, partial, norm_gain, eps, norm_eps):
        ctx.has_partial = partial is not None
        ctx.save_for_backward(out, lse, query, norm_weight, update, norm_gain,
                              *([partial] if partial is not None else []))
        ctx.eps, ctx.norm_eps = eps, norm_eps
        return _merge_norm_impl(out, lse, query, norm_weight, update, partial, norm_gain, eps,
                                norm_eps)

    @staticmethod
    def backward(ctx, dhn, dp_new):
        out, lse, query, norm_weight, update, norm_gain, *rest = ctx.saved_tensors
        partial = rest[0] if ctx.has_partial else None
        dp_new = dp_new if ctx.has_partial else None
        g = tuple(_BACKWARD["merge_norm"](out, lse, query, norm_weight, update, partial,
                                          norm_gain, ctx.eps, ctx.norm_eps, dhn, dp_new))
        return g + (None, None)


def _needs_grad(*tensors):
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors)


_compiler = getattr(torch, "compiler", None)
_is_compiling = getattr(_compiler, "is_compiling", None) or (lambda: False)


def _dispatch(*tensors, grad=None):
    """True when a call must go through the registered custom op: under
    torch.compile tracing (the op is what the graph records) or when autograd
    needs the registered formulas (`grad`: _needs_grad(*tensors) when the
    caller has it). Otherwise the implementation is called directly:
    torch.library's dispatch costs about 100 us of host time per call
    (bench/RESULTS.md, small token counts), more than the kernel at decode
    sizes."""
    if grad is None:
        grad = _needs_grad(*tensors)
    return _CUSTOM_OPS and (grad or _is_compiling())


def _call(name, tensors, args, function, function_args=None, grad=None):
    """Runs operator `name` on `args` (its schema's order): the registered
    custom op when :func:`_dispatch` says so, the autograd Function
    `function` (on `function_args`, default `args`) when a gradient is
    needed, else the implementation directly. `grad`: _needs_grad(*tensors)
    when the caller has computed it."""
    if grad is None:
        grad = _needs_grad(*tensors)
    if _dispatch(*tensors, grad=grad):
        return getattr(torch.ops.attnres, name)(*args)
    if grad:
        return function.apply(*(args if function_args is None else function_args))
    return _IMPLS[name](*args)


def aggregate(query, norm_weight, sources, eps=None):
    """One AttnRes depth aggregation (torch.ops.attnres.aggregate);
    differentiable w.r.t. the query, the norm weight and every source."""
    sources, eps = list(sources), _eps(eps)
    grad = _needs_grad(query, norm_weight, *sources)
    if grad and _train_kernels(sources, eps) is not None:
        # The training kernels: the forward saves the statistics that the
        # compiled backward needs.
        if _CUSTOM_OPS:
            return torch.ops.attnres.aggregate_train(query, norm_weight, sources, eps)[0]
        return _AggregateTrainFunction.apply(query, norm_weight, eps, *sources)[0]
    return _call("aggregate", (query, norm_weight, *sources), (query, norm_weight, sources, eps),
                 _AggregateFunction, (query, norm_weight, eps, *sources), grad=grad)


def block_score(queries, norm_weights, sources, eps=None):
    """Phase 1 of a block: (out [S, ..., D], lse [S, ...] f32).

    In training, take the S rows with ``out.unbind(0)`` (and
    ``lse.unbind(0)``), not ``out[i]``: autograd's backward of each
    ``out[i]`` writes a zero-filled [S, ..., D] tensor and adds the S of them
    up (S * S * T * D elements written), while unbind's backward stacks the S
    gradients once."""
    sources, eps = list(sources), _eps(eps)
    return _call("block_score", (queries, norm_weights, *sources),
                 (queries, norm_weights, sources, eps),
                 _BlockScoreFunction, (queries, norm_weights, eps, *sources))


def merge(out, lse, query, norm_weight, update, partial=None, eps=None):
    """Phase 2 for sublayer i >= 1 of a block: (h, new partial sum)."""
    args = (out, lse, query, norm_weight, update, partial, _eps(eps))
    h, p_new = _call("merge", args[:6], args, _MergeFunction)
    return h, _partial_result(update, partial, p_new)


def merge_norm(out, lse, query, norm_weight, update, partial, norm_gain, eps=None,
               norm_eps=None):
    """Phase 2 with the sublayer's RMSNorm fused (spec E.5): (RMSNorm(h) with
    gain norm_gain and epsilon norm_eps, new partial sum); h is not returned.
    None: the compiler's default epsilon (attnres.defaults) for either."""
    args = (out, lse, query, norm_weight, update, partial, norm_gain, _eps(eps), _eps(norm_eps))
    hn, p_new = _call("merge_norm", args[:7], args, _MergeNormFunction)
    return hn, _partial_result(update, partial, p_new)


_IMPLS = {"aggregate": _aggregate_impl, "block_score": _block_score_impl,
          "merge": _merge_impl, "merge_norm": _merge_norm_impl}


class AttnResAggregate(torch.nn.Module):
    """A drop-in AttnRes depth aggregation: a learned pseudo-query (zero at
    start, spec 1) and key-norm gain (one) of size D; forward(sources) runs
    attnres.aggregate (compiled kernels on CUDA, reference elsewhere)."""

    def __init__(self, d, eps=None, dtype=None, device=None):
        super().__init__()
        self.eps = _eps(eps)
        self.query = torch.nn.Parameter(torch.zeros(d, dtype=dtype, device=device))
        self.norm_weight = torch.nn.Parameter(torch.ones(d, dtype=dtype, device=device))

    def forward(self, sources):
        return aggregate(self.query, self.norm_weight, sources, self.eps)

    def extra_repr(self):
        return "d=%d, eps=%g" % (self.query.shape[0], self.eps)

