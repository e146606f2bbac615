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

__all__ = ["TOLERANCE", "aggregate", "aggregate_grad", "aggregate_stats", "block_attnres",
           "block_score", "block_score_grad", "block_sum", "inv_rms", "merge", "merge_grad",
           "merge_norm", "merge_norm_grad", "rel_error", "rms_norm", "rms_norm_grad", "round_to_dtype"]

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


# --- gradients (issue 12) ------------------------------------------------------------
#
# Written from the forward formulas above by hand (chain rule), not from any
# lowering; python/tests/test_reference.py checks each against central finite
# differences of the forward functions. Notation, per token p and source i:
#   r_i = inv_rms(v_i), s_i = <v_i, w> with w = query * gain, z_i = r_i s_i,
#   a = softmax_i(z), h = sum_i a_i v_i.
# With dh the incoming gradient:
#   da_i = <v_i, dh>,  dz_i = a_i (da_i - sum_j a_j da_j),
#   dv_i = a_i dh + dz_i r_i (w - z_i r_i v_i / D)        (d r_i / d v_i = -r_i^3 v_i / D)
#   dw   = sum over tokens of sum_i dz_i r_i v_i;  dquery = dw * gain, dgain = dw * query.
# The per-token statistics a backward needs besides the sources are the
# log-sum-exp of z and the r_i (aggregate_stats): O(T N) floats.


def _reduce_to(x, shape):
    """Sums the leading (token) dimensions of `x` [..., D] down to `shape`
    (the query's / gain's shape: [D] or any shape that broadcast)."""
    xp = _ns(x)
    while x.ndim > len(shape):
        x = x.sum(0)
    for ax, n in enumerate(shape):
        if n == 1 and x.shape[ax] != 1:
            x = x.sum(ax, keepdims=True) if xp is np else x.sum(ax, keepdim=True)
    return x


def _score_grad(v, r, z, a, w, dz):
    """dv contribution and per-token dw of logits z = r <v, w> given dz."""
    d = v.shape[-1]
    c = (dz * r)[..., None]                      # [n, ..., 1]
    dv = c * (w - (z * r / d)[..., None] * v)
    dw = (c * v).sum(0)                          # [..., D]
    return dv, dw


def aggregate_stats(query, gain, sources, eps, compute="f64"):
    """What the forward saves for the backward: (lse [...] of the logits,
    r [n, ...] the inverse RMS of each source)."""
    v = _stack(sources, compute)
    w = _cast(query, compute) * _cast(gain, compute)
    r = inv_rms(v, eps, compute)
    _, lse = _softmax_lse(r * _dot(v, w))
    return lse, r


def aggregate_grad(query, gain, sources, eps, dh, compute="f64"):
    """The gradient of spec A: returns (dsources [n, ..., D], dquery,
    dgain) for the incoming gradient dh [..., D]. One source: h = v_0, so
    dv_0 = dh and the query and gain get zero (spec A.2)."""
    v = _stack(sources, compute)
    dh = _cast(dh, compute)
    q, g = _cast(query, compute), _cast(gain, compute)
    xp = _ns(v)
    if v.shape[0] == 1:
        return dh[None] * 1.0, q * 0.0, g * 0.0
    w = q * g
    r = inv_rms(v, eps, compute)
    z = r * _dot(v, w)
    a, _ = _softmax_lse(z)
    da = _dot(v, dh)
    dz = a * (da - xp.sum(a * da, 0)[None])
    dv_s, dw = _score_grad(v, r, z, a, w, dz)
    dv = a[..., None] * dh[None] + dv_s
    dw = _reduce_to(dw, tuple(w.shape))
    return dv, _reduce_to(dw * g, tuple(q.shape)), _reduce_to(dw * q, tuple(g.shape))


def block_score_grad(queries, gains, sources, eps, dout, dlse, compute="f64"):
    """The gradient of spec D (phase 1) for incoming (dout [S, ..., D],
    dlse [S, ...]): returns (dsources [n, ..., D], dqueries [S, D],
    dgains [S, D]). lse_l = logsumexp_i z_li adds dlse_l a_li to dz_li."""
    v = _stack(sources, compute)
    xp = _ns(v)
    W, G = _cast(queries, compute), _cast(gains, compute)
    dout, dlse = _cast(dout, compute), _cast(dlse, compute)
    r = inv_rms(v, eps, compute)
    dv = v * 0.0
    dws = []
    for l in range(W.shape[0]):
        w = W[l] * G[l]
        z = r * _dot(v, w)
        a, _ = _softmax_lse(z)
        da = _dot(v, dout[l])
        dz = a * (da - xp.sum(a * da, 0)[None]) + a * dlse[l][None]
        dv_s, dw = _score_grad(v, r, z, a, w, dz)
        dv = dv + a[..., None] * dout[l][None] + dv_s
        dws.append(_reduce_to(dw, tuple(w.shape)))
    dW = xp.stack(dws, 0)
    return dv, dW * G, dW * W


def merge_grad(out, lse, query, gain, update, partial, eps, dh, dp_new, compute="f64"):
    """The gradient of spec E.1 (p' = partial + update, c = r(p') <p', w>,
    g = sigmoid(c - lse), h = out + g (p' - out)) for incoming (dh, dp_new
    [..., D]): returns (dout, dlse, dquery, dgain, dupdate, dpartial);
    dpartial is None without a partial."""
    p = _cast(update, compute)
    if partial is not None:
        p = p + _cast(partial, compute)
    xp = _ns(p)
    o, l = _cast(out, compute), _cast(lse, compute)
    q, gn = _cast(query, compute), _cast(gain, compute)
    dh, dpn = _cast(dh, compute), _cast(dp_new, compute)
    w = q * gn
    r = inv_rms(p, eps, compute)
    c = r * xp.sum(p * w, -1)
    gate = 1.0 / (1.0 + xp.exp(-(c - l)))
    dout = dh * (1.0 - gate)[..., None]
    dgate = xp.sum(dh * (p - o), -1)
    dc = dgate * gate * (1.0 - gate)
    d = p.shape[-1]
    cr = (dc * r)[..., None]
    dp = dh * gate[..., None] + dpn + cr * (w - (c * r / d)[..., None] * p)
    dw = _reduce_to(cr * p, tuple(w.shape))
    return (dout, -dc, _reduce_to(dw * gn, tuple(q.shape)), _reduce_to(dw * q, tuple(gn.shape)),
            dp, None if partial is None else dp * 1.0)


def rms_norm_grad(h, gain, eps, dy, compute="f64"):
    """The gradient of y = h r(h) gain: returns (dh, dgain) with
    dh = r gain dy - r^3 h <h, gain dy> / D and dgain = sum over tokens of
    h r dy."""
    h, g, dy = _cast(h, compute), _cast(gain, compute), _cast(dy, compute)
    xp = _ns(h)
    r = inv_rms(h, eps, compute)[..., None]
    d = h.shape[-1]
    gdy = g * dy
    dh = r * gdy - (r ** 3) * h * xp.sum(h * gdy, -1)[..., None] / d
    return dh, _reduce_to(h * r * dy, tuple(g.shape))


def merge_norm_grad(out, lse, query, gain, update, partial, norm_gain, eps, norm_eps, dh, dhn,
                    dp_new, round_h=None, compute="f64"):
    """The gradient of merge_norm (spec E.5) when both h and the normed h
    are used: incoming (dh, dhn, dp_new [..., D]). The RMSNorm's gradient at
    h (rounded by `round_h` first, as the op normalises the stored h) is
    added to dh, then merge_grad. Returns (dout, dlse, dquery, dgain,
    dupdate, dpartial, dnorm_gain); dpartial is None without a partial."""
    h, _ = merge(out, lse, query, gain, update, partial, eps, compute)
    if round_h is not None:
        h = _cast(round_h(h), compute)
    dhr, dgn = rms_norm_grad(h, norm_gain, norm_eps, dhn, compute)
    grads = merge_grad(out, lse, query, gain, update, partial, eps, _cast(dh, compute) + dhr,
                       dp_new, compute)
    return grads + (dgn,)


def central_difference(loss, x, h):
    """Central finite-difference gradient of the scalar `loss()` with respect
    to the float64 numpy array `x`, which `loss` reads and which is perturbed
    in place (step h * max(1, |x_k|); the caller picks h) and restored. Uses no gradient
    formula: the independent check of the ones above."""
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        step = h * max(1.0, abs(flat[i]))
        old = flat[i]
        flat[i] = old + step
        fp = loss()
        flat[i] = old - step
        fm = loss()
        flat[i] = old
        gf[i] = (fp - fm) / (2 * step)
    return g


def rel_error(out, ref):
    """||out - ref|| / ||ref|| in float64 (inf when `out` is not finite)."""
    out, ref = _cast(out, "f64"), _cast(ref, "f64")
    xp = _ns(out)
    if not bool(xp.isfinite(out).all()):
        return float("inf")
    num = float(xp.sqrt(xp.sum((out - ref) ** 2)))
    den = max(float(xp.sqrt(xp.sum(ref * ref))), 1e-300)
    return num / den
