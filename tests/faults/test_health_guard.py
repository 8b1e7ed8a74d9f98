"""The training-health guard (issue 12, item 8): a loss that stops being a number or spikes far above its recent
level goes back to the last good checkpoint, with advice fitted to the settings; train.on_divergence chooses
rollback (the default: the CLI applies the advice, the window asks), stop or ignore. Faults are injected into
a real training on a real workspace: a poisoned loss, or a learning rate far too large."""

import math

import pytest

from engine import training_events as ev
from engine.config import RunConfig
from engine.health import HealthGuard, Verdict, advise
from engine.objectives.causal_lm import CausalLM
from engine.run_setup import prepare_run
from engine.train import run_training
from tests.faults.conftest import lines_workspace


def _cfg(**train) -> RunConfig:
    base = {"batch_size": 4, "max_iters": 60, "lr_decay_iters": 60, "eval_interval": 1000, "eval_iters": 1,
            "log_interval": 2, "checkpoint_interval": 10, "warmup_iters": 0, "device": "cpu", "keep_checkpoints": 0,
            "probe_attention": False}  # fmt: skip
    return RunConfig.from_dict(
        {
            "data": {"dataset": "lines"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
            "train": {**base, **train},
        }
    )


def _spike_once_at(monkeypatch, call: int, factor: float = 1e6) -> None:
    """The loss of the `call`-th training batch (only that one) multiplied by `factor`."""
    real, calls = CausalLM.loss, {"n": 0}

    def spiked(self, model, batch, label_smoothing=0.0):
        out = real(self, model, batch, label_smoothing)
        if model.training:
            calls["n"] += 1
            if calls["n"] == call:
                out.loss = out.loss * factor
        return out

    monkeypatch.setattr(CausalLM, "loss", spiked)


def _notices(events) -> list[str]:
    return [e.message for e in events if isinstance(e, ev.Notice) and e.level == "warning"]


# ------------------------------------------------------------------------------------------------ the verdicts


def test_spikes_are_judged_against_the_recent_median_and_the_start():
    guard = HealthGuard()
    for step in range(1, 21):
        assert guard.observe(step, 3.0 - step * 0.05, 1.0) is None
    assert guard.observe(21, 3.5, 1.0) is None  # a bump, not a spike
    spike = guard.observe(22, 40.0, 1.0)
    assert spike.what == "spike" and spike.median == pytest.approx(2.5, abs=0.1)
    assert guard.observe(23, math.nan, 1.0).what == "loss"
    assert guard.observe(24, 2.0, math.inf).what == "gradients"
    assert HealthGuard(check_grads=False).observe(1, 2.0, math.inf) is None  # float16's scaler skips those
    early = HealthGuard()
    early.observe(1, 4.2, 1.0)
    assert early.observe(2, 200.0, 1.0).what == "spike"  # diverged from its first steps: no median yet
    assert HealthGuard(spikes=False).observe(1, -0.5, 1.0) is None  # a reward curve


def test_the_advice_fits_the_settings_instead_of_always_saying_lower_the_clipping():
    nan = Verdict("loss", 400, math.nan)
    off = advise(_cfg(grad_clip=0.0).train, nan)
    assert off.changes == {"train.grad_clip": 1.0} and "Gradient clipping is off" in off.text
    assert "Gradient clipping 0 → 1 (train.grad_clip)" in off.change_words
    assert advise(_cfg(dtype="float16").train, nan).changes == {"train.dtype": "float32"}
    assert advise(_cfg(dtype="float16").train, nan, cuda_bf16=True).changes == {"train.dtype": "bfloat16"}
    short = advise(_cfg(warmup_iters=10, max_iters=5000).train, Verdict("spike", 30, 50.0, 2.0))
    assert short.changes == {"train.warmup_iters": 200} and "warm-up of 10 steps" in short.text
    late = advise(_cfg(warmup_iters=100, max_iters=5000).train, Verdict("spike", 3000, 50.0, 2.0))
    assert late.changes == {"train.learning_rate": 0.00033, "train.min_lr": 0.0001}
    again = advise(_cfg(grad_clip=0.0).train, nan, attempt=2)
    assert set(again.changes) == {"train.grad_clip", "train.learning_rate", "train.min_lr"}
    assert "The loss became NaN (not a number) at step 400." in off.text


# -------------------------------------------------------------------------------------------- in a training


def test_a_spike_goes_back_to_the_last_checkpoint_and_on_with_the_advice(ws, monkeypatch):
    _spike_once_at(monkeypatch, 26)
    run = prepare_run(ws, _cfg())
    events = []
    assert run_training(ws, run["id"], on_event=events.append) == "finished"
    (notice,) = _notices(events)
    assert "The loss jumped to" in notice and "at step 26" in notice
    assert "Went back to step 20, the last good checkpoint. Applied the suggestion" in notice
    rows = ws.metrics(run["id"], "train")
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 60  # one curve, the spiked stretch replaced
    assert max(r["loss"] for r in rows) < 10
    cfg = ws.run(run["id"])["config"]["train"]
    assert cfg["warmup_iters"] > 0  # the advice (a warm-up, since it had none) is the run's setting now


def test_on_divergence_stop_ends_the_run_at_its_last_good_checkpoint(ws, monkeypatch):
    _spike_once_at(monkeypatch, 26)
    run = prepare_run(ws, _cfg(on_divergence="stop"))
    assert run_training(ws, run["id"], on_event=lambda e: None) == "stopped"
    row = ws.run(run["id"])
    assert row["step"] == 20 and "Went back to step 20" in row["message"] and "Suggested:" in row["message"]
    assert max(r["step"] for r in ws.metrics(run["id"])) <= 20
    assert ws.latest_checkpoint(run["id"])["step"] == 20
    monkeypatch.undo()  # the fault is gone: Resume goes on from there
    assert run_training(ws, run["id"], on_event=lambda e: None, resume=True) == "finished"


def test_on_divergence_ignore_warns_about_a_spike_and_fails_on_nan(ws, monkeypatch):
    _spike_once_at(monkeypatch, 26)
    run = prepare_run(ws, _cfg(on_divergence="ignore"))
    events = []
    assert run_training(ws, run["id"], on_event=events.append) == "finished"
    assert any("train.on_divergence is ignore: training goes on" in n for n in _notices(events))
    _spike_once_at(monkeypatch, 26, factor=math.nan)
    run = prepare_run(ws, _cfg(on_divergence="ignore"), "nan")
    assert run_training(ws, run["id"], on_event=lambda e: None) == "failed"
    assert "The last good checkpoint is kept" in ws.run(run["id"])["message"]


def test_a_learning_rate_far_too_large_is_caught_and_tamed_by_the_advice(ws):
    """No injection: lr 3 with clipping off really diverges in its first steps (to a loss of about 200)."""
    run = prepare_run(ws, _cfg(learning_rate=3.0, min_lr=0.0, grad_clip=0.0, max_iters=200, lr_decay_iters=200))
    events = []
    assert run_training(ws, run["id"], on_event=events.append) == "finished"
    notices = _notices(events)
    assert notices and "Gradient clipping is off" in notices[0] and "Went back to step 0" in notices[0]
    final = ws.metrics(run["id"], "train")[-1]["loss"]
    assert final < 3.0  # below the untrained model's ln(vocabulary)
    assert ws.run(run["id"])["config"]["train"]["grad_clip"] == 1.0


def test_the_cli_has_the_same_guard(tmp_path):
    import subprocess
    import sys

    from tests.test_cli import ENV, ROOT

    path = lines_workspace(tmp_path)
    sets = {"model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "model.block_size": 16, "train.max_iters": 100,
            "train.lr_decay_iters": 100, "train.learning_rate": 3, "train.min_lr": 0, "train.grad_clip": 0,
            "train.warmup_iters": 0, "train.eval_interval": 1000, "train.eval_iters": 1, "train.log_interval": 2,
            "train.device": "cpu", "train.probe_attention": "false", "train.on_divergence": "stop"}  # fmt: skip
    cmd = [sys.executable, "-m", "engine.cli", "train", "--preset", "baby", "--set=data.dataset=lines",
           "--set=tokenizer.kind=char", *(f"--set={k}={v}" for k, v in sets.items()), "--workspace", str(path)]  # fmt: skip
    done = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "stopped: The loss jumped to" in done.stderr and "Gradient clipping 0 → 1 (train.grad_clip)" in done.stderr
