"""Autograd of attnres.torch_ops on the CPU path (issue 12 item 5):
torch.autograd.gradcheck in float64 for every operator (both partial-sum
forms of the merges), and float32 / bfloat16 gradients against autograd of a
plain PyTorch formulation of the forward written here (not the reference's
gradient formulas), within stated tolerances."""

import math

import pytest
import torch

from attnres import torch_ops as ops

EPS = 1e-6


def rnd(*shape, scale=1.0, dtype=torch.float64):
    return (torch.randn(*shape, dtype=torch.float64) * scale).to(dtype).requires_grad_()


def sources(n, tokens, d, dtype=torch.float64):
    return [rnd(*tokens, d, scale=0.5 + 2.0 * torch.rand(()).item(), dtype=dtype)
            for _ in range(n)]


def query(d, lead=(), dtype=torch.float64):
    return (rnd(*lead, d, scale=2.0 / math.sqrt(d), dtype=dtype),
            (1.0 + 0.2 * torch.randn(*lead, d, dtype=torch.float64)).to(dtype).requires_grad_())


@pytest.mark.parametrize("n,tokens,d", [(1, (3,), 4), (3, (2,), 5), (4, (2, 2), 6)])
def test_gradcheck_aggregate(n, tokens, d):
    torch.manual_seed(n * 10 + d)
    vs = sources(n, tokens, d)
    w, g = query(d)
    assert torch.autograd.gradcheck(lambda w, g, *vs: ops.aggregate(w, g, list(vs), EPS),
                                    (w, g, *vs))


@pytest.mark.parametrize("n,S", [(1, 2), (3, 2)])
def test_gradcheck_block_score(n, S):
    torch.manual_seed(n + 100 * S)
    vs = sources(n, (3,), 5)
    W, G = query(5, (S,))
    assert torch.autograd.gradcheck(
        lambda W, G, *vs: ops.block_score(W, G, list(vs), EPS), (W, G, *vs))


@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("partial", [False, True])
def test_gradcheck_merge(partial, norm):
    """merge, and merge_norm (the sublayer's RMSNorm fused, gain gn,
    epsilon 1e-5) on fewer tokens and features."""
    torch.manual_seed(7 + partial + 10 * norm)
    t, d = (2, 5) if norm else (3, 6)
    o, u = rnd(t, d), rnd(t, d)
    lse = rnd(t, scale=2.0)
    w, g = query(d)
    p = [rnd(t, d, scale=0.7)] if partial else []
    if not norm:
        f = lambda o, lse, w, g, u, *p: ops.merge(o, lse, w, g, u, (p or [None])[0], EPS)
        args = (o, lse, w, g, u, *p)
    else:
        gn = (1.0 + 0.2 * torch.randn(d, dtype=torch.float64)).requires_grad_()
        f = lambda o, lse, w, g, u, gn, *p: ops.merge_norm(o, lse, w, g, u, (p or [None])[0],
                                                           gn, EPS, 1e-5)
        args = (o, lse, w, g, u, gn, *p)
    assert torch.autograd.gradcheck(f, args)


def plain_aggregate(w, g, vs, eps):
    """Forward in plain PyTorch ops (autograd derives its gradient)."""
    V = torch.stack([v.float() for v in vs])
    K = V * torch.rsqrt(V.pow(2).mean(-1, keepdim=True) + eps)
    a = torch.softmax((K * (w.float() * g.float())).sum(-1), 0)
    return (a[..., None] * V).sum(0)


# Relative error of each gradient (||got - ref|| / ||ref||) against autograd
# of the plain f32 formulation: f32 1e-5; bf16 inputs 2e-2 (the gradients are
# rounded to bf16, 8 bits of mantissa, and the inputs differ from their f32
# copies by the same rounding).
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_aggregate_grad_matches_plain_autograd(dtype, tol):
    torch.manual_seed(3)
    n, d = 5, 64
    vs = sources(n, (7,), d, dtype)
    w, g = query(d, dtype=dtype)
    c = torch.randn(7, d)
    h = ops.aggregate(w, g, vs, EPS)
    got = torch.autograd.grad((h.float() * c).sum(), [w, g, *vs])
    ref_inputs = [t.detach().float().requires_grad_() for t in [w, g, *vs]]
    href = plain_aggregate(ref_inputs[0], ref_inputs[1], ref_inputs[2:], EPS)
    ref = torch.autograd.grad((href * c).sum(), ref_inputs)
    for a, b in zip(got, ref):
        assert a.dtype == dtype
        err = ((a.float() - b).norm() / b.norm()).item()
        assert err <= tol, err


def test_training_step_reduces_loss():
    """A two-layer AttnRes toy trained with Adam through ops.aggregate: the
    loss goes down, the queries (zero at start, so softmax is uniform and the
    norm weights' gradient dw * query is exactly zero at step 0) get a
    non-zero gradient at once, and the norm weights move once they do not."""
    torch.manual_seed(0)
    d, t = 16, 32
    layers = [torch.nn.Linear(d, d, dtype=torch.float64) for _ in range(2)]
    aggs = [ops.AttnResAggregate(d, dtype=torch.float64) for _ in range(3)]
    params = [p for m in layers + aggs for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=0.02)
    x = torch.randn(t, d, dtype=torch.float64)
    target = torch.randn(t, d, dtype=torch.float64)

    def loss_fn():
        outs = [x]
        for l, f in enumerate(layers):
            h = aggs[l](outs)
            outs.append(torch.tanh(f(h)))
        return ((aggs[2](outs) - target) ** 2).mean()
    first = loss_fn()
    first.backward()
    # aggs[0] reads one source: h = x, its query and norm weight get zero
    # gradients (spec A.2); the others read 2 and 3 sources.
    assert aggs[0].query.grad.abs().sum() == 0
    assert all(a.query.grad.abs().sum() > 0 and a.norm_weight.grad.abs().sum() == 0
               for a in aggs[1:])
    assert all(p.grad.abs().sum() > 0 for m in layers for p in m.parameters())
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss_fn().item() < 0.7 * first.item()
    assert all((a.norm_weight - 1).abs().sum() > 0 for a in aggs[1:])


def _gpu_pack():
    """The kernel pack on a GPU machine (ATTNRES_KERNEL_PACK or .device/e2e/pack);
    skips elsewhere."""
    import os
    if not torch.cuda.is_available() or not ops.custom_ops_available():
        pytest.skip("needs CUDA and torch.library.custom_op")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.environ.get("ATTNRES_KERNEL_PACK", os.path.join(repo, ".device", "e2e", "pack"))
    if not os.path.exists(os.path.join(path, "kernel_pack.json")):
        pytest.skip("no kernel pack at %s" % path)
    return ops.load_kernel_pack(path)


def test_gpu_bf16_gradients_match_f32_autograd():
    """bf16 on the GPU: forward by the pack's compiled kernel, backward by the
    registered formulas; gradients within 2e-2 (relative) of autograd of the
    plain f32 formulation on the same (bf16-valued) inputs."""
    pack = _gpu_pack()
    aggs = sorted((k["d"], k["num_sources"]) for k in pack.kernels
                  if k["op"] == "aggregate" and k["dtype"] == "bf16" and k["num_sources"] > 2)
    if not aggs:
        pytest.skip("the pack has no bf16 aggregate kernel with > 2 sources")
    d, n = aggs[0]
    torch.manual_seed(5)
    stats0 = ops.stats()["kernel"]
    vs = [t.detach().cuda().requires_grad_() for t in sources(n, (3, 41), d, torch.bfloat16)]
    w, g = [t.detach().cuda().requires_grad_() for t in query(d, dtype=torch.bfloat16)]
    c = torch.randn(3, 41, d, device="cuda")
    h = ops.aggregate(w, g, vs, EPS)
    assert ops.stats()["kernel"] > stats0, "the forward did not run the compiled kernel"
    got = torch.autograd.grad((h.float() * c).sum(), [w, g, *vs])
    ref_inputs = [t.detach().float().requires_grad_() for t in [w, g, *vs]]
    href = plain_aggregate(ref_inputs[0], ref_inputs[1], ref_inputs[2:], EPS)
    ref = torch.autograd.grad((href * c).sum(), ref_inputs)
    for a, b in zip(got, ref):
        assert a.dtype == torch.bfloat16 and a.is_cuda
        err = ((a.float() - b).norm() / b.norm()).item()
        assert err <= 2e-2, err


def test_set_backward_replaces_one_operator():
    """torch_ops.set_backward: the replaced function computes the gradients
    (here the reference's with dquery doubled), None restores the reference;
    the other operators keep theirs."""
    ref = ops.backward_impl("aggregate")
    calls = []

    def doubled_dquery(query, norm_weight, srcs, eps, dh):
        calls.append(len(srcs))
        dq, dg, dv = ref(query, norm_weight, srcs, eps, dh)
        return dq * 2, dg, dv

    torch.manual_seed(3)
    vs = sources(3, (2,), 5)
    w, g = query(5)
    base = torch.autograd.grad(ops.aggregate(w, g, vs, EPS).sum(), [w, g, *vs])
    previous = ops.set_backward("aggregate", doubled_dquery)
    try:
        got = torch.autograd.grad(ops.aggregate(w, g, vs, EPS).sum(), [w, g, *vs])
    finally:
        ops.set_backward("aggregate", None)
    assert previous is ref and calls == [3]
    assert torch.allclose(got[0], 2 * base[0]) and not torch.allclose(got[0], base[0])
    assert all(torch.equal(a, b) for a, b in zip(got[1:], base[1:]))
    assert ops.backward_impl("aggregate") is ref
    again = torch.autograd.grad(ops.aggregate(w, g, vs, EPS).sum(), [w, g, *vs])
    assert all(torch.equal(a, b) for a, b in zip(again, base))
    with pytest.raises(ValueError):
        ops.set_backward("aggregate_grad", doubled_dquery)
    with pytest.raises(TypeError):
        ops.set_backward("merge", 3)


def test_training_kernel_glue_with_fake_kernels(monkeypatch):
    """The autograd glue of the training kernels (aggregate_stats forward,
    aggregate_grad backward) on the CPU, with the two kernels replaced by
    fakes that compute what the compiled ones do from attnres.reference: the
    forward runs the stats kernel, the backward receives the statistics the
    forward returned (not recomputed) and its gradients reach every input,
    matching autograd of the plain formulation in f64 (relative 1e-6: the
    query and gain gradients are f32 buffers, as the compiled kernel's are)."""
    calls = []

    def fake_launch(lib, fn, device, tensors):
        from attnres import reference
        n = lib
        q, g, vs = tensors[0], tensors[1], tensors[2:2 + n]
        if fn == "stats":
            out, lse, rs = tensors[2 + n], tensors[3 + n], tensors[4 + n:4 + 2 * n]
            out.copy_(reference.aggregate(q, g, vs, EPS).to(out.dtype))
            ref_lse, ref_r = reference.aggregate_stats(q, g, vs, EPS)
            lse.copy_(ref_lse)
            for r, rr in zip(rs, ref_r):
                r.copy_(rr)
            calls.append(("stats", lse.clone()))
            return
        lse, dh = tensors[2 + n], tensors[3 + 2 * n]
        dvs, dq, dg = tensors[4 + 2 * n:4 + 3 * n], tensors[-2], tensors[-1]
        calls.append(("grad", lse.clone()))
        rdv, rdq, rdg = reference.aggregate_grad(q, g, vs, EPS, dh)
        for dv, r in zip(dvs, rdv):
            dv.copy_(r)
        dq.copy_(rdq)
        dg.copy_(rdg)

    monkeypatch.setattr(ops, "_train_kernels",
                        lambda srcs, eps: ((len(srcs), "stats"), (len(srcs), "grad")))
    monkeypatch.setattr(ops, "_launch", fake_launch)
    # The fakes read tensors: the sources are passed as their rows, not as
    # the packed descriptors the real launch takes.
    real_source_descriptors = ops._source_descriptors
    monkeypatch.setattr(ops, "_source_descriptors", lambda op, srcs, t, d: (
        real_source_descriptors(op, srcs, t, d) and [ops._rows(s, t, d) for s in srcs], []))
    torch.manual_seed(11)
    n, d = 4, 6
    vs = sources(n, (5,), d)
    w, g = query(d)
    c = torch.randn(5, d, dtype=torch.float64)
    h = ops.aggregate(w, g, vs, EPS)
    got = torch.autograd.grad((h * c).sum(), [w, g, *vs])
    assert [k for k, _ in calls] == ["stats", "grad"]
    assert torch.equal(calls[0][1], calls[1][1])   # the saved lse reached the backward
    ref_in = [t.detach().requires_grad_() for t in [w, g, *vs]]
    V = torch.stack(ref_in[2:])
    K = V * torch.rsqrt(V.pow(2).mean(-1, keepdim=True) + EPS)
    a = torch.softmax((K * (ref_in[0] * ref_in[1])).sum(-1), 0)
    href = (a[..., None] * V).sum(0)
    ref = torch.autograd.grad((href * c).sum(), ref_in)
    assert ((h - href).norm() / href.norm()).item() <= 1e-12
    for x, y in zip(got, ref):
        assert ((x - y).norm() / y.norm()).item() <= 1e-6
    # set_compiled_backward(False): the reference path, no kernel call
    calls.clear()
    previous = ops.set_compiled_backward(False)
    try:
        monkeypatch.setattr(ops, "_train_kernels", lambda srcs, eps: None)
        got2 = torch.autograd.grad((ops.aggregate(w, g, vs, EPS) * c).sum(), [w, g, *vs])
    finally:
        ops.set_compiled_backward(previous)
    assert calls == []
    for x, y in zip(got2, ref):
        assert ((x - y).norm() / y.norm()).item() <= 1e-10


def test_gpu_compiled_backward_matches_f32_autograd():
    """A pack built with grad=1 on the GPU: aggregate runs the compiled
    aggregate_stats forward and aggregate_grad backward (two kernel calls
    more than the forward alone would make), its gradients are within 2e-2
    (bf16) / 1e-5 (f32) of autograd of the plain f32 formulation, and the
    query and gain gradients are bit-identical over two runs (fixed
    reduction order, no atomics)."""
    pack = _gpu_pack()
    cases = sorted((k["dtype"], k["d"], k["num_sources"]) for k in pack.kernels
                   if k["op"] == "aggregate_grad")
    if not cases:
        pytest.skip("the pack has no training kernels (build it with grad=1)")
    tols = {"bf16": 2e-2, "f16": 5e-3, "f32": 1e-5}
    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
    for dt in sorted({c[0] for c in cases}):
        d, n = max((c[1], c[2]) for c in cases if c[0] == dt)
        torch.manual_seed(21 + n)
        vs = [t.detach().cuda().requires_grad_()
              for t in sources(n, (2, 53), d, dtypes[dt])]
        w, g = [t.detach().cuda().requires_grad_() for t in query(d, dtype=dtypes[dt])]
        c = torch.randn(2, 53, d, device="cuda")
        runs = []
        for _ in range(2):
            ops.stats(reset=True)
            h = ops.aggregate(w, g, vs, EPS)
            got = torch.autograd.grad((h.float() * c).sum(), [w, g, *vs])
            assert ops.stats()["kernel"] == 2 and ops.stats()["reference"] == 0, ops.stats()
            runs.append(got)
        assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
        ref_inputs = [t.detach().float().requires_grad_() for t in [w, g, *vs]]
        href = plain_aggregate(ref_inputs[0], ref_inputs[1], ref_inputs[2:], EPS)
        ref = torch.autograd.grad((href * c).sum(), ref_inputs)
        for a, b in zip(runs[0], ref):
            err = ((a.float() - b).norm() / b.norm()).item()
            print("compiled backward %s D=%d n=%d: rel err %.2e" % (dt, d, n, err))
            assert a.dtype == dtypes[dt] and err <= tols[dt], (dt, err)


@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("partial", [False, True])
def test_merge_grad_kernel_glue_with_fake_kernels(monkeypatch, partial, norm):
    """The compiled backward of merge / merge_norm (the pack's merge_grad
    kernel) on the CPU with the kernel replaced by a fake computing what it
    computes from attnres.reference (argument order of kernel_merge_grad):
    every gradient reaches its input, equal to the formula backward's
    (f64; relative 1e-6: dlse and the parameter gradients are f32 buffers,
    as the kernel's are), and the launch happens once per backward."""
    from attnres import reference
    calls = []
    t, d, neps = 4, 6, 1e-5

    def fake_launch(lib, fn, device, tensors):
        calls.append(fn)
        o, lse, w, g, u = tensors[:5]
        k = 5
        p = tensors[k] if partial else None
        k += partial
        gn = tensors[k] if norm else None
        k += norm
        # merge_norm_grad kernels take no dh (pack format 3): it is zero.
        dh = torch.zeros_like(u) if norm else tensors[k]
        k += 0 if norm else 1
        dpn = tensors[k]
        k += 1
        dhn = tensors[k] if norm else None
        k += norm
        outs = tensors[k:]
        if norm:
            ref = reference.merge_norm_grad(o, lse, w, g, u, p, gn, EPS, neps, dh, dhn, dpn)
            ref = ref[:5] + ref[6:]
        else:
            ref = reference.merge_grad(o, lse, w, g, u, p, EPS, dh, dpn)[:5]
        for x, r in zip(outs, ref):
            x.copy_(r.reshape(x.shape))

    torch.manual_seed(30 + 2 * partial + norm)
    o, u = rnd(t, d), rnd(t, d)
    lse = rnd(t, scale=2.0)
    w, g = query(d)
    p = rnd(t, d, scale=0.7) if partial else None
    gn = (1.0 + 0.2 * torch.randn(d, dtype=torch.float64)).requires_grad_() if norm else None
    c1, c2 = torch.randn(t, d, dtype=torch.float64), torch.randn(t, d, dtype=torch.float64)
    inputs = [o, lse, w, g, u] + ([p] if partial else []) + ([gn] if norm else [])

    def grads():
        if norm:
            hn, pn = ops.merge_norm(o, lse, w, g, u, p, gn, EPS, neps)
        else:
            hn, pn = ops.merge(o, lse, w, g, u, p, EPS)
        return torch.autograd.grad((hn * c1).sum() + (pn * c2).sum(), inputs)

    ref = grads()                                   # the formulas (no kernel on the CPU)
    monkeypatch.setattr(ops, "_merge_grad_kernel", lambda *a: ("lib", "merge_grad"))
    monkeypatch.setattr(ops, "_launch", fake_launch)
    got = grads()
    assert calls == ["merge_grad"]
    for x, y in zip(got, ref):
        assert x.shape == y.shape and x.dtype == y.dtype
        assert ((x - y).norm() / y.norm()).item() <= 1e-6


def test_gpu_compiled_merge_backward_matches_formulas():
    """A pack built with grad=1 on the GPU: merge and merge_norm backward by
    the compiled merge_grad (one kernel call more than the forward) within
    2e-2 (bf16) / 1e-5 (f32) of the formula backward on the same inputs."""
    pack = _gpu_pack()
    cases = sorted({(k["op"], k["dtype"], k["d"], k["partial"], k.get("norm_epsilon"))
                    for k in pack.kernels if k["op"] in ("merge_grad", "merge_norm_grad")})
    if not cases:
        pytest.skip("the pack has no merge_grad kernels (build it with grad=1)")
    tols = {"bf16": 2e-2, "f16": 5e-3, "f32": 1e-5}
    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
    for op, dt, d, partial, neps in cases:
        torch.manual_seed(d + partial)
        cast = lambda t: t.detach().to(dtypes[dt]).cuda().requires_grad_()  # noqa: E731
        o, u = cast(rnd(2, 45, d)), cast(rnd(2, 45, d))
        lse = rnd(2, 45, scale=2.0).detach().float().cuda().requires_grad_()
        w, g = [cast(x) for x in query(d)]
        p = cast(rnd(2, 45, d, scale=0.7)) if partial else None
        gn = cast(1.0 + 0.2 * torch.randn(d, dtype=torch.float64)) if neps else None
        c1, c2 = torch.randn(2, 45, d, device="cuda"), torch.randn(2, 45, d, device="cuda")
        inputs = [o, lse, w, g, u] + ([p] if partial else []) + ([gn] if neps else [])

        def grads():
            if neps:
                hn, pn = ops.merge_norm(o, lse, w, g, u, p, gn, EPS, neps)
            else:
                hn, pn = ops.merge(o, lse, w, g, u, p, EPS)
            return torch.autograd.grad((hn.float() * c1).sum() + (pn.float() * c2).sum(), inputs)

        ops.stats(reset=True)
        got = grads()
        assert ops.stats()["kernel"] == 2, (op, ops.stats())
        previous = ops.set_compiled_backward(False)
        try:
            ref = grads()
        finally:
            ops.set_compiled_backward(previous)
        for x, y in zip(got, ref):
            err = ((x.float() - y.float()).norm() / y.float().norm()).item()
            print("compiled %s %s D=%d partial=%s: rel err %.2e" % (op, dt, d, partial, err))
            assert x.dtype == y.dtype and err <= tols[dt], (op, dt, err)


def test_block_score_grad_kernel_glue_with_fake_kernels(monkeypatch):
    """The compiled backward of block_score (the pack's block_score_grad) on
    the CPU with the kernel replaced by a fake computing what it computes
    from attnres.reference, from the statistics it is given (argument order
    of kernel_block_score_grad): the forward's lse reaches it, the inverse
    RMS it is given are those of the summaries, every gradient reaches its
    input equal to the formula backward's (f64, relative 1e-6: the
    parameter gradients are f32 buffers, as the kernel's are), one launch
    per backward."""
    from attnres import reference
    calls = []
    t, d, s, n = 5, 6, 3, 2
    seen = {}

    def fake_launch(lib, fn, device, tensors):
        calls.append(fn)
        W, G = tensors[:2]
        bs = tensors[2:2 + n]
        lse, rs = tensors[2 + n], tensors[3 + n:3 + 2 * n]
        dout, dlse = tensors[3 + 2 * n], tensors[4 + 2 * n]
        outs = tensors[5 + 2 * n:]
        seen["lse"], seen["rs"] = lse.clone(), [r.clone() for r in rs]
        db, dW, dG = reference.block_score_grad(W, G, bs, EPS, dout, dlse)
        for x, r in zip(outs, [db[i] for i in range(n)] + [dW, dG]):
            x.copy_(r.reshape(x.shape))

    torch.manual_seed(41)
    bs = sources(n, (t,), d)
    W, G = query(d, (s,))
    c1 = torch.randn(s, t, d, dtype=torch.float64)
    c2 = torch.randn(s, t, dtype=torch.float64)
    inputs = [W, G] + bs

    def grads():
        out, lse = ops.block_score(W, G, bs, EPS)
        grads.lse = lse.detach()
        return torch.autograd.grad((out * c1).sum() + (lse * c2).sum(), inputs)

    ref = grads()                                   # the formulas (no kernel on the CPU)
    monkeypatch.setattr(ops, "_block_score_grad_kernel", lambda *a: ("lib", "block_score_grad"))
    monkeypatch.setattr(ops, "_launch", fake_launch)
    got = grads()
    assert calls == ["block_score_grad"]
    assert torch.allclose(seen["lse"].double(), grads.lse.double().reshape(s, t))
    for r, b in zip(seen["rs"], bs):
        want = torch.rsqrt((b.detach() ** 2).mean(-1) + EPS)
        assert ((r.double() - want).abs() / want).max().item() <= 1e-6
    for x, y in zip(got, ref):
        assert x.shape == y.shape and x.dtype == y.dtype
        assert ((x - y).norm() / y.norm()).item() <= 1e-6


def test_gpu_compiled_block_score_backward_matches_formulas():
    """A pack built with grad=1 on the GPU: block_score's backward by the
    compiled block_score_grad (one kernel call more than the forward) within
    2e-2 (bf16) / 1e-5 (f32) of the formula backward on the same inputs."""
    pack = _gpu_pack()
    cases = sorted({(k["dtype"], k["d"], k["num_queries"], k["num_sources"])
                    for k in pack.kernels if k["op"] == "block_score_grad"})
    if not cases:
        pytest.skip("the pack has no block_score_grad kernels (build it with grad=1)")
    tols = {"bf16": 2e-2, "f16": 5e-3, "f32": 1e-5}
    dtypes = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
    for dt, d, s, n in cases[:6]:
        torch.manual_seed(d + s + n)
        cast = lambda t: t.detach().to(dtypes[dt]).cuda().requires_grad_()  # noqa: E731
        bs = [cast(b) for b in sources(n, (3, 37), d)]
        W, G = [cast(x) for x in query(d, (s,))]
        c1 = torch.randn(s, 3, 37, d, device="cuda")
        c2 = torch.randn(s, 3, 37, device="cuda")
        inputs = [W, G] + bs

        def grads():
            out, lse = ops.block_score(W, G, bs, EPS)
            return torch.autograd.grad((out.float() * c1).sum() + (lse * c2).sum(), inputs)

        ops.stats(reset=True)
        got = grads()
        assert ops.stats()["kernel"] == 2, (dt, d, s, n, ops.stats())
        previous = ops.set_compiled_backward(False)
        try:
            ref = grads()
        finally:
            ops.set_compiled_backward(previous)
        for x, y in zip(got, ref):
            err = ((x.float() - y.float()).norm() / y.float().norm()).item()
            print("compiled block_score_grad %s D=%d S=%d n=%d: rel err %.2e" % (dt, d, s, n, err))
            assert x.dtype == y.dtype and err <= tols[dt], (dt, d, s, n, err)
