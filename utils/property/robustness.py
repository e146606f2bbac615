#!/usr/bin/env python3
"""Numerical robustness cases of the attnres CPU path, with an f32 reference.

Part of the attnres project; see docs/reliability.md.

  robustness.py list
  robustness.py gen CASE   > case.mlir      (a module whose @main prints results)
  robustness.py check CASE < runner-output  (exit 1 on mismatch)

Each case holds sources with extreme magnitudes (1e30 and 1e-30 in f32,
subnormals, 6e4 and subnormals in f16, 1e30 and 1e-35 in bf16, block sums that overflow), all-equal scores, or
NaN/Inf entries. The reference follows docs/spec.md literally *in f32*
(numpy float32 arithmetic, spec 0.3): squares of 1e30 overflow to +Inf, so
r = 1/sqrt(Inf) = 0 and every score is 0; squares of 1e-30 underflow to 0, so
r = 1/sqrt(eps); a NaN or Inf in a source token makes that token's score NaN
and the whole output token NaN (spec 0.6); one source is returned as it is
(A.2). A float64 reference would not overflow and would be wrong here.

Comparison: the NaN pattern must match exactly; infinities must match in
sign; finite values within tol * (max |ref| of the token) + tol * |ref|, with
tol 1e-5 (f32), 2e-3 (f16), 1e-2 (bf16) (the output is printed in f32 with 6
significant digits). The generated constants are given bit-exactly (hex for
NaN and Inf) and the reference reads them back from the same generator.
"""

import sys

import numpy as np

from attnres import defaults
from attnres import irbuilder as ir
from attnres import reference as ref
from attnres.irbuilder import dense, print_and_return, printed_values

TOL = {"f32": 1e-5, "f16": 2e-3, "bf16": 1e-2}
EPS = np.float32(defaults.epsilon())  # the compiler's default key-norm epsilon


def to_storage(x, dtype):
    """float64 array -> float32 array holding values exactly representable in
    the storage type (round to nearest even)."""
    return ref.round_to_dtype(x, dtype).astype(np.float32)


# --------------------------------------------------------------------------
# Cases.


def rng_for(name):
    return np.random.default_rng(sum(map(ord, name)) * 7919)


def nonzero_vec(rng, d, lo=0.5, hi=1.5):
    return rng.uniform(lo, hi, d) * rng.choice([-1.0, 1.0], d)


def make_cases():
    cases = {}

    def agg_case(name, dtype, sources, doc, T=3, D=8):
        rng = rng_for(name)
        w = to_storage(nonzero_vec(rng, D), dtype)
        g = to_storage(nonzero_vec(rng, D), dtype)
        srcs = [to_storage(s, dtype) for s in sources(rng, T, D)]
        cases[name] = {"op": "aggregate", "dtype": dtype, "w": w, "g": g,
                       "sources": srcs, "doc": doc}

    def mixed(rng, T, D, scale, n=4):
        return [rng.standard_normal((T, D)) * scale for _ in range(n)]

    agg_case("huge_f32", "f32", lambda r, T, D: mixed(r, T, D, 1e30),
             "f32 sources of magnitude 1e30: squares overflow, r = 0, all scores 0, h = mean")
    agg_case("large_f32", "f32", lambda r, T, D: mixed(r, T, D, 1e17),
             "f32 sources of magnitude 1e17: squares near 1e34, no overflow")
    agg_case("mixed_huge_f32", "f32",
             lambda r, T, D: [r.standard_normal((T, D)) * s for s in (1e30, 1.0, 1e-3, 1e15)],
             "f32 sources of magnitudes 1e30, 1, 1e-3, 1e15 in one aggregation")
    agg_case("tiny_f32", "f32", lambda r, T, D: mixed(r, T, D, 1e-30),
             "f32 sources of magnitude 1e-30: squares underflow to 0, r = 1/sqrt(eps)")
    agg_case("subnormal_f32", "f32", lambda r, T, D: mixed(r, T, D, 1e-40),
             "f32 subnormal sources (1e-40)")
    agg_case("huge_f16", "f16", lambda r, T, D: [np.clip(x, -6e4, 6e4) for x in mixed(r, T, D, 3e4)],
             "f16 sources up to 6e4 (f16 max 65504); f32 arithmetic does not overflow")
    agg_case("subnormal_f16", "f16", lambda r, T, D: mixed(r, T, D, 2e-6),
             "f16 subnormal sources (2e-6 < 6.1e-5)")
    agg_case("huge_bf16", "bf16", lambda r, T, D: mixed(r, T, D, 1e30),
             "bf16 sources of magnitude 1e30: squares overflow in f32, r = 0, h = mean")
    agg_case("tiny_bf16", "bf16", lambda r, T, D: mixed(r, T, D, 1e-35),
             "bf16 sources of magnitude 1e-35")

    def equal_scores(r, T, D):
        # v_i = c_i * u with c_i > 0: RMSNorm is scale-invariant, so every
        # score is the same (up to eps) although the sources differ.
        u = r.standard_normal((T, D))
        return [u * c for c in (0.5, 1.0, 2.0, 4.0, 8.0)]

    agg_case("equal_scores_f32", "f32", equal_scores,
             "f32 positive multiples of one vector: all scores equal, h = mean")
    agg_case("equal_scores_bf16", "bf16", equal_scores,
             "bf16 positive multiples of one vector: all scores equal")
    agg_case("identical_f16", "f16", lambda r, T, D: [r.standard_normal((T, D))] * 6,
             "f16 six identical sources: h = the source")
    agg_case("zero_token_f32", "f32",
             lambda r, T, D: [np.where(np.arange(T)[:, None] == 1, 0.0, r.standard_normal((T, D)))
                              for _ in range(3)],
             "f32 token 1 all zeros in every source (r = 1/sqrt(eps), score 0)")

    def with_special(values, kind):
        def make(r, T, D):
            srcs = [r.standard_normal((T, D)) for _ in range(3)]
            for (src, tok, d), val in zip(values, kind):
                srcs[src][tok, d] = val
            return srcs
        return make

    agg_case("nan_f32", "f32", with_special([(1, 0, 3)], [np.nan]),
             "f32 NaN in source 1 token 0: token 0 is NaN, tokens 1, 2 finite")
    agg_case("inf_f32", "f32", with_special([(0, 2, 0)], [np.inf]),
             "f32 +Inf in source 0 token 2: token 2 is NaN (Inf*0 or Inf-Inf)")
    agg_case("neg_inf_f16", "f16", with_special([(2, 1, 5)], [-np.inf]),
             "f16 -Inf in source 2 token 1: token 1 is NaN")
    agg_case("nan_inf_bf16", "bf16", with_special([(0, 0, 0), (1, 2, 7)], [np.nan, np.inf]),
             "bf16 NaN in token 0 and Inf in token 2: those tokens NaN, token 1 finite")
    agg_case("one_source_inf_f32", "f32",
             lambda r, T, D: [np.where((np.arange(T)[:, None] == 0) & (np.arange(D) == 2), np.inf,
                                       r.standard_normal((T, D)))],
             "f32 one source holding +Inf: h = the source bit for bit (A.2)")
    agg_case("one_source_nan_bf16", "bf16",
             lambda r, T, D: [np.where((np.arange(T)[:, None] == 1) & (np.arange(D) == 4), np.nan,
                                       r.standard_normal((T, D)))],
             "bf16 one source holding NaN: h = the source (A.2)")

    def bs_case(name, dtype, doc, specials):
        rng = rng_for(name)
        T, D = 3, 8
        ins = [rng.standard_normal((T, D)) * 1e38 if dtype != "f16" else
               rng.standard_normal((T, D)) * 3e4 for _ in range(3)]
        for (i, tok, d), val in specials:
            ins[i][tok, d] = val
        cases[name] = {"op": "block_sum", "dtype": dtype,
                       "sources": [to_storage(x, dtype) for x in ins], "doc": doc}

    bs_case("block_sum_overflow_f32", "f32",
            "f32 block_sum of values near 1e38: overflow to +-Inf as f32 addition does; Inf + -Inf = NaN",
            [((0, 0, 0), np.inf), ((1, 0, 0), -np.inf), ((2, 1, 1), np.nan)])
    bs_case("block_sum_overflow_f16", "f16",
            "f16 block_sum near 3e4: sums above 65504 round to Inf in f16",
            [((0, 2, 3), np.inf)])
    return cases


# --------------------------------------------------------------------------
# Module generation.

def gen(name, c):
    dt = c["dtype"]
    T, D = c["sources"][0].shape
    ty = "tensor<%dx%dx%s>" % (T, D, dt)
    o = ["// Generated by utils/property/robustness.py gen %s: %s" % (name, c["doc"]),
         "func.func private @printMemrefF32(tensor<*xf32>)", "",
         "func.func @main() {"]
    for i, s in enumerate(c["sources"]):
        o.append("  %%v%d = arith.constant %s" % (i, dense(s, dt)))
    names = ["%%v%d" % i for i in range(len(c["sources"]))]
    if c["op"] == "aggregate":
        o.append("  %%w = arith.constant %s" % dense(c["w"], dt))
        o.append("  %%g = arith.constant %s" % dense(c["g"], dt))
        o.append(ir.aggregate("%h", "%w", "%g", names, EPS, ty, "  "))
    else:
        o.append(ir.block_sum("%h", names, ty, "  "))
    o += print_and_return("%h", [T, D], dt)
    return "\n".join(o) + "\n"


def reference(c):
    with np.errstate(all="ignore"):
        # The reference in f32 arithmetic (spec A.2, B.1): the non-finite
        # cases must propagate as f32 math does.
        if c["op"] == "aggregate":
            h = ref.aggregate(c["w"], c["g"], c["sources"], EPS, compute="f32")
        else:
            h = ref.block_sum(c["sources"], compute="f32")
        return to_storage(h.astype(np.float64), c["dtype"]).astype(np.float64)


def parse_output(text):
    values = printed_values(text)
    if values is None:
        sys.exit("robustness: no printMemrefF32 output")
    return values


def check(name, c, text):
    want = reference(c)
    got = parse_output(text).reshape(want.shape) if parse_output(text).size == want.size \
        else None
    if got is None:
        print("FAIL %s: printed %d values, expected %d" % (name, parse_output(text).size, want.size))
        return 1
    tol = TOL[c["dtype"]]
    np.seterr(all="ignore")
    fin = np.where(np.isfinite(want), np.abs(want), 0.0)
    scale = np.max(fin, axis=-1, keepdims=True)
    bad = np.zeros(want.shape, bool)
    bad |= np.isnan(want) != np.isnan(got)
    inf = np.isinf(want)
    bad |= inf & ~(got == want)
    bad |= np.isinf(got) & ~inf
    both = np.isfinite(want) & np.isfinite(got)
    err = np.where(both, np.abs(got - want), 0.0)
    bad |= both & (err > tol * scale + tol * np.abs(np.where(both, want, 0.0)))
    print("%s (%s): %d NaN and %d Inf expected; %s" % (
        name, c["doc"], int(np.isnan(want).sum()), int(inf.sum()),
        "%d of %d elements wrong" % (bad.sum(), want.size) if bad.any() else "all match"))
    for i in np.argwhere(bad)[:8]:
        i = tuple(int(x) for x in i)
        print("  at %s: got %r, reference %r" % (i, got[i], want[i]))
    print("FAIL" if bad.any() else "PASS")
    return 1 if bad.any() else 0


def main():
    cases = make_cases()
    if len(sys.argv) >= 2 and sys.argv[1] == "list":
        for n, c in cases.items():
            print("%-24s %s" % (n, c["doc"]))
        return 0
    if len(sys.argv) != 3 or sys.argv[1] not in ("gen", "check") or sys.argv[2] not in cases:
        sys.exit("usage: robustness.py list | gen CASE | check CASE < output")
    name = sys.argv[2]
    if sys.argv[1] == "gen":
        sys.stdout.write(gen(name, cases[name]))
        return 0
    return check(name, cases[name], sys.stdin.read())


if __name__ == "__main__":
    sys.exit(main())
