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

The numpy reference implements section 3 of attnres-semantics.md in float64
directly (it shares no code with the compiler), rounding every op's result to
the storage type once, as spec 0.3 says: aggregations, sublayer outputs and
block summaries (for the fused form, the partial sums after every merge,
E.1). Tolerance, relative to the largest |value| of the output:
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
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

EPS = 1e-6
TOL = {"f32": 2e-5, "f16": 5e-3, "bf16": 2e-2}


# --------------------------------------------------------------------------
# Reference (float64, storage rounding once per op).


def round_to(x, dtype):
    x = np.asarray(x, dtype=np.float64)
    if dtype == "f32":
        return x.astype(np.float32).astype(np.float64)
    if dtype == "f16":
        return x.astype(np.float16).astype(np.float64)
    # bf16: round the f32 value to nearest even on the upper 16 bits.
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).astype(np.float64)


def ref_aggregate(w, g, sources):
    v = np.stack(sources)  # n x T... x D
    r = 1.0 / np.sqrt(np.mean(v * v, axis=-1) + EPS)
    z = r * np.tensordot(v, w * g, axes=([-1], [0]))
    z = z - z.max(axis=0, keepdims=True)
    a = np.exp(z)
    a = a / a.sum(axis=0, keepdims=True)
    return (a[..., None] * v).sum(axis=0)


def ref_sublayer(h, mat):
    m = np.tensordot(h, mat, axes=([-1], [0]))
    return m / (1.0 + np.abs(m))


def ref_block(p, block_size, fused=False):
    """Section 3 of attnres-semantics.md; S = 1 is Full AttnRes. With
    `fused`, the partial sum is rounded to the storage type after every
    addition, as attnres.merge's new_partial is (spec E.1); the block form
    rounds each block_sum once (B.1)."""
    dt = p["dtype"]
    L = len(p["mats"])
    summaries = [p["v0"]]
    partial = None
    for l in range(L):
        i = l % block_size
        sources = summaries + ([round_to(partial, dt)] if i >= 1 else [])
        h = round_to(ref_aggregate(p["w"][l], p["g"][l], sources), dt)
        y = round_to(ref_sublayer(h, p["mats"][l]), dt)
        partial = y if i == 0 else partial + y
        if fused:
            partial = round_to(partial, dt)
        if i == block_size - 1 or l == L - 1:
            summaries.append(round_to(partial, dt))
            partial = None
    return round_to(ref_aggregate(p["w"][L], p["g"][L], summaries), dt)


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
    v0 = round_to(rng.standard_normal(tokens + [D]) * rng.uniform(0.5, 3.0),
                  dtype)
    # Non-zero queries and gains: a zero query makes every aggregation a mean.
    w = round_to(rng.standard_normal((L + 1, D)) * 2.0, dtype)
    g = round_to(1.0 + 0.5 * rng.standard_normal((L + 1, D)), dtype)
    mats = round_to(rng.standard_normal((L, D, D)) * 1.5 / np.sqrt(D), dtype)
    return {"seed": seed, "L": L, "S": S, "D": D, "dtype": dtype,
            "tokens": tokens, "v0": v0, "w": w, "g": g, "mats": mats}


def describe(p):
    return "seed=%d L=%d S=%d D=%d dtype=%s tokens=%s" % (
        p["seed"], p["L"], p["S"], p["D"], p["dtype"],
        "x".join(map(str, p["tokens"])))


def fmt_nested(a):
    if a.ndim == 0:
        return "%.9e" % float(a)
    if a.ndim == 1:
        return "[" + ", ".join("%.9e" % float(x) for x in a) + "]"
    return "[" + ", ".join(fmt_nested(x) for x in a) + "]"


def tensor_ty(shape, et):
    return "tensor<%sx%s>" % ("x".join(map(str, shape)), et)


def module_text(p):
    et, D, toks = p["dtype"], p["D"], p["tokens"]
    L = p["L"]
    ty = tensor_ty(toks + [D], et)
    ty32 = tensor_ty(toks + [D], "f32")
    vec = tensor_ty([D], et)
    mat = tensor_ty([D, D], et)
    mat32 = tensor_ty([D, D], "f32")
    r = len(toks) + 1  # rank of a value
    dims = ["d%d" % i for i in range(r)]
    ident = "affine_map<(%s) -> (%s)>" % (", ".join(dims), ", ".join(dims))
    par = ", ".join(['"parallel"'] * r)
    # Contraction: out[t.., j] = sum_k h[t.., k] * W[k, j]; iteration (t.., j, k).
    cd = dims + ["k"]
    tk = dims[:-1] + ["k"]
    m_h = "affine_map<(%s) -> (%s)>" % (", ".join(cd), ", ".join(tk))
    m_w = "affine_map<(%s) -> (k, %s)>" % (", ".join(cd), dims[-1])
    m_o = "affine_map<(%s) -> (%s)>" % (", ".join(cd), ", ".join(dims))
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
    o.append("  %%m = linalg.generic {indexing_maps = [%s, %s, %s], iterator_types = [%s, \"reduction\"]}"
             " ins(%%h, %%w : %s, %s) outs(%%z : %s) {" % (m_h, m_w, m_o, par, ty, mat, ty32))
    o.append("  ^bb0(%%a: %s, %%b: %s, %%c: f32):" % (et, et))
    if et == "f32":
        o.append("    %p = arith.mulf %a, %b : f32")
    else:
        o.append("    %%a32 = arith.extf %%a : %s to f32" % et)
        o.append("    %%b32 = arith.extf %%b : %s to f32" % et)
        o.append("    %p = arith.mulf %a32, %b32 : f32")
    o.append("    %s = arith.addf %c, %p : f32")
    o.append("    linalg.yield %s : f32")
    o.append("  } -> %s" % ty32)
    o.append("  %%eo = tensor.empty() : %s" % ty)
    o.append("  %%y = linalg.generic {indexing_maps = [%s, %s], iterator_types = [%s]}"
             " ins(%%m : %s) outs(%%eo : %s) {" % (ident, ident, par, ty32, ty))
    o.append("  ^bb0(%%a: f32, %%u: %s):" % et)
    o.append("    %abs = math.absf %a : f32")
    o.append("    %den = arith.addf %one, %abs : f32")
    o.append("    %q = arith.divf %a, %den : f32")
    if et == "f32":
        o.append("    linalg.yield %q : f32")
    else:
        o.append("    %%t = arith.truncf %%q : f32 to %s" % et)
        o.append("    linalg.yield %%t : %s" % et)
    o.append("  } -> %s" % ty)
    o.append("  return %%y : %s" % ty)
    o.append("}")
    o.append("")
    o.append("func.func @main() {")
    o.append("  %%v0 = arith.constant dense<%s> : %s" % (fmt_nested(p["v0"]), ty))
    for l in range(L + 1):
        o.append("  %%w%d = arith.constant dense<%s> : %s" % (l, fmt_nested(p["w"][l]), vec))
        o.append("  %%g%d = arith.constant dense<%s> : %s" % (l, fmt_nested(p["g"][l]), vec))
    for l in range(L):
        o.append("  %%W%d = arith.constant dense<%s> : %s" % (l, fmt_nested(p["mats"][l]), mat))
    srcs = ["%v0"]
    for l in range(L):
        o.append("  %%h%d = attnres.aggregate %%w%d, %%g%d over %s {epsilon = 1.0e-06 : f32} : %s"
                 % (l, l, l, ", ".join(srcs), ty))
        o.append("  %%y%d = func.call @sublayer(%%h%d, %%W%d) : (%s, %s) -> %s"
                 % (l, l, l, ty, mat, ty))
        srcs.append("%%y%d" % l)
    o.append("  %%out = attnres.aggregate %%w%d, %%g%d over %s {epsilon = 1.0e-06 : f32} : %s"
             % (L, L, ", ".join(srcs), ty))
    if et == "f32":
        o.append("  %%u = tensor.cast %%out : %s to tensor<*xf32>" % ty)
    else:
        o.append("  %%ep = tensor.empty() : %s" % ty32)
        o.append("  %%o32 = linalg.generic {indexing_maps = [%s, %s], iterator_types = [%s]}"
                 " ins(%%out : %s) outs(%%ep : %s) {" % (ident, ident, par, ty, ty32))
        o.append("  ^bb0(%%a: %s, %%u: f32):" % et)
        o.append("    %%x = arith.extf %%a : %s to f32" % et)
        o.append("    linalg.yield %x : f32")
        o.append("  } -> %s" % ty32)
        o.append("  %%u = tensor.cast %%o32 : %s to tensor<*xf32>" % ty32)
    o.append("  func.call @printMemrefF32(%u) : (tensor<*xf32>) -> ()")
    o.append("  return")
    o.append("}")
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
    idx = out.find("data =")
    if idx < 0:
        return np.array([])
    nums = re.findall(r"-?(?:nan|inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)", out[idx + 6:])
    return np.array([float(x) for x in nums], dtype=np.float64)


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
    ap.add_argument("--mlir-runner", default="/usr/lib/llvm-22/bin/mlir-runner")
    ap.add_argument("--runner-utils", default="/usr/lib/llvm-22/lib/libmlir_runner_utils.so")
    ap.add_argument("--c-runner-utils", default="/usr/lib/llvm-22/lib/libmlir_c_runner_utils.so")
    ap.add_argument("--keep", help="keep the generated modules in this directory")
    ap.add_argument("--print-module", action="store_true",
                    help="print the module of --seed and exit")
    args = ap.parse_args()
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
