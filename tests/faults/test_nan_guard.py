"""A NaN never overwrites the last good checkpoint: a fault injected into the loss (NaN from step 8 on, where the
checkpoint interval, 5, is not a multiple of the log interval, 7) is caught at the checkpoint step, not only at
the next log line; the health guard goes back to the finite step-5 checkpoint, tries its advice, stops there when
the fault stays, and the run resumes from it once the fault is gone."""

import torch

from engine.checkpoint import find_checkpoint, load_model_state
from engine.config import RunConfig
from engine.objectives.causal_lm import CausalLM
from engine.run_setup import prepare_run
from engine.train import run_training


def _cfg() -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": "lines"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
            "train": {"batch_size": 4, "max_iters": 20, "lr_decay_iters": 20, "eval_interval": 100, "eval_iters": 1,
                      "log_interval": 7, "checkpoint_interval": 5, "warmup_iters": 0, "device": "cpu",
                      "keep_checkpoints": 0},
        }
    )  # fmt: skip


def test_non_finite_weights_are_never_saved_over_the_last_good_checkpoint(ws, monkeypatch):
    real_loss, calls = CausalLM.loss, {"n": 0}

    def poisoned(self, model, batch, label_smoothing=0.0):
        out = real_loss(self, model, batch, label_smoothing)
        calls["n"] += 1 if model.training else 0
        if (
            calls["n"] >= 8
        ):  # the training steps from 8 on (after the log line of step 7): NaN gradients, so NaN weights after the step
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(CausalLM, "loss", poisoned)
    run = prepare_run(ws, _cfg())
    assert run_training(ws, run["id"], on_event=lambda e: None) == "stopped"
    row = ws.run(run["id"])
    assert "The loss became NaN (not a number) at step" in row["message"], row["message"]
    assert "Went back to step 5, the last good checkpoint" in row["message"]
    assert row["step"] == 5 and max(r["step"] for r in ws.metrics(run["id"])) <= 5
    latest = find_checkpoint(ws, run["id"], "latest")
    assert latest["step"] == 5
    assert all(torch.isfinite(t).all() for t in load_model_state(latest["path"]).values())

    monkeypatch.setattr(CausalLM, "loss", real_loss)  # the fault is gone: it resumes from step 5
    assert run_training(ws, run["id"], on_event=lambda e: None, resume=True) == "finished"
    assert ws.run(run["id"])["step"] == 20
