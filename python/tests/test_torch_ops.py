"""attnres.torch_ops and attnres.kernel_pack.

Everywhere (CI: Debian's CPU torch 1.13): the PyTorch references against an
independent float64 loop over the spec's formulas (merge_norm: the merge's h
rounded to the storage type, then the RMSNorm of spec E.5), the two-phase identity,
kernel-pack generation (MLIR text, manifest, a small pack compiled to PTX and
loaded with ctypes when a build is found), the operators' CPU path.

On a GPU machine with torch >= 2.4 and a kernel pack (ATTNRES_KERNEL_PACK,
default .device/e2e/pack): the custom ops against the reference for random
inputs in f32 and bf16 (tolerances of bench/reference.py: f32 1e-5, bf16
1e-2 relative), merge_norm also against the compiled merge followed by the
norm of its stored h, on a side stream with inputs produced on that stream
just before, and under torch.compile; the fake (meta) path with FakeTensorMode.

Skips use unittest.SkipTest, so the file runs under pytest and also as a
plain script (python3 python/tests/test_torch_ops.py) where pytest is
missing; with no conftest needed (pytest --noconftest on a machine without
the native extension).
"""

import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

# The package PYTHONPATH names: a build's python_packages here, the source
# tree's python/ on the GPU machine (bench/e2e/device_run.sh).
import attnres  # noqa: E402
from attnres import kernel_pack, reference  # noqa: E402

if torch is not None:
    from attnres import torch_ops  # noqa: E402

TOL = reference.TOLERANCE
EPS = 1e-6


def _need_torch():
    if torch is None:
        raise unittest.SkipTest("torch is not installed")


_rel = reference.rel_error  # inf for a non-finite output


def _dtype(name):
    return {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[name]


# --- The float64 reference (attnres.reference; python/tests/test_reference.py checks
# it against loops over tokens and sources) -----------------------------------------


def _agg64(w, g, sources, eps):
    return reference.aggregate(w, g, sources, eps)


def _rand_sources(n, shape, dtype, gen, scale_spread=True):
    out = []
    for i in range(n):
        s = torch.randn(shape, generator=gen)
        if scale_spread:  # sources of different magnitudes, as summaries are
            s = s * (0.5 + i)
        out.append(s.to(dtype))
    return out


def _rand_qg(d, dtype, gen, rows=None):
    shape = (d,) if rows is None else (rows, d)
    q = (torch.randn(shape, generator=gen) * (2.0 / math.sqrt(d))).to(dtype)
    g = (1 + 0.1 * torch.randn(shape, generator=gen)).to(dtype)
    return q, g


def _norm64(h, gain, eps):
    return reference.rms_norm(h, gain, eps)


# --- CPU: references -----------------------------------------------------------------


def test_aggregate_reference_matches_loop():
    _need_torch()
    gen = torch.Generator().manual_seed(1)
    for dt in ("f32", "bf16"):
        src = _rand_sources(4, (3, 5, 32), _dtype(dt), gen)
        q, g = _rand_qg(32, _dtype(dt), gen)
        out = torch_ops.aggregate_reference(q, g, src, EPS)
        assert out.dtype == _dtype(dt) and out.shape == src[0].shape
        err = _rel(out, _agg64(q, g, src, EPS))
        assert err < TOL[dt], (dt, err)


def test_two_phase_reference_equals_aggregate():
    """block_score + merge over summaries and a partial sum = aggregate (spec E.1)."""
    _need_torch()
    gen = torch.Generator().manual_seed(2)
    d, S = 48, 3
    summaries = _rand_sources(4, (7, d), torch.float32, gen)
    ys = _rand_sources(2, (7, d), torch.float32, gen)
    Q, G = _rand_qg(d, torch.float32, gen, rows=S)
    out, lse = torch_ops.block_score_reference(Q, G, summaries, EPS)
    assert out.shape == (S, 7, d) and lse.shape == (S, 7) and lse.dtype == torch.float32
    for i in range(S):   # i = 0: h = o_0
        ref = _agg64(Q[i], G[i], summaries, EPS)
        assert _rel(out[i], ref) < 1e-6
    h1, p1 = torch_ops.merge_reference(out[1], lse[1], Q[1], G[1], ys[0])
    assert torch.equal(p1, ys[0]) and p1.data_ptr() != ys[0].data_ptr()
    assert _rel(h1, _agg64(Q[1], G[1], summaries + [ys[0]], EPS)) < 1e-6
    h2, p2 = torch_ops.merge_reference(out[2], lse[2], Q[2], G[2], ys[1], p1)
    assert torch.allclose(p2, ys[0] + ys[1])
    assert _rel(h2, _agg64(Q[2], G[2], summaries + [ys[0] + ys[1]], EPS)) < 1e-6


def test_merge_norm_reference_matches_loop():
    """merge_norm = RMSNorm(round(aggregate over summaries + p')), p' as merge."""
    _need_torch()
    gen = torch.Generator().manual_seed(4)
    d, S, neps = 40, 3, 1e-5
    for dt in ("f32", "bf16"):
        E = _dtype(dt)
        summaries = _rand_sources(3, (2, 5, d), E, gen)
        y0, y1 = _rand_sources(2, (2, 5, d), E, gen)
        Q, G = _rand_qg(d, E, gen, rows=S)
        gn = (1 + 0.1 * torch.randn(d, generator=gen)).to(E)
        out, lse = torch_ops.block_score_reference(Q, G, summaries, EPS)
        for i, update, partial in ((1, y0, None), (2, y1, y0)):
            hn, p = torch_ops.merge_norm_reference(out[i], lse[i], Q[i], G[i], update, partial,
                                                   gn, EPS, neps)
            assert hn.dtype == E and hn.shape == update.shape and p.dtype == E
            p64 = update.double() + (0 if partial is None else partial.double())
            assert _rel(p, p64) < TOL[dt]
            h = _agg64(Q[i], G[i], summaries + [p.double()], EPS).to(E)   # the stored h
            err = _rel(hn, _norm64(h, gn, neps))
            assert err < TOL[dt], (dt, i, err)
            # the same as merge, then the sublayer's norm on the stored h
            h_m, p_m = torch_ops.merge_reference(out[i], lse[i], Q[i], G[i], update, partial,
                                                 EPS)
            assert torch.equal(p_m, p)
            assert _rel(hn, _norm64(h_m, gn, neps)) < (1e-6 if dt == "f32" else 1e-2)
            # and the norm's epsilon is used: a huge one shrinks hn
            big, _ = torch_ops.merge_norm_reference(out[i], lse[i], Q[i], G[i], update, partial,
                                                    gn, EPS, 1e4)
            assert big.float().norm() < 0.1 * hn.float().norm()


def test_packed_descriptor_matches_ctypes_layout():
    """The fast descriptor torch_ops passes to the compiled functions has the
    bytes of the ctypes memref descriptor, for every rank and for strided,
    offset views (a wrong field order or a dropped stride fails here)."""
    from attnres import aot

    g = torch.Generator().manual_seed(7)
    base = torch.randn(6, 10, 14, generator=g)
    views = [torch.randn((), generator=g), torch.randn(13, generator=g), base[1],
             base[:, 2:9:3], base, base.transpose(0, 2), base[2:, ::2, 1:]]
    for v in views:
        packed = aot.packed_descriptor(v)
        assert packed == bytes(aot.raw_descriptor(v)), tuple(v.shape)
        fields = struct.unpack("=%dq" % (3 + 2 * v.dim()), packed)
        assert fields[0] == fields[1] == v.data_ptr() and fields[2] == 0
        assert list(fields[3:3 + v.dim()]) == list(v.shape)
        assert list(fields[3 + v.dim():]) == list(v.stride())


def test_launch_descriptors_match_packed_descriptor():
    """torch_ops._descriptors packs a contiguous tensor's descriptor from its
    shape (no stride() call): the same bytes as aot.packed_descriptor for
    contiguous tensors of rank 1-4 and views at an offset, and
    packed_descriptor itself for a non-contiguous one."""
    _need_torch()
    from attnres import aot
    base = torch.randn(6, 5, 4, 3)
    cases = [base, base[2], base[1, 3], base[4, 2, 1], base.reshape(30, 12)[7:9],
             base.transpose(0, 1), base[:, 1], torch.randn(1, 9)]
    for t in cases:
        got = torch_ops._descriptors([t])[0]
        assert got == aot.packed_descriptor(t), (tuple(t.shape), t.stride())
    # A control: a different tensor of the same shape packs differently.
    assert torch_ops._descriptors([base[3]])[0] != aot.packed_descriptor(base[2])


def test_source_descriptors_match_rows():
    """torch_ops._source_descriptors (one pass per source: checks and the
    [tokens, D] row descriptor) gives the bytes of _rows' tensor's
    descriptor for a contiguous source with leading dimensions (described
    in place, no copy), a transposed one and one at an unaligned offset
    (both copied, the copies returned to be kept alive), and rejects a
    source of another shape or dtype like _check_sources."""
    _need_torch()
    g = torch.Generator().manual_seed(11)
    base = torch.randn(2, 6, 8, generator=g)
    flat = torch.randn(97, generator=g)
    cases = [base, base.transpose(0, 1).contiguous().transpose(0, 1), flat[1:97].view(2, 6, 8)]
    descs, keep = torch_ops._source_descriptors("aggregate", cases, 12, 8)
    assert len(keep) == 2 and all(k.is_contiguous() and k.data_ptr() % 16 == 0 for k in keep)
    for t, got in zip(cases, descs):
        rows = torch_ops._rows(t, 12, 8)
        want = torch_ops._descriptors([rows])[0]
        if rows.data_ptr() == t.data_ptr():
            assert got == want
        else:
            # a copy: same layout fields, another (kept) buffer
            assert got[16:] == want[16:] and got[:8] != struct.pack("=q", t.data_ptr())
    assert descs[0] == torch_ops._descriptors([base.view(12, 8)])[0]
    # Control: the first source's descriptor is not the second's.
    assert descs[0] != descs[1]
    for bad in ([base, torch.randn(2, 6, 9)], [base, base.double()]):
        try:
            torch_ops._source_descriptors("aggregate", bad, 12, 8)
        except ValueError as e:
            assert "source 1 is" in str(e)
        else:
            raise AssertionError("no error")


def test_operators_on_cpu_run_the_reference():
    _need_torch()
    gen = torch.Generator().manual_seed(3)
    src = _rand_sources(3, (2, 4, 16), torch.float32, gen)
    q, g = _rand_qg(16, torch.float32, gen)
    torch_ops.stats(reset=True)
    h = torch_ops.aggregate(q, g, src, EPS)
    assert torch.allclose(h, torch_ops.aggregate_reference(q, g, src, EPS))
    # one source: a copy, never the input itself (custom ops may not alias)
    h1 = torch_ops.aggregate(q, g, src[:1], EPS)
    assert torch.equal(h1, src[0]) and h1.data_ptr() != src[0].data_ptr()
    assert torch_ops.stats()["reference"] == 2
    out, lse = torch_ops.block_score_reference(torch.stack([q, q]), torch.stack([g, g]), src,
                                               EPS)
    gn = torch.rand(16, generator=gen) + 0.5
    torch_ops.stats(reset=True)
    hn, p = torch_ops.merge_norm(out[1], lse[1], q, g, src[0], src[1], gn, EPS, 1e-5)
    rhn, rp = torch_ops.merge_norm_reference(out[1], lse[1], q, g, src[0], src[1], gn, EPS,
                                             1e-5)
    assert torch.equal(hn, rhn) and torch.equal(p, rp) and torch_ops.stats()["reference"] == 1
    mod = torch_ops.AttnResAggregate(16)
    assert torch.allclose(mod(src), (src[0] + src[1] + src[2]) / 3, atol=1e-6)


def test_operators_reject_bad_shapes():
    _need_torch()
    src = [torch.randn(4, 8), torch.randn(4, 9)]
    q = torch.randn(8)
    for call in (lambda: torch_ops.aggregate(q, q, src),
                 lambda: torch_ops.aggregate(q, q, []),
                 lambda: torch_ops.aggregate(torch.randn(7), q, src[:1]),
                 lambda: torch_ops.block_score(q, q, src[:1]),
                 lambda: torch_ops.merge_norm(src[0], torch.randn(4), q, q, src[0], None,
                                              torch.randn(9)),
                 lambda: torch_ops.merge_norm(src[0], torch.randn(5), q, q, src[0], None, q)):
        try:
            call()
        except (ValueError, RuntimeError, IndexError):
            pass
        else:
            raise AssertionError("no error")


# --- Kernel packs (no GPU) -----------------------------------------------------------


def _spec_kernels(L, S):
    """Semantics sections 3 and 5 written out: the aggregate source counts
    of the block form, the (S, n) of phase 1 per block plus the final
    aggregation as a one-query phase 1, and the merges (with a partial sum
    from the third sublayer of a block on)."""
    n_blocks = -(-L // S)
    aggs = sorted({1 + l // S + (1 if l % S else 0) for l in range(L)} | {1 + n_blocks})
    if S == 1:
        return aggs, [], []
    scores = sorted({(min(S, L - k * S), k + 1) for k in range(n_blocks)} | {(1, n_blocks + 1)})
    merges = sorted({(l % S) >= 2 for l in range(L) if l % S >= 1})
    return aggs, scores, merges


def test_pack_config_and_kernel_list():
    """The kernels of a pack are what the compiler emits for the model
    (attnres-blockify, attnres-fuse-summaries), checked against the spec.
    Needs the compiler (the native module): skipped on the GPU machine."""
    try:
        from attnres import compiler
        compiler._load_native()
    except ImportError as e:
        raise unittest.SkipTest("no attnres compiler here: %s" % str(e).splitlines()[0][:80])
    cfg = kernel_pack.parse_config("d=896,dtype=bf16,sublayers=24,block=3")
    for L, S in ((24, 3), (10, 4), (5, 2), (7, 3), (4, 1)):
        got = kernel_pack.model_kernels(kernel_pack.PackConfig(d=32, sublayers=L, block_size=S))
        assert got == _spec_kernels(L, S), (L, S, got)
    full = kernel_pack.parse_config("d=64,layers=2,block=1")
    assert full.sublayers == 4 and kernel_pack.model_kernels(full)[1] == []
    more = kernel_pack.PackConfig(d=32, sublayers=4, block_size=2, max_sources=7)
    assert kernel_pack.model_kernels(more)[0] == list(range(1, 8))
    entries = kernel_pack.kernel_functions([cfg, cfg])       # deduplicated
    aggs, scores, merges = _spec_kernels(24, 3)
    assert len(entries) == len(aggs) + len(scores) + len(merges), len(entries)
    ops = sorted((e["op"], e.get("num_sources"), e.get("num_queries"), e.get("partial"))
                 for e in entries if e["op"] != "aggregate")
    assert ("merge", None, None, True) in ops and ("merge", None, None, False) in ops
    agg5 = [e for e in entries if e["function"] == "agg_bf16_d896_n5"][0]
    assert "tensor<?x896xbf16>" in agg5["mlir"] and agg5["mlir"].count("%v") == 10
    # norm_eps: the merges with the fused RMSNorm too, returning (hn, p') (hn
    # alone without a partial: p' is the update, not copied out)
    cfgn = kernel_pack.parse_config("d=896,dtype=bf16,sublayers=24,block=3,norm_eps=1e-5")
    assert cfgn.norm_eps == 1e-5 and cfg.norm_eps is None
    entries_n = kernel_pack.kernel_functions([cfgn])
    norms = [e for e in entries_n if e["op"] == "merge_norm"]
    assert len(entries_n) == len(entries) + 2 and len(norms) == 2
    assert sorted(e["partial"] for e in norms) == [False, True]
    for e in norms:
        assert e["norm_epsilon"] == kernel_pack.f32(1e-5) and e["epsilon"] == kernel_pack.f32(EPS)
        assert "norm %gn" in e["mlir"] and "norm_epsilon = 9.999999747e-06 : f32" in e["mlir"]
        assert ("return %hn, %p2" if e["partial"] else "return %hn :") in e["mlir"]
        assert ("partial %p" in e["mlir"]) == e["partial"]
    # The block size is the compiler's to check.
    try:
        kernel_pack.model_kernels(kernel_pack.PackConfig(d=32, sublayers=4, block_size=0))
    except kernel_pack.KernelPackError as e:
        assert "attnres-blockify" in str(e), e
    else:
        raise AssertionError("block size 0 accepted")
    for bad in ("dtype=bf16", "d=0", "d=64,dtype=i8", "d=64,foo=1", "d=64,block",
                "d=64,norm_eps=-1", "d=64,norm_eps=inf"):
        try:
            kernel_pack.parse_config(bad)
        except kernel_pack.KernelPackError:
            pass
        else:
            raise AssertionError("accepted " + bad)


def test_build_and_load_small_pack():
    """A pack for D=64 f32 (PTX: no ptxas needed), compiled in process and
    loaded with ctypes; every kernel of the manifest is exported with dynamic
    token counts, for the compiler's default target."""
    try:
        from attnres import _config  # noqa: F401  (a CMake build's package)
    except ImportError:
        raise unittest.SkipTest("not the package of a CMake build (no attnres._config)")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, os.path.join(REPO, "scripts", "build_kernel_pack.py"),
               "-o", tmp, "--format", "isa",
               "--config", "d=64,dtype=f32,sublayers=5,block=3,norm_eps=1e-5,grad=1"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "kernel pack" in p.stdout and "block_score f32 D=64" in p.stdout, p.stdout
        pack = kernel_pack.KernelPack(tmp)
        assert (pack.manifest["chip"], pack.manifest["features"]) == attnres.default_nvvm_target()
        # L=5, S=3: aggregate n=1..3; phase 1 (3,1), (2,2) and the final (1,3);
        # merge and merge_norm with and without partial
        aggs, scores, merges = _spec_kernels(5, 3)
        # grad=1: aggregate_stats and aggregate_grad for every aggregation of
        # two or more sources
        # block_score_grad for every phase 1, and merge_grad / merge_norm_grad
        # for every merge
        ngrad = 2 * sum(1 for n in aggs if n >= 2) + len(scores) + 2 * len(merges)
        assert len(pack.kernels) == len(aggs) + len(scores) + 2 * len(merges) + ngrad, (
            pack.kernels)
        assert "aggregate_grad f32 D=64 eps=1e-06 n=2,3" in p.stdout, p.stdout
        assert "block_score_grad f32 D=64 eps=1e-06 S=2 n=2" in p.stdout, p.stdout
        lib, fn = pack.find("block_score_grad", "f32", 64, num_sources=2, num_queries=2)
        assert [q["shape"] for q in fn.params][-2:] == [[2, 64], [2, 64]], fn.params
        lib, fn = pack.find("aggregate_stats", "f32", 64, num_sources=3)
        assert [(q["role"], q["shape"]) for q in fn.params] == (
            [("input", [64])] * 2 + [("input", [None, 64])] * 3 + [("output", [None, 64])]
            + [("output", [None])] * 4), fn.params
        lib, fn = pack.find("aggregate_grad", "f32", 64, num_sources=3)
        assert [(q["role"], q["shape"]) for q in fn.params] == (
            [("input", [64])] * 2 + [("input", [None, 64])] * 3 + [("input", [None])] * 4
            + [("input", [None, 64])] + [("output", [None, 64])] * 3
            + [("output", [64])] * 2), fn.params
        assert pack.find("aggregate_grad", "f32", 64, num_sources=1) is None
        lib, fn = pack.find("merge_norm_grad", "f32", 64, partial=True, norm_epsilon=1e-5)
        assert [q["name"] for q in fn.params] == [
            "o", "lse", "w", "g", "u", "p", "gn", "dpn", "dhn"] + [  # no dh: format 3
            "result%d" % i for i in range(6)], fn.params
        assert [q["shape"] for q in fn.params[-6:]] == [[None, 64], [None], [64], [64],
                                                        [None, 64], [64]], fn.params
        assert "merge_norm f32 D=64 eps=1e-06 partial norm_eps=1e-05" in p.stdout, p.stdout
        lib, fn = pack.find("block_score", "f32", 64, num_sources=2, num_queries=2)
        assert fn.name == "score_f32_d64_s2_n2"
        shapes = [(p["role"], p["shape"]) for p in fn.params]
        assert shapes == [("input", [2, 64]), ("input", [2, 64])] + [("input", [None, 64])] * 2 + [
            ("output", [2, None, 64]), ("output", [2, None])], shapes
        assert pack.find("aggregate", "f32", 64, num_sources=4) is None
        assert pack.find("aggregate", "f32", 64, num_sources=3, epsilon=1e-5) is None
        lib, fn = pack.find("merge", "f32", 64, partial=True, epsilon=1e-6)
        assert [p["name"] for p in fn.params] == ["o", "lse", "w", "g", "u", "p", "result0",
                                                   "result1"]
        # Without a partial sum p' is the update itself: not a result (no copy).
        lib, fn = pack.find("merge", "f32", 64, partial=False, epsilon=1e-6)
        assert [p["name"] for p in fn.params] == ["o", "lse", "w", "g", "u", "result0"]
        # merge_norm: the norm gain last; results (hn, p'), hn alone without a
        # partial; h is not one
        assert pack.find("merge_norm", "f32", 64, partial=True) is None   # norm eps needed
        assert pack.find("merge_norm", "f32", 64, partial=True, norm_epsilon=1e-6) is None
        for partial in (False, True):
            lib, fn = pack.find("merge_norm", "f32", 64, partial=partial, norm_epsilon=1e-5)
            names = ["o", "lse", "w", "g", "u"] + (["p"] if partial else []) + [
                "gn", "result0"] + (["result1"] if partial else [])
            assert [p["name"] for p in fn.params] == names, fn.params
            assert [p["shape"] for p in fn.params[-3:]] == (
                [[64], [None, 64], [None, 64]] if partial else [[None, 64], [64], [None, 64]])
        text = open(os.path.join(tmp, "mlir", "attnres_f32_d64.mlir")).read()
        assert text.count("norm %gn") == 4   # merge_norm and merge_norm_grad, each with and without partial
        lib.set_quiet()
        assert isinstance(lib.available(), bool)   # no crash without a driver


def test_missing_kernel_is_an_error_on_cuda_only():
    _need_torch()
    err = torch_ops._missing("aggregate", "bf16", 128, num_sources=3)
    assert "no compiled kernel" in str(err) and "build_kernel_pack" in str(err)


# --- GPU ---------------------------------------------------------------------------------

_PACK = []


def _gpu():
    _need_torch()
    if not torch.cuda.is_available():
        raise unittest.SkipTest("no CUDA device")
    if not torch_ops.custom_ops_available():
        raise unittest.SkipTest("torch %s has no torch.library.custom_op" % torch.__version__)
    if not _PACK:
        path = os.environ.get("ATTNRES_KERNEL_PACK", os.path.join(REPO, ".device", "e2e", "pack"))
        if not os.path.exists(os.path.join(path, kernel_pack.MANIFEST)):
            raise unittest.SkipTest("no kernel pack at %s (ATTNRES_KERNEL_PACK)" % path)
        torch_ops.set_fallback("error")
        _PACK.append(torch_ops.load_kernel_pack(path))
    return _PACK[0]


def _gpu_d(pack, dtype):
    ds = sorted({k["d"] for k in pack.kernels if k["dtype"] == dtype and k["op"] == "merge"})
    if not ds:
        raise unittest.SkipTest("the pack has no %s two-phase kernels" % dtype)
    return ds[0]


def _score_s(pack, dtype, d):
    return max(k["num_queries"] for k in pack.kernels
               if k["op"] == "block_score" and k["dtype"] == dtype and k["d"] == d)


def test_gpu_aggregate_matches_reference():
    pack = _gpu()
    gen = torch.Generator().manual_seed(10)
    for dt in ("f32", "bf16"):
        d = _gpu_d(pack, dt)
        ns = sorted(k["num_sources"] for k in pack.kernels
                    if k["op"] == "aggregate" and k["dtype"] == dt and k["d"] == d)
        for n in sorted({ns[0], 2, 5, ns[-1]} & set(ns)):
            src = [s.cuda() for s in _rand_sources(n, (3, 37, d), _dtype(dt), gen)]
            q, g = [t.cuda() for t in _rand_qg(d, _dtype(dt), gen)]
            torch_ops.stats(reset=True)
            out = torch.ops.attnres.aggregate(q, g, src, EPS)
            assert torch_ops.stats()["kernel"] == 1
            ref = torch_ops.aggregate_reference(q.double(), g.double(),
                                                [s.double() for s in src], EPS)
            err = _rel(out, ref)
            print("aggregate %s D=%d n=%d tokens=3x37: rel err %.2e" % (dt, d, n, err))
            assert out.shape == src[0].shape and out.dtype == src[0].dtype
            assert err < TOL[dt], (dt, n, err)


def test_gpu_block_score_and_merge_match_reference():
    pack = _gpu()
    gen = torch.Generator().manual_seed(11)
    for dt in ("f32", "bf16"):
        d = _gpu_d(pack, dt)
        S = _score_s(pack, dt, d)
        for n in (1, 3):
            summaries = [s.cuda() for s in _rand_sources(n, (2, 50, d), _dtype(dt), gen)]
            Q, G = [t.cuda() for t in _rand_qg(d, _dtype(dt), gen, rows=S)]
            out, lse = torch.ops.attnres.block_score(Q, G, summaries, EPS)
            ro, rl = torch_ops.block_score_reference(Q.double(), G.double(),
                                                     [s.double() for s in summaries], EPS)
            eo, el = _rel(out, ro), _rel(lse, rl)
            print("block_score %s D=%d S=%d n=%d: out %.2e lse %.2e" % (dt, d, S, n, eo, el))
            assert out.shape == (S, 2, 50, d) and lse.shape == (S, 2, 50)
            assert lse.dtype == torch.float32
            assert eo < TOL[dt] and el < TOL[dt], (dt, n, eo, el)
            y0, y1 = [s.cuda() for s in _rand_sources(2, (2, 50, d), _dtype(dt), gen)]
            # Without a partial the new partial sum is the update itself (the
            # custom op's second output is empty; torch_ops.merge returns y0).
            h1, p1 = torch_ops.merge(out[1], lse[1], Q[1], G[1], y0, None, EPS)
            assert p1 is y0
            assert torch.ops.attnres.merge(out[1], lse[1], Q[1], G[1], y0, None,
                                           EPS)[1].numel() == 0
            h2, p2 = torch_ops.merge(out[2 % S], lse[2 % S], Q[2 % S], G[2 % S], y1, p1, EPS)
            rh1, _ = torch_ops.merge_reference(ro[1], rl[1], Q[1].double(), G[1].double(),
                                               y0.double(), None, EPS)
            rh2, rp2 = torch_ops.merge_reference(ro[2 % S], rl[2 % S], Q[2 % S].double(),
                                                 G[2 % S].double(), y1.double(), y0.double(), EPS)
            e1, e2, ep = _rel(h1, rh1), _rel(h2, rh2), _rel(p2, rp2)
            # and merge == aggregate over summaries + partial (spec E.1)
            ea = _rel(h2, _agg64(Q[2 % S], G[2 % S], summaries + [(y0.double() + y1.double())],
                                 EPS).to(h2.device))
            print("merge %s: h %.2e (no partial %.2e) partial %.2e vs aggregate %.2e"
                  % (dt, e2, e1, ep, ea))
            assert max(e1, e2, ep, ea) < TOL[dt], (dt, e1, e2, ep, ea)


def test_gpu_block_score_small_token_counts():
    """block_score at T = 1..17: the pack's one-query kernel below
    `score-small-tokens` (16 by default) and the throughput kernel above it, on
    either side of the boundary, against the float64 reference."""
    pack = _gpu()
    gen = torch.Generator().manual_seed(23)
    for dt in ("f32", "bf16"):
        d = _gpu_d(pack, dt)
        S = _score_s(pack, dt, d)
        for shape in ((1,), (2, 3), (16,), (17,), (3, 7)):
            n = 1 + len(shape) % 3 + shape[0] % 2
            summaries = [s.cuda() for s in _rand_sources(n, shape + (d,), _dtype(dt), gen)]
            Q, G = [t.cuda() for t in _rand_qg(d, _dtype(dt), gen, rows=S)]
            out, lse = torch.ops.attnres.block_score(Q, G, summaries, EPS)
            ro, rl = torch_ops.block_score_reference(Q.double(), G.double(),
                                                     [s.double() for s in summaries], EPS)
            eo, el = _rel(out, ro), _rel(lse, rl)
            print("block_score %s tokens=%s n=%d: out %.2e lse %.2e" % (dt, shape, n, eo, el))
            assert out.shape == (S,) + shape + (d,) and lse.shape == (S,) + shape
            assert eo < TOL[dt] and el < TOL[dt], (dt, shape, n, eo, el)


def _norm_kernels(pack, dtype):
    """(D, norm epsilon) of the pack's merge_norm kernels of dtype."""
    ks = sorted((k["d"], k["norm_epsilon"]) for k in pack.kernels
                if k["dtype"] == dtype and k["op"] == "merge_norm")
    if not ks:
        raise unittest.SkipTest("the pack has no %s merge_norm kernels" % dtype)
    return ks[0]


def test_gpu_merge_norm_matches_reference():
    """merge_norm against the float64 reference (merge, h rounded to the
    storage type, RMSNorm of spec E.5), and against the compiled merge
    followed by the norm of its stored h; p' equal to the merge's."""
    pack = _gpu()
    gen = torch.Generator().manual_seed(14)
    for dt in ("f32", "bf16"):
        d, neps = _norm_kernels(pack, dt)
        E = _dtype(dt)
        summaries = [s.cuda() for s in _rand_sources(3, (3, 41, d), E, gen)]
        Q, G = [t.cuda() for t in _rand_qg(d, E, gen, rows=2)]
        gn = (1 + 0.1 * torch.randn(d, generator=gen)).to(E).cuda()
        out, lse = torch_ops.block_score_reference(Q, G, summaries, EPS)
        y0, y1 = [s.cuda() for s in _rand_sources(2, (3, 41, d), E, gen)]
        for partial in (None, y1):
            torch_ops.stats(reset=True)
            hn, p = torch_ops.merge_norm(out[1], lse[1], Q[1], G[1], y0, partial, gn, EPS,
                                         neps)
            h_m, p_m = torch_ops.merge(out[1], lse[1], Q[1], G[1], y0, partial, EPS)
            assert torch_ops.stats()["kernel"] == 2, torch_ops.stats()
            assert hn.shape == y0.shape and hn.dtype == E and torch.equal(p, p_m)
            # float64 reference: the merge in float64, rounded to E, normed in float64
            h64, _ = torch_ops.merge_reference(out[1].double(), lse[1].double(),
                                               Q[1].double(), G[1].double(), y0.double(),
                                               None if partial is None else partial.double(),
                                               EPS)
            e_ref = _rel(hn, _norm64(h64.to(E), gn, neps))
            e_loop = _rel(hn, _norm64(h_m, gn, neps))    # the compiled merge's stored h
            print("merge_norm %s D=%d norm_eps=%g partial=%s: hn rel err %.2e vs reference, "
                  "%.2e vs norm(compiled merge h)" % (dt, d, neps, partial is not None, e_ref,
                                                      e_loop))
            assert e_ref < TOL[dt] and e_loop < TOL[dt], (dt, e_ref, e_loop)


def test_gpu_side_stream_ordering():
    """Inputs produced on a side stream immediately before the call (no
    synchronization): the kernels must run after them, on that stream. Each
    round first poisons its buffer with NaN and writes different values, so
    a kernel that ran early would read NaN or another round's data."""
    pack = _gpu()
    d = _gpu_d(pack, "bf16")
    gen = torch.Generator().manual_seed(12)
    src = [s.cuda() for s in _rand_sources(4, (4096, d), torch.bfloat16, gen)]
    q, g = [t.cuda() for t in _rand_qg(d, torch.bfloat16, gen)]
    scales = (1.0, -2.0, 4.0)
    refs = [torch_ops.aggregate_reference(q, g, [s * k for s in src], EPS) for k in scales]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    outs = []
    with torch.cuda.stream(side):
        for k in scales:
            big = torch.empty((4, 4096, d), dtype=torch.bfloat16, device="cuda")
            big.fill_(float("nan"))
            torch.cuda._sleep(2_000_000)              # ~1 ms of GPU time on this stream
            for i in range(4):
                torch.mul(src[i], k, out=big[i])
            outs.append(torch.ops.attnres.aggregate(q, g, list(big.unbind(0)), EPS))
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    for o, ref in zip(outs, refs):
        err = _rel(o, ref)
        assert err < 1e-2, err
    assert pack.libraries(), "no library was loaded"


def test_gpu_torch_compile():
    pack = _gpu()
    d = _gpu_d(pack, "bf16")
    S = _score_s(pack, "bf16", d)
    gen = torch.Generator().manual_seed(13)
    b = [s.cuda() for s in _rand_sources(3, (2, 64, d), torch.bfloat16, gen)]
    Q, G = [t.cuda() for t in _rand_qg(d, torch.bfloat16, gen, rows=S)]
    lin = torch.nn.Linear(d, d, bias=False).cuda().to(torch.bfloat16)
    norm_d = [k for k in pack.kernels if k["op"] == "merge_norm" and k["dtype"] == "bf16"
              and k["d"] == d and k["partial"]]
    neps = norm_d[0]["norm_epsilon"] if norm_d else None   # with merge_norm when packed
    gn = (1 + 0.1 * torch.randn(d, generator=gen)).to(torch.bfloat16).cuda()

    def block(summaries):
        out, lse = torch.ops.attnres.block_score(Q, G, summaries, EPS)
        y = lin(out[0])
        h, _ = torch.ops.attnres.merge(out[1], lse[1], Q[1], G[1], y, None, EPS)
        p = y   # without a partial the new partial sum is the update itself
        y = lin(h) * 0.5
        if neps is not None:
            hn, p = torch.ops.attnres.merge_norm(out[2 % S], lse[2 % S], Q[2 % S], G[2 % S], y,
                                                 p, gn, EPS, neps)
            y = lin(hn) * 0.5
        h = torch.ops.attnres.aggregate(Q[0], G[0], summaries + [p + y], EPS)
        return torch.nn.functional.silu(h)

    def block_ref(summaries):
        out, lse = torch_ops.block_score_reference(Q, G, summaries, EPS)
        y = lin(out[0])
        h, p = torch_ops.merge_reference(out[1], lse[1], Q[1], G[1], y, None, EPS)
        y = lin(h) * 0.5
        if neps is not None:
            hn, p = torch_ops.merge_norm_reference(out[2 % S], lse[2 % S], Q[2 % S], G[2 % S],
                                                   y, p, gn, EPS, neps)
            y = lin(hn) * 0.5
        h = torch_ops.aggregate_reference(Q[0], G[0], summaries + [p + y], EPS)
        return torch.nn.functional.silu(h)

    with torch.no_grad():
        ref = block_ref(b)
        eager = block(b)
        compiled = torch.compile(block, fullgraph=True)
        torch_ops.stats(reset=True)
        got = compiled(b)
        torch.cuda.synchronize()
        assert torch_ops.stats()["kernel"] == (3 if neps is None else 4), torch_ops.stats()
        got2 = compiled([x * 1.5 for x in b])     # same graph, new inputs
    err, err_e = _rel(got, ref), _rel(eager, ref)
    print("torch.compile: rel err vs reference %.2e (eager kernels %.2e)" % (err, err_e))
    assert err < 2e-2 and err_e < 2e-2, (err, err_e)
    assert _rel(got2, block_ref([x * 1.5 for x in b])) < 2e-2


def test_gpu_fake_tensor_shapes():
    _gpu()
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        src = [torch.empty(2, 9, 64, dtype=torch.bfloat16, device="cuda") for _ in range(3)]
        q = torch.empty(64, dtype=torch.bfloat16, device="cuda")
        Q = torch.empty(5, 64, dtype=torch.bfloat16, device="cuda")
        h = torch.ops.attnres.aggregate(q, q, src, EPS)
        o, lse = torch.ops.attnres.block_score(Q, Q, src, EPS)
        hm, pm = torch.ops.attnres.merge(src[0], lse[0], q, q, src[1], src[2], EPS)
        hn, pn = torch.ops.attnres.merge_norm(src[0], lse[0], q, q, src[1], None, q, EPS, 1e-5)
        # no partial: the second output is empty (the new partial is the update)
        assert hn.shape == (2, 9, 64) and pn.shape == (0,) and hn.dtype == pn.dtype == torch.bfloat16
        assert h.shape == (2, 9, 64) and h.dtype == torch.bfloat16
        assert o.shape == (5, 2, 9, 64) and lse.shape == (5, 2, 9)
        assert lse.dtype == torch.float32 and hm.shape == pm.shape == (2, 9, 64)


if __name__ == "__main__":
    names = [n for n in sorted(globals()) if n.startswith("test_")]
    if len(sys.argv) > 1:
        names = [n for n in names if any(a in n for a in sys.argv[1:])]
    passed = failed = skipped = 0
    for n in names:
        try:
            globals()[n]()
            print("PASS " + n, flush=True)
            passed += 1
        except unittest.SkipTest as e:
            print("SKIP %s: %s" % (n, e), flush=True)
            skipped += 1
        except Exception:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            print("FAIL " + n, flush=True)
            failed += 1
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


def test_pack_gpu_options_reach_the_conversion():
    """build_kernel_pack(gpu_options=...) (--gpu-options) compiles every
    library with those convert-attnres-to-gpu options and records them in
    the manifest: by default (score-small-tokens=16) the phase-1 library
    holds block_score's one-query kernel for small T (_g1) next to the
    tensor-core kernel; with score-small-tokens=0 it holds the tensor-core
    kernel only. A CPU pack refuses GPU options."""
    import glob
    import re
    try:
        from attnres import _config  # noqa: F401  (a CMake build's package)
    except ImportError:
        raise unittest.SkipTest("not the package of a CMake build (no attnres._config)")
    cfg = "d=64,dtype=bf16,sublayers=4,block=2"

    def entries(tmp, options):
        m = kernel_pack.build_kernel_pack(tmp, [cfg], format="isa", gpu_options=options)
        assert m["gpu_options"] == options, m["gpu_options"]
        assert kernel_pack.KernelPack(tmp).manifest["gpu_options"] == options
        names = set()
        for lib in glob.glob(os.path.join(tmp, "lib*.so")):
            names |= set(re.findall(rb"\.entry (block_score_\w+)", open(lib, "rb").read()))
        return sorted(n.decode() for n in names)

    with tempfile.TemporaryDirectory() as tmp:
        with_opts = entries(tmp, "score-small-tokens=0")
    with tempfile.TemporaryDirectory() as tmp:
        default = entries(tmp, None)
    assert any(n.endswith("_tc") for n in with_opts), with_opts
    assert not any(n.endswith("_g1") for n in with_opts), with_opts
    assert any(n.endswith("_g1") for n in default), default
    assert set(with_opts) < set(default), (default, with_opts)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            kernel_pack.build_kernel_pack(tmp, [cfg], device="cpu",
                                          gpu_options="score-small-tokens=64")
        except kernel_pack.KernelPackError as e:
            assert "device='cuda' only" in str(e), e
        else:
            raise AssertionError("a CPU pack accepted GPU options")


def test_cpu_pack_runs_every_operator_forward_and_backward():
    """A kernel pack compiled for the CPU (build_kernel_pack(device="cpu"),
    attnres-lower-to-llvm) with grad=1: on CPU tensors of f32, bf16 and f16,
    block_score, merge (with a partial), merge_norm and aggregate run their
    compiled kernels forward and backward (8 kernel calls, no reference
    call), and every output and gradient is within the dtype's tolerance
    (f32 1e-5, bf16 2e-2, f16 5e-3) of the PyTorch formulas on the same
    inputs with no pack loaded."""
    _need_torch()
    try:
        from attnres import _config  # noqa: F401  (a CMake build's package)
    except ImportError:
        raise unittest.SkipTest("not the package of a CMake build (no attnres._config)")
    tols = {"f32": 1e-5, "bf16": 2e-2, "f16": 5e-3}
    saved = torch_ops.kernel_packs()
    try:
        for dt in ("f32", "bf16", "f16"):
            torch.manual_seed(7)
            cast = lambda t: t.detach().to(_dtype(dt)).requires_grad_()  # noqa: E731
            W, G = cast(torch.randn(3, 24) * 0.4), cast(1 + 0.1 * torch.randn(3, 24))
            bs = [cast(torch.randn(3, 5, 24) * (0.5 + 2 * i)) for i in range(2)]
            c = torch.linspace(-1, 1, 24)

            def run():
                out, lse = torch_ops.block_score(W, G, bs, EPS)
                h, p = torch_ops.merge(out[2], lse[2], W[2], G[2], bs[1], bs[0], EPS)
                hn, _ = torch_ops.merge_norm(out[1], lse[1], W[1], G[1], h, None, G[2], EPS,
                                             1e-5)
                a = torch_ops.aggregate(W[0], G[0], [bs[0], hn, p], EPS)
                loss = (a.float() * c).sum() + (lse * 0.3).sum() + (p.float() * c).sum()
                return [a, lse, p] + list(torch.autograd.grad(loss, [W, G] + bs))

            with tempfile.TemporaryDirectory() as tmp:
                kernel_pack.build_kernel_pack(
                    tmp, ["d=24,dtype=%s,sublayers=6,block=3,eps=1e-6,norm_eps=1e-5,grad=1"
                          % dt], device="cpu")
                torch_ops.clear_kernel_packs()
                pack = torch_ops.load_kernel_pack(tmp)
                assert pack.device == "cpu"
                torch_ops.stats(reset=True)
                got = run()
                calls = torch_ops.stats()
                torch_ops.clear_kernel_packs()
            ref = run()
            assert calls == {"kernel": 8, "reference": 0}, (dt, calls)
            for x, y in zip(got, ref):
                assert x.dtype == y.dtype and x.shape == y.shape
                err = _rel(x.double(), y.double())
                assert err <= tols[dt], (dt, err)
    finally:
        torch_ops.clear_kernel_packs()
        for p in reversed(saved):
            torch_ops.load_kernel_pack(p.path)


def test_cpu_library_rejects_cuda_descriptors_and_gpu_library_cpu_ones():
    """attnres.aot checks the device of a bound tensor against the library's
    (a CPU library takes host tensors only)."""
    _need_torch()
    from attnres import aot
    param = {"name": "x", "element": "f32", "rank": 1, "shape": [None]}
    aot.make_descriptor(torch.zeros(3), param, cpu=True)
    try:
        aot.make_descriptor(torch.zeros(3), param)
    except aot.AotError as e:
        assert "GPU" in str(e)
    else:
        raise AssertionError("a CPU tensor was accepted by a GPU library")
