#!/usr/bin/env python3
"""Run the merge kernels made by gen.py on a GPU: correctness against a
float64 torch reference (relative Frobenius error; outputs poisoned with NaN
first) and timing (CUDA events, median of 20 after 3 warm-ups). The fused
norm's reference is computed from the reference h rounded to the storage
type (spec E.5). Usage (repository root, python/ holds the attnres package):
  PYTHONPATH=python:. python3 -m bench.merge_norm_check.check <dir-with-manifest>
"""
import ctypes
import json
import os
import sys

import torch
from cuda.bindings import driver as cu

from attnres import reference

DIR = sys.argv[1]
torch.manual_seed(0)
dev = torch.device("cuda")
torch.cuda.init()
torch.zeros(1, device=dev)  # makes torch's primary context current for the driver calls


def ck(r):
    err = r[0] if isinstance(r, tuple) else r
    if err != cu.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"CUDA error {err}")
    return r[1] if isinstance(r, tuple) and len(r) == 2 else r


ck(cu.cuInit(0))
DT = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
TOL = {"bf16": 1e-2, "f16": 2e-3, "f32": 2e-5}


def launch_fn(entry):
    with open(os.path.join(DIR, entry["ptx"]), "rb") as f:
        ptx = f.read() + b"\0"
    mod = ck(cu.cuModuleLoadData(ptx))
    fn = ck(cu.cuModuleGetFunction(mod, entry["kernel"].encode()))

    def run(args, t):
        vals, types = [], []
        for a in args:
            if isinstance(a, torch.Tensor):
                vals += [a.data_ptr(), a.data_ptr(), 0] + list(a.shape) + list(a.stride())
                types += [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_int64] * (1 + 2 * a.dim())
            elif isinstance(a, float):
                vals.append(a)
                types.append(ctypes.c_float)
            else:
                vals.append(a)
                types.append(ctypes.c_int64)
        grid = (t + entry["tokens_per_cta"] - 1) // entry["tokens_per_cta"]
        ck(cu.cuLaunchKernel(fn, grid, 1, 1, entry["block"], 1, 1, 0,
                             torch.cuda.current_stream().cuda_stream,
                             (tuple(vals), tuple(types)), 0))
    return run


def rel(out, ref):
    out = out.double()
    if torch.isnan(out).any():
        return float("inf")
    return ((out - ref).norm() / ref.norm()).item()


def time_it(fn, reps=20):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); e.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2]


def rand(shape, e, scale=1.0):
    return (torch.randn(*shape, device=dev) * scale).to(DT[e])


print(f"device {torch.cuda.get_device_name()}", flush=True)
eps, eps_n = 1e-6, 1e-5
results = []
for entry in json.load(open(os.path.join(DIR, "manifest.json"))):
    e, d, t = entry["e"], entry["d"], entry["t"]
    partial, norm, use_h = entry["partial"], entry["norm"], entry["use_h"]
    try:
        run = launch_fn(entry)
        w = rand((d,), e, 3.0 / d ** 0.5)
        g = (1 + 0.1 * torch.randn(d, device=dev)).to(DT[e])
        gn = (1 + 0.25 * torch.randn(d, device=dev)).to(DT[e])
        o, up = rand((t, d), e), rand((t, d), e)
        lse = torch.randn(t, device=dev) * 2
        pa = rand((t, d), e) if partial else None
        nan = lambda: torch.full((t, d), float("nan"), device=dev, dtype=DT[e])
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
        err = max(errs.values())
        ok = err <= TOL[e]
        nbytes = (2 + (2 if partial else 0) + (1 if use_h else 0) + (1 if norm else 0)) * t * d * o.element_size() + 4 * t
        ms = time_it(lambda: run(args, t)) if entry["time"] else None
        line = f"{entry['name']:26s} {entry['kernel']:28s} " + " ".join(f"{k} {v:.2e}" for k, v in errs.items())
        line += " OK" if ok else " BAD"
        if ms:
            line += f" {ms:8.4f} ms {nbytes / ms / 1e9:5.2f} TB/s"
        print(line, flush=True)
        results.append(dict(entry, errs=errs, ok=ok, ms=ms))
    except Exception as ex:  # report and continue
        print(f"{entry['name']:26s} FAILED: {ex}", flush=True)
        results.append(dict(entry, error=str(ex)))
    finally:
        torch.cuda.empty_cache()
out = os.environ.get("OUT")
if out:
    json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=1)
print("all correct" if all(r.get("ok") for r in results) else "SOME FAILED")
