#!/usr/bin/env python3
"""Run the PTX kernels made by gen.py on a GPU: correctness and timing.

Loads each PTX with cuModuleLoadData, launches it on torch tensors through
cuda.bindings with the memref-descriptor calling convention of MLIR
(allocated ptr, aligned ptr, offset, sizes..., strides... per memref), and
compares with a float64 torch reference (relative Frobenius error; outputs
are poisoned with NaN first, so unwritten elements fail). Timing: CUDA
events, median of 20 launches after 3 warm-ups; TB/s counts each source
read once and each output written once. Usage: check.py <dir-with-manifest>
"""
import ctypes
import json
import os
import sys

import torch
from cuda.bindings import driver as cu

DIR = sys.argv[1]
only = sys.argv[2:] if len(sys.argv) > 2 else None
torch.manual_seed(0)
dev = torch.device("cuda")
torch.cuda.init()

def ck(r):
    err = r[0] if isinstance(r, tuple) else r
    if err != cu.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"CUDA error {err}")
    return r[1] if isinstance(r, tuple) and len(r) == 2 else r

ck(cu.cuInit(0))
DT = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
TOL = {"bf16": 1e-2, "f16": 2e-3, "f32": 2e-5}

def memref_args(t):
    vals = [t.data_ptr(), t.data_ptr(), 0] + list(t.shape) + list(t.stride())
    types = [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_int64] * (1 + 2 * t.dim())
    return vals, types

def launch_fn(entry):
    with open(os.path.join(DIR, entry["ptx"]), "rb") as f:
        ptx = f.read() + b"\0"
    mod = ck(cu.cuModuleLoadData(ptx))
    fn = ck(cu.cuModuleGetFunction(mod, entry["kernel"].encode()))
    smem = entry.get("smem", 0)
    if smem > 48 * 1024:
        ck(cu.cuFuncSetAttribute(
            fn, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem))
    def run(args, t):
        vals, types = [], []
        for a in args:
            if isinstance(a, torch.Tensor):
                v, ty = memref_args(a)
            elif isinstance(a, float):
                v, ty = [a], [ctypes.c_float]
            else:
                v, ty = [a], [ctypes.c_int64]
            vals += v
            types += ty
        grid = (t + entry["tokens_per_cta"] - 1) // entry["tokens_per_cta"] * entry["groups"]
        ck(cu.cuLaunchKernel(fn, grid, 1, 1, entry["block"], 1, 1, smem,
                             torch.cuda.current_stream().cuda_stream,
                             (tuple(vals), tuple(types)), 0))
    return run

def rel(out, ref):
    out = out.double()
    if torch.isnan(out).any():
        return float("inf")
    return ((out - ref).norm() / ref.norm()).item()

def time_it(fn, reps=int(os.environ.get("KC_REPS", "20"))):
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

def queries(shape, d, e):
    return rand(shape, e, 3.0 / d ** 0.5), (1 + 0.1 * torch.randn(*shape, device=dev)).to(DT[e])

def ref_scores(V, wg, eps):
    # V: n x T x D (f64), wg: S x D -> a: S x n x T, lse S x T
    r = torch.rsqrt((V * V).mean(-1) + eps)
    z = torch.einsum("ntd,sd->snt", V, wg) * r[None]
    return torch.softmax(z, 1), torch.logsumexp(z, 1)

results = []
copy_tbs = None
def copy_bw():
    x = torch.empty(1 << 29, dtype=torch.uint8, device=dev).random_()
    y = torch.empty_like(x)
    ms = time_it(lambda: y.copy_(x))
    return 2 * x.numel() / ms / 1e9

copy_tbs = copy_bw()
print(f"device {torch.cuda.get_device_name()} copy {copy_tbs:.2f} TB/s", flush=True)

eps = 1e-6
for entry in json.load(open(os.path.join(DIR, "manifest.json"))):
    if only and not any(o in entry["name"] for o in only):
        continue
    e, d, t = entry["e"], entry["d"], entry["t"]
    run = launch_fn(entry)
    torch.cuda.synchronize()
    try:
        if entry["op"] == "aggregate":
            n = entry["n"]
            w, g = queries((d,), d, e)
            srcs = [rand((t, d), e, 0.5 + i * 0.25) for i in range(n)]
            out = torch.full((t, d), float("nan"), device=dev, dtype=DT[e])
            args = [w, g] + srcs + [out, t, eps]
            run(args, t)
            torch.cuda.synchronize()
            V = torch.stack(srcs).double()
            a, _ = ref_scores(V, (w.double() * g.double())[None], eps)
            ref = torch.einsum("nt,ntd->td", a[0], V)
            err = rel(out, ref)
            nbytes = (n + 1) * t * d * out.element_size()
        elif entry["op"] == "block_score":
            n, s = entry["n"], entry["s"]
            W, G = queries((s, d), d, e)
            srcs = [rand((t, d), e, 0.5 + i * 0.25) for i in range(n)]
            V = torch.stack(srcs).double()
            rs = [torch.rsqrt((x.double() ** 2).mean(-1) + eps).float() for x in srcs] if entry["inv"] else []
            out = torch.full((s, t, d), float("nan"), device=dev, dtype=DT[e])
            lse = torch.full((s, t), float("nan"), device=dev)
            args = [W, G] + srcs + rs + [out, lse, t, eps]
            run(args, t)
            torch.cuda.synchronize()
            a, lref = ref_scores(V, W.double() * G.double(), eps)
            ref = torch.einsum("snt,ntd->std", a, V)
            err = max(rel(out, ref), rel(lse, lref))
            nbytes = (n + s) * t * d * out.element_size() + 4 * s * t + (4 * n * t if entry["inv"] else 0)
        else:
            partial = entry["partial"]
            w, g = queries((d,), d, e)
            o = rand((t, d), e)
            lse = torch.randn(t, device=dev) * 2
            up = rand((t, d), e)
            pa = rand((t, d), e) if partial else None
            h = torch.full((t, d), float("nan"), device=dev, dtype=DT[e])
            p2 = torch.full((t, d), float("nan"), device=dev, dtype=DT[e]) if partial else None
            args = [o, lse, w, g, up] + ([pa] if partial else []) + [h] + ([p2] if partial else []) + [t, eps]
            run(args, t)
            torch.cuda.synchronize()
            p = up.double() + (pa.double() if partial else 0)
            c = torch.rsqrt((p * p).mean(-1) + eps) * (p @ (w.double() * g.double()))
            ref = o.double() + torch.sigmoid(c - lse.double())[:, None] * (p - o.double())
            err = rel(h, ref)
            if partial:
                err = max(err, rel(p2, p))
            nbytes = (3 + (2 if partial else 0)) * t * d * h.element_size() + 4 * t
        ok = err <= TOL[e]
        ms = time_it(lambda: run(args, t)) if entry["time"] else None
        tbs = nbytes / ms / 1e9 if ms else None
        line = f"{entry['name']:28s} {entry['kernel']:40s} err {err:.2e} {'OK ' if ok else 'BAD'}"
        if ms:
            line += f" {ms:8.3f} ms {tbs:5.2f} TB/s {100 * tbs / copy_tbs:5.1f}% of copy"
        print(line, flush=True)
        results.append(dict(entry, err=err, ok=ok, ms=ms, tbs=tbs, copy_tbs=copy_tbs))
    except Exception as ex:  # report and continue with the next kernel
        print(f"{entry['name']:28s} FAILED: {ex}", flush=True)
        results.append(dict(entry, error=str(ex)))
    finally:
        torch.cuda.empty_cache()

out = os.environ.get("OUT")
if out:
    json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=1)
print("all correct" if all(r.get("ok") for r in results) else "SOME FAILED")
