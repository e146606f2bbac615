#!/usr/bin/env python3
"""Run the merge kernels made by gen.py on a GPU: correctness against a
float64 torch reference (relative Frobenius error; outputs poisoned with NaN
first) and timing (CUDA events, median of 20 after 3 warm-ups). The fused
norm's reference is computed from the reference h rounded to the storage
type (spec E.5). Usage (repository root, python/ holds the attnres package):
  PYTHONPATH=python:. python3 -m bench.merge_norm_check.check <dir-with-manifest>
"""
import os
import sys

import torch

from attnres import defaults, reference
from bench.cudadrv import DT, TOL, init, launch_fn, rand, run_checks, time_it

DIR = sys.argv[1]
torch.manual_seed(0)
dev = torch.device("cuda")
init()
rel = reference.rel_error
eps, eps_n = defaults.epsilon(), 1e-5  # gen.py's: the compiler's default, the norm's


def check(entry):
    """Runs one kernel on random inputs: (report line, result fields)."""
    e, d, t = entry["e"], entry["d"], entry["t"]
    partial, norm, use_h = entry["partial"], entry["norm"], entry["use_h"]
    run = launch_fn(DIR, entry)
    w = rand((d,), e, 3.0 / d ** 0.5)
    g = (1 + 0.1 * torch.randn(d, device=dev)).to(DT[e])
    gn = (1 + 0.25 * torch.randn(d, device=dev)).to(DT[e])
    o, up = rand((t, d), e), rand((t, d), e)
    lse = torch.randn(t, device=dev) * 2
    pa = rand((t, d), e) if partial else None
    nan = lambda: torch.full((t, d), float("nan"), device=dev, dtype=DT[e])  # noqa: E731
    h = nan() if use_h else None
    p2 = nan() if partial else None
    hn = nan() if norm else None
    args = [o, lse, w, g, up] + ([pa] if partial else []) + ([gn] if norm else [])
    args += [x for x in (h, p2, hn) if x is not None] + [t, eps] + ([eps_n] if norm else [])
    run(args, t)
    torch.cuda.synchronize()
    ref, p = reference.merge(o, lse, w, g, up, pa, eps)
    errs = {}
    if use_h:
        errs["h"] = rel(h, ref)
    if partial:
        errs["p"] = rel(p2, p)
    if norm:
        ref_n, _ = reference.merge_norm(o, lse, w, g, up, pa, gn, eps, eps_n,
                                        round_h=lambda x: x.to(DT[e]))
        errs["hn"] = rel(hn, ref_n)
    ok = max(errs.values()) <= TOL[e]
    nbytes = ((2 + (2 if partial else 0) + (1 if use_h else 0) + (1 if norm else 0))
              * t * d * o.element_size() + 4 * t)
    ms = time_it(lambda: run(args, t)) if entry["time"] else None
    line = f"{entry['kernel']:28s} " + " ".join(f"{k} {v:.2e}" for k, v in errs.items())
    line += " OK" if ok else " BAD"
    if ms:
        line += f" {ms:8.4f} ms {nbytes / ms / 1e9:5.2f} TB/s"
    return line, dict(errs=errs, ok=ok, ms=ms)


run_checks(os.path.join(DIR, "manifest.json"), check)
