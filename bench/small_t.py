#!/usr/bin/env python3
"""Small token counts (decode and small-batch serving; issue 16 item 4).

Runs on the GPU machine (torch + triton), with the libraries of bench/build.sh
(the benchmark modules take any number of tokens) and optionally the e2e kernel
pack (bench/e2e/build_pack.sh) for the attnres.torch_ops path:

    python3 -m bench.small_t --lib-dir .device/bench [--pack .device/e2e/pack]
        [--liger DIR] --json OUT.json --markdown OUT.md

For aggregation (N sources of T x D), phase 1 (block_score, S queries over n
summaries) and the merge with a partial sum, at T = bench.shapes.SMALL_T, it
checks every implementation against the float64 reference (attnres.reference)
and measures, for ours (the AOT library called through ctypes, and the
attnres.torch_ops custom op when a pack is given), Liger-Kernel's attn_res
forward (aggregation only: it has no two-phase form) and torch.compile of the
plain PyTorch reference (bench.baselines):

  graph us   per call, inside one CUDA graph of K back-to-back calls (launch
             overhead removed; the latency a captured decode step sees);
  eager us   per call, K calls issued from Python then one synchronize
             (whichever of host and device is slower);
  host us    the Python-side issue time per call of the same loop (before
             the synchronize).

torch_ops is the public function (attnres.torch_ops.aggregate, ...), which
calls the implementation directly outside torch.compile and autograd;
custom_op is torch.ops.attnres.* (the torch.library dispatch) on the same
inputs.

Inputs are small enough to stay in L2 between calls (at most 9 x 256 x 7168
bf16 = 33 MB); the floor column is a device-to-device copy of the same bytes
(read + write of the op's byte floor, attnres-semantics.md section 6) timed the
same way, in the same run.
"""

import argparse
import importlib
import json
import math
import os
import sys
import time
import traceback

import torch

from attnres import reference
from attnres.aot import AotLibrary
from attnres.reference import TOLERANCE, rel_error
from bench.baselines import aggregate_plain, merge_plain, score_plain
from bench.shapes import (AGGREGATE_BENCH, EPSILON, SCORE_BENCH, SMALL_T, SMALL_T_AGGREGATE,
                          SMALL_T_MERGE, SMALL_T_SCORE, agg_name, merge_name, score_name)

K = 20           # calls per graph / per eager loop
REPLAYS = 50     # graph replays timed


def log(msg=""):
    print(msg, flush=True)


def graph_us(fn, stream_hook=None):
    """Per-call microseconds of `fn` captured K times in one CUDA graph."""
    fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):   # warm on the capture stream (allocator, lazy loads)
            if stream_hook:
                stream_hook(s)
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    with torch.cuda.graph(g, stream=s):
        if stream_hook:
            stream_hook(torch.cuda.current_stream())
        for _ in range(K):
            fn()
    if stream_hook:
        stream_hook(torch.cuda.current_stream())
    g.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = math.inf
    for _ in range(3):
        start.record()
        for _ in range(REPLAYS):
            g.replay()
        end.record()
        torch.cuda.synchronize()
        best = min(best, start.elapsed_time(end) * 1e3 / (REPLAYS * K))
    return best


def eager_us(fn):
    """(per-call wall us, per-call host issue us) of K calls then one sync."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    walls, hosts = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(K):
            fn()
        t1 = time.perf_counter()
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        hosts.append((t1 - t0) * 1e6 / K)
        walls.append((t2 - t0) * 1e6 / K)
    return sorted(walls)[len(walls) // 2], sorted(hosts)[len(hosts) // 2]


def measure(row, key, fn, check=None, stream_hook=None):
    """Checks (check() -> rel. error or None) then times fn into row[key]."""
    entry = {}
    try:
        if check is not None:
            err = check()
            entry["rel_error"] = err
            entry["ok"] = err is not None and err <= TOLERANCE["bf16"]
            if not entry["ok"]:
                log("  %s: check FAILED (rel. error %s)" % (key, err))
        entry["eager_us"], entry["host_us"] = eager_us(fn)
        try:
            entry["graph_us"] = graph_us(fn, stream_hook)
        except Exception as e:
            entry["graph_error"] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200])
            torch.cuda.synchronize()
        log("  %-12s graph %s us, eager %.1f us, host %.1f us%s" % (
            key, "%.2f" % entry["graph_us"] if "graph_us" in entry else "-",
            entry["eager_us"], entry["host_us"],
            "" if "rel_error" not in entry else ", rel. error %.1e" % entry["rel_error"]))
    except Exception:
        entry["exception"] = traceback.format_exc()[-2000:]
        log(entry["exception"])
    row[key] = entry


def rnd(shape, scale=1.0, dtype=torch.bfloat16):
    return (torch.randn(*shape, device="cuda") * scale).to(dtype)


def copy_floor(row, nbytes):
    src = torch.empty(nbytes // 2, device="cuda", dtype=torch.bfloat16).normal_()
    dst = torch.empty_like(src)
    # read + write = floor bytes: copy half of them
    half = src[: max(1, nbytes // 4)]
    out = dst[: half.numel()]
    measure(row, "copy", lambda: out.copy_(half))


def compiled(fn):
    """torch.compile of a plain reference, one per op and shape family:
    dynamic token count, so the T sweep does not recompile at every T."""
    return torch.compile(fn, dynamic=True)


def load_liger(wanted):
    """Liger-Kernel's attn_res ops, when its package is on PYTHONPATH (the
    device script puts the peer's checkout there)."""
    if not wanted:
        return None
    try:
        return importlib.import_module("liger_kernel.ops.attn_res")
    except Exception as e:
        log("Liger-Kernel not importable: %s" % e)
        return None


def measure_ours(row, lib, call, checked):
    """Times the bound AOT call `call` of `lib` ("ours"); its check fills
    each output of `checked` ([(output, reference)]) with NaN, runs the call
    and returns the largest relative error. The row's floor is the copy of
    its floor_bytes."""
    def check_ours():
        for out, _ in checked:
            out.fill_(float("nan"))
        call()
        torch.cuda.synchronize()
        lib.check()
        return max(rel_error(out, ref) for out, ref in checked)
    copy_floor(row, row["floor_bytes"])
    measure(row, "ours", call, check_ours, stream_hook=lib.use_stream)
    lib.use_stream(torch.cuda.current_stream())


def bench_aggregate(args, lib_dir, pack_ops, liger, rows):
    for (n, d) in SMALL_T_AGGREGATE:
        big = [x for x in AGGREGATE_BENCH if x[0] == n and x[2] == d][0]
        fname = agg_name("bf16", n, (big[1],), d)
        lib = AotLibrary(os.path.join(lib_dir, "libbench_%s.so" % fname))
        lib.use_stream(torch.cuda.current_stream())
        cf = compiled(aggregate_plain)
        for t in SMALL_T:
            row = {"op": "aggregate", "N": n, "D": d, "T": t,
                   "floor_bytes": 2 * t * d * (n + 1)}
            log("aggregate N=%d D=%d T=%d" % (n, d, t))
            V = torch.stack([rnd((t, d), s) for s in torch.empty(n).uniform_(0.5, 2).tolist()])
            w, g = rnd((d,), 2 / math.sqrt(d)), (1 + 0.1 * torch.randn(d, device="cuda")).to(torch.bfloat16)
            srcs = [V[i] for i in range(n)]
            ref = reference.aggregate(w, g, srcs, EPSILON)
            out = torch.empty(t, d, device="cuda", dtype=torch.bfloat16)
            call = lib.bind(fname, w, g, *srcs, out)

            measure_ours(row, lib, call, [(out, ref)])
            if pack_ops is not None:
                measure(row, "torch_ops", lambda: pack_ops.aggregate(w, g, srcs, EPSILON),
                        lambda: rel_error(pack_ops.aggregate(w, g, srcs, EPSILON), ref))
                if pack_ops.custom_ops_available():
                    op = torch.ops.attnres.aggregate
                    measure(row, "custom_op", lambda: op(w, g, srcs, EPSILON),
                            lambda: rel_error(op(w, g, srcs, EPSILON), ref))
            if liger is not None:
                lf = lambda: liger.attn_res_forward(V, w, g, EPSILON)[0]
                measure(row, "liger", lf, lambda: rel_error(lf(), ref))
            measure(row, "compile", lambda: cf(V, w, g, EPSILON),
                    lambda: rel_error(cf(V, w, g, EPSILON), ref))
            rows.append(row)


def bench_score(args, lib_dir, pack_ops, rows):
    for (n, S, d) in SMALL_T_SCORE:
        big = [x for x in SCORE_BENCH if x[0] == n and x[1] == S and x[3] == d][0]
        fname = score_name("bf16", n, S, (big[2],), d)
        lib = AotLibrary(os.path.join(lib_dir, "libbench_%s.so" % fname))
        lib.use_stream(torch.cuda.current_stream())
        cf = compiled(score_plain)
        for t in SMALL_T:
            row = {"op": "block_score", "n": n, "S": S, "D": d, "T": t,
                   "floor_bytes": 2 * t * d * (n + S) + 4 * t * S}
            log("block_score n=%d S=%d D=%d T=%d" % (n, S, d, t))
            B = torch.stack([rnd((t, d), s) for s in torch.empty(n).uniform_(0.5, 2).tolist()])
            W = rnd((S, d), 2 / math.sqrt(d))
            G = (1 + 0.1 * torch.randn(S, d, device="cuda")).to(torch.bfloat16)
            ref_out, ref_lse = reference.block_score(W, G, [B[i] for i in range(n)], EPSILON)
            out = torch.empty(S, t, d, device="cuda", dtype=torch.bfloat16)
            lse = torch.empty(S, t, device="cuda", dtype=torch.float32)
            call = lib.bind(fname, W, G, *[B[i] for i in range(n)], out, lse)

            measure_ours(row, lib, call, [(out, ref_out), (lse, ref_lse)])
            srcs = [B[i] for i in range(n)]
            if pack_ops is not None:
                measure(row, "torch_ops", lambda: pack_ops.block_score(W, G, srcs, EPSILON),
                        lambda: rel_error(pack_ops.block_score(W, G, srcs, EPSILON)[0], ref_out))
            measure(row, "compile", lambda: cf(B, W, G, EPSILON),
                    lambda: rel_error(cf(B, W, G, EPSILON)[0], ref_out))
            rows.append(row)


def bench_merge(args, lib_dir, pack_ops, rows):
    for d in SMALL_T_MERGE:
        fname = merge_name("bf16", d)
        path = os.path.join(lib_dir, "libbench_%s.so" % fname)
        if not os.path.exists(path):
            log("merge D=%d: %s not built" % (d, path))
            continue
        lib = AotLibrary(path)
        lib.use_stream(torch.cuda.current_stream())
        cf = compiled(merge_plain)
        for t in SMALL_T:
            # o, u, p read; h, p' written; lse read
            row = {"op": "merge", "D": d, "T": t, "floor_bytes": 2 * t * d * 5 + 4 * t}
            log("merge D=%d T=%d" % (d, t))
            o, u, p = rnd((t, d)), rnd((t, d)), rnd((t, d), 1.5)
            lse = torch.randn(t, device="cuda") * 2
            w, g = rnd((d,), 2 / math.sqrt(d)), (1 + 0.1 * torch.randn(d, device="cuda")).to(torch.bfloat16)
            ref_h, ref_p = reference.merge(o, lse, w, g, u, p, EPSILON)
            h = torch.empty(t, d, device="cuda", dtype=torch.bfloat16)
            p2 = torch.empty_like(h)
            call = lib.bind(fname, o, lse, w, g, u, p, h, p2)

            measure_ours(row, lib, call, [(h, ref_h), (p2, ref_p)])
            if pack_ops is not None:
                measure(row, "torch_ops", lambda: pack_ops.merge(o, lse, w, g, u, p, EPSILON),
                        lambda: rel_error(pack_ops.merge(o, lse, w, g, u, p, EPSILON)[0], ref_h))
                if pack_ops.custom_ops_available():
                    op = torch.ops.attnres.merge
                    measure(row, "custom_op", lambda: op(o, lse, w, g, u, p, EPSILON),
                            lambda: rel_error(op(o, lse, w, g, u, p, EPSILON)[0], ref_h))
            measure(row, "compile", lambda: cf(o, lse, w, g, u, p, EPSILON),
                    lambda: rel_error(cf(o, lse, w, g, u, p, EPSILON)[0], ref_h))
            rows.append(row)


COLUMNS = ["copy", "ours", "torch_ops", "custom_op", "liger", "compile"]


def fmt(e, k):
    if not e:
        return "-"
    if k in e:
        return "%.2f" % e[k]
    if "graph_error" in e and k == "graph_us":
        return "no capture"
    return "fail" if "exception" in e else "-"


def markdown(rows, device):
    lines = ["Card: **%s**; per-call microseconds (graph: %d calls captured in one CUDA graph; "
             "eager: issued from Python, then one sync; host: Python issue time)." % (device, K), ""]
    for op in ("aggregate", "block_score", "merge"):
        sel = [r for r in rows if r["op"] == op]
        if not sel:
            continue
        lines += ["### %s" % op, "",
                  "| shape | T | copy graph | ours graph | ours eager | ours host | torch_ops graph | "
                  "torch_ops eager | torch_ops host | custom op eager | custom op host | Liger graph | Liger eager | compile graph | compile eager | "
                  "x Liger (graph) | x compile (graph) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sel:
            shape = ("N=%d D=%d" % (r["N"], r["D"]) if op == "aggregate" else
                     "n=%d S=%d D=%d" % (r["n"], r["S"], r["D"]) if op == "block_score" else
                     "D=%d" % r["D"])
            o = r.get("ours", {})

            def ratio(k):
                a, b = o.get("graph_us"), r.get(k, {}).get("graph_us")
                return "%.2f" % (b / a) if a and b else "-"
            lines.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                shape, r["T"], fmt(r.get("copy"), "graph_us"), fmt(o, "graph_us"),
                fmt(o, "eager_us"), fmt(o, "host_us"),
                fmt(r.get("torch_ops"), "graph_us"), fmt(r.get("torch_ops"), "eager_us"),
                fmt(r.get("torch_ops"), "host_us"), fmt(r.get("custom_op"), "eager_us"),
                fmt(r.get("custom_op"), "host_us"),
                fmt(r.get("liger"), "graph_us"), fmt(r.get("liger"), "eager_us"),
                fmt(r.get("compile"), "graph_us"), fmt(r.get("compile"), "eager_us"),
                ratio("liger"), ratio("compile")))
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib-dir", default=".device/bench")
    ap.add_argument("--pack", help="kernel pack dir for attnres.torch_ops")
    ap.add_argument("--liger", action="store_true",
                    help="also time Liger-Kernel's attn_res (liger_kernel on PYTHONPATH)")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    torch.manual_seed(int.from_bytes(os.urandom(4), "little"))
    device = torch.cuda.get_device_name()
    log("device: %s" % device)
    pack_ops = None
    if args.pack:
        from attnres import torch_ops
        torch_ops.load_kernel_pack(args.pack)
        pack_ops = torch_ops
    liger = load_liger(args.liger)
    rows = []
    for fn in (lambda: bench_aggregate(args, args.lib_dir, pack_ops, liger, rows),
               lambda: bench_score(args, args.lib_dir, pack_ops, rows),
               lambda: bench_merge(args, args.lib_dir, pack_ops, rows)):
        try:
            fn()
        except Exception:
            log(traceback.format_exc())
    md = markdown(rows, device)
    log(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device, "K": K, "rows": rows}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md + "\n")
    bad = [r for r in rows for k in COLUMNS if r.get(k, {}).get("ok") is False]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
