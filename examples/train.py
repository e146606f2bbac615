#!/usr/bin/env python3
"""Training a small model with Block AttnRes residuals through attnres.torch_ops.

A PreNorm residual MLP (x = x + f_l(x), f_l = MLP(RMSNorm(x))) is converted to
Block AttnRes: the same sublayers f_l, grouped in blocks of S, each reading a
learned softmax mixture over depth of the block summaries (and its block's
partial sum) instead of x (docs/spec.md, semantics section 3). The converted
model runs on attnres.torch_ops: phase 1 (`block_score`) once per block, a
`merge` per sublayer, a final `aggregate` (compiled kernels on CUDA tensors,
the PyTorch reference on the CPU; the backward is the operators' registered
gradient formulas either way). It is trained with Adam on a synthetic
regression task, and trained again from the same weights with the residual
stream written in plain PyTorch ops (one aggregation per sublayer, autograd's
gradients). The check: the two loss curves agree within 1e-5 relative at
every step (float32), and the loss goes down.

  python3 examples/train.py [--steps 30] [--control] [--compiled]

--control replaces the plain formulation by a wrong one (the keys without
their RMSNorm): the check must then FAIL (exit status 1).

--compiled runs attnres.torch_ops on compiled kernels on the CPU: a kernel
pack of this model's operators, forward and backward (``grad=1``: the
statistics forward of the final aggregation, block_score_grad, merge_grad,
aggregate_grad), built now with attnres-lower-to-llvm
(kernel_pack.build_kernel_pack(device="cpu"); needs the package of a CMake
build). The check then also requires that every operator call, forward and
backward, ran a compiled kernel.
"""

import argparse
import atexit
import copy
import shutil
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

from attnres import torch_ops

EPS = 1e-6


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Sublayer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm, self.up, self.down = RMSNorm(d), nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.down(F.gelu(self.up(self.norm(x))))


class ResidualMLP(nn.Module):
    """The model as written: standard residuals."""

    def __init__(self, d_in, d, d_out, layers):
        super().__init__()
        self.embed, self.head = nn.Linear(d_in, d), nn.Linear(d, d_out)
        self.sublayers = nn.ModuleList(Sublayer(d) for _ in range(layers))
        self.final_norm = RMSNorm(d)

    def forward(self, x):
        x = self.embed(x)
        for f in self.sublayers:
            x = x + f(x)
        return self.head(self.final_norm(x))


class BlockAttnRes(nn.Module):
    """`model`'s sublayers with a Block AttnRes residual stream (blocks of
    `block_size`): pseudo-queries (zero at the start) and key-norm gains
    (one) per sublayer, plus a final aggregation before the final norm.
    plain=False: attnres.torch_ops; plain=True: the same in plain PyTorch ops
    (wrong=True: without the keys' RMSNorm, the check's control)."""

    def __init__(self, model, block_size, plain=False, wrong=False):
        super().__init__()
        self.embed, self.sublayers = model.embed, model.sublayers
        self.final_norm, self.head = model.final_norm, model.head
        n, d = len(model.sublayers), model.embed.out_features
        self.queries = nn.Parameter(torch.zeros(n + 1, d))
        self.gains = nn.Parameter(torch.ones(n + 1, d))
        self.block_size, self.plain, self.wrong = block_size, plain, wrong

    def forward(self, x):
        x = self.embed(x)
        run = self._plain if self.plain else self._torch_ops
        h = run(x)
        return self.head(self.final_norm(h))

    def _torch_ops(self, x):
        """Two-phase: block_score once per block, merge per sublayer."""
        Q, G, S, L = self.queries, self.gains, self.block_size, len(self.sublayers)
        summaries = [x]
        for start in range(0, L, S):
            s = min(S, L - start)
            out, lse = torch_ops.block_score(Q[start:start + s], G[start:start + s], summaries,
                                             EPS)
            out, lse = out.unbind(0), lse.unbind(0)  # not out[i]: see docs/python.md
            y, partial = self.sublayers[start](out[0]), None
            for i in range(1, s):
                l = start + i
                h, partial = torch_ops.merge(out[i], lse[i], Q[l], G[l], y, partial, EPS)
                y = self.sublayers[l](h)
            summaries.append(y if partial is None else partial + y)
        return torch_ops.aggregate(Q[L], G[L], summaries, EPS)

    def _aggregate(self, l, sources):
        V = torch.stack(sources)                                    # [N, B, D]
        K = V if self.wrong else V * torch.rsqrt(V.pow(2).mean(-1, keepdim=True) + EPS)
        a = torch.softmax((K * (self.queries[l] * self.gains[l])).sum(-1), 0)
        return (a[..., None] * V).sum(0)

    def _plain(self, x):
        """One aggregation per sublayer over the summaries + partial sum."""
        S, L = self.block_size, len(self.sublayers)
        summaries, partial = [x], None
        for l, f in enumerate(self.sublayers):
            if l % S == 0 and l > 0:
                summaries.append(partial)
                partial = None
            y = f(self._aggregate(l, summaries + ([partial] if partial is not None else [])))
            partial = y if partial is None else partial + y
        summaries.append(partial)
        return self._aggregate(L, summaries)


def train(model, data, steps, lr=3e-3):
    x, y = data
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--control", action="store_true",
                    help="compare against a wrong plain formulation (the check must FAIL)")
    ap.add_argument("--compiled", action="store_true",
                    help="attnres.torch_ops on kernels compiled for the CPU (a kernel pack "
                         "built now), forward and backward")
    args = ap.parse_args()
    torch.manual_seed(0)
    d_in, d, d_out, layers, block = 12, 32, 4, 8, 3   # 8 sublayers: blocks of 3, 3, 2
    if args.compiled:
        from attnres import kernel_pack
        pack_dir = tempfile.mkdtemp(prefix="attnres-cpu-pack-")
        atexit.register(shutil.rmtree, pack_dir, True)
        kernel_pack.build_kernel_pack(
            pack_dir, ["d=%d,dtype=f32,sublayers=%d,block=%d,eps=%g,grad=1"
                       % (d, layers, block, EPS)], device="cpu")
        pack = torch_ops.load_kernel_pack(pack_dir)
        print("CPU kernel pack: %d kernels (%s)" % (len(pack.kernels), pack_dir))
        torch_ops.stats(reset=True)
    x = torch.randn(256, d_in)
    teacher = torch.randn(d_in, d_out)
    data = (x, torch.sin(x @ teacher) + 0.1 * x[:, :d_out] ** 2)
    base = ResidualMLP(d_in, d, d_out, layers)
    ours = BlockAttnRes(copy.deepcopy(base), block)
    plain = BlockAttnRes(copy.deepcopy(base), block, plain=True, wrong=args.control)
    a = train(ours, data, args.steps)
    calls = torch_ops.stats()
    b = train(plain, data, args.steps)
    for step in sorted({0, 1, 2, args.steps // 2, args.steps - 1}):
        print("step %3d  loss attnres.torch_ops %.6f  plain PyTorch %.6f" % (step, a[step], b[step]))
    worst = max(abs(p - q) / abs(q) for p, q in zip(a, b))
    ok = worst <= 1e-5 and a[-1] < 0.5 * a[0]
    if args.compiled:
        # Per step: one block_score per block, one merge per other sublayer
        # and the final aggregation, forward and backward.
        blocks = -(-layers // block)
        expected = 2 * (blocks + (layers - blocks) + 1) * args.steps
        compiled = calls["kernel"] == expected and calls["reference"] == 0
        print("compiled kernel calls %d (expected %d), reference calls %d: %s" % (
            calls["kernel"], expected, calls["reference"], "PASS" if compiled else "FAIL"))
        ok = ok and compiled
    print("loss %.4f -> %.4f; largest relative difference to plain PyTorch %.1e "
          "(tolerance 1e-5): %s" % (a[0], a[-1], worst, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
