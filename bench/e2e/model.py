"""A plain-PyTorch PreNorm transformer with Block AttnRes residuals.

Every transformer layer has two sublayers, attention and MLP, each
``f(h) = Sublayer(RMSNorm(h))``. The residual connections are either the
standard ones (``x = x + f(x)``) or Block AttnRes
(../shared/design/attnres-semantics.md sections 3 and 5, docs/spec.md): the
L = 2 * layers sublayers are grouped into blocks of S; sublayer i of block n
reads the aggregation of the completed block summaries b_0 (the embedding)
.. b_{n-1} and, for i >= 1, its block's partial sum; a final aggregation over
b_0 .. b_N feeds the final norm and the LM head.

The AttnRes arithmetic runs in one of these ways (``model.attnres``):
  "reference"          the plain PyTorch reference, one aggregation per
                       sublayer (attnres.torch_ops.aggregate_reference)
  "reference-twophase" phase 1 once per block + a merge per sublayer, in
                       plain PyTorch (block_score/merge_reference)
  "compiled"           torch.ops.attnres.aggregate per sublayer (the
                       AOT-compiled kernels of a kernel pack)
  "compiled-twophase"  torch.ops.attnres.block_score once per block and
                       torch.ops.attnres.merge per sublayer
  "compiled-twophase-norm"
                       as compiled-twophase, but the merge also applies the
                       sublayer's PreNorm RMSNorm (torch.ops.attnres.merge_norm,
                       spec E.5): sublayers 1..S-1 of a block start from the
                       merge's normed output (Sublayer.body), h is never stored
  "reference-twophase-norm"
                       the same data flow in plain PyTorch (merge_norm_reference)
  "probe", "probe-twophase", "probe-twophase-norm"
                       the reference's data flow, and every AttnRes op is
                       also run compiled on the same inputs: model.probe_log
                       gets (op, sublayer, relative error) per call
  "liger-torch"        one aggregation per sublayer in Liger-Kernel's
                       formulation, written here in plain PyTorch ops
                       (liger_formulation: autograd derives its backward)
  "liger"              one aggregation per sublayer with Liger-Kernel's own
                       attn_res op (its Triton forward and backward; needs the
                       liger_kernel package)
and ``model.residual = "standard"`` ignores the AttnRes parameters and
uses x + f(x). All variants share the same weights.

``model.checkpoint = "sublayer"`` (training, bench/e2e/train.py) recomputes
each sublayer in the backward (torch.utils.checkpoint, non-reentrant): one
checkpoint per sublayer holding its AttnRes op(s) (aggregation or merge), its
RMSNorm and its body, and one for the final aggregation, norm and head. The
two-phase forms run block_score outside the checkpoints (once per block).
Standard residuals checkpoint f(x) and add outside.

Runs on torch 1.13 (CPU, reference only) and torch 2.x.
"""

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from attnres import defaults, torch_ops

ATTNRES_MODES = ("reference", "reference-twophase", "compiled", "compiled-twophase",
                 "probe", "probe-twophase", "reference-twophase-norm",
                 "compiled-twophase-norm", "probe-twophase-norm", "liger-torch", "liger")


@dataclass
class Config:
    layers: int = 12          # transformer layers (2 sublayers each)
    d: int = 896
    heads: int = 14
    mlp_hidden: int = 2432    # SwiGLU hidden size
    vocab: int = 4096
    block_size: int = 3       # AttnRes block size S in sublayers
    norm_eps: float = 1e-6    # the sublayers' RMSNorm (the model's own)
    # the AttnRes key norm: the compiler's default (attnres.defaults)
    attnres_eps: float = field(default_factory=defaults.epsilon)

    @property
    def sublayers(self):
        return 2 * self.layers

    def pack_config(self, dtype="bf16", grad=True):
        """The kernel pack config string this model needs (with the merges
        that fuse the sublayers' RMSNorm and, with `grad`, the training
        kernels of the aggregations)."""
        return "d=%d,dtype=%s,sublayers=%d,block=%d,eps=%g,norm_eps=%g,grad=%d" % (
            self.d, dtype, self.sublayers, self.block_size, self.attnres_eps, self.norm_eps,
            int(grad))


SMALL = Config()                                    # 12 layers, d=896: 24 sublayers, 8 blocks
LARGE = Config(layers=32, d=4096, heads=32, mlp_hidden=11008, vocab=32000, block_size=8)


def pack_configs():
    """The kernel pack configs of the models (bench/e2e/build_pack.sh): the
    small model in bf16 and f32 (tests and the f32 end-to-end check), the
    large one in bf16."""
    return [SMALL.pack_config("bf16"), SMALL.pack_config("f32"), LARGE.pack_config("bf16")]


def build(cfg, device="cpu", dtype=torch.float32, seed=0, **kw):
    """A Transformer of `cfg` with random weights (init_random), created on
    `device` (f32, then converted to `dtype`)."""
    if hasattr(torch, "get_default_device"):  # torch >= 2.3: allocate there
        with torch.device(device):
            model = Transformer(cfg, **kw)
    else:
        model = Transformer(cfg, **kw).to(device)
    return model.to(dtype).init_random(seed).eval()


def liger_formulation(query, norm_weight, sources, eps):
    """One AttnRes aggregation as Liger-Kernel's attn_res formulates it (its
    docstring and its test's reference), in plain PyTorch ops under autograd:
    stack the N sources, normalise each with its RMS in f32, round the
    normalised keys to the storage type and scale them by the key-norm
    weight, score them against the pseudo-query in f32, softmax over the
    sources, weighted sum in f32, one rounding. Same function as spec A up
    to the rounding of the keys."""
    d = sources[0].shape[-1]
    v = torch.stack([s.reshape(-1, d) for s in sources])            # [N, T, D]
    vf = v.float()
    keys = (vf * torch.rsqrt(vf.pow(2).mean(-1, keepdim=True) + eps)).to(v.dtype) * norm_weight
    alpha = torch.softmax(torch.einsum("ntd,d->nt", keys.float(), query.float()), 0)
    return torch.einsum("nt,ntd->td", alpha, vf).to(v.dtype).view(sources[0].shape)


def liger_op():
    """Liger-Kernel's autograd Function of attn_res (ImportError without the
    liger_kernel package)."""
    from liger_kernel.ops.attn_res import LigerAttnResFunction

    return LigerAttnResFunction


def _checkpoint(fn, *args):
    from torch.utils.checkpoint import checkpoint

    return checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        if hasattr(F, "rms_norm"):
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.float()).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.d, 3 * cfg.d, bias=False)
        self.proj = nn.Linear(cfg.d, cfg.d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(
            2, 0, 3, 1, 4).unbind(0)
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch 1.13
            s = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            y = torch.softmax(s.float().masked_fill(mask, float("-inf")), -1).to(q.dtype) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_up = nn.Linear(cfg.d, 2 * cfg.mlp_hidden, bias=False)
        self.down = nn.Linear(cfg.mlp_hidden, cfg.d, bias=False)

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, -1)
        return self.down(F.silu(gate) * up)


class Sublayer(nn.Module):
    """f(h) = body(RMSNorm(h)): PreNorm attention or MLP."""

    def __init__(self, cfg, body):
        super().__init__()
        self.norm = RMSNorm(cfg.d, cfg.norm_eps)
        self.body = body

    def forward(self, h):
        return self.body(self.norm(h))


class Transformer(nn.Module):
    def __init__(self, cfg, residual="attnres", attnres="reference"):
        super().__init__()
        self.cfg = cfg
        self.residual = residual
        self.attnres = attnres
        self.embed = nn.Embedding(cfg.vocab, cfg.d)
        subs = []
        for _ in range(cfg.layers):
            subs += [Sublayer(cfg, Attention(cfg)), Sublayer(cfg, MLP(cfg))]
        self.sublayers = nn.ModuleList(subs)
        self.final_norm = RMSNorm(cfg.d, cfg.norm_eps)
        self.head = nn.Linear(cfg.d, cfg.vocab, bias=False)
        # Row l: pseudo-query / key-norm gain of sublayer l; row L: final aggregation.
        self.queries = nn.Parameter(torch.zeros(cfg.sublayers + 1, cfg.d))
        self.gains = nn.Parameter(torch.ones(cfg.sublayers + 1, cfg.d))
        self.probe_log = []
        self.checkpoint = None  # or "sublayer" (training with recomputation)
        # How the two-phase forms take block_score's rows: "unbind" or
        # "select" (out[i]; slow backward, kept for the A/B).
        self.block_rows = "unbind"

    @torch.no_grad()
    def init_random(self, seed=0, query_scale=2.0):
        """Random weights (normal, std 1/sqrt(fan_in)), drawn on the
        parameters' device; non-zero pseudo-queries so that the depth softmax
        is not uniform (the logits z spread by about query_scale)."""
        dev = self.embed.weight.device
        g = torch.Generator(device=dev).manual_seed(seed)

        def randn(p):
            return torch.randn(p.shape, generator=g, device=dev, dtype=torch.float32)

        for name, p in self.named_parameters():
            if name.endswith("norm.weight") or name == "gains":
                p.copy_(1 + 0.1 * randn(p))
            elif name == "queries":
                p.copy_(randn(p) * (query_scale / math.sqrt(p.shape[-1])))
            elif name == "embed.weight":
                p.copy_(randn(p))
            else:
                p.copy_(randn(p) / math.sqrt(p.shape[-1]))
        return self

    # -- AttnRes operators of the chosen mode --------------------------------

    def _probe(self, op, l, got, ref):
        for g, r in zip(got if isinstance(got, tuple) else (got,),
                        ref if isinstance(ref, tuple) else (ref,)):
            r64 = r.double()
            err = ((g.double() - r64).norm() / r64.norm().clamp_min(1e-300)).item()
            self.probe_log.append((op, l, err))
        return ref

    def _aggregate(self, l, sources):
        q, g, eps = self.queries[l], self.gains[l], self.cfg.attnres_eps
        if self.attnres.startswith("reference"):
            return torch_ops.aggregate_reference(q, g, sources, eps)
        if self.attnres == "liger-torch":
            return liger_formulation(q, g, sources, eps)
        if self.attnres == "liger":
            return liger_op().apply(torch.stack(sources), q, g, eps)
        if self.attnres.startswith("probe"):
            return self._probe("aggregate", l, torch_ops.aggregate(q, g, sources, eps),
                               torch_ops.aggregate_reference(q, g, sources, eps))
        return torch_ops.aggregate(q, g, sources, eps)

    def _block_score(self, start, s, sources):
        q, g = self.queries[start:start + s], self.gains[start:start + s]
        if self.attnres.startswith("reference"):
            return torch_ops.block_score_reference(q, g, sources, self.cfg.attnres_eps)
        if self.attnres.startswith("probe"):
            return self._probe("block_score", start,
                               torch_ops.block_score(q, g, sources, self.cfg.attnres_eps),
                               torch_ops.block_score_reference(q, g, sources,
                                                               self.cfg.attnres_eps))
        return torch_ops.block_score(q, g, sources, self.cfg.attnres_eps)

    def _merge(self, l, out, lse, update, partial):
        q, g, eps = self.queries[l], self.gains[l], self.cfg.attnres_eps
        if self.attnres.startswith("reference"):
            return torch_ops.merge_reference(out, lse, q, g, update, partial, eps)
        if self.attnres.startswith("probe"):
            return self._probe("merge", l, torch_ops.merge(out, lse, q, g, update, partial, eps),
                               torch_ops.merge_reference(out, lse, q, g, update, partial, eps))
        return torch_ops.merge(out, lse, q, g, update, partial, eps)

    def _merge_norm(self, l, out, lse, update, partial):
        """(RMSNorm_l(h), p'): the merge fused with sublayer l's PreNorm."""
        q, g, eps = self.queries[l], self.gains[l], self.cfg.attnres_eps
        norm = self.sublayers[l].norm
        args = (out, lse, q, g, update, partial, norm.weight, eps, norm.eps)
        if self.attnres.startswith("reference"):
            return torch_ops.merge_norm_reference(*args)
        if self.attnres.startswith("probe"):
            return self._probe("merge_norm", l, torch_ops.merge_norm(*args),
                               torch_ops.merge_norm_reference(*args))
        return torch_ops.merge_norm(*args)

    # -- forward ---------------------------------------------------------------

    def _ckpt(self, fn, *args):
        """fn(*args), recomputed in the backward when checkpointing."""
        if self.checkpoint is None:
            return fn(*args)
        if self.checkpoint != "sublayer":
            raise ValueError("checkpoint must be None or 'sublayer', got %r" % (self.checkpoint,))
        return _checkpoint(fn, *args)

    def forward(self, tokens):
        x = self.embed(tokens)
        if self.residual == "standard":
            for f in self.sublayers:
                x = x + self._ckpt(f, x)
            return self._ckpt(lambda x: self.head(self.final_norm(x)), x)
        if self.residual != "attnres" or self.attnres not in ATTNRES_MODES:
            raise ValueError("residual must be 'standard' or 'attnres' with attnres in %s"
                             % (ATTNRES_MODES,))
        if "twophase" in self.attnres:
            summaries = self._blocks_two_phase(x, self.attnres.endswith("-norm"))
        else:
            summaries = self._blocks_one_phase(x)
        return self._ckpt(lambda *b: self.head(self.final_norm(
            self._aggregate(self.cfg.sublayers, list(b)))), *summaries)

    def _blocks_one_phase(self, emb):
        """One aggregation per sublayer over [b_0 .. b_{n-1}] (+ b_n^i, i >= 1)."""
        S = self.cfg.block_size
        summaries, partial = [emb], None
        for l, f in enumerate(self.sublayers):
            if l % S == 0 and l > 0:
                summaries.append(partial)       # block complete: b_n = its sum
                partial = None
            sources = summaries + ([partial] if partial is not None else [])
            y = self._ckpt(lambda *v, l=l, f=f: f(self._aggregate(l, list(v))), *sources)
            partial = y if partial is None else partial + y
        summaries.append(partial)
        return summaries

    def _merge_sublayer(self, l, out, lse, update, partial, fuse_norm):
        """Sublayer l >= 1 of a block: its merge (with the fused norm or
        not), then its body. Returns (y_l, new partial sum)."""
        if fuse_norm:
            hn, partial = self._merge_norm(l, out, lse, update, partial)
            return self.sublayers[l].body(hn), partial
        h, partial = self._merge(l, out, lse, update, partial)
        return self.sublayers[l](h), partial

    def _blocks_two_phase(self, emb, fuse_norm=False):
        """Phase 1 once per block (all its queries against b_0 .. b_{n-1}),
        then per sublayer i >= 1 a merge with the partial sum (spec 5);
        fuse_norm: the merge also applies the sublayer's RMSNorm."""
        S, L = self.cfg.block_size, self.cfg.sublayers
        summaries = [emb]
        for start in range(0, L, S):
            s = min(S, L - start)
            # unbind, not out[i]: the backward of S selects writes S zero-filled
            # [S, T, D] gradients and adds them up (torch_ops.block_score's note);
            # unbind's backward stacks the S gradients once. block_rows =
            # "select" keeps the out[i] form for the A/B (bench/e2e/train.py's
            # compiled-twophase-norm-select variant).
            out, lse = self._block_score(start, s, summaries)
            if self.block_rows == "select":
                outs, lses = [out[i] for i in range(s)], [lse[i] for i in range(s)]
            else:
                outs, lses = out.unbind(0), lse.unbind(0)
            partial, y = None, None
            for i in range(s):
                l = start + i
                if i == 0:
                    y = self._ckpt(self.sublayers[l], outs[0])
                else:
                    y, partial = self._ckpt(lambda o, z, u, p, l=l: self._merge_sublayer(
                        l, o, z, u, p, fuse_norm), outs[i], lses[i], y, partial)
            summaries.append(y if partial is None else partial + y)
        return summaries
