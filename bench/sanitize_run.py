#!/usr/bin/env python3
"""A small run of every kernel, for compute-sanitizer (bench/sanitize.sh):
the upstream-lowered smoke kernel, then each function of the sweep_<dtype>
libraries (aggregate and block_score at odd D and small T, f32/f16/bf16) on
one random draw, checked as in run_bench.py. Exit status 1 if a check fails.
"""

import os
import sys

import torch

from attnres.aot import AotLibrary
from bench import run_bench
from bench.shapes import AGGREGATE_SWEEP, SCORE_SWEEP, SWEEP_DTYPES, agg_name, score_name


def main():
    lib_dir = sys.argv[1]
    stream = torch.cuda.current_stream()
    failures = 0
    lib = AotLibrary(os.path.join(lib_dir, "libscale.so"))
    x = torch.randn(1000, device="cuda")
    y = torch.empty_like(x)
    lib["scale"](x, y)
    ok = torch.equal(y, 2 * x + 1) and lib.error() is None
    print("scale:", "PASS" if ok else "FAIL", flush=True)
    failures += not ok
    for dt in SWEEP_DTYPES:
        path = os.path.join(lib_dir, "libsweep_%s.so" % dt)
        if not os.path.exists(path):
            print("sweep_%s: not built" % dt)
            continue
        lib = run_bench.load_lib(lib_dir, "sweep_" + dt, stream)
        for (n, tokens, d) in AGGREGATE_SWEEP:
            r = run_bench.check_aggregate(lib, agg_name(dt, n, tokens, d), n, tokens, d, dt)
            print(agg_name(dt, n, tokens, d), "PASS" if r["ok"] else "FAIL %s" % r, flush=True)
            failures += not r["ok"]
        for (n, S, tokens, d) in SCORE_SWEEP:
            r = run_bench.check_score(lib, score_name(dt, n, S, tokens, d), n, S, tokens, d, dt)
            print(score_name(dt, n, S, tokens, d), "PASS" if r["ok"] else "FAIL %s" % r, flush=True)
            failures += not r["ok"]
    print("sanitize_run: %d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
