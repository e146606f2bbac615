#!/usr/bin/env python3
"""Writes the benchmark and sweep modules (func.func on tensors with attnres ops).

One module per benchmark shape (bench_agg_*.mlir, bench_score_*.mlir) and one
module per storage type for the correctness sweep (sweep_<dt>.mlir). Each
public function takes the op's operands in order and returns its results,
which the GPU pipeline turns into out-parameters.
"""

import argparse
import os

from bench.shapes import (AGGREGATE_BENCH, AGGREGATE_SWEEP, EPSILON, SCORE_BENCH, SCORE_SWEEP,
                          SWEEP_DTYPES, agg_name, score_name)


# Token dimensions are dynamic (`?`) unless --static-tokens: the functions then
# take any number of tokens, as a model's would.
DYNAMIC_TOKENS = True


def ttype(shape, dt):
    return "tensor<%s>" % "x".join([str(s) for s in shape] + [dt])


def tok(tokens):
    return ["?"] * len(tokens) if DYNAMIC_TOKENS else list(tokens)


def aggregate_func(dt, n, tokens, d):
    src = ttype(tok(tokens) + [d], dt)
    vec = ttype([d], dt)
    args = ["%%w: %s" % vec, "%%g: %s" % vec] + ["%%v%d: %s" % (i, src) for i in range(n)]
    sources = ", ".join("%%v%d" % i for i in range(n))
    return "\n".join([
        "  func.func @%s(%s) -> %s {" % (agg_name(dt, n, tokens, d), ", ".join(args), src),
        "    %%h = attnres.aggregate %%w, %%g over %s {epsilon = %.1e : f32} : %s"
        % (sources, EPSILON, src),
        "    return %%h : %s" % src,
        "  }",
    ])


def empty_inits(tokens, src, out, lse):
    """tensor.empty for the outputs, sized like source 0 when dynamic."""
    if not DYNAMIC_TOKENS or not tokens:
        return ["    %%o0 = tensor.empty() : %s" % out, "    %%l0 = tensor.empty() : %s" % lse]
    lines, dims = [], []
    for i in range(len(tokens)):
        lines.append("    %%c%d = arith.constant %d : index" % (i, i))
        lines.append("    %%t%d = tensor.dim %%b0, %%c%d : %s" % (i, i, src))
        dims.append("%%t%d" % i)
    lines.append("    %%o0 = tensor.empty(%s) : %s" % (", ".join(dims), out))
    lines.append("    %%l0 = tensor.empty(%s) : %s" % (", ".join(dims), lse))
    return lines


def score_func(dt, n, s, tokens, d):
    src = ttype(tok(tokens) + [d], dt)
    q = ttype([s, d], dt)
    out = ttype([s] + tok(tokens) + [d], dt)
    lse = ttype([s] + tok(tokens), "f32")
    args = ["%%wq: %s" % q, "%%gq: %s" % q] + ["%%b%d: %s" % (i, src) for i in range(n)]
    sources = ", ".join("%%b%d" % i for i in range(n))
    return "\n".join([
        "  func.func @%s(%s) -> (%s, %s) {"
        % (score_name(dt, n, s, tokens, d), ", ".join(args), out, lse),
        ] + empty_inits(tokens, src, out, lse) + [
        "    %%o, %%lse = attnres.block_score %%wq, %%gq over %s outs %%o0, %%l0"
        " {epsilon = %.1e : f32} : %s -> %s" % (sources, EPSILON, src, out),
        "    return %%o, %%lse : %s, %s" % (out, lse),
        "  }",
    ])


def module(funcs):
    return "module {\n" + "\n\n".join(funcs) + "\n}\n"


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
    for dt in SWEEP_DTYPES:
        funcs = [aggregate_func(dt, n, tok, d) for (n, tok, d) in AGGREGATE_SWEEP]
        funcs += [score_func(dt, n, s, tok, d) for (n, s, tok, d) in SCORE_SWEEP]
        write("sweep_" + dt, module(funcs))
    for p in written:
        print(p)


if __name__ == "__main__":
    main()
