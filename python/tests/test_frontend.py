"""attnres.frontend: torch.fx -> linalg-on-tensors, parsed by the binding,
run on the CPU against PyTorch, and read by attnres-detect-residual-chains."""

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import attnres  # noqa: E402
from attnres.cpu_runner import run_on_cpu  # noqa: E402
from attnres.frontend import FrontendError, import_module, trace  # noqa: E402

import models  # noqa: E402
from conftest import CPU_PIPELINE, compile_isolated  # noqa: E402

VOCAB, D, B, T = 32, 16, 2, 4


def tokens(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (B, T), generator=g)


def run_traced(result, inputs):
    args = [x.numpy() for x in inputs] + [p.detach().numpy() for p in result.params]
    return run_on_cpu(result.ir, args, func_name=result.func_name, pipeline=CPU_PIPELINE)


def remarks(ir, pipeline):
    """Runs `pipeline` in a child process (a crashing pass fails one test)
    and returns the text and the remarks."""
    text, diags = compile_isolated(ir, pipeline)
    return text, [d.message for d in diags if d.severity == "remark"]


# -- emission -----------------------------------------------------------------


@pytest.mark.parametrize("norm,attention", [("rms", "sdpa"), ("layer", "manual")])
def test_prenorm_parses_and_matches_torch(norm, attention):
    torch.manual_seed(0)
    m = models.randomize_(models.PreNormTransformer(VOCAB, D, norm=norm, attention=attention), 1).eval()
    idx = tokens()
    r = import_module(m, (idx,))
    assert r.opaque_calls == []
    assert r.input_names == ["idx"]
    assert r.param_names[0] == "emb.weight" and r.param_names[-1] == "head.weight"
    text = attnres.compile(r.ir)  # parses and verifies
    assert "func.call" not in text and "linalg.generic" in text
    (out,) = run_traced(r, (idx,))
    ref = m(idx).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_block_attnres_matches_torch():
    m = models.randomize_(models.BlockAttnResTransformer(VOCAB, D, block_size=2), 2).eval()
    idx = tokens(1)
    r = import_module(m, (idx,))
    text = attnres.compile(r.ir)
    # One stack (tensor.concat) per aggregation over two or more sources:
    # L + 1 = 5 aggregations, the first reads b_0 alone.
    assert text.count("tensor.concat") == 4
    (out,) = run_traced(r, (idx,))
    ref = m(idx).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


class Mystery(torch.nn.Module):
    """Stands for a sublayer the frontend does not know."""

    def __init__(self, d):
        super().__init__()
        self.lin = torch.nn.Linear(d, d)

    def forward(self, x):
        return torch.cumsum(self.lin(x), dim=1)


class OpaqueModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, D)
        self.n = torch.nn.ModuleList([models.RMSNorm(D) for _ in range(3)])
        self.f = torch.nn.ModuleList([Mystery(D) for _ in range(2)])

    def forward(self, idx):
        h = self.emb(idx)
        for n, f in zip(self.n, self.f):
            h = h + f(n(h))
        return self.n[2](h)


def test_unknown_modules_and_functions_become_calls():
    m = OpaqueModel().eval()
    # Traced through: only torch.cumsum is unknown.
    r = import_module(m, (tokens(),))
    # Both calls have one signature: one declaration.
    assert r.opaque_calls == ["cumsum"]
    text = attnres.compile(r.ir)
    assert text.count("func.func private @cumsum(tensor<2x4x16xf32>) -> tensor<2x4x16xf32>") == 1
    assert text.count("call @cumsum(") == 2
    # Kept whole on request: one call per sublayer module.
    r = import_module(m, (tokens(),), opaque=(Mystery,))
    assert r.opaque_calls == ["f_0", "f_1"]
    text = attnres.compile(r.ir)
    assert re.search(r"call @f_0\(%\S+\) : \(tensor<2x4x16xf32>\) -> tensor<2x4x16xf32>", text)
    assert "func.func private @f_1(tensor<2x4x16xf32>) -> tensor<2x4x16xf32>" in text


def test_locations_name_the_module_and_the_source_line():
    """Each op is located at the module it comes from (qualified name) and at
    the line of model code that produced it; diagnostics print file:line."""
    import inspect

    m = OpaqueModel().eval()
    ir = trace(m, (tokens(),), opaque=(Mystery,))
    src, first = inspect.getsourcelines(OpaqueModel.forward)
    line = first + next(i for i, s in enumerate(src) if "h = h + f(n(h))" in s)
    here = __file__.replace("\\", "\\\\")
    call = [x for x in ir.splitlines() if "call @f_0(" in x]
    assert len(call) == 1
    assert call[0].endswith('loc("f.0"("%s":%d:1))' % (here, line)), call[0]
    text = attnres.compile(ir, debug_info=True)
    assert 'loc("emb"' in text and 'loc("f.0"' in text
    _, diags = compile_isolated(ir, "attnres-detect-residual-chains{report=true}")
    chain = [d for d in diags if "residual chain of" in d.message]
    assert chain and chain[0].file == __file__ and chain[0].line == line, chain


def test_untraceable_module_is_a_frontend_error():
    class Branchy(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return x
            return -x

    with pytest.raises(FrontendError, match="could not trace"):
        import_module(Branchy(), (torch.randn(2, 3),))


# -- detection -----------------------------------------------------------------


def test_detection_converts_prenorm_chain():
    m = models.randomize_(models.PreNormTransformer(VOCAB, D, layers=2), 3).eval()
    r = import_module(m, (tokens(),))
    text, rem = remarks(r.ir, "attnres-detect-residual-chains{report=true}")
    converted = [x for x in rem if "converted to Full AttnRes" in x]
    assert len(converted) == 1, rem
    assert re.search(r"residual chain of 4 sublayers", converted[0])
    # L = 4 sublayers and the final aggregation; the first sublayer's, over
    # the embedding alone, is the embedding itself.
    assert text.count("attnres.aggregate") == 4


def test_detection_with_opaque_sublayers():
    """h = h + f(norm(h)) with f kept opaque: the norm is visible outside the
    call, so the chain is converted (the calls then read normalised
    aggregations)."""
    m = OpaqueModel().eval()
    r = import_module(m, (tokens(),), opaque=(Mystery,))
    text, rem = remarks(r.ir, "attnres-detect-residual-chains{report=true}")
    chain = [x for x in rem if "residual chain of" in x]
    assert len(chain) == 1, rem
    assert "residual chain of 2 sublayers converted to Full AttnRes" in chain[0], chain
    # Sublayer 1's input and the final norm's input; sublayer 0 reads the
    # embedding.
    assert text.count("attnres.aggregate") == 2
    assert text.count("call @f_0(") == 1 and text.count("call @f_1(") == 1
    assert "func.func private @f_0(" in text  # still a declaration


class PreNormBlock(torch.nn.Module):
    """A whole PreNorm sublayer f(norm(h)), kept opaque: the call then takes
    the residual stream itself."""

    def __init__(self, d):
        super().__init__()
        self.n = models.RMSNorm(d)
        self.f = Mystery(d)

    def forward(self, h):
        return self.f(self.n(h))


class OpaqueBlockModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, D)
        self.b = torch.nn.ModuleList([PreNormBlock(D) for _ in range(3)])
        self.n = models.RMSNorm(D)

    def forward(self, idx):
        h = self.emb(idx)
        for b in self.b:
            h = h + b(h)
        return self.n(h)


def test_detection_refuses_opaque_block_on_the_stream():
    m = OpaqueBlockModel().eval()
    r = import_module(m, (tokens(),), opaque=(PreNormBlock,))
    assert r.opaque_calls == ["b_0", "b_1", "b_2"]
    text, rem = remarks(r.ir, "attnres-detect-residual-chains{report=true}")
    chain = [x for x in rem if "residual chain of" in x]
    assert len(chain) == 1, rem
    assert ("residual chain of 3 sublayers not converted: sublayer 0: opaque callee @b_0 consumes the "
            "residual stream directly; scale invariance cannot be proven") in chain[0], chain
    assert "attnres.aggregate" not in text


def test_detection_converts_vouched_opaque_blocks():
    m = OpaqueBlockModel().eval()
    r = import_module(m, (tokens(),), opaque=(PreNormBlock,))
    # Vouched for by the pass option...
    text, rem = remarks(r.ir, "attnres-detect-residual-chains{report=true scale-invariant-callees=b_0,b_1,b_2}")
    assert any("residual chain of 3 sublayers converted to Full AttnRes" in x for x in rem), rem
    assert text.count("attnres.aggregate") == 3
    # ... or by the attribute on the declarations.
    marked = re.sub(r"(func\.func private @b_\d\([^)]*\) -> [^\n]*)", r"\1 attributes {attnres.scale_invariant}", r.ir)
    assert marked.count("attnres.scale_invariant") == 3
    text, rem = remarks(marked, "attnres-detect-residual-chains{report=true}")
    assert any("residual chain of 3 sublayers converted to Full AttnRes" in x for x in rem), rem
    assert re.search(r"%(\S+) = attnres.aggregate .*\n(.*\n)*.*call @b_1\(%\1\)", text), text


def test_detection_raises_block_attnres():
    m = models.randomize_(models.BlockAttnResTransformer(VOCAB, D, block_size=2), 4).eval()
    idx = tokens(2)
    r = import_module(m, (idx,))
    text, rem = remarks(r.ir, "attnres-detect-residual-chains{report=true}")
    raised = [x for x in rem if x.startswith("raised an AttnRes aggregation")]
    # Every aggregation over two or more sources; the first one (over b_0
    # alone, weight exactly 1) is b_0 itself.
    assert len(raised) == 4, rem
    assert text.count("attnres.aggregate") == 4
    # The raised model still computes what PyTorch computes.
    args = [idx.numpy()] + [p.detach().numpy() for p in r.params]
    (out,) = run_on_cpu(text, args, pipeline=CPU_PIPELINE)
    ref = m(idx).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


# -- tracing through concrete shapes (issue 14) ---------------------------------


class _Heads(torch.nn.Module):
    """Returns a tuple with a non-tensor in it, as HF attention modules do."""

    def __init__(self, d):
        super().__init__()
        self.qkv = torch.nn.Linear(d, 3 * d)

    def forward(self, x):
        q, k, v = self.qkv(x).split(x.size(-1), dim=-1)  # unpacked
        return (q, k, v), None


class ShapeCode(torch.nn.Module):
    """Python control flow on shapes, arange/full with traced sizes, slices
    with traced bounds, finfo, masked_fill/where, unbind, rotary-style
    cat/neg, GELU (erf and tanh), SiLU, baddbmm, a gather by index tensor."""

    def __init__(self, d):
        super().__init__()
        self.heads = _Heads(d)
        self.table = torch.nn.Parameter(torch.randn(T, d))
        self.bias = torch.nn.Parameter(torch.randn(d))

    def forward(self, x):
        B, L, D = x.shape
        if L > 1:  # control flow on a shape
            x = x * 2.0
        (q, k, v), none = self.heads(x)
        assert none is None
        pos = torch.arange(L)
        x = x + self.table[pos]  # gather with an index tensor
        s = torch.baddbmm(torch.zeros(B, L, L), q, k.transpose(1, 2), alpha=D ** -0.5)
        mask = torch.full((L, L), torch.finfo(s.dtype).min).triu(1)
        s = s + mask[: pos.size(0), : L]  # slice with traced bounds
        keep = pos[None, :] <= pos[:, None]
        s = torch.where(keep, s, torch.full([], -1e9)).masked_fill(~keep, float("-inf"))
        y = s.softmax(-1) @ v
        h = y[..., : D // 2], y[..., D // 2:]
        y = torch.cat((-h[1], h[0]), dim=-1)  # rotate_half
        a, b = torch.stack([y, x]).unbind(0)
        g = F.gelu(a) + F.gelu(b, approximate="tanh") + F.silu(a * b)
        return g.expand(2, B, L, D).sum(0) + self.bias


F = torch.nn.functional


def test_traces_shape_code_and_matches_torch():
    torch.manual_seed(7)
    m = ShapeCode(D).eval()
    x = torch.randn(B, T, D)
    r = import_module(m, (x,))
    assert r.opaque_calls == [], r.opaque_calls
    assert r.input_names == ["x"]
    # Parameters only; the index tensor, masks and finfo are folded.
    assert sorted(r.param_names) == ["bias", "heads.qkv.bias", "heads.qkv.weight", "table"]
    assert "arith.constant dense<" in r.ir and "tensor.extract %" in r.ir
    assert "math.erf" in r.ir and "math.tanh" in r.ir and "arith.select" in r.ir
    (out,) = run_traced(r, (x,))
    ref = m(x).detach().numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_fast_path_is_not_taken_under_no_grad():
    """Under no_grad nn.TransformerEncoderLayer and nn.MultiheadAttention run
    PyTorch's fused inference ops; the frontend traces the plain ops."""
    torch.manual_seed(8)
    layer = torch.nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=True, norm_first=True).eval()
    x = torch.randn(B, T, D)
    with torch.no_grad():
        r = import_module(layer, (x,))
        ref = layer(x).numpy()
    assert r.opaque_calls == [], r.opaque_calls
    assert "_transformer_encoder_layer_fwd" not in r.ir and "native_multi_head" not in r.ir
    assert all(p.requires_grad for p in layer.parameters())  # untouched
    (out,) = run_traced(r, (x,))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


class _EncoderWithOpaqueAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=True, norm_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(D))

    def forward(self, x):
        return self.enc(x)


def test_opaque_submodule_returning_a_tuple():
    """nn.MultiheadAttention returns (output, None): kept opaque, its tensor
    result is the call's result and the chain around it still converts."""
    m = _EncoderWithOpaqueAttention().eval()
    x = torch.randn(B, T, D)
    r = import_module(m, (x,), opaque=(torch.nn.MultiheadAttention,))
    assert r.opaque_calls == ["enc_layers_0_self_attn", "enc_layers_1_self_attn"]
    assert "func.func private @enc_layers_0_self_attn(tensor<2x4x16xf32>, tensor<2x4x16xf32>, " \
        "tensor<2x4x16xf32>) -> tensor<2x4x16xf32>" in r.ir
    text, rem = remarks(r.ir, "attnres-detect-residual-chains{report=true}")
    assert any("residual chain of 4 sublayers converted to Full AttnRes" in x for x in rem), rem


def test_errors_are_frontend_errors():
    with pytest.raises(FrontendError, match="expects an nn.Module"):
        import_module(lambda x: x, (torch.randn(2),))
    with pytest.raises(FrontendError, match="example_inputs must be"):
        import_module(torch.nn.Linear(2, 2), 3)
    with pytest.raises(FrontendError, match="opaque= takes module types"):
        import_module(torch.nn.Linear(2, 2), (torch.randn(2),), opaque=("Linear",))
    with pytest.raises(FrontendError, match="unsupported dtype torch.complex64"):
        import_module(torch.nn.Identity(), (torch.randn(2, dtype=torch.complex64),))

    class Bad(torch.nn.Module):
        def forward(self, x):
            return x.view(3, 5)  # wrong size: fails while tracing

    with pytest.raises(FrontendError, match="could not trace Bad"):
        import_module(Bad(), (torch.randn(2, 3),))


_SDPA_LIB = None


def _sdpa_reference(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    s = query.double() @ key.double().transpose(-2, -1)
    s = s * (scale if scale is not None else query.shape[-1] ** -0.5)
    if is_causal:
        keep = torch.ones(s.shape[-2], s.shape[-1], dtype=torch.bool).tril()
        s = s.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        s = s.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else s + attn_mask
    return (s.softmax(-1) @ value.double()).to(query.dtype)


def _custom_sdpa():
    """A custom op with aten.scaled_dot_product_attention's schema (torch
    1.13 has no such aten op): translated like it through treat_as_aten."""
    global _SDPA_LIB
    if _SDPA_LIB is None:
        from attnres.frontend import treat_as_aten

        _SDPA_LIB = torch.library.Library("attnres_test", "DEF")
        _SDPA_LIB.define("sdpa(Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, "
                         "float dropout_p=0.0, bool is_causal=False, *, float? scale=None) -> Tensor")
        _SDPA_LIB.impl("sdpa", _sdpa_reference, "CompositeExplicitAutograd")
        treat_as_aten("attnres_test::sdpa", "scaled_dot_product_attention")
    return torch.ops.attnres_test.sdpa


class _SdpaModel(torch.nn.Module):
    def __init__(self, causal, mask, scale):
        super().__init__()
        self.causal, self.mask, self.scale = causal, mask, scale

    def forward(self, q, k, v, bias):
        m = bias if self.mask == "float" else (bias > 0 if self.mask == "bool" else None)
        return _custom_sdpa()(q, k, v, m, is_causal=self.causal, scale=self.scale)


@pytest.mark.parametrize("causal,mask,scale", [(True, None, None), (False, "float", 0.3),
                                               (False, "bool", None)])
def test_scaled_dot_product_attention(causal, mask, scale):
    g = torch.Generator().manual_seed(9)
    q, k, v = (torch.randn(B, 2, T, 8, generator=g) for _ in range(3))
    bias = torch.randn(T, T, generator=g)
    bias[:, 0] = 1.0  # every row keeps a key under the bool mask
    m = _SdpaModel(causal, mask, scale)
    r = import_module(m, (q, k, v, bias))
    assert r.opaque_calls == [], r.opaque_calls
    (out,) = run_traced(r, (q, k, v, bias))
    ref = _sdpa_reference(q, k, v, None if mask is None else (bias if mask == "float" else bias > 0),
                          is_causal=causal, scale=scale).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_other_namespaces_are_opaque_unless_mapped():
    from attnres.frontend import treat_as_aten

    with pytest.raises(FrontendError, match="not translated"):
        treat_as_aten("mylib::x", "no_such_op")
    with pytest.raises(FrontendError, match="qualified op name"):
        treat_as_aten("sdpa", "scaled_dot_product_attention")
