#!/usr/bin/env python3
"""Run the PTX kernels made by gen.py on a GPU: correctness and timing.

Loads each PTX with cuModuleLoadData, launches it on torch tensors through
cuda.bindings with the memref-descriptor calling convention of MLIR
(allocated ptr, aligned ptr, offset, sizes..., strides... per memref), and
compares with a float64 torch reference (relative Frobenius error; outputs
are poisoned with NaN first, so unwritten elements fail). Timing: CUDA
events, median of 20 launches after 3 warm-ups; TB/s counts each source
read once and each output written once. The reference is attnres.reference
(float64, on the GPU); the launch helpers are bench/cudadrv.py. Usage
(repository root): PYTHONPATH=python:. python3 -m bench.kernels_check.check <dir> [names]
(an entry runs when a name is a substring of its manifest name, or, written
^pattern, a regular expression matching its start: `^grad_` selects
aggregate_grad, not mgrad_/sgrad_; `^grad_bf16_n(9|17)_d4096$` two entries).
"""
import os
import re
import sys

import torch

from attnres import defaults, reference
from bench.cudadrv import DT, TOL, init, launch_fn, rand, run_checks, time_it

DIR = sys.argv[1]
only = sys.argv[2:] if len(sys.argv) > 2 else None
torch.manual_seed(0)
dev = torch.device("cuda")
init()
rel = reference.rel_error
REPS = int(os.environ.get("KC_REPS", "20"))

def queries(shape, d, e):
    return rand(shape, e, 3.0 / d ** 0.5), (1 + 0.1 * torch.randn(*shape, device=dev)).to(DT[e])

def copy_bw():
    x = torch.empty(1 << 29, dtype=torch.uint8, device=dev).random_()
    y = torch.empty_like(x)
    ms = time_it(lambda: y.copy_(x))
    return 2 * x.numel() / ms / 1e9

copy_tbs = copy_bw()
print(f"copy {copy_tbs:.2f} TB/s", flush=True)
eps = defaults.epsilon()  # what gen.py compiled in: the compiler's default


def magnitude(i, e="bf16"):
    """Random source magnitudes, 1e-2 .. 1e2 (log-uniform), per source; for
    f16 1e-1 .. 1e1: wider ranges make true source gradients above f16's
    65504 (a small source next to large ones has a large inverse RMS), which
    no f16 kernel can store."""
    if e == "f16":
        return float(10 ** (2 * torch.rand(1).item() - 1))
    return float(10 ** (4 * torch.rand(1).item() - 2))


def near(scale):
    """A magnitude 0.1 .. 1 times `scale` (log-uniform): accumulators and
    incoming gradients added to a computed gradient, kept near its size so
    that a wrong formula stays visible in the sum."""
    return scale * float(10 ** (torch.rand(1).item() - 1))


# The wrong-formula controls. Each must be rejected by the very check the
# kernel passes, so its error is measured as the kernel's is: against the
# kernel's whole output (accumulators / dp_new included), relative to the
# whole reference output. A control has power only if it differs from the
# true formula by O(1) of the computed gradient at every shape and every
# draw of the random magnitudes. Dropping the inverse-RMS derivative
# (-dz r^2 z v / D, the earlier control of aggregate_grad and
# block_score_grad) does not: for random queries w is nearly orthogonal to
# each r v, and that term is ~ |z| / (3 sqrt(D)) of the score-gradient term
# dz r w, 1.2e-2 at D = 7168, the bf16 tolerance (runs 19 and 23 had it NOT
# REJECTED while the kernels were right). aggregate_grad's control drops
# instead the off-diagonal part of the softmax Jacobian (dz_i = a_i da_i,
# without - a_i sum_j a_j da_j): a small-magnitude source next to a large
# one has its gradient dominated by exactly that part (r_i sum_j a_j da_j
# grows as the magnitude ratio), and a dominant source (a_j ~ 1) loses
# ~ a_j da_j r_j w, ~ 3 times its a_j dh, however peaked the softmax. In
# block_score_grad that control is weak where dlse's term a dlse r w (not
# centered, and not scaled with the sources) dominates, small sources: its
# control flips the sign of the whole score-gradient term (dz, dlse's part
# included), which is most of db except where every source is large, and
# there the centered da part is O(1) of a dout. Measured on the CPU over
# every entry of gen.py (KC_SET=grad), 20 draws each (T capped at 64): at
# least 90 x TOL (aggregate_grad), 140 x TOL (block_score_grad), 10 x TOL
# (merge_grad with the norm, near()'s 0.1 floor; no norm 110 x TOL).


def wrong_aggregate_grad(w, g, srcs, eps, dh):
    """Control: dv with the softmax backward's diagonal only
    (dz_i = a_i da_i, the centering - a_i sum_j a_j da_j dropped), written
    separately from reference.aggregate_grad."""
    v = torch.stack([x.double() for x in srcs])
    wg = (w.double() * g.double())
    r = reference.inv_rms(v, eps)
    z = r * (v * wg).sum(-1)
    a = torch.softmax(z, 0)
    da = (v * dh.double()).sum(-1)
    dz = a * da
    d = v.shape[-1]
    return a[..., None] * dh.double() + (dz * r)[..., None] * (wg - (z * r / d)[..., None] * v)


def check_grad(entry, run):
    """aggregate_grad: random sources of random magnitudes, the statistics
    of the float64 reference (rounded to f32), random dh and accumulators;
    every output NaN-poisoned. Checks dv (+ acc), dquery, dgain against
    reference.aggregate_grad, that a second run gives bit-identical
    parameter gradients, and that the wrong-formula control is rejected."""
    e, d, t, n, acc = entry["e"], entry["d"], entry["t"], entry["n"], entry["acc"]
    nan = lambda *shape: torch.full(shape, float("nan"), device=dev, dtype=DT[e])  # noqa: E731
    reduce = launch_fn(DIR, entry, "reduce_kernel", "reduce_block")
    w, g = queries((d,), d, e)
    srcs = [rand((t, d), e, magnitude(i, e)) for i in range(n)]
    dh_scale = magnitude(n, e)
    dh = rand((t, d), e, dh_scale)
    accs = [rand((t, d), e, near(dh_scale)) for i in range(n)] if acc else []
    chunk = max(1, (1 << 27) // (n * d))
    stats = [reference.aggregate_stats(w, g, [x[t0:t0 + chunk] for x in srcs], eps)
             for t0 in range(0, t, chunk)]
    lse = torch.cat([st[0] for st in stats]).float().contiguous()
    rs = [torch.cat([st[1][i] for st in stats]).float().contiguous() for i in range(n)]
    del stats
    dvs = [nan(t, d) for _ in range(n)]
    p = min(t, entry["grad_ctas"])
    ws = torch.full((p, d), float("nan"), device=dev)
    dq = torch.full((d,), float("nan"), device=dev)
    dg = torch.full((d,), float("nan"), device=dev)
    args = [w, g] + srcs + [lse] + rs + [dh] + accs + dvs + [ws, t]
    rargs = [ws, p, w, g, dq, dg]

    def run_all():
        run(args, t, p)
        reduce(rargs, t, -(-d // 32))
    run_all()
    torch.cuda.synchronize()
    # The float64 reference in chunks of tokens (n x chunk x D f64 at most
    # 2^27 values, so the benchmark shapes fit), and the control alongside.
    chunk = max(1, (1 << 27) // (n * d))
    num = den = num_wrong = 0.0
    ref_dq = ref_dg = 0.0
    finite = True
    for t0 in range(0, t, chunk):
        sl = slice(t0, min(t, t0 + chunk))
        part = [x[sl] for x in srcs]
        r_dv, r_dq, r_dg = reference.aggregate_grad(w, g, part, eps, dh[sl])
        out_dv = torch.stack([x[sl] for x in dvs]).double()
        if acc:
            r_dv = r_dv + torch.stack([a[sl].double() for a in accs])
        finite = finite and bool(torch.isfinite(out_dv).all())
        num += float(((out_dv - r_dv) ** 2).sum())
        den += float((r_dv ** 2).sum())
        ref_dq, ref_dg = ref_dq + r_dq, ref_dg + r_dg
        if n > 1:
            wrong = wrong_aggregate_grad(w, g, part, eps, dh[sl])
            if acc:
                wrong = wrong + torch.stack([a[sl].double() for a in accs])
            num_wrong += float(((out_dv - wrong) ** 2).sum())
        del r_dv, out_dv
    err_dv = (num / den) ** 0.5 if finite and den > 0 else float("inf")
    err_p = max(rel(dq, ref_dq), rel(dg, ref_dg)) if n > 1 else (
        0.0 if bool((dq == 0).all() and (dg == 0).all()) else float("inf"))
    q1, g1 = dq.clone(), dg.clone()
    run_all()
    torch.cuda.synchronize()
    det = torch.equal(q1, dq) and torch.equal(g1, dg)
    err = max(err_dv, err_p)
    ok = err <= TOL[e] and det
    ctl = ""
    if n > 1:
        # the kernel's own measure: relative to the whole reference dv
        # (accumulators included), so a kernel computing the control's
        # formula would fail this check
        err_wrong = (num_wrong / den) ** 0.5 if finite and den > 0 else float("inf")
        ctl_ok = err_wrong > TOL[e]
        ok = ok and ctl_ok
        ctl = f" control err {err_wrong:.1e} {'rejected' if ctl_ok else 'NOT REJECTED'}"
    # The byte floor: read n sources, dh, [n accumulators], lse and n inv_rms,
    # write n dv and the two f32 parameter gradients (the per-CTA partials
    # are the kernels' own overhead, not in the floor).
    nbytes = (2 * n + 1 + (n if acc else 0)) * t * d * dh.element_size() + 4 * (n + 1) * t + 8 * d
    line = (f"{entry['kernel']:40s} err dv {err_dv:.2e} dq/dg {err_p:.2e} "
            f"{'deterministic' if det else 'NOT DETERMINISTIC'}{ctl} {'OK ' if ok else 'BAD'}")
    return line, dict(err=err, err_dv=err_dv, err_param=err_p, deterministic=det, ok=ok,
                      bytes=nbytes), args, run_all


def wrong_merge_rows(o, lse, w, g, p, eps, dh, dpn, norm):
    """Control: merge's (dout, dp), written separately from
    reference.merge_grad / merge_norm_grad. Without the norm: the gate
    derivative a instead of a (1 - a) in dp (dout is right). With the fused
    norm: dout and dp for dh alone, the norm's backward (its gradient at h,
    added to dh) dropped."""
    p, o, dh = p.double(), o.double(), dh.double()
    wg = w.double() * g.double()
    r = reference.inv_rms(p, eps)
    c = r * (p * wg).sum(-1)
    a = torch.sigmoid(c - lse.double())
    dc = (dh * (p - o)).sum(-1) * (a * (1 - a) if norm else a)
    d = p.shape[-1]
    return dh * (1 - a)[..., None], (a[..., None] * dh + dpn.double()
                                     + (dc * r)[..., None] * (wg - (c * r / d)[..., None] * p))


def norm_dhn(o, lse, w, g, up, pa, e, scale):
    """The incoming gradient of the normed h for merge_grad with the fused
    norm: normal random values times `scale` / r(h) per token, h = merge's
    output (float64 reference). The norm's backward dhr = r(h) gn dhn - ...
    is then ~ `scale` per element whatever h's magnitude: with `scale` =
    near(dh's scale) it is 0.1 .. 1 of dh, and dropping it (the control)
    changes dout = (dh + dhr)(1 - a) by that fraction of itself. Drawn at a
    magnitude of its own, dhr was at times far below dh (run 23,
    mgrad_bf16_d4096_t16384_p_n: control err 2.1e-3, NOT REJECTED)."""
    h = reference.merge(o, lse, w, g, up, pa, eps)[0]
    r = reference.inv_rms(h, eps)
    del h
    t, d = o.shape
    return (torch.randn(t, d, device=o.device, dtype=torch.float64) * scale / r[:, None]).to(DT[e])


def control_err(out, wrong, ref):
    """||out - wrong|| / ||ref|| (inf when `out` is not finite): the
    control's error in the kernel check's own measure."""
    return rel(out, ref) if not bool(torch.isfinite(out).all()) else (
        float(torch.linalg.vector_norm(out.double() - wrong.double()))
        / max(float(torch.linalg.vector_norm(ref.double())), 1e-300))


def check_merge_grad(entry, run):
    """merge_grad (with/without partial and fused norm) against
    reference.merge_grad / merge_norm_grad in float64; determinism of the
    parameter gradients over two runs; a wrong-formula control (no norm:
    the gate derivative a instead of a (1 - a); norm: dout and dp without
    the norm's backward) must be rejected."""
    e, d, t = entry["e"], entry["d"], entry["t"]
    partial, norm = entry["partial"], entry["norm"]
    zero_dh = entry.get("zero_dh", False)  # dh a zero fill: not an argument
    nan = lambda *shape: torch.full(shape, float("nan"), device=dev, dtype=DT[e])  # noqa: E731
    reduce = launch_fn(DIR, entry, "reduce_kernel", "reduce_block")
    w, g = queries((d,), d, e)
    o = rand((t, d), e, magnitude(0, e))
    lse = torch.randn(t, device=dev) * 2
    up = rand((t, d), e, magnitude(1, e))
    pa = rand((t, d), e, magnitude(2, e)) if partial else None
    gn = (1 + 0.1 * torch.randn(d, device=dev)).to(DT[e]) if norm else None
    dh_scale = magnitude(3, e)
    dh, dpn = rand((t, d), e, dh_scale), rand((t, d), e, near(dh_scale))
    if zero_dh:
        dh = torch.zeros_like(dh)
    dhn = norm_dhn(o, lse, w, g, up, pa, e, near(dh_scale)) if norm else None
    dout, dp = nan(t, d), nan(t, d)
    dlse = torch.full((t,), float("nan"), device=dev)
    p = min(t, entry["grad_ctas"])
    ws = torch.full((p, 2 * d if norm else d), float("nan"), device=dev)
    dq, dg = torch.full((d,), float("nan"), device=dev), torch.full((d,), float("nan"), device=dev)
    dgn = torch.full((d,), float("nan"), device=dev) if norm else None
    args = ([o, lse, w, g, up] + ([pa] if partial else []) + ([gn] if norm else [])
            + ([] if zero_dh else [dh]) + [dpn]
            + ([dhn] if norm else []) + [dout, dlse, dp, ws, t, eps] + ([eps] if norm else []))
    rargs = [ws, p, w, g, dq, dg] + ([dgn] if norm else [])

    def run_all():
        run(args, t, p)
        reduce(rargs, t, -(-(2 * d if norm else d) // 32))
    run_all()
    torch.cuda.synchronize()
    if norm:
        ref = reference.merge_norm_grad(o, lse, w, g, up, pa, gn, eps, eps, dh, dhn, dpn,
                                        round_h=lambda h: h.to(DT[e]))
    else:
        ref = reference.merge_grad(o, lse, w, g, up, pa, eps, dh, dpn)
    err_rows = max(rel(dout, ref[0]), rel(dp, ref[4]))
    err_p = max(rel(dlse, ref[1]), rel(dq, ref[2]), rel(dg, ref[3]))
    if norm:
        err_p = max(err_p, rel(dgn, ref[6]))
    snap = [x.clone() for x in (dq, dg) + ((dgn,) if norm else ())]
    run_all()
    torch.cuda.synchronize()
    det = all(torch.equal(a, b) for a, b in zip(snap, (dq, dg) + ((dgn,) if norm else ())))
    pfull = up.double() + (pa.double() if partial else 0)
    wrong = wrong_merge_rows(o, lse, w, g, pfull, eps, dh, dpn, norm)
    # The kernel's own measure (err_rows: the larger of the errors of dout
    # and dp, each relative to the whole reference row, dp_new included),
    # so a kernel computing the control's formula would fail this check.
    # With the norm, dout carries the dropped dhr at 0.1 .. 1 of dh
    # (norm_dhn) at any magnitudes; dp alone need not: when |o| >> |p| its
    # score part (through <dh, p - o>) dominates, and dhr, orthogonal to
    # h ~ (1 - a) o, adds little to <., p - o>.
    err_wrong = max(control_err(dout, wrong[0], ref[0]), control_err(dp, wrong[1], ref[4]))
    ctl_ok = err_wrong > TOL[e]
    err = max(err_rows, err_p)
    ok = err <= TOL[e] and det and ctl_ok
    es = dh.element_size()
    # Byte floor: read out, update, [partial], dh, dp_new, [dhn], lse; write
    # dout, dp, dlse and the parameter gradients.
    nbytes = (6 + partial + norm - zero_dh) * t * d * es + 8 * t + (12 if norm else 8) * d
    line = (f"{entry['kernel']:40s} err rows {err_rows:.2e} lse/params {err_p:.2e} "
            f"{'deterministic' if det else 'NOT DETERMINISTIC'} control err {err_wrong:.1e} "
            f"{'rejected' if ctl_ok else 'NOT REJECTED'} {'OK ' if ok else 'BAD'}")
    return line, dict(err=err, err_rows=err_rows, err_param=err_p, deterministic=det, ok=ok,
                      bytes=nbytes), args, run_all


def wrong_block_score_grad(W, G, srcs, eps, dout, dlse):
    """Control: db with the score-gradient term of each query subtracted
    instead of added (the sign of dz_li = a_li (da_li - sum_j a_lj da_lj
    + dlse_l) flipped), written separately from reference.block_score_grad.
    One source: a = 1, dz = dlse, and the control subtracts
    dlse r (w - z r b / D)."""
    v = torch.stack([x.double() for x in srcs])
    r = reference.inv_rms(v, eps)
    d = v.shape[-1]
    db = torch.zeros_like(v)
    for l in range(W.shape[0]):
        wg = W[l].double() * G[l].double()
        z = r * (v * wg).sum(-1)
        a = torch.softmax(z, 0)
        da = (v * dout[l].double()).sum(-1)
        dz = a * (da - (a * da).sum(0, keepdim=True)) + a * dlse[l].double()
        db += a[..., None] * dout[l].double() - (dz * r)[..., None] * (wg - (z * r / d)[..., None] * v)
    return db


def with_split(entry, W, G):
    """split-query-gains (entries with a `split_kernel`): the halves of w*g
    the main kernel takes in place of W and G, and a function that launches
    the split kernel into them (grid ceil(S D / 8 / block)); else (W, G,
    None)."""
    if not entry.get("split_kernel"):
        return W, G, None
    split = launch_fn(DIR, entry, "split_kernel", "split_block")
    hi, lo = torch.full_like(W, float("nan")), torch.full_like(W, float("nan"))
    ctas = max(1, -(-(W.numel() // 8) // entry["split_block"]))
    return hi, lo, lambda: split([W, G, hi, lo], 0, ctas)


def check_block_score_grad(entry, run):
    """block_score_grad: S queries over n summaries of random magnitudes,
    the statistics of the float64 forward (rounded to f32), random dout,
    dlse and accumulators; every output NaN-poisoned. The three kernels
    (per-token db and coefficients, column-tiled parameter partials, the
    ordered reduction) against reference.block_score_grad; bit-identical
    parameter gradients over two runs; the wrong-formula control rejected."""
    e, d, t, n, s, acc = entry["e"], entry["d"], entry["t"], entry["n"], entry["s"], entry["acc"]
    nan = lambda *shape: torch.full(shape, float("nan"), device=dev, dtype=DT[e])  # noqa: E731
    fnan = lambda *shape: torch.full(shape, float("nan"), device=dev)  # noqa: E731
    params = launch_fn(DIR, entry, "params_kernel", "params_block")
    reduce = launch_fn(DIR, entry, "reduce_kernel", "reduce_block")
    W, G = queries((s, d), d, e)
    srcs = [rand((t, d), e, magnitude(i, e)) for i in range(n)]
    dscale = magnitude(n, e)
    dout = rand((s, t, d), e, dscale)
    dlse = torch.randn(s, t, device=dev) * dscale * d ** 0.5
    accs = [rand((t, d), e, near(dscale)) for _ in range(n)] if acc else []
    chunk = max(1, (1 << 26) // (max(n, s) * d))
    lse = torch.cat([reference.block_score(W, G, [x[t0:t0 + chunk] for x in srcs], eps)[1]
                     for t0 in range(0, t, chunk)], 1).float().contiguous()
    rs = [reference.inv_rms(x, eps).float().contiguous() for x in srcs]
    dbs = [nan(t, d) for _ in range(n)]
    coef = fnan(t, s * n)
    p = min(t, entry["grad_ctas"])
    ws = fnan(p, s * d)
    dq, dg = fnan(s * d), fnan(s * d)
    # split-query-gains: the per-token kernel takes the halves of w*g.
    WA, GA, split = with_split(entry, W, G)
    args = [WA, GA] + srcs + [lse] + rs + [dout, dlse] + accs + dbs + [coef, t]
    pargs = srcs + [coef, ws, t]
    rargs = [ws, p, W.reshape(-1), G.reshape(-1), dq, dg]

    # Persistent CTAs (`_tc_p`): min(T, grad-ctas / 2) of them.
    grid = min(t, max(1, entry["grad_ctas"] // 2)) if entry.get("persistent") else None

    def run_all():
        if split:
            split()
        run(args, t, grid)
        params(pargs, t, entry["tiles"] * p)
        reduce(rargs, t, -(-(s * d) // 32))
    run_all()
    torch.cuda.synchronize()
    num = den = num_wrong = 0.0
    ref_dq = ref_dg = 0.0
    finite = True
    for t0 in range(0, t, chunk):
        sl = slice(t0, min(t, t0 + chunk))
        part = [x[sl] for x in srcs]
        r_db, r_dq, r_dg = reference.block_score_grad(W, G, part, eps, dout[:, sl], dlse[:, sl])
        out_db = torch.stack([x[sl] for x in dbs]).double()
        wrong = wrong_block_score_grad(W, G, part, eps, dout[:, sl], dlse[:, sl])
        if acc:
            a_part = torch.stack([a[sl].double() for a in accs])
            r_db, wrong = r_db + a_part, wrong + a_part
        finite = finite and bool(torch.isfinite(out_db).all())
        num += float(((out_db - r_db) ** 2).sum())
        den += float((r_db ** 2).sum())
        num_wrong += float(((out_db - wrong) ** 2).sum())
        ref_dq, ref_dg = ref_dq + r_dq, ref_dg + r_dg
        del r_db, out_db, wrong
    err_db = (num / den) ** 0.5 if finite and den > 0 else float("inf")
    err_p = max(rel(dq.view(s, d), ref_dq), rel(dg.view(s, d), ref_dg))
    q1, g1 = dq.clone(), dg.clone()
    run_all()
    torch.cuda.synchronize()
    det = torch.equal(q1, dq) and torch.equal(g1, dg)
    err = max(err_db, err_p)
    # the kernel's own measure: relative to the whole reference db
    # (accumulators included)
    err_wrong = (num_wrong / den) ** 0.5 if finite and den > 0 else float("inf")
    ctl_ok = err_wrong > TOL[e]
    ok = err <= TOL[e] and det and ctl_ok
    es = dout.element_size()
    # Byte floor: read n summaries, S dout, [n accumulators], lse, dlse and n
    # inv_rms; write n db and the two f32 parameter gradients.
    nbytes = (2 * n + s + (n if acc else 0)) * t * d * es + 4 * t * (2 * s + n) + 8 * s * d
    line = (f"{entry['kernel']:40s} err db {err_db:.2e} dW/dG {err_p:.2e} "
            f"{'deterministic' if det else 'NOT DETERMINISTIC'} control err {err_wrong:.1e} "
            f"{'rejected' if ctl_ok else 'NOT REJECTED'} {'OK ' if ok else 'BAD'}")
    return line, dict(err=err, err_db=err_db, err_param=err_p, deterministic=det, ok=ok,
                      bytes=nbytes), args, run_all


def check(entry):
    """Runs one kernel on random inputs (outputs NaN-poisoned) against
    attnres.reference: (report line, result fields)."""
    e, d, t = entry["e"], entry["d"], entry["t"]
    run = launch_fn(DIR, entry)
    torch.cuda.synchronize()
    call = None  # what is timed: run(args, t) unless set below
    nan = lambda *shape: torch.full(shape, float("nan"), device=dev, dtype=DT[e])  # noqa: E731
    if entry["op"] == "aggregate":
        n = entry["n"]
        w, g = queries((d,), d, e)
        srcs = [rand((t, d), e, 0.5 + i * 0.25) for i in range(n)]
        out = nan(t, d)
        args = [w, g] + srcs + [out, t, eps]
        run(args, t)
        torch.cuda.synchronize()
        err = rel(out, reference.aggregate(w, g, srcs, eps))
        nbytes = (n + 1) * t * d * out.element_size()
    elif entry["op"] == "block_score":
        n, s = entry["n"], entry["s"]
        W, G = queries((s, d), d, e)
        srcs = [rand((t, d), e, 0.5 + i * 0.25) for i in range(n)]
        rs = [reference.inv_rms(x, eps).float() for x in srcs] if entry["inv"] else []
        out = nan(s, t, d)
        lse = torch.full((s, t), float("nan"), device=dev)
        # split-query-gains: the kernel takes the halves of w*g, split
        # first (and timed with it).
        WA, GA, split = with_split(entry, W, G)
        args = [WA, GA] + srcs + rs + [out, lse, t, eps]
        if split:
            call = lambda: (split(), run(args, t))  # noqa: E731
        (call or (lambda: run(args, t)))()
        torch.cuda.synchronize()
        ref, lref = reference.block_score(W, G, srcs, eps)
        err = max(rel(out, ref), rel(lse, lref))
        nbytes = (n + s) * t * d * out.element_size() + 4 * s * t + (4 * n * t if entry["inv"] else 0)
    elif entry["op"] == "aggregate_stats":
        n = entry["n"]
        w, g = queries((d,), d, e)
        srcs = [rand((t, d), e, magnitude(i, e)) for i in range(n)]
        out = nan(t, d)
        lse = torch.full((t,), float("nan"), device=dev)
        rs = [torch.full((t,), float("nan"), device=dev) for _ in range(n)]
        args = [w, g] + srcs + [out, lse] + rs + [t, eps]
        run(args, t)
        torch.cuda.synchronize()
        lref, rref = reference.aggregate_stats(w, g, srcs, eps)
        err = max([rel(out, reference.aggregate(w, g, srcs, eps)), rel(lse, lref)]
                  + [rel(r, rref[i]) for i, r in enumerate(rs)])
        # spec A.2 / I.1: one source gives h = v_0 bit for bit.
        if n == 1 and not torch.equal(out, srcs[0]):
            err = float("inf")
        nbytes = (n + 1) * t * d * out.element_size() + 4 * (n + 1) * t
    elif entry["op"] in ("aggregate_grad", "merge_grad", "block_score_grad"):
        check_fn = {"aggregate_grad": check_grad, "merge_grad": check_merge_grad,
                    "block_score_grad": check_block_score_grad}[entry["op"]]
        line, fields, args, run_all = check_fn(entry, run)
        ms = time_it(run_all, REPS) if entry["time"] else None
        tbs = fields["bytes"] / ms / 1e9 if ms else None
        if ms:
            line += f" {ms:8.3f} ms {tbs:5.2f} TB/s {100 * tbs / copy_tbs:5.1f}% of copy"
        fields.update(ms=ms, tbs=tbs, copy_tbs=copy_tbs)
        return line, fields
    else:
        partial = entry["partial"]
        w, g = queries((d,), d, e)
        o = rand((t, d), e)
        lse = torch.randn(t, device=dev) * 2
        up = rand((t, d), e)
        pa = rand((t, d), e) if partial else None
        h = nan(t, d)
        p2 = nan(t, d) if partial else None
        args = [o, lse, w, g, up] + ([pa] if partial else []) + [h] + ([p2] if partial else []) + [t, eps]
        run(args, t)
        torch.cuda.synchronize()
        ref, p = reference.merge(o, lse, w, g, up, pa, eps)
        err = rel(h, ref)
        if partial:
            err = max(err, rel(p2, p))
        nbytes = (3 + (2 if partial else 0)) * t * d * h.element_size() + 4 * t
    ok = err <= TOL[e]
    ms = time_it(call or (lambda: run(args, t)), REPS) if entry["time"] else None
    tbs = nbytes / ms / 1e9 if ms else None
    line = f"{entry['kernel']:40s} err {err:.2e} {'OK ' if ok else 'BAD'}"
    if ms:
        line += f" {ms:8.3f} ms {tbs:5.2f} TB/s {100 * tbs / copy_tbs:5.1f}% of copy"
    return line, dict(err=err, ok=ok, ms=ms, tbs=tbs, copy_tbs=copy_tbs)


run_checks(os.path.join(DIR, "manifest.json"), check,
           select=lambda entry: not only or any(
               re.match(o, entry["name"]) if o.startswith("^") else o in entry["name"]
               for o in only))
