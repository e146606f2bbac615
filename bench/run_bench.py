#!/usr/bin/env python3
"""The attnres GPU benchmark (runs on the GPU machine; needs torch + triton).

For every shape of bench/shapes.py it
  1. checks the AOT-compiled kernel (bench/build.sh) against a float64
     reference on fresh random inputs, with NaN-poisoned outputs (every
     element must be written) and the relative error ||out-ref||/||ref||
     within bf16 1e-2 / f16 5e-3 / f32 1e-5;
  2. times it on torch's current stream (attnresRuntimeSetStream: calls
     enqueue without synchronizing) with triton.testing.do_bench, median of
     device-event timings, L2 flushed before every run by do_bench and inputs
     rotated among several copies when one set is smaller than 4x L2;
  3. times the plain PyTorch reference (baselines.md) eagerly and under
     torch.compile on the same inputs;
and reports time, effective TB/s over the byte floor of attnres-semantics.md
section 6, the percentage of the device-to-device copy bandwidth measured in
the same run, and the speed-ups over eager and torch.compile.
A correctness sweep runs the sweep_<dtype> libraries (odd D, small T, f32,
f16 and bf16). Libraries that are missing are reported, and the baselines
are still measured.
"""

import argparse
import json
import math
import os
import sys
import time
import traceback

import torch
import triton.testing

from attnres.aot import AotLibrary
from attnres import reference
from attnres.reference import TOLERANCE, rel_error
from bench.baselines import TORCH_DTYPE, aggregate_plain, score_plain
from bench.shapes import (AGGREGATE_BENCH, AGGREGATE_SWEEP, EPSILON, SCORE_BENCH,
                          SCORE_SWEEP, SWEEP_DTYPES, agg_name, score_name)

T0 = time.time()
LOG = []


def log(msg=""):
    print(msg, flush=True)
    LOG.append(msg)


def elapsed():
    return time.time() - T0


def bench_ms(fn, rep=200):
    return triton.testing.do_bench(fn, warmup=25, rep=rep, return_mode="median")


def seed():
    s = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(s)
    return s


# --- inputs ------------------------------------------------------------------

def random_sources(n, tokens, d, dtype):
    """n sources [n, *tokens, d] with a different scale per source."""
    scale = torch.empty(n, device="cuda").uniform_(0.5, 2.0)
    v = torch.randn(n, *tokens, d, device="cuda") * scale.view(n, *([1] * (len(tokens) + 1)))
    return v.to(dtype)


def random_query(shape, d, dtype):
    w = torch.randn(*shape, d, device="cuda") * (2.0 / math.sqrt(d))
    g = 1.0 + 0.1 * torch.randn(*shape, d, device="cuda")
    return w.to(dtype), g.to(dtype)


def poison(t):
    t.fill_(float("nan"))


def all_written(t):
    return bool(torch.isfinite(t).all().item())


# --- libraries ---------------------------------------------------------------

LIBS = {}


def load_lib(lib_dir, name, stream):
    if name in LIBS:
        return LIBS[name]
    path = os.path.join(lib_dir, "lib%s.so" % name)
    lib = None
    if os.path.exists(path):
        try:
            lib = AotLibrary(path)
            lib.use_stream(stream)
        except Exception as e:  # a bad library must not stop the baselines
            log("  cannot load %s: %s" % (path, e))
            lib = None
    LIBS[name] = lib
    return lib


def run_checked(lib, call):
    call()
    torch.cuda.synchronize()
    err = lib.error()
    if err:
        lib.clear_error()
    return err


# --- aggregation -------------------------------------------------------------

def check_aggregate(lib, fname, n, tokens, d, dt):
    """Fresh random inputs, poisoned output, float64 reference."""
    dtype = TORCH_DTYPE[dt]
    s = seed()
    V = random_sources(n, tokens, d, dtype)
    w, g = random_query((), d, dtype)
    out = torch.empty(*tokens, d, device="cuda", dtype=dtype)
    poison(out)
    err = run_checked(lib, lib.bind(fname, w, g, *[V[i] for i in range(n)], out))
    written = all_written(out)
    ref = reference.aggregate(w, g, [V[i] for i in range(n)], EPSILON)
    rel = rel_error(out, ref)
    ok = err is None and written and rel <= TOLERANCE[dt]
    return {"ok": ok, "rel_error": rel, "tolerance": TOLERANCE[dt], "all_written": written,
            "runtime_error": err, "seed": s}


def check_score(lib, fname, n, S, tokens, d, dt):
    dtype = TORCH_DTYPE[dt]
    s = seed()
    B = random_sources(n, tokens, d, dtype)
    W, G = random_query((S,), d, dtype)
    out = torch.empty(S, *tokens, d, device="cuda", dtype=dtype)
    lse = torch.empty(S, *tokens, device="cuda", dtype=torch.float32)
    poison(out)
    poison(lse)
    err = run_checked(lib, lib.bind(fname, W, G, *[B[i] for i in range(n)], out, lse))
    written = all_written(out) and all_written(lse)
    ref_out, ref_lse = reference.block_score(W, G, [B[i] for i in range(n)], EPSILON)
    rel = rel_error(out, ref_out)
    rel_lse = rel_error(lse, ref_lse)
    ok = (err is None and written and rel <= TOLERANCE[dt] and rel_lse <= TOLERANCE["f32"])
    return {"ok": ok, "rel_error": rel, "rel_error_lse": rel_lse, "tolerance": TOLERANCE[dt],
            "tolerance_lse": TOLERANCE["f32"], "all_written": written, "runtime_error": err,
            "seed": s}


def rotation_count(bytes_per_call, l2_bytes):
    return max(1, math.ceil(4 * l2_bytes / bytes_per_call))


def time_rotating(make_call, sets):
    """do_bench over calls that cycle through `sets` bound input sets."""
    calls = [make_call(i) for i in range(sets)]
    state = [0]

    def step():
        calls[state[0] % sets]()
        state[0] += 1
    return bench_ms(step)


def compiled(fn):
    torch._dynamo.reset()
    return torch.compile(fn, dynamic=False)


def bench_row(args, stream, l2, row, lib_name, fname, check, inputs, outputs, baseline,
              peer=None):
    """One benchmark row: the kernel of `lib_name` checked (`check(lib)`) and
    timed over rotating input sets (`inputs(i)`: the bound arguments of set
    i, outputs from `outputs()`), then the PyTorch `baseline(set 0)` eagerly
    and under torch.compile."""
    sets = rotation_count(row["floor_bytes"], l2)
    data = [inputs(i) for i in range(sets)]
    lib = None if args.baselines_only else load_lib(args.lib_dir, lib_name, stream)
    if lib is not None:
        try:
            row["check"] = check(lib)
            log("  check: %s" % row["check"])
            outs = [outputs() for _ in range(sets)]

            def make(i):
                return lib.bind(fname, *data[i]["args"], *outs[i])
            if row["check"]["ok"] or args.time_failing:
                row["ms"] = time_rotating(make, sets)
                row["ms_repeat"] = time_rotating(make, sets)
                row["runtime_error"] = lib.error()
                row["TBps"] = row["floor_bytes"] / (row["ms"] * 1e-3) / 1e12
                row["pct_copy"] = 100.0 * row["floor_bytes"] / (row["ms"] * 1e-3) / row["copy_bw"]
                log("  kernel: %.4f ms (repeat %.4f), %.2f TB/s, %.1f%% of copy"
                    % (row["ms"], row["ms_repeat"], row["TBps"], row["pct_copy"]))
            del outs
        except Exception:
            row["kernel_exception"] = traceback.format_exc()
            log(row["kernel_exception"])
    else:
        row["kernel"] = "not built" if not args.baselines_only else "skipped"
        log("  kernel: %s" % row["kernel"])
    base_args = data[0]["baseline"]
    if not args.no_eager:
        row["eager_ms"] = bench_ms(lambda: baseline(*base_args, EPSILON))
        log("  eager: %.3f ms" % row["eager_ms"])
    if not args.no_compile and elapsed() < args.compile_deadline:
        try:
            cf = compiled(baseline)
            t0 = time.time()
            cf(*base_args, EPSILON)
            torch.cuda.synchronize()
            row["compile_s"] = time.time() - t0
            row["compile_ms"] = bench_ms(lambda: cf(*base_args, EPSILON))
            log("  torch.compile: %.3f ms (compiled in %.1f s)" % (row["compile_ms"], row["compile_s"]))
        except Exception:
            row["compile_exception"] = traceback.format_exc()
            log(row["compile_exception"])
    elif not args.no_compile:
        row["compile_skipped"] = "time budget"
        log("  torch.compile: skipped (time budget)")
    if peer is not None:
        peer(row, base_args)
    del row["copy_bw"]
    finish_row(row)
    data.clear()  # the inputs' device memory, before the next row
    base_args = None
    torch.cuda.empty_cache()
    return row


def liger_aggregate(args):
    """Liger-Kernel's attn_res forward (the peer: its package on PYTHONPATH
    when --liger), timed like the baselines on the same inputs and checked
    against the float64 reference. It also writes its saved statistics
    (alpha and rstd, T x N f32 each) for its backward."""
    if not args.liger:
        return None
    try:
        from liger_kernel.ops import attn_res as liger
    except Exception as e:
        log("Liger-Kernel not importable: %s" % e)
        return None

    def peer(row, base):
        V, w, g = base
        try:
            out = liger.attn_res_forward(V, w, g, EPSILON)[0]
            ref = reference.aggregate(w, g, [V[i] for i in range(V.shape[0])], EPSILON)
            row["liger_rel_error"] = rel_error(out, ref)
            row["liger_ms"] = bench_ms(lambda: liger.attn_res_forward(V, w, g, EPSILON))
            log("  Liger-Kernel attn_res forward: %.4f ms (rel. error %.1e)"
                % (row["liger_ms"], row["liger_rel_error"]))
        except Exception:
            row["liger_exception"] = traceback.format_exc()[-2000:]
            log(row["liger_exception"])
    return peer


def bench_aggregate(args, stream, copy_bw, l2):
    rows = []
    peer = liger_aggregate(args)
    for (n, t, d) in AGGREGATE_BENCH:
        name = agg_name("bf16", n, (t,), d)
        floor_bytes = 2 * t * d * (n + 1)
        row = {"op": "aggregate", "N": n, "T": t, "D": d, "floor_bytes": floor_bytes,
               "floor_ms": floor_bytes / copy_bw * 1e3, "copy_bw": copy_bw}
        log("aggregate N=%d T=%d D=%d (floor %.3f ms at the measured copy bandwidth)"
            % (n, t, d, row["floor_ms"]))

        def inputs(i):
            V = random_sources(n, (t,), d, torch.bfloat16)
            w, g = random_query((), d, torch.bfloat16)
            return {"args": [w, g] + [V[j] for j in range(n)], "baseline": (V, w, g)}
        rows.append(bench_row(
            args, stream, l2, row, "bench_" + name, name,
            lambda lib: check_aggregate(lib, name, n, (t,), d, "bf16"), inputs,
            lambda: [torch.empty(t, d, device="cuda", dtype=torch.bfloat16)], aggregate_plain,
            peer))
    return rows


def bench_score(args, stream, copy_bw, l2):
    rows = []
    for (n, S, t, d) in SCORE_BENCH:
        name = score_name("bf16", n, S, (t,), d)
        floor_bytes = 2 * t * d * (n + S) + 4 * t * S
        row = {"op": "block_score", "n": n, "S": S, "T": t, "D": d, "floor_bytes": floor_bytes,
               "floor_ms": floor_bytes / copy_bw * 1e3, "copy_bw": copy_bw}
        log("block_score n=%d S=%d T=%d D=%d (floor %.3f ms)" % (n, S, t, d, row["floor_ms"]))

        def inputs(i):
            B = random_sources(n, (t,), d, torch.bfloat16)
            W, G = random_query((S,), d, torch.bfloat16)
            return {"args": [W, G] + [B[j] for j in range(n)], "baseline": (B, W, G)}
        rows.append(bench_row(
            args, stream, l2, row, "bench_" + name, name,
            lambda lib: check_score(lib, name, n, S, (t,), d, "bf16"), inputs,
            lambda: [torch.empty(S, t, d, device="cuda", dtype=torch.bfloat16),
                     torch.empty(S, t, device="cuda", dtype=torch.float32)], score_plain))
    return rows


def finish_row(row):
    for base in ("eager", "compile", "liger"):
        key = base + "_ms"
        if key in row:
            row[base + "_TBps"] = row["floor_bytes"] / (row[key] * 1e-3) / 1e12
            if "ms" in row:
                row["speedup_vs_" + base] = row[key] / row["ms"]


# --- sweep -------------------------------------------------------------------

def sweep(args, stream):
    results = []
    for dt in SWEEP_DTYPES:
        lib = load_lib(args.lib_dir, "sweep_" + dt, stream)
        if lib is None:
            log("sweep %s: library not built" % dt)
            results.append({"dtype": dt, "status": "not built"})
            continue
        for (n, tokens, d) in AGGREGATE_SWEEP:
            name = agg_name(dt, n, tokens, d)
            for draw in range(2):
                try:
                    r = check_aggregate(lib, name, n, tokens, d, dt)
                except Exception as e:
                    r = {"ok": False, "exception": repr(e)}
                r.update({"name": name, "draw": draw, "dtype": dt})
                results.append(r)
                log("sweep %-34s draw %d: %s rel %.2e" % (name, draw, "PASS" if r["ok"] else "FAIL",
                                                          r.get("rel_error", float("nan"))))
        for (n, S, tokens, d) in SCORE_SWEEP:
            name = score_name(dt, n, S, tokens, d)
            for draw in range(2):
                try:
                    r = check_score(lib, name, n, S, tokens, d, dt)
                except Exception as e:
                    r = {"ok": False, "exception": repr(e)}
                r.update({"name": name, "draw": draw, "dtype": dt})
                results.append(r)
                log("sweep %-34s draw %d: %s rel %.2e lse %.2e"
                    % (name, draw, "PASS" if r["ok"] else "FAIL", r.get("rel_error", float("nan")),
                       r.get("rel_error_lse", float("nan"))))
    return results


# --- report ------------------------------------------------------------------

def fmt(v, spec="%.3f"):
    return "-" if v is None else spec % v


def table(rows, copy_bw):
    lines = []
    lines.append("| op | shape | floor ms | kernel ms | TB/s | % copy | check (rel err) | eager ms | "
                 "compile ms | x eager | x compile | Liger ms | x Liger |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["op"] == "aggregate":
            shape = "N=%d T=%d D=%d" % (r["N"], r["T"], r["D"])
        else:
            shape = "n=%d S=%d T=%d D=%d" % (r["n"], r["S"], r["T"], r["D"])
        c = r.get("check")
        check = "-" if not c else ("%s (%.1e)" % ("ok" if c["ok"] else "FAIL", c["rel_error"]))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["op"], shape, fmt(r["floor_ms"]), fmt(r.get("ms"), "%.4f"), fmt(r.get("TBps"), "%.2f"),
            fmt(r.get("pct_copy"), "%.1f"), check, fmt(r.get("eager_ms")), fmt(r.get("compile_ms")),
            fmt(r.get("speedup_vs_eager"), "%.1f"), fmt(r.get("speedup_vs_compile"), "%.1f"),
            fmt(r.get("liger_ms"), "%.4f"), fmt(r.get("speedup_vs_liger"), "%.2f")))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib-dir", default=".device/bench")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--baselines-only", action="store_true")
    ap.add_argument("--no-eager", action="store_true")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-score", action="store_true")
    ap.add_argument("--no-aggregate", action="store_true")
    ap.add_argument("--time-failing", action="store_true", help="time kernels that failed the check")
    ap.add_argument("--liger", action="store_true",
                    help="time Liger-Kernel's attn_res forward beside ours (liger_kernel on PYTHONPATH)")
    ap.add_argument("--compile-deadline", type=float, default=1e9,
                    help="seconds after start past which torch.compile baselines are skipped")
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 1024 * 1024)
    info = {"device": torch.cuda.get_device_name(0), "sms": props.multi_processor_count,
            "l2_bytes": l2, "torch": torch.__version__, "triton": triton.__version__,
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    log("device: %(device)s, %(sms)d SMs, L2 %(l2_bytes)d B, torch %(torch)s, triton %(triton)s, "
        "%(date_utc)s" % info)
    stream = torch.cuda.current_stream()

    # Device-to-device copy bandwidth, bytes read + written, 2 GiB each way.
    x = torch.randn(1 << 30, device="cuda").to(torch.bfloat16)
    y = torch.empty_like(x)
    copy_ms = bench_ms(lambda: y.copy_(x))
    copy_bw = 2 * x.numel() * 2 / (copy_ms * 1e-3)
    log("copy: %.3f ms for 2 x %.2f GiB -> %.3f TB/s" % (copy_ms, x.numel() * 2 / 2**30, copy_bw / 1e12))
    del x, y
    torch.cuda.empty_cache()

    result = {"info": info, "copy_TBps": copy_bw / 1e12, "rows": [], "sweep": []}
    if not args.no_sweep and not args.baselines_only:
        result["sweep"] = sweep(args, stream)
    if not args.no_aggregate:
        result["rows"] += bench_aggregate(args, stream, copy_bw, l2)
    if not args.no_score:
        result["rows"] += bench_score(args, stream, copy_bw, l2)

    # Copy bandwidth again at the end: the spread of the ceiling.
    x = torch.randn(1 << 30, device="cuda").to(torch.bfloat16)
    y = torch.empty_like(x)
    copy_ms2 = bench_ms(lambda: y.copy_(x))
    result["copy_TBps_end"] = 2 * x.numel() * 2 / (copy_ms2 * 1e-3) / 1e12
    log("copy at the end: %.3f TB/s" % result["copy_TBps_end"])

    md = table(result["rows"], copy_bw)
    sweep_ok = sum(1 for r in result["sweep"] if r.get("ok"))
    sweep_n = sum(1 for r in result["sweep"] if "ok" in r)
    summary = ("%s; copy %.3f TB/s (start) / %.3f TB/s (end); sweep %d/%d passed; run took %.0f s"
               % (info["device"], result["copy_TBps"], result["copy_TBps_end"], sweep_ok, sweep_n, elapsed()))
    log("")
    log(summary)
    log(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(summary + "\n\n" + md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
