"""attnres.reference, the one numeric reference, against loops written
straight from the formulas of docs/spec.md (one token, one source at a time,
plain Python floats) and against the identities the spec states: the
two-phase form equals one aggregation (section 5), zero queries give the
mean (section 4), one source is returned as it is (A.2). Random inputs,
float64; tolerances are stated at each assertion."""

import math

import numpy as np
import pytest

from attnres import reference as ref

EPS = 1e-6


def _sources(rng, n, shape):
    # Sources of different magnitudes, as block summaries are.
    return [rng.standard_normal(shape) * (0.5 + i) for i in range(n)]


def _loop_aggregate(w, g, sources, eps):
    """spec A.2 token by token, source by source."""
    d = sources[0].shape[-1]
    vs = [s.reshape(-1, d) for s in sources]
    out = np.empty_like(vs[0])
    for p in range(vs[0].shape[0]):
        z = []
        for v in vs:
            ms = sum(float(x) * float(x) for x in v[p]) / d
            z.append(sum(float(a) * float(b) * float(c) for a, b, c in zip(w, g, v[p]))
                     / math.sqrt(ms + eps))
        m = max(z)
        e = [math.exp(x - m) for x in z]
        out[p] = sum(ei / sum(e) * v[p] for ei, v in zip(e, vs))
    return out.reshape(sources[0].shape)


def _loop_lse(w, g, sources, eps):
    d = sources[0].shape[-1]
    vs = [s.reshape(-1, d) for s in sources]
    out = []
    for p in range(vs[0].shape[0]):
        z = [float(np.dot(w * g, v[p])) / math.sqrt(float(np.mean(v[p] ** 2)) + eps)
             for v in vs]
        out.append(math.log(sum(math.exp(x) for x in z)))
    return np.array(out).reshape(sources[0].shape[:-1])


@pytest.mark.parametrize("n,shape", [(1, (3, 8)), (3, (5, 16)), (6, (2, 3, 12))])
def test_aggregate_matches_loop(n, shape):
    rng = np.random.default_rng(10 + n)
    src = _sources(rng, n, shape)
    w, g = rng.standard_normal(shape[-1]), 1 + 0.2 * rng.standard_normal(shape[-1])
    got = ref.aggregate(w, g, src, EPS)
    # float64 both ways: agreement to rounding.
    np.testing.assert_allclose(got, _loop_aggregate(w, g, src, EPS), rtol=1e-12, atol=1e-12)


def test_zero_query_is_the_mean_and_one_source_is_itself():
    rng = np.random.default_rng(3)
    src = _sources(rng, 4, (6, 10))
    got = ref.aggregate(np.zeros(10), rng.standard_normal(10), src, EPS)
    np.testing.assert_allclose(got, sum(src) / 4, rtol=1e-13)
    inf = np.full(10, np.inf)  # A.2: a_0 = 1 even for a non-finite score
    np.testing.assert_array_equal(ref.aggregate(inf, inf, src[:1], EPS), src[0])


def test_inv_rms_and_block_sum():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 9)) * 3
    want = [1 / math.sqrt(sum(v * v for v in row) / 9 + 1e-3) for row in x]
    np.testing.assert_allclose(ref.inv_rms(x, 1e-3), want, rtol=1e-13)
    ys = _sources(rng, 3, (4, 9))
    np.testing.assert_allclose(ref.block_sum(ys), ys[0] + ys[1] + ys[2], rtol=1e-15)


def test_block_score_and_merge_equal_one_aggregation():
    """Phase 1 row l + the merge with the partial sum = aggregate over the
    summaries and the updated partial sum (semantics section 5)."""
    rng = np.random.default_rng(5)
    S, d = 3, 12
    b = _sources(rng, 4, (5, d))
    Q, G = rng.standard_normal((S, d)), 1 + 0.3 * rng.standard_normal((S, d))
    out, lse = ref.block_score(Q, G, b, EPS)
    assert out.shape == (S, 5, d) and lse.shape == (S, 5)
    for l in range(S):
        np.testing.assert_allclose(out[l], _loop_aggregate(Q[l], G[l], b, EPS), rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(lse[l], _loop_lse(Q[l], G[l], b, EPS), rtol=1e-12)
    y, partial = rng.standard_normal((5, d)), rng.standard_normal((5, d))
    h, p = ref.merge(out[2], lse[2], Q[2], G[2], y, partial, EPS)
    np.testing.assert_allclose(p, y + partial, rtol=1e-15)
    np.testing.assert_allclose(h, _loop_aggregate(Q[2], G[2], b + [y + partial], EPS),
                               rtol=1e-11, atol=1e-11)
    h0, p0 = ref.merge(out[1], lse[1], Q[1], G[1], y, None, EPS)
    np.testing.assert_allclose(h0, _loop_aggregate(Q[1], G[1], b + [y], EPS), rtol=1e-11,
                               atol=1e-11)
    # Precomputed inverse RMS values are used as given.
    r = [ref.inv_rms(x, EPS) * 2.0 for x in b]
    out2, _ = ref.block_score(Q, G, b, EPS, inv_rms_values=r)
    assert not np.allclose(out2, out)


def test_merge_norm_is_the_norm_of_the_rounded_h():
    rng = np.random.default_rng(6)
    d = 16
    o, y, pa = (rng.standard_normal((3, d)) for _ in range(3))
    lse = rng.standard_normal(3)
    w, g, gn = rng.standard_normal(d), rng.standard_normal(d), 1 + rng.standard_normal(d)
    rnd = lambda x: ref.round_to_dtype(x, "bf16")  # noqa: E731
    hn, p = ref.merge_norm(o, lse, w, g, y, pa, gn, EPS, 1e-5, round_h=rnd)
    h, p2 = ref.merge(o, lse, w, g, y, pa, EPS)
    hr = rnd(h)
    want = np.array([[x / math.sqrt(sum(v * v for v in row) / d + 1e-5) * gi
                      for x, gi in zip(row, gn)] for row in hr])
    np.testing.assert_allclose(hn, want, rtol=1e-12)
    np.testing.assert_array_equal(p, p2)


def test_torch_and_f32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    src = _sources(rng, 3, (4, 8))
    w, g = rng.standard_normal(8), rng.standard_normal(8)
    want = ref.aggregate(w, g, src, EPS)
    got = ref.aggregate(torch.tensor(w), torch.tensor(g), [torch.tensor(s) for s in src], EPS)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-13)
    f32 = ref.aggregate(w, g, src, EPS, compute="f32")
    assert f32.dtype == np.float32 and ref.rel_error(f32, want) < 1e-6
    assert ref.rel_error(want * (1 + 1e-3), want) > 1e-4
    assert ref.rel_error(np.full(3, np.nan), np.ones(3)) == float("inf")


def test_round_to_dtype():
    x = np.array([1.0 + 2.0 ** -9, 1.0 + 3 * 2.0 ** -9, 1e39, np.nan])
    got = ref.round_to_dtype(x, "bf16")
    # bf16 keeps 8 significant bits: ties go to even.
    assert got[0] == 1.0 and got[1] == 1.0 + 2.0 ** -7 and np.isinf(got[2]) and np.isnan(got[3])
