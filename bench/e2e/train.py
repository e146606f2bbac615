"""Training mode of bench/e2e (issue 12 item 6): forward + backward +
optimizer step of the large Block AttnRes model, against standard residuals.

  python3 -m bench.e2e.run_e2e train --pack DIR [--layers 32] [--tokens 8192]
      [--checkpoint sublayer|none] [--steps 11] [--warmup 2] [--variants ...]

The model is bench/e2e/model.py's LARGE (32 layers, d=4096, 32 heads, SwiGLU
11008, vocab 32000, blocks of 8 sublayers) on 1 x --tokens tokens, bf16
parameters, next-token cross-entropy (random tokens, loss in f32), AdamW
(torch.optim.AdamW, lr 1e-5, weight decay 0.1, fused on CUDA) on the bf16
parameters with its state in bf16 too ("plain bf16": no f32 master weights;
with them the 6.7 B parameters need 13.4 + 13.4 + 26.8 + 53.6 = 107 GB of
parameters, gradients, master weights and Adam moments, more than an H100
holds, before any activation).

Variants (all on the same weights, interleaved round by round):
  standard                 x = x + f(x)
  compiled-twophase-norm   attnres.torch_ops: block_score once per block, merge
                           with the fused RMSNorm per sublayer; compiled forward
                           kernels of the kernel pack, the backward of
                           torch_ops (today PyTorch formulas: torch_ops.set_backward)
  compiled                 attnres.torch_ops.aggregate per sublayer: with a pack
                           built with grad=1 (build_pack.sh), the compiled
                           training kernels (aggregate_stats forward,
                           aggregate_grad backward)
  compiled-formulas        the same with torch_ops.set_compiled_backward(False):
                           compiled forward, backward by the PyTorch formulas
  liger-torch              Liger-Kernel's formulation in plain PyTorch ops
                           (model.liger_formulation), autograd's backward
  liger                    Liger-Kernel's own attn_res op (Triton forward and
                           backward), when the liger_kernel package imports

--checkpoint sublayer (the default) recomputes every sublayer in the backward
(model.checkpoint: each sublayer's AttnRes op(s), norm and body in one
checkpoint): without it the 32-layer model does not fit an 80 GB card
(activations of about 1.2 GB per layer at 8K tokens beside 53.6 GB of
parameters, gradients and Adam state).

Measured per variant: step time (CUDA events around zero_grad, forward,
backward and optimizer step; median of --steps timed rounds after --warmup
rounds), the overhead over standard residuals (median and paired: the median
over rounds of variant / standard of the same round), peak memory
(torch.cuda.max_memory_allocated over the timed steps, reset before each),
against the standard model's peak plus the N + 1 block summaries b_0 .. b_N
(T x D bf16 each). Before timing, on the initial weights, each AttnRes
variant's loss and the gradients of the pseudo-queries and key-norm gains are
compared with liger-torch's (plain PyTorch autograd). The bound is a noise
floor measured in the same run: the distance between two plain PyTorch
formulations under autograd, attnres's reference (model mode "reference") and
liger-torch, both bf16; a variant passes within twice that (+1e-3) for the
loss and each gradient. Not a precision test (python/tests/test_torch_autograd.py
and the GPU test hold the per-op tolerances), a guard against a missing or
wrong gradient term.
"""

import gc
import time
import traceback

import torch
import torch.nn.functional as F

from attnres import torch_ops
from bench.e2e import model as e2e_model
from bench.e2e.model import build
from bench.e2e.timing import Timer

VARIANTS = ["standard", "compiled-twophase-norm", "compiled", "compiled-formulas", "liger-torch",
            "liger"]
# Opt-in variants (--variants): the two-phase model taking block_score's rows
# with out[i] instead of unbind, the A/B of docs/python.md's advice.
EXTRA_VARIANTS = ["compiled-twophase-norm-select", "compiled-twophase-select"]
REFERENCE = "liger-torch"
# The check's noise floor: attnres's own plain PyTorch reference (one
# aggregation per sublayer, reference.aggregate's ops under autograd) against
# REFERENCE, both bf16 models with autograd gradients.
NOISE = "reference"


def _median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def _rel(a, b):
    a, b = a.double(), b.double()
    if not torch.isfinite(a).all():
        return float("inf")
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


class Trainer:
    def __init__(self, model, tokens, targets, device, lr):
        self.model, self.tokens, self.targets, self.device = model, tokens, targets, device
        kw = {"fused": True} if device == "cuda" else {}
        try:
            self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, **kw)
            self.fused = bool(kw)
        except (TypeError, RuntimeError):  # torch without fused AdamW
            self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)
            self.fused = False

    def set_variant(self, name):
        torch_ops.set_compiled_backward(name != "compiled-formulas")
        # "...-select": block_score's rows taken with out[i] (the model's
        # block_rows), for the A/B against unbind; not in VARIANTS.
        self.model.block_rows = "select" if name.endswith("-select") else "unbind"
        name = name[:-len("-select")] if name.endswith("-select") else name
        if name == "standard":
            self.model.residual, self.model.attnres = "standard", "reference"
        else:
            mode = "compiled" if name == "compiled-formulas" else name
            self.model.residual, self.model.attnres = "attnres", mode

    def loss(self):
        logits = self.model(self.tokens)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), self.targets.view(-1))

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss()
        loss.backward()
        self.opt.step()
        return loss.detach()


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _oom(ex):
    return isinstance(ex, getattr(torch.cuda, "OutOfMemoryError", ())) or (
        isinstance(ex, RuntimeError) and "out of memory" in str(ex))


def _free(trainer):
    trainer.opt.zero_grad(set_to_none=True)
    gc.collect()
    if trainer.device == "cuda":
        torch.cuda.empty_cache()


def gradient_check(trainer, variants, log):
    """Loss and d(queries), d(gains) of each AttnRes variant at the current
    weights (no optimizer step) against liger-torch's."""
    model = trainer.model
    got = {}
    failed = {}
    for name in [NOISE] + variants:
        if name == "standard":
            continue
        trainer.set_variant(name)
        torch_ops.stats(reset=True)
        try:
            model.zero_grad(set_to_none=True)
            loss = trainer.loss()
            loss.backward()
            _sync(trainer.device)
            got[name] = (loss.item(), model.queries.grad.float().clone(),
                         model.gains.grad.float().clone(), torch_ops.stats())
        except Exception as ex:  # noqa: BLE001
            if _oom(ex):
                log("check %s: out of memory" % name)
            else:
                # one broken variant must not cost the others' measurement
                failed[name] = traceback.format_exc()[-2000:]
                log("check %s: FAILED with an exception:\n%s" % (name, failed[name]))
        _free(trainer)
    out = {}
    ref = got.get(REFERENCE)
    noise = None
    if ref is not None and NOISE in got:
        n = got[NOISE]
        noise = (abs(n[0] - ref[0]) / abs(ref[0]), _rel(n[1], ref[1]), _rel(n[2], ref[2]))
    keys = ["loss_rel_diff_vs_" + REFERENCE, "dqueries_rel_err_vs_" + REFERENCE,
            "dgains_rel_err_vs_" + REFERENCE]
    for name, (loss, dq, dg, st) in got.items():
        row = {"loss": loss, "kernel_calls": st["kernel"], "reference_calls": st["reference"]}
        if ref is not None and name != REFERENCE:
            errs = (abs(loss - ref[0]) / abs(ref[0]), _rel(dq, ref[1]), _rel(dg, ref[2]))
            row.update(zip(keys, errs))
            if name != NOISE and noise is not None:
                # within twice the distance of the two plain PyTorch formulations
                row["pass"] = (all(e <= 2 * f + 1e-3 for e, f in zip(errs, noise))
                               and (not name.startswith("compiled") or trainer.device != "cuda"
                                    or st["reference"] == 0))
        out[name] = row
        log("check %-24s loss %.5f%s" % (name, loss, "" if keys[0] not in row else
            "  vs %s: loss %.1e, dqueries %.2e, dgains %.2e, kernels %d  %s" % (
                REFERENCE, row[keys[0]], row[keys[1]], row[keys[2]], st["kernel"],
                ("PASS" if row["pass"] else "FAIL") if "pass" in row else "(noise floor)")))
    for name, tb in failed.items():
        out[name] = {"exception": tb, "pass": False}
    return out


def train(args, cfg, device, log=print):
    """Returns (results dict, ok)."""
    if args.layers:
        cfg = e2e_model.Config(**{**cfg.__dict__, "layers": args.layers})
    t0 = time.time()
    model = build(cfg, device, torch.bfloat16, seed=0).train()
    model.checkpoint = None if args.checkpoint == "none" else args.checkpoint
    nparams = sum(p.numel() for p in model.parameters())
    gen = torch.Generator(device=device).manual_seed(9)
    seq = torch.randint(0, cfg.vocab, (1, args.tokens + 1), generator=gen, device=device)
    tokens, targets = seq[:, :-1].contiguous(), seq[:, 1:].contiguous()
    trainer = Trainer(model, tokens, targets, device, args.lr)
    _sync(device)
    log("built %d layers d=%d (%d sublayers, blocks of %d): %.2f B parameters in %.1f s; "
        "checkpoint %s; AdamW%s on bf16 parameters, bf16 state"
        % (cfg.layers, cfg.d, cfg.sublayers, cfg.block_size, nparams / 1e9, time.time() - t0,
           args.checkpoint, " (fused)" if trainer.fused else ""))
    variants = list(args.variants)
    skipped = {}
    if "liger" in variants:
        try:
            e2e_model.liger_op()
        except Exception as ex:  # noqa: BLE001
            skipped["liger"] = "liger_kernel not importable: %r" % (ex,)
            variants.remove("liger")
            log("skip liger: %s" % skipped["liger"])
    check = gradient_check(trainer, variants, log)
    ok = all(r.get("pass", True) for r in check.values())
    for name, r in check.items():
        if "exception" in r and name in variants:
            skipped[name] = "exception in the gradient check"
            variants.remove(name)
    times = {v: [] for v in variants}
    peaks = {v: [] for v in variants}
    losses = {v: [] for v in variants}
    alive = list(variants)
    base_mem = None
    for r in range(args.warmup + args.steps):
        round_ms = {}
        for name in list(alive):
            trainer.set_variant(name)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            try:
                with Timer(device) as t:
                    loss = trainer.step()
            except Exception as ex:  # noqa: BLE001
                why = "out of memory" if _oom(ex) else "exception"
                log("round %d %s: %s (%s)" % (r, name, why, str(ex).splitlines()[0][:200]))
                if not _oom(ex):
                    log(traceback.format_exc()[-2000:])
                    ok = False
                skipped[name] = "%s in round %d" % (why, r)
                alive.remove(name)
                _free(trainer)
                continue
            round_ms[name] = t.ms
            if r >= args.warmup:
                times[name].append(t.ms)
                losses[name].append(loss.item())
                if device == "cuda":
                    peaks[name].append(torch.cuda.max_memory_allocated())
        if r == 0 and device == "cuda":
            base_mem = torch.cuda.memory_allocated()
        log("round %d%s: %s" % (r, " (warm-up)" if r < args.warmup else "", ", ".join(
            "%s %.1f ms" % kv for kv in round_ms.items())))
    T, D = args.tokens, cfg.d
    nblocks = -(-cfg.sublayers // cfg.block_size)
    summaries_bytes = (nblocks + 1) * T * D * 2
    rows = []
    std = times.get("standard") or []
    std_med = _median(std) if std else None
    std_peak = max(peaks["standard"]) if peaks.get("standard") else None
    for name in variants:
        if not times[name]:
            rows.append({"variant": name, "skipped": skipped.get(name, "no timed step")})
            continue
        med = _median(times[name])
        row = {"variant": name, "median_ms": med, "min_ms": min(times[name]),
               "max_ms": max(times[name]), "runs_ms": times[name], "losses": losses[name]}
        if std_med and name != "standard":
            row["overhead_pct"] = (med / std_med - 1) * 100
            pairs = [a / b for a, b in zip(times[name], std)]
            row["overhead_paired_pct"] = (_median(pairs) - 1) * 100
        if peaks[name]:
            row["peak_bytes"] = max(peaks[name])
            if std_peak and name != "standard":
                row["peak_vs_standard_pct"] = (row["peak_bytes"] / std_peak - 1) * 100
                row["peak_vs_standard_plus_summaries_pct"] = (
                    row["peak_bytes"] / (std_peak + summaries_bytes) - 1) * 100
        rows.append(row)
        log("%-24s step median %8.1f ms (min %8.1f, max %8.1f)%s%s" % (
            name, med, min(times[name]), max(times[name]),
            "  overhead %+6.2f%% (paired %+6.2f%%)" % (row["overhead_pct"],
                                                     row["overhead_paired_pct"])
            if "overhead_pct" in row else "",
            "  peak %.2f GB%s" % (row["peak_bytes"] / 1e9,
                                  " (%+.2f%% vs standard, %+.2f%% vs standard + %d summaries)"
                                  % (row["peak_vs_standard_pct"],
                                     row["peak_vs_standard_plus_summaries_pct"], nblocks + 1)
                                  if "peak_vs_standard_pct" in row else "")
            if "peak_bytes" in row else ""))
    for name, why in skipped.items():
        log("%s: %s" % (name, why))
    return {"model": "%d layers, d=%d, %d heads, SwiGLU %d, vocab %d, S=%d (%d blocks), "
                     "1x%d tokens, bf16" % (cfg.layers, cfg.d, cfg.heads, cfg.mlp_hidden,
                                            cfg.vocab, cfg.block_size, nblocks, T),
            "parameters": nparams, "checkpoint": args.checkpoint,
            "optimizer": "AdamW lr %g wd 0.1%s, bf16 parameters and state (no f32 master)"
                         % (args.lr, ", fused" if trainer.fused else ""),
            "torch": torch.__version__, "steps": args.steps, "warmup": args.warmup,
            "static_bytes_after_round0": base_mem, "summaries_bytes": summaries_bytes,
            "check": check, "rows": rows, "skipped": skipped}, ok
