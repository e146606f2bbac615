#!/usr/bin/env python3
"""Writes the benchmark and sweep modules (func.func on tensors with attnres ops).

One module per benchmark shape (bench_agg_*.mlir, bench_score_*.mlir) and one
module per storage type for the correctness sweep (sweep_<dt>.mlir). Each
public function takes the op's operands in order and returns its results,
which the GPU pipeline turns into out-parameters.
"""

import argparse
import os

from attnres import irbuilder as ir
from bench.shapes import (AGGREGATE_BENCH, AGGREGATE_SWEEP, EPSILON, SCORE_BENCH, SCORE_SWEEP,
                          SWEEP_DTYPES, SMALL_T_MERGE, agg_name, merge_name,
                          score_name)


# Token dimensions are dynamic (`?`) unless --static-tokens: the functions then
# take any number of tokens, as a model's would.
DYNAMIC_TOKENS = True


def tok(tokens):
    return ["?"] * len(tokens) if DYNAMIC_TOKENS else list(tokens)


def aggregate_func(dt, n, tokens, d):
    return ir.kernel_aggregate(agg_name(dt, n, tokens, d), dt, d, n, EPSILON, tok(tokens))


def score_func(dt, n, s, tokens, d):
    return ir.kernel_block_score(score_name(dt, n, s, tokens, d), dt, d, s, n, EPSILON,
                                 tok(tokens))


module = ir.module


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output-dir", required=True)
    ap.add_argument("--static-tokens", action="store_true",
                    help="static token dimensions instead of ?")
    args = ap.parse_args()
    global DYNAMIC_TOKENS
    DYNAMIC_TOKENS = not args.static_tokens
    os.makedirs(args.output_dir, exist_ok=True)
    written = []

    def write(name, text):
        path = os.path.join(args.output_dir, name + ".mlir")
        with open(path, "w") as f:
            f.write(text)
        written.append(path)

    for (n, t, d) in AGGREGATE_BENCH:
        write("bench_" + agg_name("bf16", n, (t,), d), module([aggregate_func("bf16", n, (t,), d)]))
    for (n, s, t, d) in SCORE_BENCH:
        write("bench_" + score_name("bf16", n, s, (t,), d),
              module([score_func("bf16", n, s, (t,), d)]))
    for d in SMALL_T_MERGE:
        name = merge_name("bf16", d)
        write("bench_" + name, module([ir.kernel_merge(name, "bf16", d, True, EPSILON)]))
    for dt in SWEEP_DTYPES:
        funcs = [aggregate_func(dt, n, tok, d) for (n, tok, d) in AGGREGATE_SWEEP]
        funcs += [score_func(dt, n, s, tok, d) for (n, s, tok, d) in SCORE_SWEEP]
        write("sweep_" + dt, module(funcs))
    for p in written:
        print(p)


if __name__ == "__main__":
    main()
