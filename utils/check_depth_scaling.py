#!/usr/bin/env python3
"""Guard against compile work that grows faster than linearly in depth.

Generates the linalg residual model of gen_detect_models.py at two depths,
runs detect -> [blockify] -> fuse -> attnres-lower-to-llvm on each and counts,
in the IR just before buffer-deallocation-simplification, the memrefs of the
longest bufferization.dealloc op. That pass compares the memrefs of one
dealloc pairwise, so its work is about the square of that count: the check
fails when the square grows by more than `slack` times the depth ratio, i.e.
when this part of the compile is not linear in depth. It also counts, in
the same IR, the memref.alloc ops (buffers) and the linalg ops (each a loop
nest for every later pass): the Full form's per-source decomposition made
both quadratic in depth (docs/depth.md, cause 2), so each must not grow by
more than `slack` times the depth ratio either.

Counts, not time: the result does not depend on the machine's load.
"""

import argparse
import re
import subprocess
import sys

DEALLOC = re.compile(r"bufferization\.dealloc\s*\(([^:]*):")
LINALG = re.compile(r"^\s*(%\S+ = )?linalg\.\w+", re.M)


def counts(opt, gen, layers, form, dim, tokens, block, lowering):
    model = subprocess.run(
        [sys.executable, gen, "--layers", str(layers), "--dim", str(dim),
         "--tokens", str(tokens)], capture_output=True, text=True,
        check=True).stdout
    stages = ["attnres-detect-residual-chains"]
    if form == "block":
        stages.append("attnres-blockify{block-size=%d}" % block)
    stages += ["attnres-fuse-summaries", lowering]
    proc = subprocess.run(
        [opt, "-", "--pass-pipeline=builtin.module(%s)" % ",".join(stages),
         "--mlir-print-ir-before=buffer-deallocation-simplification",
         "-o", "/dev/null"], input=model, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("attnres-opt failed at L=%d:\n%s" % (layers,
                                                       proc.stderr[-2000:]))
    ir = proc.stderr
    longest = 0
    for m in DEALLOC.finditer(ir):
        inner = m.group(1).strip()
        longest = max(longest, len(inner.split(",")) if inner else 0)
    allocs = ir.count("memref.alloc(")
    linalg_ops = len(LINALG.findall(ir))
    return longest, allocs, linalg_ops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--opt", required=True)
    ap.add_argument("--gen", required=True)
    ap.add_argument("--form", choices=["full", "block"], required=True)
    ap.add_argument("--small", type=int, default=4)
    ap.add_argument("--large", type=int, default=16)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=2)
    ap.add_argument("--sublayers-per-block", type=int, default=4,
                    help="S of the block form checked")
    ap.add_argument("--slack", type=float, default=1.5)
    ap.add_argument("--lowering", default="attnres-lower-to-llvm",
                    help="the lowering pipeline (to check another one, e.g. "
                    "attnres-lower-to-llvm's passes without one of them)")
    ap.add_argument("--count-slack", type=float, default=1.5,
                    help="fail when allocs or linalg ops grow by more than "
                    "this times the depth ratio")
    args = ap.parse_args()
    ratio = args.large / args.small
    small = counts(args.opt, args.gen, args.small, args.form, args.dim,
                   args.tokens, args.sublayers_per_block, args.lowering)
    large = counts(args.opt, args.gen, args.large, args.form, args.dim,
                   args.tokens, args.sublayers_per_block, args.lowering)
    work = [max(c[0], 1) ** 2 for c in (small, large)]
    growth = work[1] / work[0]
    alloc_growth = large[1] / max(small[1], 1)
    linalg_growth = large[2] / max(small[2], 1)
    print("%s form: L=%d: longest dealloc %d, allocs %d, linalg ops %d; "
          "L=%d: longest dealloc %d, allocs %d, linalg ops %d" % (
              args.form, args.small, small[0], small[1], small[2],
              args.large, large[0], large[1], large[2]))
    print("pairwise dealloc work grows %.2fx for %.0fx depth (bound %.2fx); "
          "allocs grow %.2fx, linalg ops %.2fx (bound %.2fx)" % (
              growth, ratio, args.slack * ratio, alloc_growth, linalg_growth,
              args.count_slack * ratio))
    ok = growth <= args.slack * ratio
    if not growth <= args.slack * ratio:
        print("FAIL: deallocation work grows faster than linearly in depth")
    for name, g in (("allocs", alloc_growth), ("linalg ops", linalg_growth)):
        if g > args.count_slack * ratio:
            print("FAIL: %s grow faster than linearly in depth" % name)
            ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
