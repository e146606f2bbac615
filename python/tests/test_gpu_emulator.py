"""The GPU kernels of convert-attnres-to-gpu run on the CPU through
attnres.gpu_emulator and checked against the float64 reference.

CI has no GPU; bench/kernels_check checks the kernels on one. These tests
check, at small random shapes, the tensor-core kernels whose indexing is
easiest to get wrong: block_score_grad's per-token kernel (default, with w*g
split once per call, with the source gradients on the tensor cores), the
tensor-core phase-1 kernel (default, split, second sweep on the tensor
cores) and the split kernel itself. The emulator is
validated by the default kernels, which a GPU has checked (bench/NOTES.md
run 27: block_score_grad `_tc`; run 11: phase 1): if its mma fragment layout
or its memory model were wrong, they would fail here. Every comparison has a
control that must fail (a wrong formula, or a wrong kernel).

Tolerances: the outputs are bf16, so reference.TOLERANCE["bf16"] (1e-2
relative Frobenius error; the kernels reach 1.5e-3 to 1.8e-3).
"""

import numpy as np
import pytest

from attnres import defaults, gpu_emulator as ge, irbuilder as ir, reference

TOL = reference.TOLERANCE["bf16"]
EPS = defaults.epsilon()


def bf(x):
    return ge.to_bf16(np.asarray(x, dtype=np.float32))


def f64(bits):
    return ge.from_bf16(bits).astype(np.float64)


def split_kernel_run(kernels, W, G):
    """Runs query_gain_split when the module has it: (hi, lo) bit patterns,
    NaN-filled first; else (W, G)."""
    split = [k for k in kernels.values() if k.name.startswith("query_gain_split")]
    if not split:
        return W, G
    hi = np.full(W.shape, 0x7FC0, dtype=np.uint16)
    lo = hi.copy()
    k = split[0]
    ge.run_kernel(k, [W, G, hi, lo], -(-(W.size // 8) // k.block))
    return hi, lo


def score_grad(n, s, d, t, acc, options, seed=0, grid=None):
    """block_score_grad's per-token kernel on random bf16 inputs of
    magnitudes 0.5 .. 0.5 + 0.3 n, with the float64 forward's statistics:
    (db [n, t, d] float64, coef, inputs)."""
    rng = np.random.default_rng(seed)
    kernels = ge.compile_kernels(ir.kernel_block_score_grad("k", "bf16", d, s, n, EPS, acc), options)
    main = [k for k in kernels.values()
            if "_tc" in k.name and not k.name.startswith(("param", "query_gain"))][0]
    W = bf(rng.standard_normal((s, d)) / np.sqrt(d))
    G = bf(1.0 + 0.1 * rng.standard_normal((s, d)))
    srcs = [bf(rng.standard_normal((t, d)) * (0.5 + 0.3 * i)) for i in range(n)]
    dout = bf(rng.standard_normal((s, t, d)))
    dlse = (2.0 * rng.standard_normal((s, t))).astype(np.float32)
    accs = [bf(rng.standard_normal((t, d))) for _ in range(n)] if acc else []
    lse = np.asarray(reference.block_score(f64(W), f64(G), [f64(x) for x in srcs], EPS)[1], np.float32)
    rs = [np.asarray(reference.inv_rms(f64(x), EPS), np.float32) for x in srcs]
    dbs = [np.full((t, d), 0x7FC0, dtype=np.uint16) for _ in range(n)]
    coef = np.full((t, s * n), np.nan, dtype=np.float32)
    WA, GA = split_kernel_run(kernels, W, G)
    args = [WA, GA] + srcs + [lse] + rs + [dout, dlse] + accs + dbs + [coef, t]
    ge.run_kernel(main, args, grid or t)
    inputs = dict(W=W, G=G, srcs=srcs, dout=dout, dlse=dlse, accs=accs)
    return np.stack([f64(x) for x in dbs]), coef, inputs


def score_grad_ref(inp, dlse_sign=1.0):
    db, _, _ = reference.block_score_grad(f64(inp["W"]), f64(inp["G"]), [f64(x) for x in inp["srcs"]],
                                          EPS, f64(inp["dout"]), dlse_sign * inp["dlse"].astype(np.float64))
    db = np.asarray(db)
    if inp["accs"]:
        db = db + np.stack([f64(a) for a in inp["accs"]])
    return db


SCORE_GRAD_OPTIONS = {
    "tc": "grad-tensor-cores=1",
    "qs": "split-query-gains=1",
    "ms": "score-grad-mma-sweep=1",
}

# (n, S, D, T, accumulators): padded queries (S = 1, 2, 6, 12), one and two
# A / m tiles (n = 1 .. 17, half-empty at 9), D not a multiple of 32 or 64,
# accumulators.
SCORE_GRAD_SHAPES = [(2, 6, 104, 3, False), (3, 2, 40, 2, False), (5, 6, 104, 2, True),
                     (17, 12, 64, 2, False), (1, 1, 64, 2, True), (9, 8, 136, 2, False)]


@pytest.mark.parametrize("variant", sorted(SCORE_GRAD_OPTIONS))
@pytest.mark.parametrize("shape", SCORE_GRAD_SHAPES, ids=lambda s: "n%d_s%d_d%d_t%d%s" % (
    s[0], s[1], s[2], s[3], "_acc" if s[4] else ""))
def test_block_score_grad_kernel(variant, shape):
    db, coef, inp = score_grad(*shape, SCORE_GRAD_OPTIONS[variant])
    assert np.isfinite(db).all() and np.isfinite(coef).all(), "unwritten outputs"
    ref = score_grad_ref(inp)
    err = reference.rel_error(db, ref)
    assert err <= TOL, err
    # Control: the gradient with dlse's sign flipped is not accepted.
    assert reference.rel_error(db, score_grad_ref(inp, -1.0)) > TOL


def test_block_score_grad_mma_sweep_benchmark_shape():
    """The mma sweep at a benchmark shape (n = 9, S = 8, D = 4096, with
    accumulators), at the default 256 threads and at 128 (elements-per-
    thread=32: four warps, twice the blocks per warp)."""
    for options in ("score-grad-mma-sweep=1", "score-grad-mma-sweep=1 elements-per-thread=32"):
        db, _, inp = score_grad(9, 8, 4096, 2, True, options)
        assert reference.rel_error(db, score_grad_ref(inp)) <= TOL, options


def test_block_score_grad_persistent_mma_sweep():
    """Persistent CTAs (one CTA takes all the tokens in turn) with the mma
    source-gradient sweep."""
    db, _, inp = score_grad(5, 6, 104, 3, True, "score-grad-mma-sweep=1 score-grad-persistent=1 grad-ctas=2",
                            grid=1)
    assert reference.rel_error(db, score_grad_ref(inp)) <= TOL


def test_split_query_gains_is_bit_identical():
    """w*g split once per call gives the same bits as the default kernel
    (hi + lo = w*g exactly); the mma sweep does not (other rounding)."""
    shape = (9, 8, 136, 2, True)
    a, ca, _ = score_grad(*shape, SCORE_GRAD_OPTIONS["tc"])
    b, cb, _ = score_grad(*shape, SCORE_GRAD_OPTIONS["qs"])
    c, _, _ = score_grad(*shape, SCORE_GRAD_OPTIONS["ms"])
    assert np.array_equal(a, b) and np.array_equal(ca, cb)
    assert not np.array_equal(a, c)


def test_mma_sweep_control_kernel_fails():
    """A wrong kernel fails: the mma sweep's rows paired in the other order
    (the operands of every nvvm.prmt swapped, so that each B register holds
    row 2 tig + 1 in its low half) misses the reference by far."""
    kernels = ge.compile_kernels(ir.kernel_block_score_grad("k", "bf16", 64, 6, 3, EPS, False),
                                 SCORE_GRAD_OPTIONS["ms"])
    main = [k for k in kernels.values() if k.name.endswith("_ms")][0]
    perms = [op for op in _walk(main.region) if op.name == "nvvm.prmt"]
    assert perms, "no pairing nvvm.prmt in the mma sweep"
    for op in perms:
        op.operands[0], op.operands[1] = op.operands[1], op.operands[0]
    rng = np.random.default_rng(3)
    n, s, d, t = 3, 6, 64, 2
    W, G = bf(rng.standard_normal((s, d)) / 8), bf(1 + 0.1 * rng.standard_normal((s, d)))
    srcs = [bf(rng.standard_normal((t, d))) for _ in range(n)]
    dout, dlse = bf(rng.standard_normal((s, t, d))), rng.standard_normal((s, t)).astype(np.float32)
    lse = np.asarray(reference.block_score(f64(W), f64(G), [f64(x) for x in srcs], EPS)[1], np.float32)
    rs = [np.asarray(reference.inv_rms(f64(x), EPS), np.float32) for x in srcs]
    dbs = [np.full((t, d), 0x7FC0, dtype=np.uint16) for _ in range(n)]
    hi, lo = split_kernel_run(kernels, W, G)
    ge.run_kernel(main, [hi, lo] + srcs + [lse] + rs + [dout, dlse] + dbs
                  + [np.zeros((t, s * n), np.float32), t], t)
    ref = score_grad_ref(dict(W=W, G=G, srcs=srcs, dout=dout, dlse=dlse, accs=[]))
    assert reference.rel_error(np.stack([f64(x) for x in dbs]), ref) > 10 * TOL


def _walk(region):
    for op in region.ops:
        yield op
        for sub in op.regions:
            yield from _walk(sub)


def test_query_gain_split_kernel():
    """hi + lo = w*g exactly in f32; hi is w*g's upper 16 bits."""
    rng = np.random.default_rng(1)
    s, d = 3, 200
    W, G = bf(rng.standard_normal((s, d)) * 3), bf(rng.standard_normal((s, d)))
    kernels = ge.compile_kernels(ir.kernel_block_score_grad("k", "bf16", d, s, 2, EPS, False),
                                 "split-query-gains=1")
    hi, lo = split_kernel_run(kernels, W, G)
    wg = ge.from_bf16(W) * ge.from_bf16(G)
    assert np.array_equal(ge.from_bf16(hi) + ge.from_bf16(lo), wg)
    assert np.array_equal(hi, (wg.view(np.uint32) >> 16).astype(np.uint16))


def _score_module(n, s, d, inv):
    src, q = ir.tensor_type(["?", d], "bf16"), ir.tensor_type([s, d], "bf16")
    out, lse = ir.tensor_type([s, "?", d], "bf16"), ir.tensor_type([s, "?"], "f32")
    names = ["%%v%d" % i for i in range(n)]
    rs = ["%%r%d" % i for i in range(n)] if inv else []
    args = ([("%W", q), ("%G", q)] + [(v, src) for v in names]
            + [(r, ir.tensor_type(["?"], "f32")) for r in rs] + [("%o", out), ("%l", lse)])
    body = [ir.block_score(("%a", "%b"), "%W", "%G", names, ("%o", "%l"), None, src, out, rs or None)]
    return ir.func("k", args, [("%a", out), ("%b", lse)], body)


def block_score(n, s, d, t, inv, options, seed=0):
    """The tensor-core phase-1 kernel (one CTA, or a cluster of CTAs, per
    token) on random bf16 inputs: (out, lse, reference out, reference
    lse)."""
    rng = np.random.default_rng(seed)
    kernels = ge.compile_kernels(_score_module(n, s, d, inv), "score-small-tokens=0 " + options)
    main = [k for k in kernels.values() if "_tc" in k.name][0]
    W = bf(2.0 * rng.standard_normal((s, d)) / np.sqrt(d))
    G = bf(1.0 + 0.1 * rng.standard_normal((s, d)))
    srcs = [bf(rng.standard_normal((t, d)) * (0.5 + 0.3 * i)) for i in range(n)]
    rs = [np.asarray(reference.inv_rms(f64(x), EPS), np.float32) for x in srcs] if inv else []
    out = np.full((s, t, d), 0x7FC0, dtype=np.uint16)
    lse = np.full((s, t), np.nan, dtype=np.float32)
    WA, GA = split_kernel_run(kernels, W, G)
    ge.run_kernel(main, [WA, GA] + srcs + rs + [out, lse, t, np.float32(EPS)], t * main.cluster)
    ref, lref = reference.block_score(f64(W), f64(G), [f64(x) for x in srcs], EPS)
    return f64(out), lse, np.asarray(ref), np.asarray(lref)


# Bulk copies into shared memory (4096 < D < 8192: one CTA when the rows fit
# 100 KB, else a cluster of two CTAs with half of the columns each; or
# cluster-split=4): the rows reach shared memory by cp.async.bulk on an
# mbarrier, the clusters add each other's partial logits through mapa.
BULK_SHAPES = [((2, 8, 6144, 2, True), ""), ((5, 6, 7168, 2, False), ""), ((9, 3, 7168, 2, False), ""),
               ((3, 8, 2048, 2, False), "cluster-split=4")]


@pytest.mark.parametrize("sweep", ["", "score-mma-sweep=1"])
@pytest.mark.parametrize("shape,extra", BULK_SHAPES, ids=["tma", "tma_n5", "tma_x2", "tma_x4"])
def test_block_score_bulk_copy_and_cluster_kernels(shape, extra, sweep):
    out, lse, ref, lref = block_score(*shape, extra + " " + sweep)
    assert np.isfinite(out).all() and np.isfinite(lse).all()
    assert reference.rel_error(out, ref) <= TOL
    assert reference.rel_error(lse.astype(np.float64), lref) <= 1e-5


def test_aggregate_kernel():
    """The CUDA-core aggregate kernel (warp shuffles, several tokens per CTA
    at small D, the small-T kernel) against the reference."""
    for n, d, t in [(3, 64, 5), (9, 4096, 3), (5, 1000, 3)]:
        rng = np.random.default_rng(n)
        kernels = ge.compile_kernels(ir.kernel_aggregate("k", "bf16", d, n, None))
        w, g = bf(3.0 * rng.standard_normal(d) / np.sqrt(d)), bf(1.0 + 0.1 * rng.standard_normal(d))
        srcs = [bf(rng.standard_normal((t, d)) * (0.5 + 0.3 * i)) for i in range(n)]
        ref = np.asarray(reference.aggregate(f64(w), f64(g), [f64(x) for x in srcs], EPS))
        for k in kernels.values():
            out = np.full((t, d), 0x7FC0, dtype=np.uint16)
            ge.run_kernel(k, [w, g] + srcs + [out, t, np.float32(EPS)], t)
            assert reference.rel_error(f64(out), ref) <= TOL, k.name


@pytest.mark.parametrize("options", ["", "split-query-gains=1", "score-mma-sweep=1",
                                     "score-mma-sweep=1 split-query-gains=1"])
@pytest.mark.parametrize("shape", [(3, 6, 104, 3, False), (5, 10, 200, 2, True), (17, 9, 64, 2, False),
                                   (16, 20, 136, 2, True), (9, 8, 200, 2, False)])
def test_block_score_kernel(options, shape):
    out, lse, ref, lref = block_score(*shape, options)
    assert np.isfinite(out).all() and np.isfinite(lse).all()
    assert reference.rel_error(out, ref) <= TOL
    assert reference.rel_error(lse.astype(np.float64), lref) <= 1e-5
    # Control: another token's outputs are not accepted.
    assert reference.rel_error(out, ref[:, ::-1]) > TOL


def test_block_score_one_source_is_exact():
    """Spec D.1: with one source out = b_0 bit for bit, also when sweep 2
    runs on the tensor cores (weight 1 = 1.0 hi + 0 lo)."""
    for options in ("", "score-mma-sweep=1"):
        rng = np.random.default_rng(5)
        kernels = ge.compile_kernels(_score_module(1, 3, 72, False), "score-small-tokens=0 " + options)
        main = [k for k in kernels.values() if "_tc" in k.name][0]
        W, G = bf(rng.standard_normal((3, 72))), bf(rng.standard_normal((3, 72)))
        src = bf(rng.standard_normal((2, 72)) * 3)
        out = np.full((3, 2, 72), 0x7FC0, dtype=np.uint16)
        lse = np.full((3, 2), np.nan, dtype=np.float32)
        ge.run_kernel(main, [W, G, src, out, lse, 2, np.float32(EPS)], 2)
        assert all(np.array_equal(out[l], src) for l in range(3)), options


def test_block_score_mma_sweep_control_kernel_fails():
    """Sweep 2 on the tensor cores with its rows paired the wrong way round
    misses the reference by far."""
    kernels = ge.compile_kernels(_score_module(5, 6, 64, False), "score-small-tokens=0 score-mma-sweep=1")
    main = [k for k in kernels.values() if "_tc" in k.name][0]
    perms = [op for op in _walk(main.region) if op.name == "nvvm.prmt"]
    assert perms
    for op in perms:
        op.operands[0], op.operands[1] = op.operands[1], op.operands[0]
    rng = np.random.default_rng(2)
    W, G = bf(rng.standard_normal((6, 64)) / 4), bf(1 + 0.1 * rng.standard_normal((6, 64)))
    srcs = [bf(rng.standard_normal((2, 64))) for _ in range(5)]
    out = np.full((6, 2, 64), 0x7FC0, dtype=np.uint16)
    lse = np.full((6, 2), np.nan, dtype=np.float32)
    ge.run_kernel(main, [W, G] + srcs + [out, lse, 2, np.float32(EPS)], 2)
    ref, _ = reference.block_score(f64(W), f64(G), [f64(x) for x in srcs], EPS)
    assert reference.rel_error(f64(out), np.asarray(ref)) > 10 * TOL


def test_block_score_split_is_bit_identical():
    a = block_score(5, 10, 200, 2, True, "")
    b = block_score(5, 10, 200, 2, True, "split-query-gains=1")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_out_of_bounds_read_is_reported():
    """A source with fewer rows than T: the kernel's loads of the missing
    token are out of bounds, and the emulator says so."""
    kernels = ge.compile_kernels(ir.kernel_block_score_grad("k", "bf16", 64, 2, 2, EPS, False),
                                 SCORE_GRAD_OPTIONS["tc"])
    main = [k for k in kernels.values() if k.name.endswith("_tc")][0]
    t, d, s, n = 2, 64, 2, 2
    z = lambda *shape: np.zeros(shape, dtype=np.uint16)  # noqa: E731
    zf = lambda *shape: np.zeros(shape, dtype=np.float32)  # noqa: E731
    args = [z(s, d), z(s, d), z(t, d), z(t - 1, d), zf(s, t), zf(t), zf(t), z(s, t, d), zf(s, t),
            z(t, d), z(t, d), zf(t, s * n), t]
    with pytest.raises(ge.EmulatorError, match="out-of-bounds"):
        ge.run_kernel(main, args, t)


def test_unsupported_op_is_an_error():
    kernels = ge.parse_kernels('''
    "gpu.func"() <{function_type = (index) -> (), known_block_size = array<i32: 32, 1, 1>}> ({
    ^bb0(%arg0: index):
      %0 = "arith.floordivsi"(%arg0, %arg0) : (index, index) -> index
      "gpu.return"() : () -> ()
    }) {gpu.kernel, sym_name = "k"} : () -> ()
    ''')
    with pytest.raises(ge.EmulatorError, match="unsupported op arith.floordivsi"):
        ge.run_kernel(kernels["k"], [1], 1)


# ---------------------------------------------------------------------------
# Whole ops: the host function of convert-attnres-to-gpu (buffers, workspaces,
# the run-time branches, every launch) with its kernels, on the CPU.
# ---------------------------------------------------------------------------

def storage(x, e):
    """float values -> the kernel's storage (bf16 / f16 bits, or f32)."""
    x = np.asarray(x, dtype=np.float32)
    if e == "bf16":
        return bf(x)
    if e == "f16":
        return x.astype(np.float16).view(np.uint16)
    return x


def value(x, e):
    """A kernel's storage -> float64."""
    if e == "bf16":
        return f64(x)
    if e == "f16":
        return np.asarray(x).view(np.float16).astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def rand_rows(rng, shape, e, scale=1.0):
    return storage(rng.standard_normal(shape) * scale, e)


OP_TOL = {"bf16": TOL, "f16": reference.TOLERANCE["f16"], "f32": 1e-5}


@pytest.mark.parametrize("e,n,d,t", [("bf16", 3, 104, 5), ("f16", 4, 64, 3), ("f32", 2, 13, 3),
                                     ("bf16", 1, 40, 2)])
def test_aggregate_stats_and_grad_ops(e, n, d, t):
    rng = np.random.default_rng(n + d)
    w, g = rand_rows(rng, (d,), e, 2.0 / np.sqrt(d)), storage(1.0 + 0.1 * rng.standard_normal(d), e)
    srcs = [rand_rows(rng, (t, d), e, 0.5 + 0.3 * i) for i in range(n)]
    fw, fg, fs = value(w, e), value(g, e), [value(x, e) for x in srcs]
    mod = ge.compile_module(ir.kernel_aggregate_stats("k", e, d, n, EPS))
    h, lse, *rs = ge.run_function(mod, "k", [w, g] + srcs)
    lref, rref = reference.aggregate_stats(fw, fg, fs, EPS)
    assert reference.rel_error(value(h, e), reference.aggregate(fw, fg, fs, EPS)) <= OP_TOL[e]
    assert reference.rel_error(lse.astype(np.float64), lref) <= 1e-5
    assert max(reference.rel_error(r.astype(np.float64), rref[i]) for i, r in enumerate(rs)) <= 1e-5
    if n == 1:
        assert np.array_equal(h, srcs[0])  # spec A.2: h = v_0 bit for bit
    dh = rand_rows(rng, (t, d), e)
    mod = ge.compile_module(ir.kernel_aggregate_grad("k", e, d, n, EPS))
    outs = ge.run_function(mod, "k", [w, g] + srcs + [lse] + rs + [dh])
    rdv, rdq, rdg = reference.aggregate_grad(fw, fg, fs, EPS, value(dh, e))
    assert reference.rel_error(np.stack([value(x, e) for x in outs[:n]]), np.asarray(rdv)) <= OP_TOL[e]
    if n > 1:
        assert reference.rel_error(outs[n].astype(np.float64), rdq) <= 1e-4
        assert reference.rel_error(outs[n + 1].astype(np.float64), rdg) <= 1e-4


@pytest.mark.parametrize("e,n,s,d,t,options", [
    ("bf16", 3, 6, 104, 5, ""),                       # T <= 16: the one-query kernel
    ("bf16", 3, 6, 104, 17, ""),                      # the tensor-core kernel
    ("bf16", 2, 8, 6144, 17, "split-query-gains=1"),  # bulk copies, the split kernel first
    ("f32", 3, 6, 100, 3, ""), ("f16", 2, 3, 72, 20, "")])
def test_block_score_op(e, n, s, d, t, options):
    rng = np.random.default_rng(t)
    W, G = rand_rows(rng, (s, d), e, 2.0 / np.sqrt(d)), storage(1.0 + 0.1 * rng.standard_normal((s, d)), e)
    srcs = [rand_rows(rng, (t, d), e, 0.5 + 0.3 * i) for i in range(n)]
    mod = ge.compile_module(ir.kernel_block_score("k", e, d, s, n, EPS), options)
    out, lse = ge.run_function(mod, "k", [W, G] + srcs)
    ref, lref = reference.block_score(value(W, e), value(G, e), [value(x, e) for x in srcs], EPS)
    assert reference.rel_error(value(out, e), ref) <= OP_TOL[e]
    assert reference.rel_error(lse.astype(np.float64), lref) <= 1e-5


@pytest.mark.parametrize("e,n,s,d,t,options", [
    ("bf16", 3, 6, 104, 5, ""), ("bf16", 2, 3, 40, 4, "score-grad-mma-sweep=1"),
    ("f32", 2, 3, 13, 7, ""), ("f16", 3, 2, 72, 3, "")])
def test_block_score_grad_op(e, n, s, d, t, options):
    """All three kernels (per token, parameter partials, their ordered
    reduction): db, dW and dG against the reference."""
    rng = np.random.default_rng(d)
    W, G = rand_rows(rng, (s, d), e, 1.0 / np.sqrt(d)), storage(1.0 + 0.1 * rng.standard_normal((s, d)), e)
    srcs = [rand_rows(rng, (t, d), e, 0.5 + 0.3 * i) for i in range(n)]
    fW, fG, fs = value(W, e), value(G, e), [value(x, e) for x in srcs]
    dout, dlse = rand_rows(rng, (s, t, d), e), rng.standard_normal((s, t)).astype(np.float32)
    lse = np.asarray(reference.block_score(fW, fG, fs, EPS)[1], np.float32)
    rs = [np.asarray(reference.inv_rms(x, EPS), np.float32) for x in fs]
    mod = ge.compile_module(ir.kernel_block_score_grad("k", e, d, s, n, EPS), options)
    outs = ge.run_function(mod, "k", [W, G] + srcs + [lse] + rs + [dout, dlse])
    rdb, rdW, rdG = reference.block_score_grad(fW, fG, fs, EPS, value(dout, e), dlse.astype(np.float64))
    assert reference.rel_error(np.stack([value(x, e) for x in outs[:n]]), np.asarray(rdb)) <= OP_TOL[e]
    assert reference.rel_error(outs[n].astype(np.float64), rdW) <= 1e-4
    assert reference.rel_error(outs[n + 1].astype(np.float64), rdG) <= 1e-4


@pytest.mark.parametrize("e,d,t,partial,norm", [("bf16", 104, 5, True, False), ("bf16", 104, 4, False, True),
                                                ("f32", 37, 3, True, True), ("f16", 64, 3, False, False)])
def test_merge_and_merge_grad_ops(e, d, t, partial, norm):
    rng = np.random.default_rng(d + t)
    o, u = rand_rows(rng, (t, d), e), rand_rows(rng, (t, d), e)
    p = rand_rows(rng, (t, d), e) if partial else None
    lse = rng.standard_normal(t).astype(np.float32)
    w, g = rand_rows(rng, (d,), e, 2.0 / np.sqrt(d)), storage(1.0 + 0.1 * rng.standard_normal(d), e)
    gn = storage(1.0 + 0.1 * rng.standard_normal(d), e) if norm else None
    fv = lambda x: None if x is None else value(x, e)  # noqa: E731
    args = [o, lse, w, g, u] + ([p] if partial else []) + ([gn] if norm else [])
    mod = ge.compile_module(ir.kernel_merge("k", e, d, partial, EPS, EPS if norm else None))
    res = ge.run_function(mod, "k", args)
    h_ref, p_ref = reference.merge(fv(o), lse, fv(w), fv(g), fv(u), fv(p), EPS)
    if norm:
        hn_ref, _ = reference.merge_norm(fv(o), lse, fv(w), fv(g), fv(u), fv(p), fv(gn), EPS, EPS,
                                         round_h=lambda h: value(storage(h, e), e))
        assert reference.rel_error(value(res[0], e), hn_ref) <= OP_TOL[e]
    else:
        assert reference.rel_error(value(res[0], e), h_ref) <= OP_TOL[e]
    if partial:
        assert reference.rel_error(value(res[1], e), p_ref) <= OP_TOL[e]
    dh, dpn = rand_rows(rng, (t, d), e), rand_rows(rng, (t, d), e)
    dhn = rand_rows(rng, (t, d), e) if norm else None
    mod = ge.compile_module(ir.kernel_merge_grad("k", e, d, partial, EPS, EPS if norm else None))
    outs = ge.run_function(mod, "k", args + [dh, dpn] + ([dhn] if norm else []))
    if norm:
        ref = reference.merge_norm_grad(fv(o), lse, fv(w), fv(g), fv(u), fv(p), fv(gn), EPS, EPS, fv(dh),
                                        fv(dhn), fv(dpn), round_h=lambda h: value(storage(h, e), e))
    else:
        ref = reference.merge_grad(fv(o), lse, fv(w), fv(g), fv(u), fv(p), EPS, fv(dh), fv(dpn))
    assert reference.rel_error(value(outs[0], e), ref[0]) <= OP_TOL[e]       # dout
    assert reference.rel_error(outs[1].astype(np.float64), ref[1]) <= 1e-4   # dlse
    assert reference.rel_error(outs[2].astype(np.float64), ref[2]) <= 1e-4   # dquery
    assert reference.rel_error(outs[3].astype(np.float64), ref[3]) <= 1e-4   # dgain
    assert reference.rel_error(value(outs[4], e), ref[4]) <= OP_TOL[e]       # dupdate
    if norm:
        assert reference.rel_error(outs[5].astype(np.float64), ref[6]) <= 1e-4


def test_race_between_warps_is_reported():
    """Without its barriers, the per-token kernel's warps read each other's
    partials in workgroup memory with nothing between: the emulator's race
    check reports the hazard (as racecheck would) instead of returning the
    lockstep result."""
    kernels = ge.compile_kernels(ir.kernel_block_score_grad("k", "bf16", 4096, 8, 9, EPS, False),
                                 SCORE_GRAD_OPTIONS["tc"])
    main = [k for k in kernels.values() if k.name.endswith("_tc")][0]

    def drop_barriers(region):
        region.ops = [op for op in region.ops if op.name != "gpu.barrier"]
        for op in region.ops:
            for sub in op.regions:
                drop_barriers(sub)
    drop_barriers(main.region)
    rng = np.random.default_rng(4)
    n, s, d, t = 9, 8, 4096, 1
    W, G = bf(rng.standard_normal((s, d)) / 64), bf(np.ones((s, d)))
    srcs = [bf(rng.standard_normal((t, d))) for _ in range(n)]
    zf = lambda *shape: np.zeros(shape, dtype=np.float32)  # noqa: E731
    args = ([W, G] + srcs + [zf(s, t)] + [np.ones(t, np.float32)] * n
            + [bf(rng.standard_normal((s, t, d))), zf(s, t)]
            + [np.zeros((t, d), np.uint16) for _ in range(n)] + [zf(t, s * n), t])
    with pytest.raises(ge.EmulatorError, match="race: warp"):
        ge.run_kernel(main, args, t)
    # The same launch with the race check off runs (lockstep hides the race).
    ge.run_kernel(main, args, t, race_check=False)


# The correctness shapes bench/kernels_check/gen.py gives the options that
# have not run on a GPU yet (n, S, D, T, accumulators / inv_rms), with T cut
# to 2 tokens: what the GPU check of run 36 will launch, checked here first.
KC_SCORE_GRAD_SHAPES = [(9, 8, 4096, 2, True), (17, 12, 2048, 2, False), (3, 2, 40, 2, False),
                        (5, 6, 104, 2, True), (4, 8, 4096, 1, False), (3, 40, 64, 2, False),
                        (1, 1, 64, 2, True), (16, 8, 7168, 2, False), (24, 2, 256, 2, False)]


@pytest.mark.parametrize("shape", KC_SCORE_GRAD_SHAPES, ids=lambda s: "n%d_s%d_d%d" % s[:3])
def test_kernels_check_shapes_score_grad_mma_sweep(shape):
    db, coef, inp = score_grad(*shape, SCORE_GRAD_OPTIONS["ms"])
    assert np.isfinite(db).all() and np.isfinite(coef).all()
    assert reference.rel_error(db, score_grad_ref(inp)) <= TOL


KC_SCORE_SHAPES = [(1, 3, 72, 2, False), (3, 10, 200, 2, True), (16, 9, 1000, 2, False),
                   (13, 5, 4112, 2, True), (9, 8, 7168, 2, False), (17, 20, 136, 2, True)]


@pytest.mark.parametrize("options", ["score-mma-sweep=1", "split-query-gains=1"])
@pytest.mark.parametrize("shape", KC_SCORE_SHAPES, ids=lambda s: "n%d_s%d_d%d" % s[:3])
def test_kernels_check_shapes_block_score(shape, options):
    out, lse, ref, lref = block_score(*shape, options)
    assert np.isfinite(out).all() and np.isfinite(lse).all()
    assert reference.rel_error(out, ref) <= TOL
    assert reference.rel_error(lse.astype(np.float64), lref) <= 1e-5


@pytest.mark.parametrize("e,k,d,t", [("bf16", 3, 104, 5), ("f16", 2, 64, 3), ("f32", 4, 13, 3)])
def test_block_sum_and_inv_rms_ops(e, k, d, t):
    """block_sum (the f32 sum rounded once) and inv_rms (f32 per token)."""
    rng = np.random.default_rng(k + d)
    xs = [rand_rows(rng, (t, d), e, 0.5 + 0.3 * i) for i in range(k)]
    src, tok = ir.tensor_type(["?", d], e), ir.tensor_type(["?"], "f32")
    names = ["%%x%d" % i for i in range(k)]
    mod = ge.compile_module(ir.func("k", [(x, src) for x in names], [("%s", src)],
                                    [ir.block_sum("%s", names, src)]))
    (out,) = ge.run_function(mod, "k", xs)
    ref = reference.block_sum([value(x, e) for x in xs])
    assert reference.rel_error(value(out, e), ref) <= OP_TOL[e]
    mod = ge.compile_module(ir.func("k", [("%x", src)], [("%r", tok)],
                                    [ir.inv_rms("%r", "%x", EPS, src, tok)]))
    (r,) = ge.run_function(mod, "k", [xs[0]])
    assert reference.rel_error(r.astype(np.float64), reference.inv_rms(value(xs[0], e), EPS)) <= 1e-5
