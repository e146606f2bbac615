"""Wall time of a block of code for the end-to-end benchmarks: CUDA events on
the GPU (the time the stream spent between the two records), perf_counter
elsewhere (CPU smoke runs). `with Timer(device) as t: ...` then `t.ms`."""

import time

import torch


class Timer:
    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device == "cuda":
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)
            self.start.record()
        else:
            self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            self.end.record()
            torch.cuda.synchronize()
            self.ms = self.start.elapsed_time(self.end)
        else:
            self.ms = (time.perf_counter() - self.t0) * 1e3
