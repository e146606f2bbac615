#!/usr/bin/env python3
"""One call of the aggregation and phase-1 kernels at benchmark shapes, for
Nsight Compute (bench/device_run.sh runs it under ncu). Usage:
profile_run.py LIB_DIR"""

import sys

import torch

from bench import run_bench
from bench.shapes import agg_name, score_name

lib_dir = sys.argv[1]
stream = torch.cuda.current_stream()
for (n, t, d) in [(9, 16384, 4096), (10, 8192, 7168)]:
    name = agg_name("bf16", n, (t,), d)
    lib = run_bench.load_lib(lib_dir, "bench_" + name, stream)
    V = run_bench.random_sources(n, (t,), d, torch.bfloat16)
    w, g = run_bench.random_query((), d, torch.bfloat16)
    out = torch.empty(t, d, device="cuda", dtype=torch.bfloat16)
    lib.bind(name, w, g, *[V[i] for i in range(n)], out)()
    torch.cuda.synchronize()
    print(name, lib.error())
for (n, S, t, d) in [(9, 8, 16384, 4096)]:
    name = score_name("bf16", n, S, (t,), d)
    lib = run_bench.load_lib(lib_dir, "bench_" + name, stream)
    B = run_bench.random_sources(n, (t,), d, torch.bfloat16)
    W, G = run_bench.random_query((S,), d, torch.bfloat16)
    out = torch.empty(S, t, d, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(S, t, device="cuda", dtype=torch.float32)
    lib.bind(name, W, G, *[B[i] for i in range(n)], out, lse)()
    torch.cuda.synchronize()
    print(name, lib.error())
