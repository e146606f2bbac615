"""Inputs and check of partitioned-features-mpi.mlir.

  check_mpi.py gen IN          random inputs (query, gain: 64 f32; 3 sources
                               8x64 f32, magnitudes 1e-2..1e2 per source)
  check_mpi.py check IN OUT P  h and every rank's inverse RMS against the
                               float64 reference (attnres.reference: aggregate,
                               inv_rms), relative error <= 1e-5 (f32)
"""

import sys

import numpy as np

from attnres import reference as ref

T, D, N, EPS, TOL = 8, 64, 3, 1e-6, 1e-5


def read_inputs(path):
    x = np.fromfile(path, dtype="<f4").astype(np.float64)
    w, g = x[:D], x[D:2 * D]
    v = [x[2 * D + i * T * D:2 * D + (i + 1) * T * D].reshape(T, D) for i in range(N)]
    return w, g, v


def main():
    if sys.argv[1] == "gen":
        rng = np.random.default_rng(20261206)
        parts = [rng.standard_normal(D), 1.0 + 0.1 * rng.standard_normal(D)]
        parts += [rng.standard_normal((T, D)) * 10.0 ** rng.uniform(-2, 2) for _ in range(N)]
        np.concatenate([p.reshape(-1) for p in parts]).astype("<f4").tofile(sys.argv[2])
        return 0
    w, g, v = read_inputs(sys.argv[2])
    ranks = int(sys.argv[4])
    out = np.fromfile(sys.argv[3], dtype="<f4").astype(np.float64)
    h, rs = out[:T * D].reshape(T, D), out[T * D:].reshape(ranks, T)
    h_ref = np.asarray(ref.aggregate(w, g, v, EPS))
    r_ref = np.asarray(ref.inv_rms(h_ref, EPS))
    errs = [("h", ref.rel_error(h, h_ref))]
    errs += [("r of rank %d" % p, ref.rel_error(rs[p], r_ref)) for p in range(ranks)]
    ok = True
    for name, e in errs:
        good = e <= TOL
        ok &= good
        print("%s: relative error %.3g (tolerance %g) %s" % (name, e, TOL, "ok" if good else "FAIL"))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
