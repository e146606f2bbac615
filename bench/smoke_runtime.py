#!/usr/bin/env python3
"""Checks the runtime and the AOT path on the GPU with the tiny upstream-lowered
kernel test/Runtime/Inputs/scale.mlir (out = 2 * in + 1), compiled as a fatbin
(libscale.so) and as PTX for the driver's JIT (libscale_isa.so):
default mode (own stream, synchronizes), caller stream (enqueues without
synchronizing), a side stream, module-load caching, and a missing driver.
Exit status 0 when every check passed.
"""

import os
import subprocess
import sys
import time

import torch

from attnres.aot import AotLibrary

failures = []


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run_lib(path, label):
    lib = AotLibrary(path)
    check(lib.available(), "%s: runtime finds the driver and a device" % label)
    fn = lib["scale"]
    n = (1 << 24) + 3  # odd size: partial last block
    x = torch.randn(n, device="cuda")
    y = torch.full_like(x, float("nan"))
    torch.cuda.synchronize()
    # Default mode: the call synchronizes its own stream before it returns.
    fn(x, y)
    check(lib.error() is None, "%s: default-mode call, no runtime error (%s)" % (label, lib.error()))
    check(torch.equal(y, 2 * x + 1), "%s: default-mode result (synchronized on return)" % label)

    # Caller stream: calls enqueue on torch's current stream and return at once.
    stream = torch.cuda.current_stream()
    lib.use_stream(stream)
    xs = [torch.randn(n, device="cuda") for _ in range(2)]
    ys = [torch.full_like(x, float("nan")) for _ in range(2)]
    calls = [fn.bind(xs[i % 2], ys[i % 2]) for i in range(2)]
    for c in calls:
        c()
    torch.cuda.synchronize()
    reps = 200
    start_ev, end_ev = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start_ev.record(stream)
    for i in range(reps):
        calls[i % 2]()
    end_ev.record(stream)
    host_s = time.perf_counter() - t0
    torch.cuda.synchronize()
    dev_s = start_ev.elapsed_time(end_ev) / 1e3
    print("  %s: %d calls enqueued in %.3f ms host time, %.3f ms device time (%.1f us/call host)"
          % (label, reps, host_s * 1e3, dev_s * 1e3, host_s / reps * 1e6))
    check(lib.error() is None, "%s: caller-stream calls, no runtime error (%s)" % (label, lib.error()))
    check(all(torch.equal(ys[i], 2 * xs[i] + 1) for i in range(2)), "%s: caller-stream results" % label)
    check(host_s < dev_s, "%s: caller-stream calls return before the GPU finishes (host %.2f ms < device %.2f ms)"
          % (label, host_s * 1e3, dev_s * 1e3))

    # A side stream, ordered against the producer with an event.
    side = torch.cuda.Stream()
    lib.use_stream(side)
    z = torch.full_like(x, float("nan"))
    x2 = torch.randn(n, device="cuda")
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn(x2, z)
    torch.cuda.current_stream().wait_stream(side)
    check(torch.equal(z, 2 * x2 + 1), "%s: side-stream result" % label)
    lib.reset_stream()
    fn(x, y)
    check(torch.equal(y, 2 * x + 1) and lib.error() is None, "%s: back to default mode" % label)

    # Default mode is ordered after the caller's work on the legacy default stream
    # (the runtime's own stream is blocking): the input is still being written by a
    # delayed copy on torch's default stream when the call is made, with no sync.
    check(torch.cuda.current_stream().cuda_stream == 0, "%s: torch runs on the legacy default stream" % label)
    src = torch.randn(n, device="cuda")
    x3 = torch.full_like(x, float("nan"))
    y3 = torch.full_like(x, float("nan"))
    torch.cuda.synchronize()
    torch.cuda._sleep(50_000_000)  # about 25 ms of GPU time before the copy
    x3.copy_(src)
    fn(x3, y3)
    check(torch.equal(y3, 2 * src + 1) and lib.error() is None,
          "%s: default mode waits for the caller's pending default-stream work" % label)
    return lib


def main():
    lib_dir = sys.argv[1]
    print("device:", torch.cuda.get_device_name(), "torch", torch.__version__, flush=True)
    libs = [run_lib(os.path.join(lib_dir, "libscale.so"), "fatbin"),
            run_lib(os.path.join(lib_dir, "libscale_isa.so"), "ptx-jit")]
    # Launch cost per call in default mode (stream create + launch + sync).
    x = torch.randn(1024, device="cuda")
    y = torch.empty_like(x)
    fn = libs[0]["scale"].bind(x, y)
    for _ in range(10):
        fn()
    t0 = time.perf_counter()
    for _ in range(1000):
        fn()
    print("  default-mode call on 1024 elements: %.1f us" % ((time.perf_counter() - t0) * 1e3), flush=True)

    # No driver: a child process pointed at a missing driver library.
    code = ("import ctypes\n"
            "from attnres.aot import AotLibrary, descriptor_type\n"
            "lib = AotLibrary(%r)\n"
            "bufs = [(ctypes.c_float * 64)() for _ in range(2)]\n"
            "descs = [descriptor_type(1)() for _ in range(2)]\n"
            "for d, b in zip(descs, bufs):\n"
            "    d.allocated = d.aligned = ctypes.addressof(b); d.sizes[0] = 64; d.strides[0] = 1\n"
            "lib.cdll._mlir_ciface_scale(ctypes.byref(descs[0]), ctypes.byref(descs[1]))\n"
            "print('returned; error', lib.error())\n"
            "print('available', lib.available())\n"
            % os.path.join(lib_dir, "libscale.so"))
    env = dict(os.environ, ATTNRES_CUDA_DRIVER="/nonexistent/libcuda.so.1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    print("  no-driver child: rc=%d\n%s%s" % (r.returncode, r.stdout, r.stderr))
    check(r.returncode == 0 and "cannot load the CUDA driver library" in r.stderr
          and "available False" in r.stdout, "missing driver: clear error, no crash")
    print("smoke: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
