"""The model zoo (issue 14): models the frontend was not written for, each
imported unchanged, detected, blockified, lowered and run on the CPU against
PyTorch's own output.

- torch.nn.TransformerEncoder / TransformerDecoder from the library:
  norm_first=True converts, norm_first=False (PostNorm) is refused for the
  stated reason.
- zoo/gpt2.py and zoo/llama.py, written the way HuggingFace's modeling_gpt2.py
  and modeling_llama.py write them.

Tolerances: the imported network (before conversion) must match PyTorch to
float32 rounding (rtol 1e-4 of the output's scale). The converted network
computes the same function only up to the norms' epsilon (docs/spec.md, the
PreNorm conversion): its residual stream is the standard one divided by the
number of sources, which moves eps relative to the variance; with
random O(1) weights that is below 1e-3 of the output's scale.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import attnres  # noqa: E402
from attnres.cpu_runner import run_on_cpu  # noqa: E402
from attnres.frontend import import_module  # noqa: E402

from conftest import CPU_PIPELINE, compile_isolated  # noqa: E402
from zoo import gpt2, llama  # noqa: E402

nn = torch.nn


def perturb_(m, seed):
    """Random, non-trivial parameters (library init leaves LayerNorms at
    exactly 1 and 0 and biases at 0, which tests less)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return m.eval()


def reference(m, inputs):
    with torch.no_grad():
        out = m(*inputs)
    return (out[0] if isinstance(out, tuple) else out).numpy().astype(np.float64)


def close(out, ref, rtol):
    scale = np.abs(ref).max()
    assert scale > 0.1  # not a degenerate output
    err = np.abs(out - ref).max()
    assert err <= rtol * scale, "max |error| %g > %g * %g" % (err, rtol, scale)


def convert_and_run(m, inputs, sublayers, block_size=2):
    """Import, check the import against PyTorch, detect (expecting one chain
    of `sublayers` sublayers converted), blockify, fuse, lower and run."""
    r = import_module(m, inputs)
    assert r.opaque_calls == []
    ref = reference(m, inputs)
    args = [x.numpy() for x in inputs] + [p.detach().numpy() for p in r.params]
    (out,) = run_on_cpu(r.ir, args, func_name=r.func_name, pipeline=CPU_PIPELINE)
    close(out, ref, 1e-4)

    text, diags = compile_isolated(r.ir, "attnres-detect-residual-chains{report=true}")
    converted = [d for d in diags if "converted to Full AttnRes" in d.message and " not " not in d.message]
    assert len(converted) == 1, [d.message for d in diags]
    assert "residual chain of %d sublayers converted" % sublayers in converted[0].message
    # L aggregations: the final one and one per sublayer but the first
    # (which reads the embedding alone).
    assert text.count("attnres.aggregate") == sublayers
    blocked = attnres.compile(text, "attnres-blockify{block-size=%d},attnres-fuse-summaries" % block_size)
    assert blocked.count("attnres.block_sum") > 0 or blocked.count("attnres.") > sublayers, blocked[:2000]
    (out2,) = run_on_cpu(blocked, args, func_name=r.func_name, pipeline=CPU_PIPELINE)
    close(out2, ref, 1e-3)
    return r, diags


def refused_postnorm(m, inputs):
    r = import_module(m, inputs)
    text, diags = compile_isolated(r.ir, "attnres-detect-residual-chains{report=true}")
    chain = [d.message for d in diags if "residual chain of" in d.message]
    assert len(chain) == 1, [d.message for d in diags]
    assert "not converted: PostNorm chain" in chain[0], chain[0]
    assert "attnres.aggregate" not in text
    return chain[0]


# -- torch.nn ---------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_prenorm_converts(batch_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=batch_first, norm_first=True,
                                       activation="gelu")
    m = perturb_(nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(32)), 1)
    x = torch.randn((2, 6, 32) if batch_first else (6, 2, 32))
    # Under no_grad PyTorch would take the fused fast path
    # (aten._transformer_encoder_layer_fwd); the frontend traces around it.
    with torch.no_grad():
        convert_and_run(m, (x,), sublayers=6)


def test_transformer_encoder_postnorm_is_refused():
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=False)
    m = perturb_(nn.TransformerEncoder(layer, 2), 2)
    msg = refused_postnorm(m, (torch.randn(2, 6, 32),))
    assert "residual chain of 4 sublayers not converted" in msg


def test_transformer_decoder_prenorm_converts():
    torch.manual_seed(2)
    layer = nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=True)
    m = perturb_(nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(32)), 3)
    tgt, memory = torch.randn(2, 6, 32), torch.randn(2, 5, 32)
    mask = nn.Transformer.generate_square_subsequent_mask(6)
    # Self-attention, cross-attention and MLP: 3 sublayers per layer.
    convert_and_run(_WithMask(m, mask), (tgt, memory), sublayers=6)


class _WithMask(nn.Module):
    """Passes a causal tgt_mask, as a decoder is used."""

    def __init__(self, dec, mask):
        super().__init__()
        self.dec = dec
        self.register_buffer("mask", mask)

    def forward(self, tgt, memory):
        return self.dec(tgt, memory, tgt_mask=self.mask)


def test_transformer_decoder_postnorm_is_refused():
    torch.manual_seed(3)
    layer = nn.TransformerDecoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=False)
    m = perturb_(nn.TransformerDecoder(layer, 2), 4)
    msg = refused_postnorm(m, (torch.randn(2, 6, 32), torch.randn(2, 5, 32)))
    assert "residual chain of 6 sublayers not converted" in msg


# -- HuggingFace-style code ---------------------------------------------------------


def test_gpt2_converts():
    torch.manual_seed(4)
    m = perturb_(gpt2.GPT2LMHeadModel(gpt2.GPT2Config(n_layer=3)), 5)
    ids = torch.randint(0, 64, (2, 8))
    r, _ = convert_and_run(m, (ids,), sublayers=6, block_size=4)
    # The tied LM head is one argument (wte.weight), read twice.
    assert r.param_names.count("transformer.wte.weight") == 1
    assert "lm_head.weight" not in r.param_names
    # The causal-mask buffer was sliced with traced bounds and folded.
    assert not any(n.endswith(".attn.bias") for n in r.param_names)


def test_llama_converts():
    torch.manual_seed(5)
    m = perturb_(llama.LlamaForCausalLM(llama.LlamaConfig(num_hidden_layers=3)), 6)
    ids = torch.randint(0, 64, (2, 8))
    r, _ = convert_and_run(m, (ids,), sublayers=6, block_size=3)
    # Rotary tables are folded constants, not arguments.
    assert not any("rotary" in n for n in r.param_names)
