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

Sources and dh have random magnitudes (1e-2..1e2 per tensor). Tolerance:
relative error (Frobenius) <= 1e-5, f32.
"""

import sys

import numpy as np

from attnres import reference as ref

EPS, TOL, N = 1e-6, 1e-5, 3


def _magnitude(rng):
    return 10.0 ** rng.uniform(-2, 2)


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
    parts += [rng.standard_normal((t, d)) * _magnitude(rng) for _ in range(N)]
    _write(path, parts)


def check_features(inp, out, ranks, t=8, d=64):
    w, g, *v = _read(inp, [(d,), (d,)] + [(t, d)] * N)
    h, rs = _read(out, [(t, d), (ranks, t)])
    h_ref = np.asarray(ref.aggregate(w, g, v, EPS))
    r_ref = np.asarray(ref.inv_rms(h_ref, EPS))
    errs = [("h", ref.rel_error(h, h_ref))]
    errs += [("r of rank %d" % p, ref.rel_error(rs[p], r_ref)) for p in range(ranks)]
    return _report(errs)


def gen_grad(path, t=8, d=48):
    rng = np.random.default_rng(20261207)
    w, g = rng.standard_normal(d), 1.0 + 0.1 * rng.standard_normal(d)
    v = [rng.standard_normal((t, d)) * _magnitude(rng) for _ in range(N)]
    # The statistics as the forward saves them: of the f32 inputs, in f32.
    f32 = [np.float32(x).astype(np.float64) for x in [w, g] + v]
    lse, r = ref.aggregate_stats(f32[0], f32[1], f32[2:], EPS)
    dh = rng.standard_normal((t, d)) * _magnitude(rng)
    _write(path, [w, g] + v + [lse, r, dh])


def check_grad(inp, out, ranks, t=8, d=48):
    w, g, *rest = _read(inp, [(d,), (d,)] + [(t, d)] * N + [(t,), (N, t), (t, d)])
    v, dh = rest[:N], rest[-1]
    dv, dqg = _read(out, [(N, t, d), (ranks, 2, d)])
    dv_ref, dq_ref, dg_ref = (np.asarray(x) for x in ref.aggregate_grad(w, g, v, EPS, dh))
    errs = [("dv", ref.rel_error(dv, dv_ref))]
    for p in range(ranks):
        errs.append(("dquery of rank %d" % p, ref.rel_error(dqg[p, 0], dq_ref)))
        errs.append(("dgain of rank %d" % p, ref.rel_error(dqg[p, 1], dg_ref)))
    return _report(errs)


def main(argv):
    what = argv[1]
    if what == "gen":
        return gen_features(argv[2]) or 0
    if what == "gen-grad":
        return gen_grad(argv[2]) or 0
    if what == "check":
        return check_features(argv[2], argv[3], int(argv[4]))
    if what == "check-grad":
        return check_grad(argv[2], argv[3], int(argv[4]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
