#!/usr/bin/env python3
"""End to end on the GPU: Block AttnRes transformers whose AttnRes operators
run on AOT-compiled kernels (attnres.torch_ops + a kernel pack).

  python3 bench/e2e/run_e2e.py check    --pack DIR [--compile] [--json F]
  python3 bench/e2e/run_e2e.py overhead --pack DIR [--rounds 7] [--json F]
  python3 bench/e2e/run_e2e.py train    --pack DIR [--layers 32] [--checkpoint sublayer]
                                        [--steps 11] [--warmup 2] [--json F]

train: forward + backward + AdamW step of the large model, standard residuals
against attnres.torch_ops and Liger-Kernel's formulation (bench/e2e/train.py).

check: the small model (model.SMALL: 12 layers, d=896, 24 sublayers in 8
blocks of 3, vocab 4096) on 2 x 512 tokens. Logits of every AttnRes mode
against the pure PyTorch model (mode "reference"), in f32 and in bf16.
Tolerances (relative Frobenius error of the logits):
  f32:  every mode within 1e-4 of the f32 reference;
  bf16: the bf16 noise floor is n = err(pure PyTorch bf16 vs f32 reference,
        same weights); a mode passes when err(mode bf16 vs pure PyTorch bf16)
        <= max(2e-2, 1.5 n) and err(mode bf16 vs f32 reference) <= 1.25 n + 1e-3
        (as accurate as the pure PyTorch bf16 model).
Modes: reference (one aggregation per sublayer), reference-twophase,
compiled, compiled-twophase, and the *-twophase-norm forms where the merge
also applies the sublayer's PreNorm RMSNorm (attnres.merge_norm, spec E.5).
Per-op probes: every AttnRes op of the pure PyTorch bf16 run also run
compiled on the same inputs (probe, probe-twophase, probe-twophase-norm).
--compile also runs compiled-twophase and compiled-twophase-norm under
torch.compile.

overhead: the large model (model.LARGE: 32 layers, d=4096, 32 heads, SwiGLU
11008, vocab 32000, blocks of 8 sublayers = 8 blocks) on 1 x 8192 tokens in
bf16: forward latency (CUDA events, median of --rounds, the modes
interleaved round by round in an order rotated every round, each timed
forward right after an untimed one of the same mode, after 2 warm-up
forwards each) with standard
residuals and with each AttnRes mode; overhead = median / standard - 1,
and paired: the median over rounds of (variant / standard of the same round)
- 1, less sensitive to slow drifts of the GEMMs' speed. On CUDA each mode's
line also gives the mean SM clock during its timed forwards (nvidia-smi):
the GEMMs' speed follows the clock, and the power limit moves it.
"""

import argparse
import json
import re
import sys
import time

import torch

from attnres import torch_ops
from bench.e2e.model import LARGE, SMALL, Config, build
from bench.e2e.timing import Timer
from bench.e2e.train import EXTRA_VARIANTS as TRAIN_EXTRA_VARIANTS
from bench.e2e.train import VARIANTS as TRAIN_VARIANTS
from bench.e2e.train import train

MODES = ["reference", "reference-twophase", "compiled", "compiled-twophase",
         "reference-twophase-norm", "compiled-twophase-norm"]  # not probes


def rel(a, b):
    a, b = a.double(), b.double()
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a - b).norm() / b.norm()).item()


def argmax_agree(a, b):
    return (a.argmax(-1) == b.argmax(-1)).double().mean().item()


DEVICE = "cuda"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def no_grad():
    return torch.inference_mode() if hasattr(torch, "inference_mode") else torch.no_grad()


def forward(model, tokens, residual="attnres", mode="reference"):
    model.residual, model.attnres = residual, mode
    with no_grad():
        out = model(tokens)
    sync()
    return out


def small_config(args):
    if args.tiny:
        return Config(layers=3, d=64, heads=4, mlp_hidden=128, vocab=97, block_size=4)
    return SMALL


def large_config(args):
    if args.tiny:
        return Config(layers=4, d=128, heads=4, mlp_hidden=256, vocab=101, block_size=3)
    return LARGE


def check(args):
    cfg = small_config(args)
    gen = torch.Generator(device=DEVICE).manual_seed(7)
    tokens = torch.randint(0, cfg.vocab, (2, 64 if args.tiny else 512), generator=gen,
                           device=DEVICE)
    results = {"model": "12 layers, d=896, 24 sublayers, S=3 (8 blocks), 2x512 tokens",
               "f32": {}, "bf16": {}}
    ok = True
    model = build(cfg, DEVICE, torch.float32, seed=0)
    ref32 = forward(model, tokens, mode="reference")
    for mode in MODES[1:]:
        torch_ops.stats(reset=True)
        out = forward(model, tokens, mode=mode)
        st = torch_ops.stats()
        e = rel(out, ref32)
        passed = e <= 1e-4 and (mode.startswith("reference") or st["reference"] == 0)
        ok &= passed
        results["f32"][mode] = {"rel_err_vs_reference": e, "kernel_calls": st["kernel"],
                                "reference_calls": st["reference"], "pass": passed}
        print("f32  %-23s rel err vs pure PyTorch f32 %.2e  kernels %3d  %s"
              % (mode, e, st["kernel"], "PASS" if passed else "FAIL"), flush=True)
    model = model.to(torch.bfloat16)
    ref16 = forward(model, tokens, mode="reference")
    noise = rel(ref16, ref32)
    results["bf16"]["noise_floor"] = noise
    results["bf16"]["reference_argmax_agree_vs_f32"] = argmax_agree(ref16, ref32)
    print("bf16 noise floor: pure PyTorch bf16 vs f32 %.2e (argmax agree %.3f)"
          % (noise, argmax_agree(ref16, ref32)), flush=True)
    outs = {}
    for mode in MODES[1:]:
        torch_ops.stats(reset=True)
        out = outs[mode] = forward(model, tokens, mode=mode)
        st = torch_ops.stats()
        e16, e32 = rel(out, ref16), rel(out, ref32)
        passed = (e16 <= max(2e-2, 1.5 * noise) and e32 <= 1.25 * noise + 1e-3
                  and (mode.startswith("reference") or st["reference"] == 0))
        ok &= passed
        results["bf16"][mode] = {
            "rel_err_vs_reference_bf16": e16, "rel_err_vs_reference_f32": e32,
            "max_abs_diff_vs_reference_bf16": (out.float() - ref16.float()).abs().max().item(),
            "argmax_agree_vs_reference_bf16": argmax_agree(out, ref16),
            "kernel_calls": st["kernel"], "pass": passed}
        print("bf16 %-23s vs pure PyTorch bf16 %.2e (argmax agree %.3f), vs f32 %.2e  "
              "kernels %3d  %s" % (mode, e16, argmax_agree(out, ref16), e32, st["kernel"],
                                   "PASS" if passed else "FAIL"), flush=True)
    # The fused norm against the unfused compiled model (same kernels up to
    # the norm, which reads the same stored h): information, no bound.
    fused = "compiled-twophase-norm"
    if fused in outs:
        results["bf16"]["compiled-twophase-norm vs compiled-twophase"] = {
            "rel_err": rel(outs[fused], outs["compiled-twophase"]),
            "argmax_agree": argmax_agree(outs[fused], outs["compiled-twophase"])}
        print("bf16 compiled-twophase-norm vs compiled-twophase: rel err %.2e (argmax agree "
              "%.3f)" % (rel(outs[fused], outs["compiled-twophase"]),
                         argmax_agree(outs[fused], outs["compiled-twophase"])), flush=True)
    # Per op inside the model: every AttnRes op of the pure PyTorch bf16 run,
    # run compiled on the same inputs (no propagation of rounding through the
    # network): bf16 tolerance 1e-2 per op, as in the op tests.
    same_as = {"probe": "reference", "probe-twophase": "reference-twophase",
               "probe-twophase-norm": "reference-twophase-norm"}
    outs["reference"] = ref16
    for mode in ("probe", "probe-twophase", "probe-twophase-norm"):
        model.probe_log = []
        torch_ops.stats(reset=True)
        out = forward(model, tokens, mode=mode)
        log = model.probe_log
        worst = max(e for _, _, e in log) if log else float("inf")
        passed = bool(log) and worst <= 1e-2 and torch_ops.stats()["reference"] == 0
        ok &= passed
        results["bf16"]["per-op " + mode] = {"ops_compared": len(log), "max_rel_err": worst,
                                             "ops": sorted({op for op, _, _ in log}),
                                             "same_logits_as_reference": bool(
                                                 torch.equal(out, outs[same_as[mode]])),
                                             "pass": passed}
        print("bf16 per-op %-19s %d outputs compared, worst rel err %.2e  %s" % (
            mode, len(log), worst, "PASS" if passed else "FAIL"), flush=True)
    for mode in (("compiled-twophase", "compiled-twophase-norm") if args.compile else ()):
        key = "torch.compile " + mode
        try:
            torch._dynamo.reset()
            model.residual, model.attnres = "attnres", mode
            compiled = torch.compile(model)
            t0 = time.time()
            with no_grad():
                out = compiled(tokens)
            sync()
            took = time.time() - t0
            torch_ops.stats(reset=True)
            with no_grad():
                out = compiled(tokens)
            sync()
            st = torch_ops.stats()
            e = rel(out, outs[mode])
            e16 = rel(out, ref16)
            passed = e16 <= max(2e-2, 1.5 * noise) and st["kernel"] > 0
            ok &= passed
            results["bf16"][key] = {
                "rel_err_vs_eager": e, "rel_err_vs_reference_bf16": e16,
                "kernel_calls": st["kernel"], "compile_s": took, "pass": passed}
            print("bf16 torch.compile(%s): vs eager %.2e, vs pure PyTorch bf16 "
                  "%.2e, kernels %d, first call %.1f s  %s"
                  % (mode, e, e16, st["kernel"], took, "PASS" if passed else "FAIL"), flush=True)
        except Exception as ex:  # noqa: BLE001
            ok = False
            results["bf16"][key] = {"error": repr(ex)[:2000]}
            print("bf16 torch.compile(%s): FAILED %r" % (mode, ex), flush=True)
    results["pass"] = ok
    print("e2e check: %s" % ("PASS" if ok else "FAIL"), flush=True)
    return results, ok


def overhead(args):
    cfg = large_config(args)
    t0 = time.time()
    model = build(cfg, DEVICE, torch.bfloat16, seed=0)
    sync()
    print("built the large model in %.1f s: %.2f B parameters" % (
        time.time() - t0, sum(p.numel() for p in model.parameters()) / 1e9), flush=True)
    gen = torch.Generator(device=DEVICE).manual_seed(8)
    tokens = torch.randint(0, cfg.vocab, (1, args.tokens), generator=gen, device=DEVICE)
    variants = [("standard", "standard", None)] + [("attnres " + m, "attnres", m)
                                                   for m in args.modes]
    first = {}
    for name, residual, mode in variants:
        for i in range(2):
            out = forward(model, tokens, residual, mode or "reference")
            if i == 0 and residual == "attnres":
                first[name] = out
        print("warm: %s" % name, flush=True)
    times = {name: [] for name, _, _ in variants}
    # Each round runs the variants in a rotated order, and each timed forward
    # right after an untimed one of the same variant. In a fixed order the
    # standard model always ran first, after the reference models (which draw
    # less power), at a higher SM clock than the compiled models after it:
    # run 31's profiles read 1968 MHz for that first standard forward and
    # about 1600 MHz for every later one, standard included.
    clocks = ClockSampler() if DEVICE == "cuda" else None
    windows = {name: [] for name, _, _ in variants}
    for r in range(args.rounds):
        k = r % len(variants)
        for name, residual, mode in variants[k:] + variants[:k]:
            model.residual, model.attnres = residual, mode or "reference"
            with no_grad():
                model(tokens)
            sync()
            w0 = time.time()
            with no_grad(), Timer(DEVICE) as t:
                model(tokens)
            windows[name].append((w0, time.time()))
            times[name].append(t.ms)
    # The mean SM clock during each variant's timed forwards: comparable
    # clocks are what makes the overheads comparable (run 31).
    clock = {}
    if clocks:
        for name, ws in windows.items():
            got = [c for c in (clocks.mean(a, b) for a, b in ws) if c]
            if got:
                clock[name] = sum(c[0] for c in got) / len(got)
        clocks.stop()
    def median(v):
        v = sorted(v)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    med = {k: median(v) for k, v in times.items()}
    base = med["standard"]
    rows = []
    for name, _, mode in variants:
        ov = (med[name] / base - 1) * 100
        paired = (median([t / s for t, s in zip(times[name], times["standard"])]) - 1) * 100
        rows.append({"variant": name, "median_ms": med[name], "min_ms": min(times[name]),
                     "max_ms": max(times[name]), "overhead_pct": ov,
                     "overhead_paired_pct": paired, "runs": times[name],
                     "sm_clock_mhz": clock.get(name)})
        print("%-30s median %8.2f ms (min %8.2f, max %8.2f)  overhead %+6.2f%% (paired %+6.2f%%)%s"
              % (name, med[name], min(times[name]), max(times[name]), ov, paired,
                 "  SM clock %.0f MHz" % clock[name] if name in clock else ""), flush=True)
    ref = first.get("attnres reference")
    errs = {}
    if ref is not None:
        for name, out in first.items():
            if name != "attnres reference":
                errs[name] = rel(out, ref)
                print("logits %s vs attnres reference (bf16): rel err %.2e, argmax agree %.3f"
                      % (name, errs[name], argmax_agree(out, ref)), flush=True)
    return {"model": "32 layers, d=4096, 32 heads, SwiGLU 11008, vocab 32000, S=8 (8 blocks), "
                     "1x%d tokens, bf16" % args.tokens,
            "torch": torch.__version__,
            "rounds": args.rounds, "rows": rows, "logit_rel_err_vs_reference": errs}, True


def profile(args):
    """Where the time goes: one profiled forward of the large model per
    variant (torch.profiler, CUDA kernels grouped), and the host time to
    enqueue a forward (GPU-bound when well below the GPU time)."""
    cfg = large_config(args)
    model = build(cfg, DEVICE, torch.bfloat16, seed=0)
    gen = torch.Generator(device=DEVICE).manual_seed(8)
    tokens = torch.randint(0, cfg.vocab, (1, args.tokens), generator=gen, device=DEVICE)
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    def group(name):
        n = name.lower()
        if "merge" in n and re.search(r"_n(_nh)?\b", n):   # the merge with the fused norm
            return "attnres merge_norm"
        for key in ("aggregate", "block_score", "merge"):
            if key in n:
                return "attnres " + key
        if "memcpy" in n:
            return "memcpy"
        if "flash" in n or "fmha" in n or "attention" in n:
            return "attention"
        if "gemm" in n or "sm90" in n or "cutlass" in n or "nvjet" in n:
            return "gemm"
        if "rms" in n or "norm" in n:
            return "rmsnorm"
        if "add" in n or "elementwise" in n or "vectorized" in n:
            return "elementwise"
        return "other"

    out = {}
    # The standard model once more at the end: the same GEMMs run 3-12% slower
    # in the attnres profiles than in the standard one before them (runs 5-7,
    # 29); a second standard pass tells drift (clocks, temperature) from a
    # property of the attnres model, and so does the SM clock sampled during
    # each profiled forward.
    variants = [("standard", "standard", "reference")] + [
        ("attnres " + m, "attnres", m) for m in args.modes] + [
        ("standard again", "standard", "reference")]
    clocks = ClockSampler() if DEVICE == "cuda" else None
    for name, residual, mode in variants:
        forward(model, tokens, residual, mode)
        sync()
        t0 = time.perf_counter()
        with no_grad():
            model(tokens)
        host_ms = (time.perf_counter() - t0) * 1e3
        sync()
        acts = [ProfilerActivity.CUDA if DEVICE == "cuda" else ProfilerActivity.CPU]
        window = time.time()
        with tprofile(activities=acts) as prof:
            with no_grad():
                model(tokens)
            sync()
        clock = clocks.mean(window, time.time()) if clocks else None
        groups, kernels = {}, {}
        for e in prof.events():
            dev = str(getattr(e, "device_type", ""))
            if ("CUDA" in dev) != (DEVICE == "cuda"):
                continue
            us = e.time_range.elapsed_us()
            g = group(e.name)
            groups[g] = groups.get(g, 0.0) + us / 1e3
            k = kernels.setdefault(e.name[:90], [0, 0.0])
            k[0] += 1
            k[1] += us / 1e3
        total = sum(groups.values())
        print("%s: host enqueue %.1f ms, GPU kernels %.1f ms: %s" % (
            name, host_ms, total, ", ".join("%s %.2f" % kv for kv in sorted(
                groups.items(), key=lambda kv: -kv[1]))), flush=True)
        if clock:
            print("   SM clock %.0f MHz, power %.0f W (mean of %d samples)" % clock, flush=True)
        for kname, (cnt, ms) in sorted(kernels.items(), key=lambda kv: -kv[1][1])[:12]:
            print("   %8.2f ms %4d x  %s" % (ms, cnt, kname), flush=True)
        out[name] = {"host_enqueue_ms": host_ms, "gpu_kernel_ms": total, "groups": groups,
                     "sm_clock_mhz": clock[0] if clock else None,
                     "power_w": clock[1] if clock else None,
                     "top": sorted(([k, c, m] for k, (c, m) in kernels.items()),
                                   key=lambda r: -r[2])[:20]}
    if clocks:
        clocks.stop()
    return out, True


class ClockSampler:
    """SM clock and power of GPU 0 every 20 ms from `nvidia-smi -lms` in the
    background, averaged over a wall-clock window; inert when nvidia-smi is
    missing."""

    def __init__(self):
        import subprocess
        import threading
        self.samples = []
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "-i", "0", "--query-gpu=clocks.sm,power.draw",
                 "--format=csv,noheader,nounits", "-lms", "20"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self.proc = None
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                mhz, watts = (float(x) for x in line.split(","))
            except ValueError:
                continue
            self.samples.append((time.time(), mhz, watts))

    def mean(self, t0, t1):
        """(MHz, W, samples) over [t0, t1], or None without samples."""
        if not self.samples or self.samples[-1][0] < t1:
            time.sleep(0.05)  # the samples of the window's end still on their way
        win = [s for s in list(self.samples) if t0 <= s[0] <= t1]
        if not win:
            return None
        return (sum(s[1] for s in win) / len(win), sum(s[2] for s in win) / len(win),
                len(win))

    def stop(self):
        if self.proc:
            self.proc.terminate()


def train_mode(args):
    return train(args, large_config(args), DEVICE,
                 log=lambda m: print(m, flush=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["check", "overhead", "profile", "train"])
    ap.add_argument("--pack", help="kernel pack directory (needed on CUDA)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--compile", action="store_true", help="check: also torch.compile")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=8192)
    ap.add_argument("--modes", default="compiled-twophase-norm,compiled-twophase,compiled,"
                    "reference,reference-twophase")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--layers", type=int, default=0,
                    help="train: transformer layers (0: the large model's 32)")
    ap.add_argument("--checkpoint", default="sublayer", choices=["sublayer", "none"],
                    help="train: recompute each sublayer in the backward")
    ap.add_argument("--steps", type=int, default=11, help="train: timed steps per variant")
    ap.add_argument("--warmup", type=int, default=2, help="train: warm-up steps per variant")
    ap.add_argument("--lr", type=float, default=1e-5, help="train: AdamW learning rate")
    ap.add_argument("--variants", default=",".join(TRAIN_VARIANTS),
                    help="train: variants, of %s" % ",".join(TRAIN_VARIANTS + TRAIN_EXTRA_VARIANTS))
    ap.add_argument("--tiny", action="store_true",
                    help="small configurations (a smoke run of the script, e.g. on the CPU)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    args.modes = [m for m in args.modes.split(",") if m]
    args.variants = [v for v in args.variants.split(",") if v]
    for v in args.variants:
        if v not in TRAIN_VARIANTS + TRAIN_EXTRA_VARIANTS:
            ap.error("unknown variant %r (one of %s)"
                     % (v, ", ".join(TRAIN_VARIANTS + TRAIN_EXTRA_VARIANTS)))
    torch_ops.set_fallback("error")
    name = torch.cuda.get_device_name() if DEVICE == "cuda" else DEVICE
    if args.pack:
        pack = torch_ops.load_kernel_pack(args.pack)
        print("device %s, torch %s, kernel pack %s (%d kernels)" % (
            name, torch.__version__, args.pack, len(pack.kernels)), flush=True)
    else:  # CPU smoke runs: torch_ops runs the reference on CPU tensors
        print("device %s, torch %s, no kernel pack" % (name, torch.__version__), flush=True)
    results, ok = {"check": check, "overhead": overhead, "profile": profile,
                   "train": train_mode}[args.what](args)
    results["device"] = name
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
