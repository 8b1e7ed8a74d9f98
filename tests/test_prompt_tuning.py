"""Prompt tuning through the real loop: a frozen decoder learns only its soft prompt (every other weight stays
bit-identical to the parent's), its windows are the soft prompt shorter, it generates past its context, a
classification head trains beside the prompt, and the places it cannot work are one clear message each."""

import pytest
import torch

from engine.config import ConfigError, RunConfig
from engine.run_generation import generate_text, load_run
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training
from tests.test_classification import _write_csv


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("prompt")
    (root / "lines.txt").write_text("the cat sat on the mat. the dog ran to the log.\n" * 200, encoding="utf-8")
    _write_csv(root / "things.csv", 400)
    with Workspace(root / "ws") as w:
        w.import_dataset([root / "lines.txt"], "lines", 0.1)
        w.import_dataset([root / "things.csv"], "things", 0.125, label_column="label", split="documents", seed=1)
        yield w


def _cfg(steps: int, **train) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": "lines"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 48},
            "train": {"batch_size": 8, "learning_rate": 3e-3, "min_lr": 3e-4, "eval_iters": 2, "log_interval": 10,
                      "device": "cpu", "seed": 4, "max_iters": steps, "lr_decay_iters": steps,
                      "eval_interval": steps // 2, "warmup_iters": 2, "keep_checkpoints": 0, **train},
        }
    )  # fmt: skip


def _train(ws, cfg) -> int:
    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=lambda e: None) == "finished", ws.run(run["id"])["message"]
    return run["id"]


@pytest.fixture(scope="module")
def parent(ws):
    return _train(ws, _cfg(60))


def _prompt_tuned(parent: int, steps: int = 40, **train) -> RunConfig:
    cfg = _cfg(steps, finetune="prompt_tuning", prompt_tokens=8, learning_rate=0.03, min_lr=0.003, **train)
    cfg.train.init_from.run = parent
    return cfg


def test_only_the_soft_prompt_changes_and_it_learns(ws, parent):
    child = _train(ws, _prompt_tuned(parent))
    before = load_run(ws, parent).model.state_dict()
    after = load_run(ws, child).model.state_dict()
    assert set(after) - set(before) == {"soft_prompt.vectors"} and after["soft_prompt.vectors"].shape == (8, 32)
    assert all(torch.equal(after[k], before[k]) for k in before)  # every weight of the model, bit for bit
    rows = ws.metrics(child, "val")
    assert rows[-1]["loss"] < rows[0]["loss"] or rows[-1]["loss"] < 1.0


def test_a_prompt_tuned_run_writes_past_its_context(ws, parent):
    child = _train(ws, _prompt_tuned(parent, 10))
    model = load_run(ws, child).model
    assert model.context_size == 40  # 48 positions less 8 soft ones
    out = generate_text(ws, child, "the cat", max_new_tokens=90, mode="greedy", device="cpu")
    assert out["n_tokens"] == 90 and len(out["prompt_tokens"]) == 7


def test_a_classifier_trains_its_head_beside_the_prompt(ws, parent):
    cfg = _prompt_tuned(parent, 200)
    cfg.data.dataset, cfg.objective.name = "things", "classification"
    child = _train(ws, cfg)
    tuned = load_run(ws, child).model.state_dict()
    assert "classifier.weight" in tuned and "soft_prompt.vectors" in tuned
    accuracy = ws.metrics(child, "val")[-1]["metrics"]["val_class_accuracy"]
    assert accuracy > 0.6, accuracy  # measured 0.74 (chance 0.5): the frozen features of a 60-step parent


@pytest.mark.parametrize(
    "change,words",
    [
        ({"arch": "encoder-decoder"}, "this model is an encoder-decoder"),
        ({"objective": "prefix_lm"}, "Prompt tuning reads with the causal mask only"),
        ({"prompt_tokens": 30}, "would take more than half of the context"),
        ({"no_parent": True}, "Prompt tuning adapts a trained model"),
    ],
)
def test_where_prompt_tuning_cannot_work_it_says_so(parent, change, words):
    cfg = _prompt_tuned(parent)
    if "arch" in change:
        cfg.model.arch, cfg.objective.name = change["arch"], "span_corruption"
    if "objective" in change:
        cfg.objective.name = change["objective"]
    if "prompt_tokens" in change:
        cfg.train.prompt_tokens = change["prompt_tokens"]
    if "no_parent" in change:
        cfg.train.init_from.run = None
    with pytest.raises(ConfigError, match=words):
        cfg.validate()


@pytest.fixture(scope="module")
def encoder_parent(ws):
    cfg = _cfg(60)
    cfg.model.arch, cfg.objective.name = "encoder", "masked_lm"
    return _train(ws, cfg)


def test_a_prompt_tuned_encoder_learns_only_its_prompt_and_classifies(ws, encoder_parent):
    masked = _prompt_tuned(encoder_parent, 30)
    masked.model.arch, masked.objective.name = "encoder", "masked_lm"
    child = _train(ws, masked)
    before = load_run(ws, encoder_parent).model.state_dict()
    after = load_run(ws, child).model
    assert after.context_size == 40
    state = after.state_dict()
    assert set(state) - set(before) == {"soft_prompt.vectors"}
    assert all(torch.equal(state[k], before[k]) for k in before)  # the encoder itself, bit for bit
    classify = _prompt_tuned(encoder_parent, 200)
    classify.data.dataset, classify.objective.name, classify.model.arch = "things", "classification", "encoder"
    accuracy = ws.metrics(_train(ws, classify), "val")[-1]["metrics"]["val_class_accuracy"]
    assert accuracy > 0.6, accuracy


def test_the_soft_prompt_leaves_the_encoder_s_text_outputs_one_per_token(ws, encoder_parent):
    from engine.prompt_tuning import add_soft_prompt

    import copy

    model = copy.deepcopy(load_run(ws, encoder_parent).model)  # not the loaded runs' shared one
    idx = torch.randint(0, model.vocab_size, (2, 12))
    plain = model.encode(idx)
    add_soft_prompt(model, 4)
    prompted, attn = model.encode(idx, return_attn=True)
    assert prompted.shape == plain.shape and attn[0].shape[-2:] == (12, 12)
    assert not torch.allclose(prompted, plain)  # every text token attends to the prompt
    assert model.encode(idx, key_padding=torch.ones_like(idx, dtype=torch.bool)).shape == plain.shape


def test_a_prompt_tuned_encoder_fills_a_mask_within_its_shorter_context(ws, encoder_parent):
    from engine.playground_infer import fill_mask

    masked = _prompt_tuned(encoder_parent, 4)
    masked.model.arch, masked.objective.name = "encoder", "masked_lm"
    child = _train(ws, masked)
    out = fill_mask(ws, child, "the cat sat on the [MASK]" + " and the dog ran" * 3, device="cpu")
    assert out["masks"] and out["masks"][0]["candidates"]  # a 64-character text read in a 40-token window
