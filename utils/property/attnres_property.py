#!/usr/bin/env python3
"""Property tests of the attnres passes on the CPU.

Part of the attnres project; see docs/reliability.md.

Each *draw* picks, from its own seed, a random number of sublayers L, a
block size S (1 .. L + 1, so the last block is often short and S > L
occurs), a feature size D, a storage type (f32, f16, bf16), a token shape
(rank 1 or 2, 1 .. 5 each) and random non-zero pseudo-queries, gains and
sublayer weights. It writes a Full AttnRes chain module (every sublayer is
f_l(h) = softsign(h @ W_l) = m / (1 + |m|) computed in f32 and rounded to
the storage type, called through func.call so that the chain is opaque to
the passes) and checks:

  full     attnres-lower-to-llvm                        == numpy Block, S = 1
  block    attnres-blockify{block-size=S}, lowered      == numpy Block, S
  fused    blockify{S} + attnres-fuse-summaries, lowered == numpy Block, S
  detect   detect-residual-chains + blockify{block-size=1}, lowered
           == the `full` output (same tolerance)
  g3       canonicalize(blockify{block-size=1}(M)) is textually
           canonicalize(M) (spec G.3)

The numpy reference (block_attnres and aggregate of
utils/reference/attnres_ref.py) implements section 3 of attnres-semantics.md
in float64 directly (it shares no code with the compiler), rounding every
op's result to the storage type once, as spec 0.3 says: aggregations,
sublayer outputs and block summaries (for the fused form, the partial sums
after every merge, E.1). Tolerance, relative to the largest |value| of the output:
f32 2e-5, f16 5e-3, bf16 2e-2 (the fused form rounds the partial sums once
per sublayer, the block form once per summary; both are within these).

Usage:
  attnres_property.py [--draws N] [--first-seed K] [--seed K] [--attnres-opt P]
                      [--mlir-runner P] [--runner-utils P] [--c-runner-utils P]
                      [--keep DIR] [--max-layers L] [--max-dim D]
Every draw prints its seed and its parameters; `--seed K` replays one draw.
Exit status 1 if any draw fails.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from attnres import defaults
from attnres import irbuilder as ir
from attnres.cpu_runner import find_llvm_tool, runner_utils
from attnres import reference as ref
from attnres.irbuilder import (dense, generic, print_and_return,
                       printed_values, tensor_type)

EPS = defaults.epsilon()  # the compiler's default key-norm epsilon
TOL = {"f32": 2e-5, "f16": 5e-3, "bf16": 2e-2}


# --------------------------------------------------------------------------
# Reference (float64, storage rounding once per op).


def ref_sublayer(h, mat):
    m = np.tensordot(h, mat, axes=([-1], [0]))
    return m / (1.0 + np.abs(m))


def ref_block(p, block_size, fused=False):
    """Section 3 of attnres-semantics.md (attnres_ref.block_attnres); S = 1
    is Full AttnRes. Every op's result is rounded to the storage type; with
    `fused`, the partial sum too after every addition (spec E.1)."""
    dt = p["dtype"]
    return ref.block_attnres(p["v0"], p["w"], p["g"],
                             lambda l, h: ref_sublayer(h, p["mats"][l]),
                             block_size, EPS,
                             round_fn=lambda x: ref.round_to_dtype(x, dt), fused=fused)


# --------------------------------------------------------------------------
# Draws and module generation.


def draw(seed, max_layers, max_dim):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(1, max_layers + 1))
    S = int(rng.integers(1, L + 2))
    D = int(rng.integers(2, max_dim + 1))
    dtype = ["f32", "f16", "bf16"][int(rng.integers(0, 3))]
    rank = int(rng.integers(1, 3))
    tokens = [int(rng.integers(1, 6)) for _ in range(rank)]
    v0 = ref.round_to_dtype(rng.standard_normal(tokens + [D]) * rng.uniform(0.5, 3.0),
                  dtype)
    # Non-zero queries and gains: a zero query makes every aggregation a mean.
    w = ref.round_to_dtype(rng.standard_normal((L + 1, D)) * 2.0, dtype)
    g = ref.round_to_dtype(1.0 + 0.5 * rng.standard_normal((L + 1, D)), dtype)
    mats = ref.round_to_dtype(rng.standard_normal((L, D, D)) * 1.5 / np.sqrt(D), dtype)
    return {"seed": seed, "L": L, "S": S, "D": D, "dtype": dtype,
            "tokens": tokens, "v0": v0, "w": w, "g": g, "mats": mats}


def describe(p):
    return "seed=%d L=%d S=%d D=%d dtype=%s tokens=%s" % (
        p["seed"], p["L"], p["S"], p["D"], p["dtype"],
        "x".join(map(str, p["tokens"])))


def module_text(p):
    et, D, toks = p["dtype"], p["D"], p["tokens"]
    L = p["L"]
    ty = tensor_type(toks + [D], et)
    ty32 = tensor_type(toks + [D], "f32")
    mat = tensor_type([D, D], et)
    r = len(toks) + 1  # rank of a value
    dims = ["d%d" % i for i in range(r)]
    ident = "(%s) -> (%s)" % (", ".join(dims), ", ".join(dims))
    # Contraction: out[t.., j] = sum_k h[t.., k] * W[k, j]; iteration (t.., j, k).
    cd = "(%s)" % ", ".join(dims + ["k"])
    m_h = "%s -> (%s)" % (cd, ", ".join(dims[:-1] + ["k"]))
    m_w = "%s -> (k, %s)" % (cd, dims[-1])
    m_o = "%s -> (%s)" % (cd, ", ".join(dims))
    o = []
    o.append("// Generated by utils/property/attnres_property.py: " + describe(p))
    o.append("func.func private @printMemrefF32(tensor<*xf32>)")
    o.append("")
    o.append("// f(h) = softsign(h @ W) in f32, rounded to %s." % et)
    o.append("func.func private @sublayer(%%h: %s, %%w: %s) -> %s {" % (ty, mat, ty))
    o.append("  %zero = arith.constant 0.0 : f32")
    o.append("  %one = arith.constant 1.0 : f32")
    o.append("  %%e = tensor.empty() : %s" % ty32)
    o.append("  %%z = linalg.fill ins(%%zero : f32) outs(%%e : %s) -> %s" % (ty32, ty32))
    if et == "f32":
        body = ["%p = arith.mulf %a, %b : f32"]
    else:
        body = ["%%a32 = arith.extf %%a : %s to f32" % et,
                "%%b32 = arith.extf %%b : %s to f32" % et,
                "%p = arith.mulf %a32, %b32 : f32"]
    body += ["%s = arith.addf %c, %p : f32", "linalg.yield %s : f32"]
    o.append(generic([("%h", ty), ("%w", mat)], ("%z", ty32), [m_h, m_w, m_o],
                     ["parallel"] * r + ["reduction"],
                     "%%a: %s, %%b: %s, %%c: f32" % (et, et), body, ("%m", ty32)))
    o.append("  %%eo = tensor.empty() : %s" % ty)
    body = ["%abs = math.absf %a : f32", "%den = arith.addf %one, %abs : f32",
            "%q = arith.divf %a, %den : f32"]
    if et == "f32":
        body += ["linalg.yield %q : f32"]
    else:
        body += ["%%t = arith.truncf %%q : f32 to %s" % et, "linalg.yield %%t : %s" % et]
    o.append(generic([("%m", ty32)], ("%eo", ty), [ident, ident], ["parallel"] * r,
                     "%%a: f32, %%u: %s" % et, body, ("%y", ty)))
    o.append("  return %%y : %s" % ty)
    o.append("}")
    o.append("")
    o.append("func.func @main() {")
    o.append("  %%v0 = arith.constant %s" % dense(p["v0"], et))
    for l in range(L + 1):
        o.append("  %%w%d = arith.constant %s" % (l, dense(p["w"][l], et)))
        o.append("  %%g%d = arith.constant %s" % (l, dense(p["g"][l], et)))
    for l in range(L):
        o.append("  %%W%d = arith.constant %s" % (l, dense(p["mats"][l], et)))
    srcs = ["%v0"]
    for l in range(L):
        o.append(ir.aggregate("%%h%d" % l, "%%w%d" % l, "%%g%d" % l, srcs, EPS, ty, "  "))
        o.append("  %%y%d = func.call @sublayer(%%h%d, %%W%d) : (%s, %s) -> %s"
                 % (l, l, l, ty, mat, ty))
        srcs.append("%%y%d" % l)
    o.append(ir.aggregate("%out", "%%w%d" % L, "%%g%d" % L, srcs, EPS, ty, "  "))
    o += print_and_return("%out", toks + [D], et)
    return "\n".join(o) + "\n"


# --------------------------------------------------------------------------
# Running the compiler.


class Tools:
    def __init__(self, args):
        self.opt = args.attnres_opt
        self.runner = args.mlir_runner
        self.libs = "%s,%s" % (args.runner_utils, args.c_runner_utils)

    def opt_run(self, path, flags):
        r = subprocess.run([self.opt, path] + flags, capture_output=True,
                           text=True, timeout=600)
        return r

    def execute(self, path, flags):
        r = self.opt_run(path, flags + ["--attnres-lower-to-llvm"])
        if r.returncode != 0:
            return None, "attnres-opt %s failed (%d):\n%s" % (
                " ".join(flags), r.returncode, r.stderr[-3000:])
        e = subprocess.run([self.runner, "-e", "main", "-entry-point-result=void",
                            "-shared-libs=" + self.libs], input=r.stdout,
                           capture_output=True, text=True, timeout=600)
        if e.returncode != 0:
            return None, "mlir-runner after %s failed (%d):\n%s" % (
                " ".join(flags), e.returncode, e.stderr[-3000:])
        return parse_memref(e.stdout), None


def parse_memref(out):
    values = printed_values(out)
    return np.array([]) if values is None else values


def close(got, want, tol):
    """(ok, relative error): max |got - want| / max |want| <= tol, all finite."""
    want = want.ravel()
    if got.shape != want.shape:
        return False, float("inf")
    scale = max(float(np.max(np.abs(want))), 1e-30)
    rel = float(np.max(np.abs(got - want))) / scale
    return bool(np.all(np.isfinite(got)) and rel <= tol), rel


def run_draw(p, tools, keep):
    tol = TOL[p["dtype"]]
    work = keep or tempfile.mkdtemp(prefix="attnres-prop-")
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "draw_%d.mlir" % p["seed"])
    with open(path, "w") as f:
        f.write(module_text(p))
    failures = []
    ref_full = ref_block(p, 1)
    ref_s = ref_block(p, p["S"])
    ref_fused = ref_block(p, p["S"], fused=True)
    S = p["S"]
    checks = [
        ("full", [], ref_full),
        ("block", ["--attnres-blockify=block-size=%d" % S], ref_s),
        ("fused", ["--attnres-blockify=block-size=%d" % S,
                   "--attnres-fuse-summaries"], ref_fused),
        ("detect", ["--attnres-detect-residual-chains",
                    "--attnres-blockify=block-size=1"], ref_full),
    ]
    outs = {}
    report = []
    for name, flags, want in checks:
        got, err = tools.execute(path, flags)
        if err:
            failures.append("%s: %s" % (name, err))
            continue
        outs[name] = got
        ok, rel = close(got, want, tol)
        report.append("%s %.1e" % (name, rel))
        if not ok:
            failures.append("%s: max relative error %.3e > %.1e" % (name, rel, tol))
    if "full" in outs and "detect" in outs:
        ok, rel = close(outs["detect"], outs["full"], tol)
        if not ok:
            failures.append("detect+blockify(1) differs from full: %.3e" % rel)
    # G.3: blockify{block-size=1} is the identity after canonicalization.
    a = tools.opt_run(path, ["--canonicalize"])
    b = tools.opt_run(path, ["--attnres-blockify=block-size=1", "--canonicalize"])
    if a.returncode or b.returncode:
        failures.append("g3: attnres-opt failed:\n%s%s" % (a.stderr[-2000:], b.stderr[-2000:]))
    elif a.stdout != b.stdout:
        failures.append("g3: canonicalize(blockify{block-size=1}(M)) != canonicalize(M)")
    if not keep and not failures:
        shutil.rmtree(work, ignore_errors=True)
    return failures, ", ".join(report), path


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--seed", type=int, help="replay this one draw")
    ap.add_argument("--max-layers", type=int, default=9)
    ap.add_argument("--max-dim", type=int, default=40)
    ap.add_argument("--attnres-opt", default="attnres-opt")
    # Defaults: the LLVM of the attnres build (attnres/_config.py), else PATH.
    ap.add_argument("--mlir-runner", default=None)
    ap.add_argument("--runner-utils", default=None)
    ap.add_argument("--c-runner-utils", default=None)
    ap.add_argument("--keep", help="keep the generated modules in this directory")
    ap.add_argument("--print-module", action="store_true",
                    help="print the module of --seed and exit")
    args = ap.parse_args()
    args.mlir_runner = args.mlir_runner or find_llvm_tool("mlir-runner")
    utils = runner_utils()
    args.runner_utils = args.runner_utils or utils[0]
    args.c_runner_utils = args.c_runner_utils or utils[1]
    seeds = [args.seed] if args.seed is not None else \
        range(args.first_seed, args.first_seed + args.draws)
    if args.print_module:
        for s in seeds:
            sys.stdout.write(module_text(draw(s, args.max_layers, args.max_dim)))
        return 0
    tools = Tools(args)
    failed = 0
    for s in seeds:
        p = draw(s, args.max_layers, args.max_dim)
        failures, rep, path = run_draw(p, tools, args.keep)
        if failures:
            failed += 1
            print("FAIL %s (module: %s)" % (describe(p), path))
            for f in failures:
                print("  " + f.replace("\n", "\n    "))
            print("  replay: %s --seed %d --max-layers %d --max-dim %d" % (
                sys.argv[0], s, args.max_layers, args.max_dim))
        else:
            print("ok   %s: %s" % (describe(p), rep))
        sys.stdout.flush()
    print("%d draws, %d failed" % (len(seeds), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
