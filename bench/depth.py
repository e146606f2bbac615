#!/usr/bin/env python3
"""Compile time and peak memory against model depth (issue 14 item 3).

Generates the linalg residual model of utils/gen_detect_models.py with L
sublayers at feature size d and runs the CPU pipeline one stage per process

    Full form:  attnres-detect-residual-chains -> attnres-fuse-summaries
                -> attnres-lower-to-llvm
    Block form: attnres-detect-residual-chains -> attnres-blockify{block-size=S}
                -> attnres-fuse-summaries -> attnres-lower-to-llvm

so that each stage gets its own wall time and peak RSS (from wait4's rusage,
as /usr/bin/time -v reports it). The lowering stage is also run with
--mlir-timing and its most expensive passes are kept. Each stage runs under a
wall-clock timeout and an address-space limit so that a blow-up is recorded as
"killed" instead of taking the machine down.

This is a benchmark, not a test: run it by hand,

    python3 bench/depth.py --build build --layers 8 16 32 64 128 256 \
        --dims 256 4096 --out bench/results/depth

and it writes depth.json, depth.md (a table per form and d) and depth.svg
(CPU seconds and peak RSS of each stage against sublayers, log-log, one
panel per form and measure; drawn by hand because matplotlib is not
installed for /usr/bin/python3 here) into --out. `--plot-only` redraws
depth.md and depth.svg from an existing depth.json.
"""

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_stage(opt, src, dst, pipeline, timeout, mem_gb, timing=False):
    cmd = [opt, src, "--pass-pipeline=builtin.module(%s)" % pipeline, "-o",
           dst]
    if timing:
        cmd.append("--mlir-timing")
    limit = int(mem_gb * (1 << 30))

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=cap)
    try:
        _, err = proc.communicate(timeout=timeout)
        killed = None
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        killed = "timeout %ds" % timeout
    wall = time.monotonic() - start
    return proc.returncode, wall, err.decode(errors="replace"), killed


def measured(opt, src, dst, pipeline, timeout, mem_gb, timing=False):
    """Runs one stage in a forked child so that RUSAGE_CHILDREN of that child
    holds this stage's peak RSS alone."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        rc, wall, err, killed = run_stage(opt, src, dst, pipeline, timeout,
                                          mem_gb, timing)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        with os.fdopen(w, "w") as f:
            json.dump({"rc": rc, "seconds": wall,
                       "cpu_seconds": usage.ru_utime + usage.ru_stime,
                       "rss_mb": usage.ru_maxrss / 1024.0,
                       "stderr": err[-20000:], "killed": killed}, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = json.load(f)
    os.waitpid(pid, 0)
    return data


def top_passes(timing_text, n=6):
    rows = []
    for line in timing_text.splitlines():
        m = re.match(r"\s*([0-9.]+) \(\s*([0-9.]+)%\)\s+(\S.*)$", line)
        if m and m.group(3).strip() not in ("Total",):
            rows.append((float(m.group(1)), m.group(3).strip()))
    merged = {}
    for secs, name in rows:
        if name.startswith("'"):
            continue
        merged[name] = merged.get(name, 0.0) + secs
    return sorted(merged.items(), key=lambda kv: -kv[1])[:n]


def stages(form, block):
    s = [("detect", "attnres-detect-residual-chains")]
    if form == "block":
        s.append(("blockify", "attnres-blockify{block-size=%d}" % block))
    s.append(("fuse", "attnres-fuse-summaries"))
    s.append(("lower-to-llvm", "attnres-lower-to-llvm"))
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--layers", type=int, nargs="+",
                    default=[8, 16, 32, 64, 128, 256])
    ap.add_argument("--dims", type=int, nargs="+", default=[256, 4096])
    ap.add_argument("--forms", nargs="+", default=["full", "block"],
                    choices=["full", "block"])
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--sublayers-per-block", type=int, default=8,
                    help="S of the block form measured (a benchmark choice; the compiler has no default S)")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("--max-full", type=int, default=0,
                    help="skip the Full form above this many sublayers")
    ap.add_argument("--mem-gb", type=float, default=6.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results",
                                                  "depth"))
    ap.add_argument("--plot-only", action="store_true",
                    help="redraw depth.md and depth.svg from --out/depth.json")
    args = ap.parse_args()
    if args.plot_only:
        with open(os.path.join(args.out, "depth.json")) as f:
            save(json.load(f), args.out)
        return
    opt = os.path.join(args.build, "bin", "attnres-opt")
    gen = os.path.join(ROOT, "utils", "gen_detect_models.py")
    os.makedirs(args.out, exist_ok=True)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short",
                             "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    results = {"commit": commit, "host": platform.node(),
               "cpus": os.cpu_count(), "tokens": args.tokens,
               "block_size": args.sublayers_per_block, "date": time.strftime(
                   "%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.dims:
            for form in args.forms:
                given_up = False
                for L in args.layers:
                    row = {"form": form, "d": d, "layers": L, "stages": []}
                    results["runs"].append(row)
                    if given_up:
                        row["skipped"] = "a smaller depth was killed"
                        continue
                    if form == "full" and args.max_full and L > args.max_full:
                        row["skipped"] = "over --max-full"
                        continue
                    src = os.path.join(tmp, "m.mlir")
                    with open(src, "w") as f:
                        subprocess.run([sys.executable, gen, "--layers",
                                        str(L), "--dim", str(d), "--tokens",
                                        str(args.tokens)], stdout=f,
                                       check=True)
                    for i, (name, pipe) in enumerate(
                            stages(form, args.sublayers_per_block)):
                        dst = os.path.join(tmp, "s%d.mlir" % i)
                        last = name == "lower-to-llvm"
                        data = measured(opt, src, dst, pipe, args.timeout,
                                        args.mem_gb, timing=last)
                        st = {"stage": name, "seconds": round(data["seconds"],
                                                              3),
                              "cpu_seconds": round(data["cpu_seconds"], 3),
                              "rss_mb": round(data["rss_mb"], 1),
                              "rc": data["rc"], "killed": data["killed"]}
                        if last and data["rc"] == 0:
                            st["top_passes"] = [
                                [n, round(s, 3)]
                                for s_n in [top_passes(data["stderr"])]
                                for n, s in s_n]
                        if data["rc"] != 0:
                            st["error"] = data["stderr"][-400:]
                        row["stages"].append(st)
                        print("d=%d %s L=%d %s: %.2f s (cpu %.2f s) %.0f MB%s"
                              % (d, form, L, name, data["seconds"],
                                 data["cpu_seconds"],
                               data["rss_mb"],
                               "" if data["rc"] == 0 else " FAILED (%s)" %
                               (data["killed"] or data["rc"])), flush=True)
                        if data["rc"] != 0:
                            given_up = True
                            break
                        src = dst
                    ok = all(s["rc"] == 0 for s in row["stages"])
                    row["total_seconds"] = round(
                        sum(s["seconds"] for s in row["stages"]), 3)
                    row["total_cpu_seconds"] = round(
                        sum(s["cpu_seconds"] for s in row["stages"]), 3)
                    row["peak_rss_mb"] = max(s["rss_mb"]
                                             for s in row["stages"])
                    row["ok"] = ok
                    # Written after every depth so that an interrupted run
                    # keeps what it measured.
                    save(results, args.out)
    save(results, args.out)


def save(results, out):
    with open(os.path.join(out, "depth.json"), "w") as f:
        json.dump(results, f, indent=1)
    write_markdown(results, os.path.join(out, "depth.md"))
    write_svg(results, os.path.join(out, "depth.svg"))


STAGE_COLORS = {"detect": "#1f77b4", "blockify": "#9467bd", "fuse": "#2ca02c",
                "lower-to-llvm": "#d62728", "total": "#000000"}


def write_svg(results, path):
    """Four log-log panels (rows: Full and block form; columns: CPU seconds
    and peak RSS MB) of each stage and the whole pipeline against sublayers;
    solid lines d=256, dashed d=4096 (any other d: dotted)."""
    import math
    forms = [f for f in ("full", "block")
             if any(r["form"] == f for r in results["runs"])]
    dims = sorted({r["d"] for r in results["runs"]})
    dashes = {0: "", 1: "6,4"}
    pw, ph, ml, mt, gap = 380, 250, 60, 40, 70
    width = ml + 2 * (pw + gap)
    height = mt + len(forms) * (ph + gap) + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="18" font-size="14">Compile time and peak RSS '
           'against depth (commit %s, %s, %s CPUs, T=%d, block S=%d)</text>'
           % (ml, results["commit"], results["date"], results["cpus"],
              results["tokens"], results["block_size"])]

    def points(form, d, measure):
        pts = {}
        for r in results["runs"]:
            if r["form"] != form or r["d"] != d or not r.get("ok"):
                continue
            for s in r["stages"]:
                v = s["cpu_seconds"] if measure == "cpu" else s["rss_mb"]
                pts.setdefault(s["stage"], []).append((r["layers"], v))
            v = (r["total_cpu_seconds"] if measure == "cpu"
                 else r["peak_rss_mb"])
            pts.setdefault("total", []).append((r["layers"], v))
        return pts

    for row, form in enumerate(forms):
        for col, measure in enumerate(("cpu", "rss")):
            x0 = ml + col * (pw + gap)
            y0 = mt + row * (ph + gap)
            series = {(d, st): p for d in dims
                      for st, p in points(form, d, measure).items()}
            vals = [v for p in series.values() for _, v in p if v > 0]
            ls = [l for p in series.values() for l, _ in p]
            if not vals:
                continue
            lo, hi = math.log10(min(vals)), math.log10(max(vals))
            lo, hi = math.floor(lo), math.ceil(hi if hi > lo else lo + 1)
            l0, l1 = math.log2(min(ls)), math.log2(max(ls))
            if l1 == l0:
                l1 = l0 + 1

            def px(l):
                return x0 + (math.log2(l) - l0) / (l1 - l0) * pw

            def py(v):
                return y0 + ph - (math.log10(max(v, 1e-9)) - lo) / (hi - lo) * ph

            out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" '
                       'stroke="#888"/>' % (x0, y0, pw, ph))
            out.append('<text x="%d" y="%d" font-size="12">%s form: %s</text>'
                       % (x0, y0 - 8, form.capitalize(),
                          "CPU seconds" if measure == "cpu"
                          else "peak RSS (MB)"))
            for e in range(lo, hi + 1):
                for m in (1, 2, 5):
                    v = m * 10 ** e
                    if lo <= math.log10(v) <= hi:
                        y = py(v)
                        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" '
                                   'stroke="#eee"/>' % (x0, x0 + pw, y, y))
                        out.append('<text x="%d" y="%.1f" text-anchor="end">'
                                   '%g</text>' % (x0 - 4, y + 4, v))
            for l in sorted(set(ls)):
                x = px(l)
                out.append('<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" '
                           'stroke="#eee"/>' % (x, x, y0, y0 + ph))
                out.append('<text x="%.1f" y="%d" text-anchor="middle">%d'
                           '</text>' % (x, y0 + ph + 14, l))
            out.append('<text x="%d" y="%d" text-anchor="middle">sublayers'
                       '</text>' % (x0 + pw / 2, y0 + ph + 28))
            for (d, st), p in sorted(series.items()):
                p = sorted(p)
                line = " ".join("%.1f,%.1f" % (px(l), py(v)) for l, v in p)
                dash = dashes.get(dims.index(d), "2,3")
                out.append('<polyline points="%s" fill="none" stroke="%s" '
                           'stroke-width="%s" stroke-dasharray="%s"/>' % (
                               line, STAGE_COLORS.get(st, "#7f7f7f"),
                               "2.2" if st == "total" else "1.5", dash))
    # Legend.
    y = mt + len(forms) * (ph + gap) - 20
    x = ml
    for st, color in STAGE_COLORS.items():
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" '
                   'stroke-width="2"/>' % (x, x + 20, y, y, color))
        out.append('<text x="%d" y="%d">%s</text>' % (x + 24, y + 4, st))
        x += 110
    for i, d in enumerate(dims):
        out.append('<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#000" '
                   'stroke-dasharray="%s"/>' % (x, x + 20, y, y,
                                                 dashes.get(i, "2,3")))
        out.append('<text x="%d" y="%d">d=%d</text>' % (x + 24, y + 4, d))
        x += 80
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def write_markdown(results, path):
    lines = ["# Compile time and peak RSS against depth",
             "",
             "Generated by `python3 bench/depth.py` (commit %s, %s, %s CPUs, "
             "T=%d tokens, block form S=%d). CPU seconds (user + system) / "
             "peak RSS in MB of each stage run as its own attnres-opt "
             "process; CPU time rather than wall time because the build "
             "machine is shared; `-`: not run."
             % (results["commit"], results["date"], results["cpus"],
                results["tokens"], results["block_size"]), ""]
    keys = sorted({(r["d"], r["form"]) for r in results["runs"]})
    for d, form in keys:
        runs = [r for r in results["runs"] if r["d"] == d and r["form"] == form]
        names = [n for n, _ in stages(form, results["block_size"])]
        lines.append("## %s form, d=%d" % (form.capitalize(), d))
        lines.append("")
        lines.append("| L | " + " | ".join(names) +
                     " | total CPU s (wall s) | peak RSS MB |"
                     " slowest passes in lowering (wall s) |")
        lines.append("|---" * (len(names) + 4) + "|")
        for r in runs:
            cells = []
            by = {s["stage"]: s for s in r["stages"]}
            for n in names:
                s = by.get(n)
                if s is None:
                    cells.append("-")
                elif s["rc"] != 0:
                    cells.append("killed (%s)" % (s["killed"] or
                                                  "rc %s" % s["rc"]))
                else:
                    cells.append("%.2f s / %.0f" % (s["cpu_seconds"],
                                                    s["rss_mb"]))
            low = by.get("lower-to-llvm", {})
            top = ", ".join("%s %.2f" % (n, s)
                            for n, s in low.get("top_passes", [])[:3])
            if "total_seconds" in r:
                lines.append("| %d | %s | %.2f (%.2f) | %.0f | %s |" % (
                    r["layers"], " | ".join(cells), r["total_cpu_seconds"],
                    r["total_seconds"],
                    r["peak_rss_mb"], top))
            else:
                lines.append("| %d | %s | - | - | |" % (
                    r["layers"], " | ".join(cells)))
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
