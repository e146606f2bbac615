"""The PyTorch baselines the kernels are timed against: the ops written
plainly in f32 math on bf16 storage, exactly as
/work/shared/bench/baselines.md gives them (eager and torch.compile). The
correctness checks use attnres.reference (float64, on the GPU), not these.
The key-norm epsilon is an argument: the benchmarks pass bench.shapes.EPSILON,
the compiler's default.
"""

import torch


def aggregate_plain(V, w, g, eps):
    """V: [N, T, D] bf16 stacked sources (baselines.md)."""
    Vf = V.float()
    K = Vf * torch.rsqrt(Vf.pow(2).mean(-1, keepdim=True) + eps)
    z = torch.einsum("ntd,d->nt", K, w.float() * g.float())
    a = torch.softmax(z, 0)
    return torch.einsum("nt,ntd->td", a, Vf).to(V.dtype)


def score_plain(B, W, G, eps):
    """B: [n, T, D] stacked summaries; W, G: [S, D]. Returns (out, lse)."""
    Bf = B.float()
    r = torch.rsqrt(Bf.pow(2).mean(-1) + eps)                  # [n, T]
    z = torch.einsum("ntd,sd->snt", Bf, W.float() * G.float()) * r
    lse = torch.logsumexp(z, 1)
    a = torch.softmax(z, 1)
    out = torch.einsum("snt,ntd->std", a, Bf).to(B.dtype)
    return out, lse


def merge_plain(o, lse, w, g, u, p, eps):
    """Phase 2 fused with the partial-sum update (spec E.1): p' = p + u;
    c = r(p') (w*g).p'; h = o + sigmoid(c - lse) (p' - o). o, u, p: [T, D];
    lse: [T] f32. Returns (h, p')."""
    pf = u.float() + p.float()
    c = torch.rsqrt(pf.pow(2).mean(-1) + eps) * (pf * (w.float() * g.float())).sum(-1)
    gate = torch.sigmoid(c - lse)
    of = o.float()
    h = of + gate[:, None] * (pf - of)
    return h.to(o.dtype), pf.to(o.dtype)


TORCH_DTYPE = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
