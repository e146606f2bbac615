#!/usr/bin/env python3
"""Independent numpy reference of Full and Block AttnRes (semantics section 3).

Used by the execution tests under test/Integration/CPU/block/:

  block_ref.py gen   --layers L --dim D --tokens T --seed K  > chain.mlir
      Emits a Full AttnRes chain of L sublayers in @main, with random
      non-zero pseudo-queries and gains, every sublayer
      f_l(h) = leaky_relu(h @ W_l) (a func.call), and a printMemrefF32 of the
      final aggregation. With --standard: zero queries, unit gains,
      f_l(h) = leaky_relu(rmsnorm(h) @ W_l) and rmsnorm of the final
      aggregation, i.e. a standard PreNorm network converted to AttnRes
      (semantics section 4). With --norm: every sublayer starts with its own
      RMSNorm written inline in @main in linalg primitives (epsilon 1e-5,
      random gain), f_l(h) = leaky_relu(rmsnorm(h) * gn_l @ W_l), the form
      attnres-fuse-summaries fuses into attnres.merge. With --dtype bf16 or
      f16: the embedding, queries, gains and chain values are stored in that
      type (inputs rounded to it; sublayers compute in f32 and round their
      output), and the printed result is widened to f32.

  block_ref.py check --layers L ... --block-size S [--rtol R] OUTPUT
      Recomputes the same chain in float64 with numpy, in Block AttnRes form
      with block size S (S = 1 is Full AttnRes), and compares it with the
      numbers mlir-runner printed in OUTPUT. Exit status 1 on mismatch.

  block_ref.py check --standard --residual ... OUTPUT
      Compares with the standard residual network itself.

  block_ref.py compare --rtol R A B
      Compares two mlir-runner outputs with each other.

The reference does not share code with the compiler: it implements the
formulas of the semantics directly, in float64, on the inputs rounded to the
storage type (so for bf16/f16 it differs from the compiled chain by the
rounding of the intermediate values only).
"""

import argparse
import sys

import numpy as np

from attnres import defaults
from attnres import irbuilder as ir
from attnres import reference as ref
from attnres.irbuilder import dense, generic, print_and_return, printed_values

EPS = defaults.epsilon()  # the compiler's default key-norm epsilon
NORM_EPS = 1e-5


def round_to(array, dtype):
    """Rounds float32 values to bf16 or f16 (nearest even), kept as float32."""
    return ref.round_to_dtype(array, dtype).astype(np.float32)


def make_params(layers, dim, tokens, seed, standard=False, dtype="f32",
                norm=False):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    v0 = rng.standard_normal((tokens, dim)).astype(f32)
    mats = (rng.standard_normal((layers, dim, dim)) / np.sqrt(dim)).astype(f32)
    # Non-zero pseudo-queries (zero would make every aggregation a mean).
    queries = rng.standard_normal((layers + 1, dim)).astype(f32)
    gains = (1.0 + 0.25 * rng.standard_normal((layers + 1, dim))).astype(f32)
    if standard:
        # Semantics section 4: a converted standard residual network has zero
        # pseudo-queries and unit gains.
        queries = np.zeros_like(queries)
        gains = np.ones_like(gains)
    # The sublayers' own RMSNorm gains (drawn last: the other parameters do
    # not depend on --norm).
    norm_gains = (1.0 + 0.25 * rng.standard_normal((layers, dim))).astype(f32) \
        if norm else None
    if dtype != "f32":
        v0, mats, queries, gains = (round_to(a, dtype)
                                    for a in (v0, mats, queries, gains))
        if norm:
            norm_gains = round_to(norm_gains, dtype)
    return v0, mats, queries, gains, norm_gains


def rmsnorm(x):
    # No epsilon: exactly scale-invariant (the inputs are never zero).
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True))


def sublayer(h, mat, standard=False, norm_gain=None):
    if standard:
        h = rmsnorm(h)
    if norm_gain is not None:
        h = h / np.sqrt(np.mean(h * h, axis=-1, keepdims=True) + NORM_EPS) \
            * norm_gain.astype(np.float64)
    m = h @ mat
    return np.maximum(m, 0.1 * m)


def standard_residual(params):
    """The PreNorm network h_(l+1) = h_l + f_l(h_l), output rmsnorm(h_L)."""
    v0, mats, _, _, _ = params
    h = v0.astype(np.float64)
    for l in range(mats.shape[0]):
        h = h + sublayer(h, mats[l].astype(np.float64), standard=True)
    return rmsnorm(h)


def block_attnres(params, block_size, standard=False):
    """Section 3 (attnres_ref.block_attnres) over this chain's sublayers."""
    v0, mats, queries, gains, norm_gains = params

    def f(l, h):
        return sublayer(h, mats[l].astype(np.float64), standard,
                        None if norm_gains is None else norm_gains[l])

    out = ref.block_attnres(v0, queries, gains, f, block_size, EPS)
    return rmsnorm(out) if standard else out


def inline_norm(out, l, t, d, elt):
    """%n<l> = RMSNorm(%h<l>) with gain %gn<l> and epsilon NORM_EPS, written
    as front ends emit it: square, sum over D, rsqrt(s / D + eps), h * r * g."""
    ty = "tensor<%dx%dx%s>" % (t, d, elt)
    f32ty = "tensor<%dx%dxf32>" % (t, d)
    tok = "tensor<%dxf32>" % t
    ext = (lambda v: "%%x%s = arith.extf %s : %s to f32" % (v[1:], v, elt)) \
        if elt != "f32" else None
    xa = "%xa" if elt != "f32" else "%a"
    xg = "%xg" if elt != "f32" else "%g"
    pre = "%%n%d_" % l
    out.append("  %ssqe = tensor.empty() : %s" % (pre, f32ty))
    body = ([ext("%a")] if ext else []) + ["%%m = arith.mulf %s, %s : f32" % (xa, xa),
                                           "linalg.yield %m : f32"]
    out.append(generic([("%%h%d" % l, ty)], (pre + "sqe", f32ty),
                       ["(i, j) -> (i, j)", "(i, j) -> (i, j)"], ["parallel", "parallel"],
                       "%%a: %s, %%o: f32" % elt, body, (pre + "sq", f32ty)))
    out.append("  %szero = arith.constant 0.0 : f32" % pre)
    out.append("  %ssse = tensor.empty() : %s" % (pre, tok))
    out.append("  %sssz = linalg.fill ins(%szero : f32) outs(%ssse : %s) -> %s"
               % (pre, pre, pre, tok, tok))
    out.append(generic([(pre + "sq", f32ty)], (pre + "ssz", tok),
                       ["(i, j) -> (i, j)", "(i, j) -> (i)"], ["parallel", "reduction"],
                       "%a: f32, %acc: f32",
                       ["%s = arith.addf %a, %acc : f32", "linalg.yield %s : f32"],
                       (pre + "ss", tok)))
    out.append("  %srse = tensor.empty() : %s" % (pre, tok))
    out.append(generic([(pre + "ss", tok)], (pre + "rse", tok),
                       ["(i) -> (i)", "(i) -> (i)"], ["parallel"], "%a: f32, %o: f32",
                       ["%%dd = arith.constant %d.0 : f32" % d,
                        "%%ep = arith.constant %.9e : f32" % NORM_EPS,
                        "%m = arith.divf %a, %dd : f32",
                        "%s = arith.addf %m, %ep : f32",
                        "%r = math.rsqrt %s : f32", "linalg.yield %r : f32"],
                       (pre + "rs", tok)))
    out.append("  %sne = tensor.empty() : %s" % (pre, ty))
    body = ([ext("%a"), ext("%g")] if ext else []) + [
        "%%m = arith.mulf %s, %%r : f32" % xa, "%%p = arith.mulf %%m, %s : f32" % xg]
    if elt != "f32":
        body += ["%%q = arith.truncf %%p : f32 to %s" % elt, "linalg.yield %%q : %s" % elt]
    else:
        body += ["linalg.yield %p : f32"]
    out.append(generic([("%%h%d" % l, ty), (pre + "rs", tok), ("%%gn%d" % l, "tensor<%dx%s>" % (d, elt))],
                       (pre + "ne", ty),
                       ["(i, j) -> (i, j)", "(i, j) -> (i)", "(i, j) -> (j)", "(i, j) -> (i, j)"],
                       ["parallel", "parallel"], "%%a: %s, %%r: f32, %%g: %s, %%o: %s" % (elt, elt, elt),
                       body, ("%%n%d" % l, ty)))


def gen(args):
    v0, mats, queries, gains, norm_gains = make_params(
        args.layers, args.dim, args.tokens, args.seed, args.standard, args.dtype, args.norm)
    t, d, L = args.tokens, args.dim, args.layers
    std = args.standard
    elt = args.dtype
    if std and elt != "f32":
        sys.exit("gen: --standard is f32 only")
    ty = "tensor<%dx%dx%s>" % (t, d, elt)
    f32ty = "tensor<%dx%dxf32>" % (t, d)
    vec = "tensor<%dx%s>" % (d, elt)
    mat = "tensor<%dx%dxf32>" % (d, d)
    out = []
    out.append("// Generated by utils/reference/block_ref.py gen --layers %d --dim %d "
               "--tokens %d --seed %d%s%s" % (L, d, t, args.seed,
                                             " --dtype " + elt if elt != "f32" else "",
                                             " --norm" if args.norm else ""))
    out.append("func.func private @printMemrefF32(tensor<*xf32>)")
    out.append("")
    if std:
        out.append("// rmsnorm(x) = x / sqrt(mean_d x^2), no epsilon")
        out.append("func.func private @rmsnorm(%%x: %s) -> %s {" % (ty, ty))
        out.append("  %zero = arith.constant 0.0 : f32")
        out.append("  %%dim = arith.constant %d.0 : f32" % d)
        out.append("  %%e1 = tensor.empty() : tensor<%dxf32>" % t)
        out.append("  %%acc = linalg.fill ins(%%zero : f32) outs(%%e1 : tensor<%dxf32>) -> tensor<%dxf32>" % (t, t))
        tok = "tensor<%dxf32>" % t
        out.append(generic([("%x", ty)], ("%acc", tok), ["(i, j) -> (i, j)", "(i, j) -> (i)"],
                           ["parallel", "reduction"], "%a: f32, %s: f32",
                           ["%sq = arith.mulf %a, %a : f32", "%r = arith.addf %s, %sq : f32",
                            "linalg.yield %r : f32"], ("%ss", tok)))
        out.append("  %%e = tensor.empty() : %s" % ty)
        out.append(generic([("%x", ty), ("%ss", tok)], ("%e", ty),
                           ["(i, j) -> (i, j)", "(i, j) -> (i)", "(i, j) -> (i, j)"],
                           ["parallel", "parallel"], "%a: f32, %s: f32, %o: f32",
                           ["%m = arith.divf %s, %dim : f32", "%r = math.rsqrt %m : f32",
                            "%v = arith.mulf %a, %r : f32", "linalg.yield %v : f32"],
                           ("%y", ty)))
        out.append("  return %%y : %s" % ty)
        out.append("}")
        out.append("")
    out.append("// f_l(h) = leaky_relu(%s @ W_l)%s" % (
        "rmsnorm(h)" if std else "h",
        ", h = rmsnorm(h_l) * gn_l (inline in @main)" if args.norm else ""))
    out.append("func.func private @sublayer(%%h0: %s, %%w: %s) -> %s {" % (ty, mat, ty))
    if std:
        out.append("  %%h = func.call @rmsnorm(%%h0) : (%s) -> %s" % (ty, ty))
    elif elt == "f32":
        out.append("  %%h = tensor.cast %%h0 : %s to %s" % (ty, ty))
    else:
        out.append("  %%e32 = tensor.empty() : %s" % f32ty)
        out.append(generic([("%h0", ty)], ("%e32", f32ty), ["(i, j) -> (i, j)"] * 2,
                           ["parallel", "parallel"], "%%a: %s, %%o: f32" % elt,
                           ["%%x = arith.extf %%a : %s to f32" % elt, "linalg.yield %x : f32"],
                           ("%h", f32ty)))
    out.append("  %zero = arith.constant 0.0 : f32")
    out.append("  %slope = arith.constant 0.1 : f32")
    out.append("  %%ef = tensor.empty() : %s" % f32ty)
    out.append("  %%z = linalg.fill ins(%%zero : f32) outs(%%ef : %s) -> %s" % (f32ty, f32ty))
    out.append("  %%m = linalg.matmul ins(%%h, %%w : %s, %s) outs(%%z : %s) -> %s"
               % (f32ty, mat, f32ty, f32ty))
    out.append("  %%e = tensor.empty() : %s" % ty)
    body = ["%s = arith.mulf %a, %slope : f32", "%r = arith.maximumf %a, %s : f32"]
    if elt != "f32":
        body += ["%%t = arith.truncf %%r : f32 to %s" % elt, "linalg.yield %%t : %s" % elt]
    else:
        body += ["linalg.yield %r : f32"]
    out.append(generic([("%m", f32ty)], ("%e", ty), ["(i, j) -> (i, j)"] * 2,
                       ["parallel", "parallel"], "%%a: f32, %%o: %s" % elt, body, ("%y", ty)))
    out.append("  return %%y : %s" % ty)
    out.append("}")
    out.append("")
    out.append("func.func @main() {")
    out.append("  %%v0 = arith.constant %s" % dense(v0, elt))
    for l in range(L + 1):
        out.append("  %%w%d = arith.constant %s" % (l, dense(queries[l], elt)))
        out.append("  %%g%d = arith.constant %s" % (l, dense(gains[l], elt)))
    for l in range(L):
        out.append("  %%W%d = arith.constant %s" % (l, dense(mats[l], "f32")))
        if args.norm:
            out.append("  %%gn%d = arith.constant %s" % (l, dense(norm_gains[l], elt)))
    sources = ["%v0"]
    for l in range(L):
        out.append(ir.aggregate("%%h%d" % l, "%%w%d" % l, "%%g%d" % l, sources, EPS, ty,
                                "  "))
        arg = "%%h%d" % l
        if args.norm:
            inline_norm(out, l, t, d, elt)
            arg = "%%n%d" % l
        out.append("  %%y%d = func.call @sublayer(%s, %%W%d) : (%s, %s) -> %s"
                   % (l, arg, l, ty, mat, ty))
        sources.append("%%y%d" % l)
    out.append(ir.aggregate("%out", "%%w%d" % L, "%%g%d" % L, sources, EPS, ty, "  "))
    result = "%out"
    if std:
        out.append("  %%normed = func.call @rmsnorm(%%out) : (%s) -> %s" % (ty, ty))
        result = "%normed"
    out += print_and_return(result, [t, d], elt)
    print("\n".join(out))


def parse_output(path):
    values = printed_values(open(path).read())
    if values is None:
        sys.exit("%s: no printMemrefF32 output found" % path)
    return values


def compare(got, want, rtol, what):
    if got.shape != want.shape:
        print("FAIL %s: got %d numbers, expected %d" % (what, got.size, want.size))
        return 1
    scale = np.max(np.abs(want))
    err = np.max(np.abs(got - want))
    rel = err / scale
    print("%s: max |error| %.3e, relative to max |value| %.3e: %.3e (rtol %.1e)"
          % (what, err, scale, rel, rtol))
    if not np.all(np.isfinite(got)) or rel > rtol:
        print("FAIL")
        return 1
    print("PASS")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("gen", "check"):
        s = sub.add_parser(name)
        s.add_argument("--layers", type=int, required=True)
        s.add_argument("--dim", type=int, default=16)
        s.add_argument("--tokens", type=int, default=4)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--standard", action="store_true",
                       help="zero queries, unit gains, sublayers and output "
                            "behind an RMSNorm (a converted standard network)")
        s.add_argument("--norm", action="store_true",
                       help="each sublayer starts with its own RMSNorm "
                            "(epsilon 1e-5, random gain), inline in @main")
        s.add_argument("--dtype", choices=("f32", "bf16", "f16"), default="f32",
                       help="storage type of the chain values")
        if name == "check":
            s.add_argument("--block-size", type=int,
                           help="Block AttnRes with this S (1: Full)")
            s.add_argument("--residual", action="store_true",
                           help="compare with the standard residual network")
            s.add_argument("--rtol", type=float, default=1e-5)
            s.add_argument("output")
    c = sub.add_parser("compare")
    c.add_argument("--rtol", type=float, default=1e-5)
    c.add_argument("a")
    c.add_argument("b")
    args = p.parse_args()
    if args.cmd == "gen":
        gen(args)
        return 0
    if args.cmd == "check":
        params = make_params(args.layers, args.dim, args.tokens, args.seed, args.standard,
                             args.dtype, args.norm)
        if args.residual:
            want = standard_residual(params).ravel()
            what = "L=%d vs numpy standard residual network" % args.layers
        else:
            if args.block_size is None or args.block_size < 1:
                sys.exit("check: give --block-size S >= 1 or --residual")
            want = block_attnres(params, args.block_size, args.standard).ravel()
            what = "L=%d S=%d vs numpy reference" % (args.layers, args.block_size)
        return compare(parse_output(args.output), want, args.rtol, what)
    return compare(parse_output(args.b), parse_output(args.a), args.rtol,
                   "%s vs %s" % (args.b, args.a))


if __name__ == "__main__":
    sys.exit(main())
