#!/usr/bin/env python3
"""Latency of the aggregation and phase-1 kernels made by gen.py at small token counts.

Runs on a GPU machine: for every bf16 aggregate and block_score entry of
<dir>/manifest.json (or the named ones) and every T of --tokens, it checks the kernel against the
float64 reference (outputs NaN-poisoned first) and then times K
back-to-back launches captured in one CUDA graph, replayed R times: the
per-call latency a captured decode step sees (launch overhead removed), as
bench/small_t.py measures the AOT libraries. The floor column is a
device-to-device copy of the op's byte floor timed the same way. Usage
(repository root):
    PYTHONPATH=python:. python3 -m bench.kernels_check.latency <dir> [names]
        [--tokens 1,4,16,64,256]
"""
import argparse
import json
import os

import torch

from attnres import defaults, reference
from bench.cudadrv import DT, TOL, init, launch_fn, rand

K, R = 20, 50


def graph_us(fn):
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(K):
            fn()
    g.replay()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(R):
        g.replay()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) * 1e3 / (K * R)


def setup(directory, e, t, eps):
    """(run, argv, check, byte floor) of entry `e` at T = t: random bf16
    inputs, outputs NaN-poisoned; check() is the relative error of every
    output against the float64 reference."""
    n, d = e["n"], e["d"]
    run = launch_fn(directory, e)
    srcs = [rand((t, d), "bf16", 0.5 + i * 0.25) for i in range(n)]
    if e["op"] == "aggregate":
        w = rand((d,), "bf16", 3.0 / d ** 0.5)
        g = (1 + 0.1 * torch.randn(d, device="cuda")).to(DT["bf16"])
        out = torch.full((t, d), float("nan"), device="cuda", dtype=DT["bf16"])
        check = lambda: reference.rel_error(out, reference.aggregate(w, g, srcs, eps))  # noqa: E731
        return run, [w, g] + srcs + [out, t, eps], check, (n + 1) * t * d * 2
    s = e["s"]
    W = rand((s, d), "bf16", 3.0 / d ** 0.5)
    G = (1 + 0.1 * torch.randn(s, d, device="cuda")).to(DT["bf16"])
    rs = [reference.inv_rms(x, eps).float() for x in srcs] if e["inv"] else []
    out = torch.full((s, t, d), float("nan"), device="cuda", dtype=DT["bf16"])
    lse = torch.full((s, t), float("nan"), device="cuda")

    def check():
        ref, lref = reference.block_score(W, G, srcs, eps)
        return max(reference.rel_error(out, ref), reference.rel_error(lse, lref))
    nbytes = (n + s) * t * d * 2 + 4 * s * t + (4 * n * t if e["inv"] else 0)
    return run, [W, G] + srcs + rs + [out, lse, t, eps], check, nbytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("names", nargs="*")
    ap.add_argument("--tokens", default="1,4,16,64,256")
    args = ap.parse_args()
    init()
    torch.manual_seed(0)
    eps = defaults.epsilon()
    print(f"device {torch.cuda.get_device_name()}", flush=True)
    with open(os.path.join(args.dir, "manifest.json")) as f:
        entries = [e for e in json.load(f) if e["op"] in ("aggregate", "block_score")
                   and e["e"] == "bf16" and (not args.names or e["name"] in args.names)]
    results, bad = [], 0
    for t in [int(x) for x in args.tokens.split(",")]:
        for e in entries:
            run, argv, check, nbytes = setup(args.dir, e, t, eps)
            run(argv, t)
            torch.cuda.synchronize()
            err = check()
            ok = err <= TOL["bf16"]
            bad += not ok
            x = torch.empty(nbytes // 2, dtype=torch.uint8, device="cuda")
            y = torch.empty_like(x)
            floor = graph_us(lambda: y.copy_(x))
            us = graph_us(lambda: run(argv, t))
            print(f"T={t:<4d} {e['name']:34s} {e['kernel']:40s} err {err:.2e} {'OK ' if ok else 'BAD'}"
                  f" {us:7.2f} us  (copy {floor:5.2f} us)", flush=True)
            results.append({"name": e["name"], "kernel": e["kernel"], "t": t, "us": us,
                            "copy_us": floor, "rel_error": err, "ok": ok})
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "latency.json"), "w") as f:
            json.dump(results, f, indent=1)
    print("all correct" if not bad else f"{bad} FAILED", flush=True)


if __name__ == "__main__":
    main()
