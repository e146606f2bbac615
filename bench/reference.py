"""Reference implementations of the attnres ops in PyTorch.

*_ref64: float64 on the GPU (the checks' reference; semantics sections 2
and 5). *_plain: the reference written plainly in f32 math on bf16 storage,
exactly as /work/shared/bench/baselines.md gives it; it is what eager
PyTorch and torch.compile are timed on.
"""

import torch


def aggregate_ref64(w, g, sources, eps):
    v = torch.stack([s.double() for s in sources])            # [N, ..., D]
    r = torch.rsqrt(v.pow(2).mean(-1) + eps)                   # [N, ...]
    z = r * (v * (w.double() * g.double())).sum(-1)            # [N, ...]
    a = torch.softmax(z, 0)
    return (a.unsqueeze(-1) * v).sum(0)


def score_ref64(wq, gq, sources, eps):
    """Returns (out [S, ..., D], lse [S, ...]) in float64."""
    v = torch.stack([s.double() for s in sources])            # [n, ..., D]
    r = torch.rsqrt(v.pow(2).mean(-1) + eps)                   # [n, ...]
    q = (wq.double() * gq.double())                            # [S, D]
    z = torch.einsum("n...d,sd->sn...", v, q) * r.unsqueeze(0)  # [S, n, ...]
    lse = torch.logsumexp(z, 1)
    a = torch.softmax(z, 1)
    out = torch.einsum("sn...,n...d->s...d", a, v)
    return out, lse


def aggregate_plain(V, w, g, eps=1e-6):
    """V: [N, T, D] bf16 stacked sources (baselines.md)."""
    Vf = V.float()
    K = Vf * torch.rsqrt(Vf.pow(2).mean(-1, keepdim=True) + eps)
    z = torch.einsum("ntd,d->nt", K, w.float() * g.float())
    a = torch.softmax(z, 0)
    return torch.einsum("nt,ntd->td", a, Vf).to(V.dtype)


def score_plain(B, W, G, eps=1e-6):
    """B: [n, T, D] stacked summaries; W, G: [S, D]. Returns (out, lse)."""
    Bf = B.float()
    r = torch.rsqrt(Bf.pow(2).mean(-1) + eps)                  # [n, T]
    z = torch.einsum("ntd,sd->snt", Bf, W.float() * G.float()) * r
    lse = torch.logsumexp(z, 1)
    a = torch.softmax(z, 1)
    out = torch.einsum("snt,ntd->std", a, Bf).to(B.dtype)
    return out, lse


def rel_error(out, ref):
    out = out.double()
    ref = ref.double()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm().clamp_min(1e-300)).item()


TOLERANCE = {"f32": 1e-5, "f16": 5e-3, "bf16": 1e-2}
TORCH_DTYPE = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
