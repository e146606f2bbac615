#!/usr/bin/env python3
"""Run the PTX kernels made by gen.py on a GPU: correctness and timing.

Loads each PTX with cuModuleLoadData, launches it on torch tensors through
cuda.bindings with the memref-descriptor calling convention of MLIR
(allocated ptr, aligned ptr, offset, sizes..., strides... per memref), and
compares with a float64 torch reference (relative Frobenius error; outputs
are poisoned with NaN first, so unwritten elements fail). Timing: CUDA
events, median of 20 launches after 3 warm-ups; TB/s counts each source
read once and each output written once. The reference is attnres.reference
(float64, on the GPU); the launch helpers are bench/cudadrv.py. Usage
(repository root): PYTHONPATH=python:. python3 -m bench.kernels_check.check <dir> [names]
"""
import os
import sys

import torch

from attnres import defaults, reference
from bench.cudadrv import DT, TOL, init, launch_fn, rand, run_checks, time_it

DIR = sys.argv[1]
only = sys.argv[2:] if len(sys.argv) > 2 else None
torch.manual_seed(0)
dev = torch.device("cuda")
init()
rel = reference.rel_error
REPS = int(os.environ.get("KC_REPS", "20"))

def queries(shape, d, e):
    return rand(shape, e, 3.0 / d ** 0.5), (1 + 0.1 * torch.randn(*shape, device=dev)).to(DT[e])

def copy_bw():
    x = torch.empty(1 << 29, dtype=torch.uint8, device=dev).random_()
    y = torch.empty_like(x)
    ms = time_it(lambda: y.copy_(x))
    return 2 * x.numel() / ms / 1e9

copy_tbs = copy_bw()
print(f"copy {copy_tbs:.2f} TB/s", flush=True)
eps = defaults.epsilon()  # what gen.py compiled in: the compiler's default


def check(entry):
    """Runs one kernel on random inputs (outputs NaN-poisoned) against
    attnres.reference: (report line, result fields)."""
    e, d, t = entry["e"], entry["d"], entry["t"]
    run = launch_fn(DIR, entry)
    torch.cuda.synchronize()
    nan = lambda *shape: torch.full(shape, float("nan"), device=dev, dtype=DT[e])  # noqa: E731
    if entry["op"] == "aggregate":
        n = entry["n"]
        w, g = queries((d,), d, e)
        srcs = [rand((t, d), e, 0.5 + i * 0.25) for i in range(n)]
        out = nan(t, d)
        args = [w, g] + srcs + [out, t, eps]
        run(args, t)
        torch.cuda.synchronize()
        err = rel(out, reference.aggregate(w, g, srcs, eps))
        nbytes = (n + 1) * t * d * out.element_size()
    elif entry["op"] == "block_score":
        n, s = entry["n"], entry["s"]
        W, G = queries((s, d), d, e)
        srcs = [rand((t, d), e, 0.5 + i * 0.25) for i in range(n)]
        rs = [reference.inv_rms(x, eps).float() for x in srcs] if entry["inv"] else []
        out = nan(s, t, d)
        lse = torch.full((s, t), float("nan"), device=dev)
        args = [W, G] + srcs + rs + [out, lse, t, eps]
        run(args, t)
        torch.cuda.synchronize()
        ref, lref = reference.block_score(W, G, srcs, eps)
        err = max(rel(out, ref), rel(lse, lref))
        nbytes = (n + s) * t * d * out.element_size() + 4 * s * t + (4 * n * t if entry["inv"] else 0)
    else:
        partial = entry["partial"]
        w, g = queries((d,), d, e)
        o = rand((t, d), e)
        lse = torch.randn(t, device=dev) * 2
        up = rand((t, d), e)
        pa = rand((t, d), e) if partial else None
        h = nan(t, d)
        p2 = nan(t, d) if partial else None
        args = [o, lse, w, g, up] + ([pa] if partial else []) + [h] + ([p2] if partial else []) + [t, eps]
        run(args, t)
        torch.cuda.synchronize()
        ref, p = reference.merge(o, lse, w, g, up, pa, eps)
        err = rel(h, ref)
        if partial:
            err = max(err, rel(p2, p))
        nbytes = (3 + (2 if partial else 0)) * t * d * h.element_size() + 4 * t
    ok = err <= TOL[e]
    ms = time_it(lambda: run(args, t), REPS) if entry["time"] else None
    tbs = nbytes / ms / 1e9 if ms else None
    line = f"{entry['kernel']:40s} err {err:.2e} {'OK ' if ok else 'BAD'}"
    if ms:
        line += f" {ms:8.3f} ms {tbs:5.2f} TB/s {100 * tbs / copy_tbs:5.1f}% of copy"
    return line, dict(err=err, ok=ok, ms=ms, tbs=tbs, copy_tbs=copy_tbs)


run_checks(os.path.join(DIR, "manifest.json"), check,
           select=lambda entry: not only or any(o in entry["name"] for o in only))
