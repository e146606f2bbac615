"""The numeric reference of every attnres op: one formula per op, float64.

Written from the formulas of docs/spec.md (A aggregate, B block_sum, C
inv_rms, D block_score, E merge, E.5 merge with the fused RMSNorm) and
attnres-semantics.md sections 2, 3 and 5, not from the MLIR lowering. The
tests, the benchmarks' correctness checks, the utilities that generate and
check the integration tests, and the CPU path of attnres.torch_ops all use
these functions; there is no second copy.

Every function accepts numpy arrays or torch tensors (the result is of the
same kind, on the same device: a GPU check needs no copy to the host) and
computes in float64 unless ``compute="f32"`` is given (the CPU path of the
torch operators, which rounds once to the storage type afterwards).

Shapes: a source is ``[..., D]``; a pseudo-query / gain ``[D]``; phase 1
stacks S queries as ``[S, D]`` and returns out ``[S, ..., D]``, lse
``[S, ...]``.
"""

import numpy as np

__all__ = ["TOLERANCE", "aggregate", "block_attnres", "block_score", "block_sum",
           "inv_rms", "merge", "merge_norm", "rel_error", "rms_norm", "round_to_dtype"]

# Relative-error tolerances (||out - ref|| / ||ref||) of a result stored in
# each type against this reference: the tests' and benchmarks' one table.
TOLERANCE = {"f32": 1e-5, "f16": 5e-3, "bf16": 1e-2}


def _is_torch(x):
    return type(x).__module__.startswith("torch")


def _ns(x):
    if _is_torch(x):
        import torch

        return torch
    return np


def _cast(x, compute):
    """`x` as float64 (or float32) of its own kind."""
    if _is_torch(x):
        import torch

        return x.to(torch.float64 if compute == "f64" else torch.float32)
    return np.asarray(x, dtype=np.float64 if compute == "f64" else np.float32)


def _stack(xs, compute):
    xs = [_cast(x, compute) for x in xs]
    return _ns(xs[0]).stack(xs, 0)


def round_to_dtype(x, dtype):
    """Rounds float values to the storage type `dtype` (f32, f16, bf16),
    round-to-nearest-even, returned as float64 numpy. Values beyond the
    type's range become +-Inf; NaN stays NaN."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if dtype == "f32":
            return x.astype(np.float32).astype(np.float64)
        if dtype == "f16":
            return x.astype(np.float16).astype(np.float64)
        if dtype == "bf16":
            f = x.astype(np.float32)
            bits = f.view(np.uint32).astype(np.uint64)
            rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
            out = rounded.astype(np.uint32).view(np.float32).astype(np.float64)
            # A NaN whose payload is in the low 16 bits would round to Inf.
            return np.where(np.isnan(f), np.nan, out)
    raise ValueError("unknown dtype " + dtype)


def inv_rms(x, eps, compute="f64"):
    """spec C: r[p] = 1 / sqrt(mean_d x[p, d]^2 + eps)."""
    x = _cast(x, compute)
    return 1.0 / _ns(x).sqrt(_ns(x).mean(x * x, -1) + eps)


def _softmax_lse(z):
    """Softmax and log-sum-exp over axis 0."""
    xp = _ns(z)
    m = xp.amax(z, 0)
    e = xp.exp(z - m[None])
    s = xp.sum(e, 0)
    return e / s[None], m + xp.log(s)


def _weighted_sum(a, v):
    """sum_i a[i, ...] v[i, ..., :], one source at a time (no [n, ..., D]
    temporary)."""
    h = a[0][..., None] * v[0]
    for i in range(1, v.shape[0]):
        h = h + a[i][..., None] * v[i]
    return h


def _dot(v, w):
    """sum_d v[i, ..., d] w[..., d] per source i (w broadcasts against a
    source: [D] or any shape a source broadcasts with), one source at a time."""
    xp = _ns(v)
    return xp.stack([xp.sum(v[i] * w, -1) for i in range(v.shape[0])], 0)


def aggregate(query, gain, sources, eps, compute="f64"):
    """spec A, semantics section 2: returns h [..., D]. One source is
    returned as it is (a_0 = 1 exactly, spec A.2, even for a non-finite
    score)."""
    v = _stack(sources, compute)  # [n, ..., D]
    if v.shape[0] == 1:
        return v[0]
    w = _cast(query, compute) * _cast(gain, compute)
    z = inv_rms(v, eps, compute) * _dot(v, w)  # [n, ...]
    a, _ = _softmax_lse(z)
    return _weighted_sum(a, v)


def block_sum(inputs, compute="f64"):
    """spec B: the elementwise sum (block summary or partial sum)."""
    return _ns(_cast(inputs[0], compute)).sum(_stack(inputs, compute), 0)


def block_score(queries, gains, sources, eps, inv_rms_values=None, compute="f64"):
    """spec D, phase 1: S queries against the completed summaries.
    `inv_rms_values`, when given, replaces the inverse RMS of each source
    (the op takes them as operands). Returns (out [S, ..., D], lse [S, ...])."""
    v = _stack(sources, compute)  # [n, ..., D]
    xp = _ns(v)
    r = inv_rms(v, eps, compute) if inv_rms_values is None else _stack(inv_rms_values, compute)
    w = _cast(queries, compute) * _cast(gains, compute)  # [S, D]
    outs, lses = [], []
    for l in range(w.shape[0]):
        z = r * _dot(v, w[l])  # [n, ...]
        a, lse = _softmax_lse(z)
        outs.append(_weighted_sum(a, v))
        lses.append(lse)
    return xp.stack(outs, 0), xp.stack(lses, 0)


def merge(out, lse, query, gain, update, partial, eps, compute="f64"):
    """spec E.1, phase 2 fused with the partial-sum update:
    p' = partial + update (update alone without partial);
    c = r(p') (w*g).p';  h = out + sigmoid(c - lse) (p' - out).
    Returns (h, p')."""
    p = _cast(update, compute)
    if partial is not None:
        p = p + _cast(partial, compute)
    xp = _ns(p)
    w = _cast(query, compute) * _cast(gain, compute)
    c = inv_rms(p, eps, compute) * xp.sum(p * w, -1)
    gate = 1.0 / (1.0 + xp.exp(-(c - _cast(lse, compute))))
    o = _cast(out, compute)
    return o + gate[..., None] * (p - o), p


def rms_norm(h, gain, eps, compute="f64"):
    """The sublayer's RMSNorm of spec E.5: h * r(h) * gain."""
    h = _cast(h, compute)
    return h * inv_rms(h, eps, compute)[..., None] * _cast(gain, compute)


def merge_norm(out, lse, query, gain, update, partial, norm_gain, eps, norm_eps,
               round_h=None, compute="f64"):
    """spec E.5: merge, then the RMSNorm (gain `norm_gain`, epsilon
    `norm_eps`) of h as stored; `round_h` rounds h to the storage type first
    (identity when None). Returns (hn, p')."""
    h, p = merge(out, lse, query, gain, update, partial, eps, compute)
    if round_h is not None:
        h = _cast(round_h(h), compute)
    return rms_norm(h, norm_gain, norm_eps, compute), p


def block_attnres(v0, queries, gains, sublayer, block_size, eps, round_fn=None, fused=False):
    """Block AttnRes (semantics section 3) of L = len(queries) - 1 sublayers
    in float64 numpy; block size 1 is Full AttnRes. b_0 = v0, b_n = the sum of
    block n's outputs; sublayer l (block n, position i) reads
    [b_0 .. b_{n-1}] (+ the partial sum b_n^i for i >= 1) through
    aggregate(queries[l], gains[l]); the last block may be shorter; the final
    aggregation (queries[L], gains[L]) reads all b. `sublayer(l, h)` is f_l.

    `round_fn`, when given, rounds to the storage type every op's result
    (spec 0.3): aggregations, sublayer outputs and block summaries; with
    `fused`, also the partial sum after every addition, as attnres.merge's
    new_partial is (spec E.1), where the block form rounds each block_sum
    once (B.1)."""
    rnd = round_fn or (lambda x: x)
    layers = len(queries) - 1
    summaries = [np.asarray(v0, dtype=np.float64)]
    partial = None
    for l in range(layers):
        i = l % block_size
        sources = summaries + ([rnd(partial)] if i >= 1 else [])
        h = rnd(aggregate(queries[l], gains[l], sources, eps))
        y = rnd(sublayer(l, h))
        partial = y if i == 0 else partial + y
        if fused:
            partial = rnd(partial)
        if i == block_size - 1 or l == layers - 1:
            summaries.append(rnd(partial))
            partial = None
    return rnd(aggregate(queries[layers], gains[layers], summaries, eps))


def rel_error(out, ref):
    """||out - ref|| / ||ref|| in float64 (inf when `out` is not finite)."""
    out, ref = _cast(out, "f64"), _cast(ref, "f64")
    xp = _ns(out)
    if not bool(xp.isfinite(out).all()):
        return float("inf")
    num = float(xp.sqrt(xp.sum((out - ref) ** 2)))
    den = max(float(xp.sqrt(xp.sum(ref * ref))), 1e-300)
    return num / den
