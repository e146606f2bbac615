"""Independent numpy reference of the attnres ops (float64).

Part of the attnres project. Written from the formulas of
/work/shared/design/attnres-semantics.md sections 2, 3 and 5 (and the op
descriptions in AttnResOps.td), not from the MLIR lowering: every function
takes the storage values (already rounded to f32/f16/bf16, given here as
float64 arrays) and computes in float64, without any max-subtraction trick
other than what float64 needs.

Shapes: a source is [..., D]; a pseudo-query / gain is [D]; phase 1 stacks
S queries as [S, D] and returns out [S, ..., D], lse [S, ...].

Also the whole Block AttnRes network of section 3 (`block_attnres`), which
the chain tests (block_ref.py, utils/property/attnres_property.py) check
the compiled chains against.
"""

import numpy as np


def round_to_dtype(x, dtype):
    """Rounds float values to the storage type `dtype` (f32, f16, bf16),
    round-to-nearest-even, and returns them as float64. Values beyond the
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


def inv_rms(x, eps):
    """r[p] = 1 / sqrt(mean_d x[p, d]^2 + eps)."""
    x = np.asarray(x, dtype=np.float64)
    return 1.0 / np.sqrt(np.mean(x * x, axis=-1) + eps)


def _softmax_lse(z, axis):
    """Softmax and log-sum-exp along `axis` (float64)."""
    m = np.max(z, axis=axis, keepdims=True)
    e = np.exp(z - m)
    s = np.sum(e, axis=axis, keepdims=True)
    return e / s, np.squeeze(m + np.log(s), axis=axis)


def aggregate(query, gain, sources, eps):
    """Full AttnRes over `sources` (section 2): returns h [..., D]."""
    v = np.stack([np.asarray(s, dtype=np.float64) for s in sources])  # [n,...,D]
    w = np.asarray(query, dtype=np.float64) * np.asarray(gain, dtype=np.float64)
    z = inv_rms(v, eps) * np.sum(v * w, axis=-1)  # [n, ...]
    a, _ = _softmax_lse(z, axis=0)
    return np.sum(a[..., None] * v, axis=0)


def block_sum(inputs):
    """Elementwise sum (block summary or partial sum, section 3)."""
    return np.sum(np.stack([np.asarray(x, dtype=np.float64) for x in inputs]),
                  axis=0)


def block_score(queries, gains, sources, eps, inv_rms_values=None):
    """Phase 1 (section 5): S queries against the completed summaries.

    `inv_rms_values`, when given, replaces the inverse RMS of each source
    (the op takes them as operands). Returns (out [S, ..., D], lse [S, ...]).
    """
    v = np.stack([np.asarray(s, dtype=np.float64) for s in sources])  # [n,...,D]
    if inv_rms_values is None:
        r = inv_rms(v, eps)  # [n, ...]
    else:
        r = np.stack([np.asarray(x, dtype=np.float64) for x in inv_rms_values])
    w = np.asarray(queries, dtype=np.float64) * np.asarray(gains,
                                                           dtype=np.float64)
    outs, lses = [], []
    for l in range(w.shape[0]):
        z = r * np.sum(v * w[l], axis=-1)  # [n, ...]
        a, lse = _softmax_lse(z, axis=0)
        outs.append(np.sum(a[..., None] * v, axis=0))
        lses.append(lse)
    return np.stack(outs), np.stack(lses)


def merge(out, lse, query, gain, update, partial, eps):
    """Phase 2 (section 5) fused with the partial-sum update.

    p' = partial + update (update alone without partial);
    c = r(p') * (w*g).p';  h = out + sigmoid(c - lse) * (p' - out).
    Returns (h, p').
    """
    p = np.asarray(update, dtype=np.float64)
    if partial is not None:
        p = p + np.asarray(partial, dtype=np.float64)
    w = np.asarray(query, dtype=np.float64) * np.asarray(gain, dtype=np.float64)
    c = inv_rms(p, eps) * np.sum(p * w, axis=-1)
    gate = 1.0 / (1.0 + np.exp(-(c - np.asarray(lse, dtype=np.float64))))
    o = np.asarray(out, dtype=np.float64)
    return o + gate[..., None] * (p - o), p


def block_attnres(v0, queries, gains, sublayer, block_size, eps,
                  round_fn=None, fused=False):
    """Block AttnRes (section 3) of L = len(queries) - 1 sublayers; block
    size 1 is Full AttnRes. b_0 = v0, b_n = the sum of block n's outputs;
    sublayer l (in block n, position i) reads [b_0 .. b_{n-1}] (+ the partial
    sum b_n^i for i >= 1) through aggregate(queries[l], gains[l]); the last
    block may be shorter; the final aggregation (queries[L], gains[L]) reads
    all b. `sublayer(l, h)` is f_l.

    `round_fn`, when given, rounds to the storage type every op's result
    (spec 0.3): aggregations, sublayer outputs and block summaries; with
    `fused`, also the partial sum after every addition, as attnres.merge's
    new_partial is (spec E.1), where the block form rounds each block_sum
    once (B.1).
    """
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
