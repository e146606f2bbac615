"""bench/e2e training mode on the CPU (a smoke run of run_e2e.py train with a
tiny model): every variant trains, the gradient check passes, and a gradient
left out of torch_ops' backward (the control) makes it fail."""

import types

import pytest
import torch

pytest.importorskip("bench.e2e.train")
from attnres import torch_ops  # noqa: E402
from bench.e2e.model import Config  # noqa: E402
from bench.e2e.train import train  # noqa: E402

TINY = Config(layers=2, d=32, heads=2, mlp_hidden=64, vocab=53, block_size=3)


def _args(**kw):
    a = dict(layers=0, tokens=24, checkpoint="sublayer", steps=2, warmup=1, lr=1e-3,
             variants=["standard", "compiled-twophase-norm", "compiled", "liger-torch"])
    a.update(kw)
    return types.SimpleNamespace(**a)


def test_train_smoke():
    torch.manual_seed(0)
    res, ok = train(_args(), TINY, "cpu", log=lambda m: None)
    assert ok, res["check"]
    rows = {r["variant"]: r for r in res["rows"]}
    assert set(rows) == {"standard", "compiled-twophase-norm", "compiled", "liger-torch"}
    for r in rows.values():
        assert len(r["runs_ms"]) == 2 and all(torch.isfinite(torch.tensor(r["losses"])))


def test_train_select_variant():
    """The opt-in A/B variant (block_score's rows by out[i]) trains and
    passes the gradient check beside standard residuals."""
    torch.manual_seed(0)
    res, ok = train(_args(variants=["standard", "compiled-twophase-norm-select"]), TINY, "cpu",
                    log=lambda m: None)
    assert ok, res["check"]
    assert {r["variant"] for r in res["rows"]} == {"standard", "compiled-twophase-norm-select"}


def test_train_check_catches_a_missing_gradient():
    """Control: aggregate's backward without its query/gain gradients."""
    ref = torch_ops.backward_impl("aggregate")

    def no_query_grad(query, norm_weight, srcs, eps, dh):
        dq, dg, dv = ref(query, norm_weight, srcs, eps, dh)
        return dq * 0, dg * 0, dv

    torch_ops.set_backward("aggregate", no_query_grad)
    try:
        res, ok = train(_args(variants=["compiled", "liger-torch"], steps=1, warmup=0), TINY,
                        "cpu", log=lambda m: None)
    finally:
        torch_ops.set_backward("aggregate", None)
    assert not ok and res["check"]["compiled"]["pass"] is False


@pytest.mark.parametrize("mode", ["compiled-twophase", "compiled-twophase-norm"])
def test_two_phase_backward_has_no_full_size_select_gradients(mode):
    """The two-phase model takes block_score's rows with unbind: its backward
    must not run select_backward on the [S, T, D] block outputs (each one a
    zero-filled [S, T, D] tensor, then S of them added up). Control: the same
    backward through out[i] does run them, so the profiler check has power."""
    from bench.e2e import model as e2e_model

    cfg = Config(layers=3, d=16, heads=2, mlp_hidden=32, vocab=29, block_size=3)
    net = e2e_model.build(cfg, seed=1, attnres=mode).train()
    net.checkpoint = "sublayer"
    tokens = torch.randint(0, cfg.vocab, (1, 10), generator=torch.Generator().manual_seed(2))

    def full_size_select_backwards(model):
        model.zero_grad()
        loss = model(tokens).float().pow(2).mean()
        with torch.autograd.profiler.profile(record_shapes=True) as prof:
            loss.backward()
        return [e for e in prof.function_events if e.name == "aten::select_backward"
                and e.input_shapes and len(e.input_shapes[0]) >= 2]

    assert full_size_select_backwards(net) == []
    # Control: the same model taking the rows with out[i].
    net.block_rows = "select"
    assert len(full_size_select_backwards(net)) >= cfg.sublayers - 2
