"""The reference gradients (attnres.reference.*_grad) against central finite
differences of the forward reference, float64, random inputs of random
magnitudes; and a wrong-formula control that the same check must reject.

The check: for a random cotangent c of each output, L = sum(c * output);
the analytic gradient of L w.r.t. every input element is compared with
(L(x + h e) - L(x - h e)) / 2h, h = 1e-6 relative; tolerance 1e-6 relative
to the gradient's norm (the central difference's error is O(h^2) ~ 1e-12,
rounding ~ 1e-10 / h ~ 1e-4 of one element's value at worst, well inside
after the norm).
"""

import numpy as np
import pytest

from attnres import reference as R

EPS = 1e-6
TOL = 1e-6


def fd_grad(f, x, h=1e-6):
    """Central finite-difference gradient of the scalar f at array x."""
    return R.central_difference(f, x, h)


def close(analytic, numeric):
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    return np.linalg.norm(analytic - numeric) <= TOL * max(np.linalg.norm(numeric), 1e-12)


def sources(rng, n, tokens, d):
    scale = rng.uniform(0.3, 3.0, size=n)
    return [rng.standard_normal(tokens + (d,)) * s for s in scale]


def query(rng, d, lead=()):
    return (rng.standard_normal(lead + (d,)) * (2.0 / np.sqrt(d)),
            1.0 + 0.2 * rng.standard_normal(lead + (d,)))


@pytest.mark.parametrize("n,tokens,d", [(1, (3,), 5), (2, (4,), 7), (3, (2, 3), 6),
                                        (5, (3,), 13), (9, (2,), 16)])
def test_aggregate_grad(n, tokens, d):
    rng = np.random.default_rng(1000 * n + d)
    vs = sources(rng, n, tokens, d)
    w, g = query(rng, d)
    c = rng.standard_normal(tokens + (d,))

    def loss():
        return float(np.sum(c * R.aggregate(w, g, vs, EPS)))
    dv, dw, dg = R.aggregate_grad(w, g, vs, EPS, c)
    for i in range(n):
        assert close(dv[i], fd_grad(loss, vs[i])), "d source %d" % i
    assert close(dw, fd_grad(loss, w)) or n == 1
    assert close(dg, fd_grad(loss, g)) or n == 1
    if n == 1:
        assert np.all(dw == 0) and np.all(dg == 0)


@pytest.mark.parametrize("n,S,tokens,d", [(1, 2, (3,), 5), (3, 2, (4,), 7), (4, 3, (2, 2), 9)])
def test_block_score_grad(n, S, tokens, d):
    rng = np.random.default_rng(7 * n + S + d)
    vs = sources(rng, n, tokens, d)
    W, G = query(rng, d, (S,))
    co = rng.standard_normal((S,) + tokens + (d,))
    cl = rng.standard_normal((S,) + tokens)

    def loss():
        out, lse = R.block_score(W, G, vs, EPS)
        return float(np.sum(co * out) + np.sum(cl * lse))
    dv, dW, dG = R.block_score_grad(W, G, vs, EPS, co, cl)
    for i in range(n):
        assert close(dv[i], fd_grad(loss, vs[i])), "d source %d" % i
    assert close(dW, fd_grad(loss, W))
    assert close(dG, fd_grad(loss, G))


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("tokens,d", [((3,), 5), ((2, 2), 11)])
def test_merge_grad(partial, tokens, d):
    rng = np.random.default_rng(d + 31 * partial)
    o = rng.standard_normal(tokens + (d,)) * 1.5
    lse = rng.standard_normal(tokens) * 2.0
    w, g = query(rng, d)
    u = rng.standard_normal(tokens + (d,))
    p = rng.standard_normal(tokens + (d,)) * 0.7 if partial else None
    ch = rng.standard_normal(tokens + (d,))
    cp = rng.standard_normal(tokens + (d,))

    def loss():
        h, pn = R.merge(o, lse, w, g, u, p, EPS)
        return float(np.sum(ch * h) + np.sum(cp * pn))
    do, dl, dw, dg, du, dp = R.merge_grad(o, lse, w, g, u, p, EPS, ch, cp)
    assert close(do, fd_grad(loss, o))
    assert close(dl, fd_grad(loss, lse))
    assert close(dw, fd_grad(loss, w))
    assert close(dg, fd_grad(loss, g))
    assert close(du, fd_grad(loss, u))
    if partial:
        assert close(dp, fd_grad(loss, p))
    else:
        assert dp is None


@pytest.mark.parametrize("partial", [False, True])
def test_merge_norm_grad(partial):
    rng = np.random.default_rng(57 + partial)
    tokens, d = (2, 3), 7
    o = rng.standard_normal(tokens + (d,)) * 1.5
    lse = rng.standard_normal(tokens) * 2.0
    w, g = query(rng, d)
    gn = 1.0 + 0.3 * rng.standard_normal(d)
    u = rng.standard_normal(tokens + (d,))
    p = rng.standard_normal(tokens + (d,)) * 0.7 if partial else None
    ch, cn, cp = (rng.standard_normal(tokens + (d,)) for _ in range(3))

    def loss():
        h, pn = R.merge(o, lse, w, g, u, p, EPS)
        hn, _ = R.merge_norm(o, lse, w, g, u, p, gn, EPS, 1e-5)
        return float(np.sum(ch * h) + np.sum(cn * hn) + np.sum(cp * pn))
    do, dl, dw, dg, du, dp, dgn = R.merge_norm_grad(o, lse, w, g, u, p, gn, EPS, 1e-5, ch, cn,
                                                    cp)
    for got, x in ((do, o), (dl, lse), (dw, w), (dg, g), (du, u), (dgn, gn)):
        assert close(got, fd_grad(loss, x))
    if partial:
        assert close(dp, fd_grad(loss, p))


def test_rms_norm_grad():
    rng = np.random.default_rng(11)
    h = rng.standard_normal((2, 3, 9)) * 2.5
    g = 1.0 + 0.3 * rng.standard_normal(9)
    c = rng.standard_normal((2, 3, 9))

    def loss():
        return float(np.sum(c * R.rms_norm(h, g, EPS)))
    dh, dg = R.rms_norm_grad(h, g, EPS, c)
    assert close(dh, fd_grad(loss, h))
    assert close(dg, fd_grad(loss, g))


def test_aggregate_stats():
    rng = np.random.default_rng(5)
    vs = sources(rng, 4, (3,), 8)
    w, g = query(rng, 8)
    lse, r = R.aggregate_stats(w, g, vs, EPS)
    v = np.stack(vs)
    r_ref = 1 / np.sqrt((v ** 2).mean(-1) + EPS)
    z = r_ref * (v * (w * g)).sum(-1)
    assert np.allclose(r, r_ref, rtol=1e-14)
    assert np.allclose(lse, np.log(np.exp(z).sum(0)), rtol=1e-12)
    assert lse.shape == (3,) and r.shape == (4, 3)


def test_wrong_formula_is_caught(monkeypatch):
    """Control: the same finite-difference check rejects a gradient that
    drops the inverse-RMS derivative (d r / d v)."""
    def wrong(v, r, z, a, w, dz):
        c = (dz * r)[..., None]
        return c * w, (c * v).sum(0)
    rng = np.random.default_rng(77)
    vs = sources(rng, 3, (4,), 7)
    w, g = query(rng, 7)
    c = rng.standard_normal((4, 7))

    def loss():
        return float(np.sum(c * R.aggregate(w, g, vs, EPS)))
    numeric = fd_grad(loss, vs[0])
    assert close(R.aggregate_grad(w, g, vs, EPS, c)[0][0], numeric)
    monkeypatch.setattr(R, "_score_grad", wrong)
    assert not close(R.aggregate_grad(w, g, vs, EPS, c)[0][0], numeric)
