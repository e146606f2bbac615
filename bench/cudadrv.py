"""Launching a PTX kernel made by attnres-lower-to-nvvm through the CUDA
driver (cuda.bindings), for the per-kernel checks under bench/ (GPU machine).

A manifest entry names the PTX file ("ptx"), the kernel ("kernel"), its block
size ("block"), tokens per CTA ("tokens_per_cta"), and optionally CTA groups
per token tile ("groups", 1) and dynamic shared memory ("smem", 0). Tensor
arguments are passed as exploded memref descriptors (allocated, aligned,
offset, sizes, strides), floats as f32 and ints as i64.
"""

import ctypes
import json
import os

import torch
from cuda.bindings import driver as cu


# Storage types and the relative-error bounds of the per-kernel checks.
DT = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
TOL = {"bf16": 1e-2, "f16": 2e-3, "f32": 2e-5}


def rand(shape, e, scale=1.0):
    """Normal random values of storage type `e` on the GPU."""
    return (torch.randn(*shape, device="cuda") * scale).to(DT[e])


def ck(r):
    """The value of a cuda.bindings call, or RuntimeError on a CUDA error."""
    err = r[0] if isinstance(r, tuple) else r
    if err != cu.CUresult.CUDA_SUCCESS:
        raise RuntimeError(f"CUDA error {err}")
    return r[1] if isinstance(r, tuple) and len(r) == 2 else r


def init():
    """torch's primary context current for the driver calls."""
    torch.cuda.init()
    torch.zeros(1, device="cuda")
    ck(cu.cuInit(0))


def memref_args(t):
    vals = [t.data_ptr(), t.data_ptr(), 0] + list(t.shape) + list(t.stride())
    types = [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_int64] * (1 + 2 * t.dim())
    return vals, types


def launch_fn(directory, entry, kernel_key="kernel", block_key="block"):
    """run(args, tokens[, grid]): launches the entry's kernel (or the one
    named by entry[kernel_key], block size entry[block_key]) on torch's
    current stream; `grid` overrides the CTA count derived from tokens."""
    with open(os.path.join(directory, entry["ptx"]), "rb") as f:
        ptx = f.read() + b"\0"
    mod = ck(cu.cuModuleLoadData(ptx))
    fn = ck(cu.cuModuleGetFunction(mod, entry[kernel_key].encode()))
    # The dynamic shared memory read off the host IR is the main kernel's
    # (gen.py records the first launch's); the others take none.
    smem = entry.get("smem", 0) if kernel_key == "kernel" else 0
    if smem > 48 * 1024:
        ck(cu.cuFuncSetAttribute(
            fn, cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem))

    def run(args, t, grid=None):
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
        if grid is None:
            grid = -(-t // entry["tokens_per_cta"]) * entry.get("groups", 1)
        ck(cu.cuLaunchKernel(fn, grid, 1, 1, entry[block_key], 1, 1, smem,
                             torch.cuda.current_stream().cuda_stream,
                             (tuple(vals), tuple(types)), 0))
    return run


def time_it(fn, reps=20):
    """Median of `reps` CUDA-event timings (ms) after 3 warm-up calls."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2]


def run_checks(manifest_path, check, select=None):
    """Calls `check(entry)` -> (line, fields) for every manifest entry (that
    `select(entry)` accepts, when given),
    prints "<name> <line>" (or the exception, and goes on), writes the
    results to $OUT/results.json when OUT is set, and prints the verdict."""
    print(f"device {torch.cuda.get_device_name()}", flush=True)
    results = []
    with open(manifest_path) as f:
        entries = json.load(f)
    for entry in entries:
        if select is not None and not select(entry):
            continue
        try:
            line, fields = check(entry)
            print(f"{entry['name']:28s} {line}", flush=True)
            results.append(dict(entry, **fields))
        except Exception as ex:  # report and continue with the next kernel
            print(f"{entry['name']:28s} FAILED: {ex}", flush=True)
            results.append(dict(entry, error=str(ex)))
        finally:
            torch.cuda.empty_cache()
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    print("all correct" if all(r.get("ok") for r in results) else "SOME FAILED")
    return results
