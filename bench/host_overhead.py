#!/usr/bin/env python3
"""Where the host time of an ``attnres.torch_ops`` call goes (GPU machine).

bench/small_t.py measures a torch_ops call at small T as 55 us of Python
issue time on an H100 machine and 109-191 us on an H200 machine, against
5-9 us for the same kernel launched through pre-bound descriptors. This
script splits that time: per-call microseconds of each step the call takes
(timed alone, in a loop of K calls, no synchronisation inside the loop),
then a cProfile of the whole call sorted by own time. Usage (repository
root, a kernel pack carried):

  PYTHONPATH=python:. python3 -m bench.host_overhead --pack .device/small_t/pack [--json F]
"""
import argparse
import cProfile
import io
import json
import pstats
import time

import torch

from attnres import aot, torch_ops
from bench.shapes import EPSILON as EPS


def per_call_us(fn, k):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(k):
        fn()
    host = (time.perf_counter() - t) / k * 1e6
    torch.cuda.synchronize()
    return host


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", required=True)
    ap.add_argument("--tokens", type=int, default=1)
    ap.add_argument("-k", type=int, default=2000)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch_ops.load_kernel_pack(args.pack)
    torch_ops.set_fallback("error")
    pack = torch_ops.kernel_packs()[0]
    d = 4096
    bf = torch.bfloat16
    n = max(k["num_sources"] for k in pack.kernels
            if k["op"] == "aggregate" and k["d"] == d and k["dtype"] == "bf16")
    t = args.tokens
    srcs = [torch.randn(t, d, device="cuda", dtype=bf) for _ in range(n)]
    w = (torch.randn(d, device="cuda") / 64).to(bf)
    g = torch.ones(d, device="cuda", dtype=bf)
    lib, fn = torch_ops._kernel("aggregate", "bf16", d, num_sources=n, epsilon=EPS)
    out = torch.empty(t, d, device="cuda", dtype=bf)
    tensors = [w, g] + srcs + [out]
    packed = [aot.packed_descriptor(x) for x in tensors]
    stream = torch.cuda.current_stream()
    dev = srcs[0].device
    steps = {
        "torch_ops.aggregate (whole call)": lambda: torch_ops.aggregate(w, g, srcs, EPS),
        "launch on pre-packed descriptors": lambda: fn.call_descriptors(*packed),
        "packed_descriptor x %d" % len(tensors): lambda: [aot.packed_descriptor(x) for x in tensors],
        "fn.call_unchecked (pack + launch)": lambda: fn.call_unchecked(*tensors),
        "torch.cuda.current_stream(device)": lambda: torch.cuda.current_stream(dev),
        "torch._C._cuda_getCurrentRawStream": lambda: torch._C._cuda_getCurrentRawStream(0),
        "lib.use_stream(stream)": lambda: lib.use_stream(stream),
        "lib.error()": lambda: lib.error(),
        "torch.empty((T, D), cuda)": lambda: torch.empty((t, d), dtype=bf, device=dev),
        "tensor.device": lambda: srcs[0].device,
        "torch.cuda.current_device()": lambda: torch.cuda.current_device(),
        "_kernel_for (pack lookup)": lambda: torch_ops._kernel_for(srcs[0], "aggregate", d,
                                                                   num_sources=n, epsilon=EPS),
        "_check_sources": lambda: torch_ops._check_sources("aggregate", srcs),
        "_rows x n": lambda: [torch_ops._rows(s, t, d) for s in srcs],
        "_source_descriptors (check + rows + pack)": lambda: torch_ops._source_descriptors(
            "aggregate", srcs, t, d),
        "the same in three passes (before 2026-12-07)": lambda: (
            torch_ops._check_sources("aggregate", srcs),
            torch_ops._descriptors([torch_ops._rows(s, t, d) for s in srcs])),
        "_vec x 2": lambda: (torch_ops._vec(w, bf, (d,)), torch_ops._vec(g, bf, (d,))),
        "_needs_grad": lambda: torch_ops._needs_grad(w, g, *srcs),
        "_dispatch": lambda: torch_ops._dispatch(w, g, *srcs),
    }
    rows = {}
    print("%s, torch %s, aggregate bf16 N=%d D=%d T=%d, %d calls per step"
          % (torch.cuda.get_device_name(), torch.__version__, n, d, t, args.k))
    for name, f in steps.items():
        rows[name] = per_call_us(f, args.k)
        print("  %-40s %8.2f us" % (name, rows[name]))
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.k):
        torch_ops.aggregate(w, g, srcs, EPS)
    prof.disable()
    torch.cuda.synchronize()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
    print(s.getvalue())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(device=torch.cuda.get_device_name(), torch=torch.__version__,
                           n=n, d=d, tokens=t, calls=args.k, us=rows), f, indent=1)


if __name__ == "__main__":
    main()
