"""Inputs and checks of the multi-process tests in test/Integration/CPU/mpi.

  check_mpi.py gen IN               partitioned-features-mpi.mlir: query, gain
                                    (64 f32), 3 sources 8x64 f32
  check_mpi.py check IN OUT P       h and every rank's inverse RMS against the
                                    float64 reference (aggregate, inv_rms)
  check_mpi.py gen-grad IN          partitioned-grad-tokens-mpi.mlir: query,
                                    gain (48), 3 sources 8x48, their lse and
                                    inverse RMS (float64 reference, rounded),
                                    dh 8x48; all f32
  check_mpi.py check-grad IN OUT P  the source gradients and every rank's
                                    query and gain gradients against the
                                    float64 reference (aggregate_grad)
  check_mpi.py gen-merge-grad IN    partitioned-merge-grad-tokens-mpi.mlir:
                                    out, lse, query, norm weight, update,
                                    partial, norm gain, dh, dp_new, dhn
                                    (12 tokens, D = 37); all f32
  check_mpi.py check-merge-grad IN OUT P
                                    dout, dlse, dupdate and every rank's
                                    dquery, dnorm_weight, dnorm_gain against
                                    the float64 reference (merge_norm_grad)
  check_mpi.py gen-merge-features IN
                                    partitioned-merge-features-mpi.mlir: out,
                                    lse, query, norm weight, update, partial,
                                    norm gain (12 tokens, D = 48); all f32
  check_mpi.py check-merge-features IN OUT P
                                    h, p' and hn against the float64
                                    reference (merge, merge_norm)
  check_mpi.py gen-score-grad IN    partitioned-block-score-grad-tokens-mpi.mlir:
                                    queries, gains (3x37), 3 sources 16x37,
                                    lse 3x16 and inverse RMS (float64
                                    reference, rounded), dout 3x16x37,
                                    dlse 3x16; all f32
  check_mpi.py check-score-grad IN OUT P
                                    the source gradients and every rank's
                                    dqueries and dgains against the float64
                                    reference (block_score_grad)
  check_mpi.py gen-score-features IN
                                    partitioned-block-score-features-mpi.mlir:
                                    queries, gains (3x48), 3 sources 12x48
                                    (magnitudes 1e-2, 1, 1e2); all f32
  check_mpi.py check-score-features IN OUT P
                                    out and every rank's lse against a
                                    float64 block_score written here in numpy
                                    (not attnres.reference)

The OUT of the (table-driven) driver of every test, Inputs/mpi_driver.c, is
the split (token- or feature-sharded) results whole, in result order, then
P copies of the replicated (all-reduced) ones. Sources, activations and
incoming gradients have random magnitudes (1e-2..1e2 per tensor).
Tolerance: relative error (Frobenius) <= 1e-5, f32.
"""

import sys

import numpy as np

from attnres import reference as ref

EPS, NORM_EPS, TOL, N = 1e-6, 1e-5, 1e-5, 3


def _magnitude(rng):
    return 10.0 ** rng.uniform(-2, 2)


def _random(rng, shape):
    """Standard normal values of a random magnitude (1e-2..1e2)."""
    return rng.standard_normal(shape) * _magnitude(rng)


def _read(path, sizes):
    x = np.fromfile(path, dtype="<f4").astype(np.float64)
    assert x.size == sum(int(np.prod(s)) for s in sizes), (path, x.size)
    out, at = [], 0
    for s in sizes:
        k = int(np.prod(s))
        out.append(x[at:at + k].reshape(s))
        at += k
    return out


def _report(errs):
    ok = True
    for name, e in errs:
        good = e <= TOL
        ok &= good
        print("%s: relative error %.3g (tolerance %g) %s" % (name, e, TOL, "ok" if good else "FAIL"))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def _write(path, parts):
    np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1) for p in parts]
                   ).astype("<f4").tofile(path)


def gen_features(path, t=8, d=64):
    rng = np.random.default_rng(20261206)
    parts = [rng.standard_normal(d), 1.0 + 0.1 * rng.standard_normal(d)]
    parts += [_random(rng, (t, d)) for _ in range(N)]
    _write(path, parts)


def check_features(inp, out, ranks, t=8, d=64):
    w, g, *v = _read(inp, [(d,), (d,)] + [(t, d)] * N)
    h, rs = _read(out, [(t, d), (ranks, t)])
    h_ref = np.asarray(ref.aggregate(w, g, v, EPS))
    r_ref = np.asarray(ref.inv_rms(h_ref, EPS))
    errs = [("h", ref.rel_error(h, h_ref))]
    errs += [("r of rank %d" % p, ref.rel_error(rs[p], r_ref)) for p in range(ranks)]
    return _report(errs)


def _f32(xs):
    """What the ops read of float64 inputs: their f32 values."""
    return [np.float32(x).astype(np.float64) for x in xs]


def _check_split(inp, out, ranks, shapes, reference):
    """Checks the OUT of Inputs/mpi_driver.c. `reference(*inputs)` (the
    inputs read from IN with `shapes`) returns the split (token- or
    feature-sharded) results and the replicated ones, each a list of (name,
    float64 value)."""
    split, rep = reference(*_read(inp, shapes))
    split = [(n, np.asarray(r)) for n, r in split]
    rep = [(n, np.asarray(r)) for n, r in rep]
    got = _read(out, [r.shape for _, r in split] + [(ranks, sum(r.size for _, r in rep))])
    errs = [(n, ref.rel_error(g, r)) for (n, r), g in zip(split, got)]
    for p in range(ranks):
        at = 0
        for n, r in rep:
            errs.append(("%s of rank %d" % (n, p),
                         ref.rel_error(got[-1][p, at:at + r.size].reshape(r.shape), r)))
            at += r.size
    return _report(errs)


def gen_grad(path, t=8, d=48):
    rng = np.random.default_rng(20261207)
    w, g = rng.standard_normal(d), 1.0 + 0.1 * rng.standard_normal(d)
    v = [_random(rng, (t, d)) for _ in range(N)]
    # The statistics as the forward saves them: of the f32 inputs, in f32.
    f32 = _f32([w, g] + v)
    lse, r = ref.aggregate_stats(f32[0], f32[1], f32[2:], EPS)
    dh = _random(rng, (t, d))
    _write(path, [w, g] + v + [lse, r, dh])


def check_grad(inp, out, ranks, t=8, d=48):
    def reference(w, g, *rest):
        dv, dq, dg = ref.aggregate_grad(w, g, rest[:N], EPS, rest[-1])
        return [("dv", dv)], [("dquery", dq), ("dgain", dg)]
    shapes = [(d,), (d,)] + [(t, d)] * N + [(t,), (N, t), (t, d)]
    return _check_split(inp, out, ranks, shapes, reference)


def _merge_inputs(rng, t, d):
    """The operands of a fused-norm merge with a partial: out, lse, query,
    norm weight, update, partial, norm gain."""
    o, y, p = (_random(rng, (t, d)) for _ in range(3))
    lse = 2.0 * rng.standard_normal(t)
    # query * norm weight of norm ~2: the logits c = r(p') <p', w g> are
    # O(1), so the gates sigmoid(c - lse) are mostly away from 0 and 1.
    w = 2.0 * rng.standard_normal(d) / np.sqrt(d)
    g, gn = (1.0 + 0.1 * rng.standard_normal(d) for _ in range(2))
    return [o, lse, w, g, y, p, gn]


def _merge_shapes(t, d):
    return [(t, d), (t,), (d,), (d,), (t, d), (t, d), (d,)]


def gen_merge_features(path, t=12, d=48):
    _write(path, _merge_inputs(np.random.default_rng(20261210), t, d))


def check_merge_features(inp, out, ranks, t=12, d=48):
    def reference(o, lse, w, g, y, p, gn):
        h, pn = ref.merge(o, lse, w, g, y, p, EPS)
        # The op normalises h as stored (rounded to f32).
        hn, _ = ref.merge_norm(o, lse, w, g, y, p, gn, EPS, NORM_EPS,
                               round_h=lambda h: ref.round_to_dtype(h, "f32"))
        return [("h", h), ("p'", pn), ("hn", hn)], []
    return _check_split(inp, out, ranks, _merge_shapes(t, d), reference)


def gen_merge_grad(path, t=12, d=37):
    rng = np.random.default_rng(20261208)
    inputs = _merge_inputs(rng, t, d)
    _write(path, inputs + [_random(rng, (t, d)) for _ in range(3)])


def check_merge_grad(inp, out, ranks, t=12, d=37):
    def reference(o, lse, w, g, y, p, gn, dh, dpn, dhn):
        # The op normalises h as stored (rounded to f32).
        do, dl, dq, dw, dy, _, dgn = ref.merge_norm_grad(
            o, lse, w, g, y, p, gn, EPS, NORM_EPS, dh, dhn, dpn,
            round_h=lambda h: ref.round_to_dtype(h, "f32"))
        return ([("dout", do), ("dlse", dl), ("dupdate", dy)],
                [("dquery", dq), ("dnorm_weight", dw), ("dnorm_gain", dgn)])
    return _check_split(inp, out, ranks, _merge_shapes(t, d) + [(t, d)] * 3, reference)


def gen_score_grad(path, t=16, d=37, s=3):
    rng = np.random.default_rng(20261209)
    W, G = rng.standard_normal((s, d)), 1.0 + 0.1 * rng.standard_normal((s, d))
    v = [_random(rng, (t, d)) for _ in range(N)]
    # The statistics as the forward saves them: of the f32 inputs, in f32.
    f32 = _f32([W, G] + v)
    _, lse = ref.block_score(f32[0], f32[1], f32[2:], EPS)
    r = ref.inv_rms(np.stack(f32[2:]), EPS)
    dout, dlse = _random(rng, (s, t, d)), _random(rng, (s, t))
    _write(path, [W, G] + v + [lse, r, dout, dlse])


def check_score_grad(inp, out, ranks, t=16, d=37, s=3):
    def reference(W, G, *rest):
        dv, dW, dG = ref.block_score_grad(W, G, rest[:N], EPS, rest[-2], rest[-1])
        return [("dv", dv)], [("dqueries", dW), ("dgains", dG)]
    shapes = [(s, d)] * 2 + [(t, d)] * N + [(s, t), (N, t), (s, t, d), (s, t)]
    return _check_split(inp, out, ranks, shapes, reference)


def gen_score_features(path, t=12, d=48, s=3):
    rng = np.random.default_rng(20261211)
    # queries * gains of norm ~2: the logits z_li = r_i <b_i, q_l g_l> are
    # O(1), so every source has a weight well away from 0 in the softmax.
    W = 2.0 * rng.standard_normal((s, d)) / np.sqrt(d)
    G = 1.0 + 0.1 * rng.standard_normal((s, d))
    # One magnitude per source, far apart: the inverse RMS (its sum of
    # squares over all of D) must undo each.
    v = [m * rng.standard_normal((t, d)) for m in (1e-2, 1.0, 1e2)]
    _write(path, [W, G] + v)


def _block_score_f64(W, G, v, eps):
    """Phase 1 of Block AttnRes (spec D) in float64, independently of
    attnres.reference: r_i = 1 / sqrt(mean_d b_i^2 + eps),
    z_li = r_i sum_d q_l g_l b_i, a_l = softmax_i z_li,
    out_l = sum_i a_li b_i, lse_l = logsumexp_i z_li."""
    b = np.stack(v)  # [n, T, D]
    r = 1.0 / np.sqrt(np.mean(b * b, axis=-1) + eps)  # [n, T]
    z = r[None] * np.einsum("ld,itd->lit", W * G, b)  # [S, n, T]
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    total = e.sum(axis=1, keepdims=True)
    a = e / total
    out = np.einsum("lit,itd->ltd", a, b)  # [S, T, D]
    lse = (m + np.log(total))[:, 0]  # [S, T]
    return out, lse


def check_score_features(inp, out, ranks, t=12, d=48, s=3):
    def reference(W, G, *v):
        o, lse = _block_score_f64(W, G, v, EPS)
        return [("out", o)], [("lse", lse)]
    return _check_split(inp, out, ranks, [(s, d)] * 2 + [(t, d)] * N, reference)


GENERATORS = {"gen": gen_features, "gen-grad": gen_grad, "gen-merge-grad": gen_merge_grad,
              "gen-merge-features": gen_merge_features, "gen-score-grad": gen_score_grad,
              "gen-score-features": gen_score_features}
CHECKS = {"check": check_features, "check-grad": check_grad,
          "check-merge-grad": check_merge_grad, "check-merge-features": check_merge_features,
          "check-score-grad": check_score_grad,
          "check-score-features": check_score_features}


def main(argv):
    what = argv[1] if len(argv) > 1 else None
    if what in GENERATORS and len(argv) == 3:
        GENERATORS[what](argv[2])
        return 0
    if what in CHECKS and len(argv) == 5:
        return CHECKS[what](argv[2], argv[3], int(argv[4]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
