"""Small PyTorch models for the frontend tests, written to be fx-traceable
(no unpacking of shapes or of split results)."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
    scaled_dot_product_attention = F.scaled_dot_product_attention
else:
    def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
        """torch 1.13 has no F.scaled_dot_product_attention: a stand-in with
        the same name and semantics, kept opaque to fx (the frontend
        recognises it by name)."""
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if is_causal:
            L, S = q.shape[-2], k.shape[-2]
            keep = torch.ones(L, S, dtype=torch.bool).tril()
            s = s.masked_fill(~keep, float("-inf"))
        return s.softmax(-1) @ v

    torch.fx.wrap("scaled_dot_product_attention")


class Attention(nn.Module):
    def __init__(self, d, heads, causal=True):
        super().__init__()
        self.h = heads
        self.causal = causal
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.o = nn.Linear(d, d, bias=False)

    def heads(self, x):
        """q, k, v as [B, heads, T, D / heads]."""
        B, T, D = x.shape[0], x.shape[1], x.shape[2]
        qkv = self.qkv(x).split(D, dim=-1)  # indexed: fx cannot iterate a Proxy
        return [qkv[i].view(B, T, self.h, D // self.h).transpose(1, 2) for i in range(3)]

    def out(self, y, x):
        return self.o(y.transpose(1, 2).reshape(x.shape[0], x.shape[1], x.shape[2]))

    def forward(self, x):
        q, k, v = self.heads(x)
        return self.out(scaled_dot_product_attention(q, k, v, is_causal=self.causal), x)


class ManualAttention(Attention):
    """Attention spelled with matmul and softmax."""

    def __init__(self, d, heads):
        super().__init__(d, heads, causal=False)

    def forward(self, x):
        q, k, v = self.heads(x)
        s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(x.shape[2] // self.h)
        return self.out(F.softmax(s, dim=-1) @ v, x)


class MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.up = nn.Linear(d, 4 * d)
        self.down = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))


class PreNormTransformer(nn.Module):
    """The standard residual stream: h = h + f(norm(h)), final norm, head."""

    def __init__(self, vocab=32, d=16, heads=2, layers=2, norm="rms", attention="sdpa"):
        super().__init__()
        Norm = (lambda: RMSNorm(d)) if norm == "rms" else (lambda: nn.LayerNorm(d))
        Att = (lambda: Attention(d, heads)) if attention == "sdpa" else (lambda: ManualAttention(d, heads))
        self.emb = nn.Embedding(vocab, d)
        self.n1 = nn.ModuleList([Norm() for _ in range(layers)])
        self.att = nn.ModuleList([Att() for _ in range(layers)])
        self.n2 = nn.ModuleList([Norm() for _ in range(layers)])
        self.mlp = nn.ModuleList([MLP(d) for _ in range(layers)])
        self.norm = Norm()
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        h = self.emb(idx)
        for n1, a, n2, m in zip(self.n1, self.att, self.n2, self.mlp):
            h = h + a(n1(h))
            h = h + m(n2(h))
        return self.head(self.norm(h))


class AttnResAggregate(nn.Module):
    """One AttnRes depth aggregation (semantics section 2): softmax over the
    sources of w . RMSNorm_g(v_i), applied to the raw sources."""

    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.zeros(d))
        self.g = nn.Parameter(torch.ones(d))

    def forward(self, sources):
        V = torch.stack(sources, dim=0)
        r = torch.rsqrt(V.pow(2).mean(-1, keepdim=True) + self.eps)
        z = (V * r * (self.w * self.g)).sum(-1)
        a = torch.softmax(z, dim=0)
        return (a.unsqueeze(-1) * V).sum(0)


class BlockAttnResTransformer(nn.Module):
    """Block AttnRes (semantics section 3): sublayer l of block n attends over
    the block summaries b_0 .. b_{n-1} and its block's partial sum."""

    def __init__(self, vocab=32, d=16, heads=2, layers=2, block_size=2):
        super().__init__()
        L = 2 * layers
        self.L, self.S = L, block_size
        self.emb = nn.Embedding(vocab, d)
        self.res = nn.ModuleList([AttnResAggregate(d) for _ in range(L + 1)])
        self.norms = nn.ModuleList([RMSNorm(d) for _ in range(L)])
        self.sub = nn.ModuleList([Attention(d, heads) if l % 2 == 0 else MLP(d) for l in range(L)])
        self.norm = RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        blocks = [self.emb(idx)]
        partial = None
        for l in range(self.L):
            i = l % self.S
            h = self.res[l](blocks + ([partial] if i else []))
            y = self.sub[l](self.norms[l](h))
            partial = y if i == 0 else partial + y
            if i == self.S - 1 or l == self.L - 1:
                blocks.append(partial)
                partial = None
        return self.head(self.norm(self.res[self.L](blocks)))


def randomize_(module, seed=0):
    """Random parameters (zero pseudo-queries would make every aggregation a
    plain mean, which tests less)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module
