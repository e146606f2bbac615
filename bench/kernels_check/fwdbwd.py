#!/usr/bin/env python3
"""Forward + backward of one aggregation on the GPU, same run, same inputs:
attnres's kernels (aggregate_stats, then aggregate_grad and its parameter
reduce, from the PTX gen.py made) against Liger-Kernel's attn_res forward +
backward (its Triton kernels, on the stacked [N, T, D] input they take), and
against eager PyTorch and torch.compile of the plain formulation of
bench/baselines.py (autograd for the backward).

Every contender is checked first: h, dV, dquery and dgain against
attnres.reference (float64 on the GPU); a contender whose error exceeds the
dtype's tolerance is reported, not ranked. Timing: bench.cudadrv.time_it
(CUDA events, median of KC_REPS after 3 warm-ups). The byte floor of
forward + backward reads the N sources twice, reads dh, writes h and the N
dv (the statistics and parameter gradients are O(T N + D) and are counted
too). Usage (repository root, after gen.py with KC_SET=grad):
  PYTHONPATH=python:. python3 -m bench.kernels_check.fwdbwd <dir> [--liger] [--compile]
Writes fwdbwd.json into $OUT (or the current directory). FWDBWD_VARIANTS
(comma-separated tags, e.g. "l2,c264") adds, for each shape with a gen.py
GRAD_VARIANTS entry grad_<shape>_<tag>, the contender attnres_<tag>: the same
forward with that aggregate_grad, timed in the same run as the default.
"""
import json
import os
import sys
import traceback

import torch

from attnres import defaults, reference
from bench.baselines import aggregate_plain
from bench.cudadrv import DT, TOL, init, launch_fn, rand, time_it

DIR = sys.argv[1]
WITH_LIGER = "--liger" in sys.argv
WITH_COMPILE = "--compile" in sys.argv
REPS = int(os.environ.get("KC_REPS", "20"))
dev = torch.device("cuda")
torch.manual_seed(1)
init()
eps = defaults.epsilon()
rel = reference.rel_error


def copy_bw():
    x = torch.empty(1 << 29, dtype=torch.uint8, device=dev).random_()
    y = torch.empty_like(x)
    ms = time_it(lambda: y.copy_(x))
    return 2 * x.numel() / ms / 1e9


def reference_grads(w, g, srcs, dh):
    """float64 h, dV [N, T, D], dquery, dgain in token chunks."""
    n, (t, d) = len(srcs), srcs[0].shape
    chunk = max(1, (1 << 26) // (n * d))
    hs, dvs, dq, dg = [], [], 0.0, 0.0
    for t0 in range(0, t, chunk):
        part = [x[t0:t0 + chunk] for x in srcs]
        hs.append(reference.aggregate(w, g, part, eps).float())
        r_dv, r_dq, r_dg = reference.aggregate_grad(w, g, part, eps, dh[t0:t0 + chunk])
        dvs.append(r_dv.to(torch.float32))
        dq, dg = dq + r_dq, dg + r_dg
    return torch.cat(hs), torch.cat(dvs, 1), dq, dg


def errors(h, dv, dq, dg, ref):
    """Relative Frobenius errors; dV one source at a time (float64 copies of
    all of [N, T, D] would not fit beside the inputs at N = 17)."""
    num = den = 0.0
    for i in range(dv.shape[0]):
        o, r = dv[i].double(), ref[1][i].double()
        if not bool(torch.isfinite(o).all()):
            num = float("inf")
        num += float(((o - r) ** 2).sum())
        den += float((r ** 2).sum())
    return dict(err_h=rel(h, ref[0]), err_dv=(num / max(den, 1e-300)) ** 0.5,
                err_dq=rel(dq, ref[2]), err_dg=rel(dg, ref[3]))


def ours(shape, w, g, srcs, dh):
    """aggregate_stats + aggregate_grad + reduce: (fn, outputs)."""
    stats, grad = shape["stats"], shape["grad"]
    t, d, n = grad["t"], grad["d"], grad["n"]
    run_s, run_g = launch_fn(DIR, stats), launch_fn(DIR, grad)
    reduce = launch_fn(DIR, grad, "reduce_kernel", "reduce_block")
    e = grad["e"]
    h = torch.empty(t, d, device=dev, dtype=DT[e])
    lse = torch.empty(t, device=dev)
    rs = [torch.empty(t, device=dev) for _ in range(n)]
    dvs = [torch.empty(t, d, device=dev, dtype=DT[e]) for _ in range(n)]
    p = min(t, grad["grad_ctas"])
    ws = torch.empty(p, d, device=dev)
    dq, dg = torch.empty(d, device=dev), torch.empty(d, device=dev)
    sargs = [w, g] + srcs + [h, lse] + rs + [t, eps]
    gargs = [w, g] + srcs + [lse] + rs + [dh] + dvs + [ws, t]
    rargs = [ws, p, w, g, dq, dg]

    def fn():
        run_s(sargs, t)
        run_g(gargs, t, p)
        reduce(rargs, t, -(-d // 32))
    return fn, lambda: (h, torch.stack(dvs), dq, dg)


def liger(w, g, V, dh):
    from liger_kernel.ops import attn_res as lg
    out = {}

    def fn():
        h, V3, alpha, rstd = lg.attn_res_forward(V, w, g, eps)
        dV, dq, dg = lg.attn_res_backward(dh, V3, w, g, alpha, rstd, eps)
        out.update(h=h, dV=dV, dq=dq, dg=dg)
    return fn, lambda: (out["h"], out["dV"], out["dq"], out["dg"])


def autograd(f, w, g, V, dh):
    """Forward + backward of the plain formulation through autograd."""
    Vr, wr, gr = (x.detach().clone().requires_grad_() for x in (V, w, g))

    def fn():
        for x in (Vr, wr, gr):
            x.grad = None
        f(Vr, wr, gr, eps).backward(dh)
    out = {}

    def outputs():
        out["h"] = f(Vr, wr, gr, eps).detach()
        return out["h"], Vr.grad, wr.grad, gr.grad
    return fn, outputs


def measure(shape, copy_tbs, card):
    """One shape: every contender checked, then timed; returns the row."""
    gr = shape["grad"]
    n, d, t, e = gr["n"], gr["d"], gr["t"], gr["e"]
    w = rand((d,), e, 3.0 / d ** 0.5)
    g = (1 + 0.1 * torch.randn(d, device=dev)).to(DT[e])
    srcs = [rand((t, d), e, 0.5 + 0.25 * i) for i in range(n)]
    dh = rand((t, d), e)
    V = torch.stack(srcs)
    ref = reference_grads(w, g, srcs, dh)
    es = srcs[0].element_size()
    nbytes = (2 * n + 2 + n) * t * d * es + 4 * (n + 1) * t * 2 + 16 * d
    row = dict(n=n, d=d, t=t, dtype=e, bytes=nbytes, copy_tbs=copy_tbs, card=card)
    print(f"n={n} D={d} T={t} {e}: byte floor {nbytes / 1e6:.0f} MB "
          f"= {nbytes / copy_tbs / 1e9:.3f} ms at copy", flush=True)
    contenders = [("attnres", lambda: ours(shape, w, g, srcs, dh))]
    for tag, variant in shape.get("variants", {}).items():
        contenders.append(("attnres_" + tag,
                           lambda v=variant: ours(dict(shape, grad=v), w, g, srcs, dh)))
    contenders.append(("eager", lambda: autograd(aggregate_plain, w, g, V, dh)))
    if WITH_LIGER:
        contenders.append(("liger", lambda: liger(w, g, V, dh)))
    if WITH_COMPILE:
        contenders.append(("compile", lambda: autograd(torch.compile(aggregate_plain), w, g, V, dh)))
    for name, make in contenders:
        try:
            fn, outputs = make()
            fn()
            torch.cuda.synchronize()
            errs = errors(*outputs(), ref)
            ok = max(errs.values()) <= TOL[e]
            ms = time_it(fn, REPS)
            row[name] = dict(ms=ms, ok=ok, **errs)
            print(f"  {name:8s} {ms:8.3f} ms  {nbytes / ms / 1e9 / copy_tbs * 100:5.1f}% of floor  "
                  + " ".join(f"{k} {v:.1e}" for k, v in errs.items())
                  + ("" if ok else "  ABOVE TOLERANCE"), flush=True)
        except Exception:
            row[name] = dict(exception=traceback.format_exc()[-1500:])
            print(f"  {name}: failed\n{row[name]['exception']}", flush=True)
        fn = outputs = None
        torch.cuda.empty_cache()
    base = row.get("attnres", {}).get("ms")
    for name in ("liger", "compile", "eager"):
        if base and row.get(name, {}).get("ms"):
            row["x_" + name] = row[name]["ms"] / base
            print(f"  attnres vs {name}: {row['x_' + name]:.2f}x", flush=True)
    return row


def main():
    with open(os.path.join(DIR, "manifest.json")) as f:
        manifest = json.load(f)
    by_name = {e["name"]: e for e in manifest}
    shapes = []
    for e in manifest:
        if e["op"] == "aggregate_grad" and e.get("time") and not e.get("acc") \
                and e["name"].startswith("grad_") and "_m2" not in e["name"] and "_e16" not in e["name"]:
            stats = by_name.get("stats_" + e["name"][len("grad_"):])
            if stats:
                tags = [t for t in os.environ.get("FWDBWD_VARIANTS", "").split(",") if t]
                variants = {t: by_name[e["name"] + "_" + t] for t in tags
                            if e["name"] + "_" + t in by_name}
                shapes.append(dict(stats=stats, grad=e, variants=variants))
    copy_tbs = copy_bw()
    card = torch.cuda.get_device_name()
    print(f"{card}: copy {copy_tbs:.2f} TB/s", flush=True)
    rows = []
    for shape in shapes:
        rows.append(measure(shape, copy_tbs, card))
        torch.cuda.empty_cache()
    with open(os.path.join(os.environ.get("OUT", "."), "fwdbwd.json"), "w") as f:
        json.dump(rows, f, indent=1)
    bad = [r for r in rows if not r.get("attnres", {}).get("ok")]
    sys.exit(1 if bad else 0)


main()
