"""engine.checkpoint: round trips, exact resume, corruption and failed writes, clear errors."""

import errno
import json
import os
import random

import numpy as np
import pytest
import torch
from safetensors import safe_open

from engine.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    read_checkpoint_meta,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from engine.config import ModelConfig
from engine.model import GPT

V = 30


def build(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(n_layer=2, n_head=4, n_embd=32, block_size=16)
    cfg.update(kw)
    return GPT(ModelConfig(**cfg), V)


def optimizer_for(model):
    return model.configure_optimizer(0.1, 1e-2, (0.9, 0.99), "cpu")


def train_step(model, opt) -> float:
    """One step whose batch and dropout draw on every RNG a training loop uses."""
    offset = random.randrange(V) + int(np.random.randint(V))
    idx = (torch.randint(0, V, (4, 17)) + offset) % V
    _, loss = model(idx[:, :-1], idx[:, 1:])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def assert_same_optimizer_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for k in sa["state"]:
        for name, value in sa["state"][k].items():
            assert torch.equal(value, sb["state"][k][name]), name


def test_round_trip_restores_weights_optimizer_and_tied_weights(tmp_path):
    model = build(dropout=0.1)
    opt = optimizer_for(model)
    for _ in range(3):
        train_step(model, opt)
    info = save_checkpoint(
        tmp_path, "step3", model, opt, meta={"iter": 3, "config": {"n_layer": 2}}, extra={"val_loss": 3.2}
    )
    assert info["path"] == str(tmp_path / "step3.json")
    assert info["bytes"] == sum(p.stat().st_size for p in tmp_path.iterdir())

    other = build(seed=1, dropout=0.1)
    other_opt = optimizer_for(other)
    doc = load_checkpoint(tmp_path / "step3.json", other, other_opt)
    assert doc["meta"] == {"iter": 3, "config": {"n_layer": 2}} and doc["extra"] == {"val_loss": 3.2}
    assert read_checkpoint_meta(tmp_path / "step3.json")["files"]["model"]["sha256"] == info["sha256"]
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert other.lm_head.weight is other.transformer.wte.weight
    assert_same_optimizer_state(opt, other_opt)
    assert isinstance(other_opt.param_groups[0]["betas"], tuple)
    # The tied matrix is stored once, and both files are plain safetensors.
    with safe_open(tmp_path / "step3.safetensors", "pt") as f:
        assert "lm_head.weight" not in f.keys() and "transformer.wte.weight" in f.keys()
    with safe_open(tmp_path / "step3.optim.safetensors", "pt") as f:
        assert len(list(f.keys())) == 3 * len(list(model.parameters()))  # step, exp_avg, exp_avg_sq


def test_training_after_resume_equals_training_without_the_break(tmp_path):
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    model = build(dropout=0.2)
    opt = optimizer_for(model)
    for _ in range(3):
        train_step(model, opt)
    save_checkpoint(tmp_path, "ckpt", model, opt, extra={"rng": rng_state()})
    expected_losses = [train_step(model, opt) for _ in range(2)]

    torch.manual_seed(99), random.seed(99), np.random.seed(99)  # the resumed process starts elsewhere
    resumed = build(seed=5, dropout=0.2)
    resumed_opt = optimizer_for(resumed)
    doc = load_checkpoint(tmp_path / "ckpt.json", resumed, resumed_opt)
    set_rng_state(doc["extra"]["rng"])
    assert [train_step(resumed, resumed_opt) for _ in range(2)] == expected_losses
    for a, b in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert_same_optimizer_state(opt, resumed_opt)


def test_rng_state_survives_json():
    state = json.loads(json.dumps(rng_state()))
    expected = (random.random(), np.random.rand(), torch.rand(2))
    random.random(), np.random.rand(4), torch.rand(5)
    set_rng_state(state)
    again = (random.random(), np.random.rand(), torch.rand(2))
    assert again[:2] == expected[:2] and torch.equal(again[2], expected[2])


def test_a_flipped_byte_is_detected_and_the_model_is_left_alone(tmp_path):
    model = build()
    save_checkpoint(tmp_path, "ckpt", model)
    path = tmp_path / "ckpt.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    target = build(seed=3)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"ckpt.json is corrupt: ckpt.safetensors does not match its sha256"):
        load_checkpoint(tmp_path / "ckpt.json", target)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def _fail_on_call(n, monkeypatch, name):
    """Make os.<name> fail like a full disk on its n-th call."""
    real = getattr(os, name)
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(os, name, failing)


@pytest.mark.parametrize("fail", ["fsync-model", "fsync-optimizer", "fsync-json", "replace", "meta"])
def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch, fail):
    model = build()
    opt = optimizer_for(model)
    train_step(model, opt)
    save_checkpoint(tmp_path, "latest", model, opt, meta={"iter": 1})
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    files_before = sorted(p.name for p in tmp_path.iterdir())
    train_step(model, opt)

    meta = {"iter": 2}
    if fail.startswith("fsync"):
        _fail_on_call(["fsync-model", "fsync-optimizer", "fsync-json"].index(fail) + 1, monkeypatch, "fsync")
    elif fail == "replace":
        _fail_on_call(1, monkeypatch, "replace")
    else:
        meta = {"iter": 2, "when": object()}
    with pytest.raises(CheckpointError, match="cannot save checkpoint .*latest.json"):
        save_checkpoint(tmp_path, "latest", model, opt, meta=meta)
    monkeypatch.undo()

    assert sorted(p.name for p in tmp_path.iterdir()) == files_before  # no temporary files left behind
    restored = build(seed=7)
    doc = load_checkpoint(tmp_path / "latest.json", restored, optimizer_for(restored))
    assert doc["meta"] == {"iter": 1}
    assert all(torch.equal(saved[k], v) for k, v in restored.state_dict().items())


def test_a_save_over_an_old_checkpoint_replaces_it(tmp_path):
    model = build()
    save_checkpoint(tmp_path, "latest", model, meta={"iter": 1})
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    save_checkpoint(tmp_path, "latest", model, meta={"iter": 2})
    assert not (tmp_path / "latest.optim.safetensors").exists()
    restored = build(seed=3)
    assert load_checkpoint(tmp_path / "latest.json", restored)["meta"] == {"iter": 2}
    assert torch.equal(restored.lm_head.weight, model.lm_head.weight)


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="nothing.json not found"):
        load_checkpoint(tmp_path / "nothing.json")
    model = build()
    save_checkpoint(tmp_path, "ckpt", model)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "ckpt.json", model, optimizer_for(model))
    (tmp_path / "ckpt.safetensors").unlink()
    with pytest.raises(CheckpointError, match="incomplete: ckpt.safetensors is missing"):
        load_checkpoint(tmp_path / "ckpt.json", model)
    (tmp_path / "notes.json").write_text("[1, 2")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint_meta(tmp_path / "notes.json")


def test_a_checkpoint_of_another_shape_does_not_load(tmp_path):
    save_checkpoint(tmp_path, "wide", build(n_embd=64))
    with pytest.raises(CheckpointError, match=r"does not fit this model: .*\(30, 64\) in the file but \(30, 32\)"):
        load_checkpoint(tmp_path / "wide.json", build())
    save_checkpoint(tmp_path, "untied", build(tie_embeddings=False))
    with pytest.raises(CheckpointError, match="tied"):
        load_checkpoint(tmp_path / "untied.json", build())
    untied = build(tie_embeddings=False)
    load_checkpoint(tmp_path / "untied.json", untied)  # the same shape loads
    assert set(load_model_state(tmp_path / "untied.json")) == set(untied.state_dict())
