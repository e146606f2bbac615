"""attnres.build_model: structure, parsing, and numerics against numpy."""

import re

import numpy as np
import pytest

import attnres
from attnres import reference
from attnres.cpu_runner import run_on_cpu

from conftest import CPU_PIPELINE


def aggregate_source_counts(ir):
    """Number of sources of every attnres.aggregate, in program order."""
    counts = []
    for line in ir.splitlines():
        m = re.search(r"attnres\.aggregate %\S+, %\S+ over (.*?) \{", line)
        if m:
            counts.append(len(m.group(1).split(",")))
    return counts


def expected_counts(L, S):
    """Section 3 of the semantics, written out independently: sublayer l is
    the i-th (i = l mod S) of block n = l // S + 1; it reads b_0 .. b_{n-1}
    plus the partial sum when i >= 1; the final reads b_0 .. b_N."""
    counts = [1 + l // S + (1 if l % S else 0) for l in range(L)]
    num_blocks = -(-L // S)
    return counts + [1 + num_blocks]


@pytest.mark.parametrize("L,S", [(1, 1), (4, 1), (6, 2), (6, 3), (5, 2), (7, 3), (4, 4), (3, 8)])
def test_structure(L, S):
    ir = attnres.build_model(L, S, d=16, tokens=4)
    out = attnres.compile(ir)  # parses and verifies
    assert aggregate_source_counts(out) == expected_counts(L, S)
    assert out.count("call @sublayer_") == L
    blocks = -(-L // S)
    # One block_sum per sublayer after the first of each block.
    assert out.count("attnres.block_sum") == (0 if S == 1 else L - blocks)


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_dtypes_and_token_shapes(dtype):
    ir = attnres.build_model(4, 2, d=32, dtype=dtype, tokens=(2, 3))
    out = attnres.compile(ir)
    assert "tensor<2x3x32x%s>" % dtype in out


def test_dynamic_tokens():
    out = attnres.compile(attnres.build_model(3, 2, d=8, tokens=(None, 5)))
    assert "tensor<?x5x8xf32>" in out


def test_torch_dtype_names():
    torch = pytest.importorskip("torch")
    assert "bf16" in attnres.build_model(2, 1, d=8, dtype=torch.bfloat16)


@pytest.mark.parametrize("kwargs", [
    dict(num_sublayers=0), dict(block_size=1.5), dict(d=0), dict(dtype="f64"),
    dict(tokens=()), dict(tokens=(2, 0)), dict(sublayer="mlp"), dict(epsilon=-1.0),
    dict(sublayer="linear", tokens=(2, 3)), dict(sublayer="linear", tokens=None),
    dict(func_name="a-b"),
])
def test_invalid_arguments(kwargs):
    args = dict(num_sublayers=4, block_size=2, d=8)
    args.update(kwargs)
    with pytest.raises(ValueError):
        attnres.build_model(**args)


@pytest.mark.parametrize("S", [0, -2])
def test_block_size_is_checked_by_the_compiler(S):
    # One place decides the block structure: attnres-blockify.
    with pytest.raises(attnres.CompileError, match="attnres-blockify"):
        attnres.build_model(4, S, d=8)


def test_blockify_matches_block_form():
    # attnres-blockify of the Full form gives the block structure that
    # build_model writes directly.
    full = attnres.build_model(6, 1, d=16, tokens=4)
    blocked = attnres.compile(full, "attnres-blockify{block-size=2}")
    assert aggregate_source_counts(blocked) == expected_counts(6, 2)


@pytest.mark.parametrize("L,S", [(4, 1), (5, 2)])
def test_numerics_against_numpy(L, S):
    T, D, eps = 3, 8, 1e-6
    rng = np.random.default_rng(1234 + L * 10 + S)
    emb = rng.standard_normal((T, D)).astype(np.float32)
    queries = rng.standard_normal((L + 1, D)).astype(np.float32)
    gains = (1.0 + 0.5 * rng.standard_normal((L + 1, D))).astype(np.float32)
    weights = (rng.standard_normal((L, D, D)) / np.sqrt(D)).astype(np.float32)
    ir = attnres.build_model(L, S, d=D, tokens=T, sublayer="linear", epsilon=eps)
    (out,) = run_on_cpu(ir, [emb, queries, gains, weights], pipeline=CPU_PIPELINE)
    w64 = weights.astype(np.float64)
    ref = reference.block_attnres(emb, queries, gains, lambda l, h: h @ w64[l], S, eps)
    # f32 arithmetic over a few sublayers: 1e-4 relative to the output scale.
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
