"""Instruction tuning through the real loop in a real workspace: prompt / response pairs (a CSV imported with the
response as its label column) teach a decoder to answer, no loss falls on the prompt, generation wraps the typed
prompt in the run's template and stops where the answer ends, and impossible requests are one clear message."""

import csv
import random

import pytest
import torch

from engine.config import ConfigError, RunConfig
from engine.objectives.base import IGNORE
from engine.objectives.registry import get_objective
from engine.run_generation import generate_text
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training

WORDS = "cat dog sun moon tree star bird fish rain snow wind leaf".split()


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    rng = random.Random(0)
    with open(root / "pairs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "response"])
        for _ in range(1200):
            three = rng.sample(WORDS, 3)
            w.writerow(["reverse: " + " ".join(three), " ".join(reversed(three)) + " Z"])  # Z: only in responses
    (root / "plain.txt").write_text("just text, no responses.\n" * 50, encoding="utf-8")
    with Workspace(root / "ws") as w:
        w.import_dataset([root / "pairs.csv"], "pairs", 0.1, column="prompt", label_column="response",
                         split="documents", seed=2)  # fmt: skip
        w.import_dataset([root / "plain.txt"], "plain", 0.1)
        yield w


def _cfg(steps: int = 300, dataset: str = "pairs", **objective) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": dataset},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 2, "n_head": 2, "n_embd": 48, "block_size": 64},
            "objective": {"name": "sft", **objective},
            "train": {"batch_size": 16, "learning_rate": 3e-3, "min_lr": 3e-4, "weight_decay": 0.0, "eval_iters": 4,
                      "log_interval": 20, "device": "cpu", "seed": 3, "max_iters": steps, "lr_decay_iters": steps,
                      "eval_interval": steps, "warmup_iters": 10, "keep_checkpoints": 0},
        }
    )  # fmt: skip


# The text is lower case: a template of its own characters reads without [UNK] in a character vocabulary.
TEMPLATE = "in: {prompt}\nout: "


@pytest.fixture(scope="module")
def sft_run(ws):
    run = prepare_run(ws, _cfg(template=TEMPLATE))
    assert run_training(ws, run["id"], on_event=lambda e: None) == "finished", ws.run(run["id"])["message"]
    return run["id"]


def test_no_loss_falls_on_the_prompt_and_the_answer_ends_with_eos(ws, sft_run):
    cfg = RunConfig.from_dict(ws.run(sft_run)["config"])
    objective = get_objective(cfg)
    objective.attach(ws, "cpu")
    tok = ws.load_tokenizer(cfg.tokenizer.tokenizer)
    batch = objective.batch(type("S", (), {"split": "train"})(), 8, torch.Generator().manual_seed(0), "cpu")
    eos = tok.token_to_id("<|endoftext|>") or tok.token_to_id("[EOS]")
    for row in range(8):
        idx, targets = batch.inputs["idx"][row], batch.targets[row]
        real = batch.inputs["key_padding"][row]
        n_prompt = batch.marks[row].count("prompt")
        assert tok.decode(idx[:n_prompt].tolist()).startswith("in: reverse: ")
        assert tok.decode(idx[:n_prompt].tolist()).endswith("\nout: ")
        assert (targets[: n_prompt - 1] == IGNORE).all()  # every target inside the templated prompt: no loss
        assert (targets[n_prompt - 1 : int(real.sum())] != IGNORE).all()  # every response token: loss
        learned = targets[targets != IGNORE].tolist()
        assert tok.decode(learned[:-1]).endswith(" Z") and learned[-1] == eos
        assert (targets[~real] == IGNORE).all()


def test_the_run_answers_in_its_template_and_stops(ws, sft_run):
    out = generate_text(ws, sft_run, "reverse: moon fish star", max_new_tokens=40, mode="greedy", device="cpu")
    seen = "".join(t["text"] for t in out["prompt_tokens"])
    assert seen == "in: reverse: moon fish star\nout: "  # the typed prompt, in the run's template
    assert out["text"] == "star fish moon Z" and out["ended"]


def test_the_vocabulary_reads_the_responses_too(ws, sft_run):
    tok = ws.load_tokenizer(ws.run(sft_run)["tokenizer_id"])
    assert tok.token_to_id("Z") is not None  # "Z" occurs only in the response column


def test_pairs_are_needed_and_the_template_needs_the_prompt(ws):
    with pytest.raises(ConfigError) as e:
        prepare_run(ws, _cfg(dataset="plain"))
    assert e.value.key == "data.dataset" and "'plain' has none" in e.value.message
    with pytest.raises(ConfigError) as e:
        _cfg(template="Question: ").validate()
    assert e.value.key == "objective.template"


def test_an_encoder_decoder_learns_the_pairs_text_to_text_and_beam_search_reads_it(ws):
    cfg = _cfg(template=TEMPLATE)
    cfg.model.arch = "encoder-decoder"
    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=lambda e: None) == "finished", ws.run(run["id"])["message"]
    assert ws.metrics(run["id"], "val")[-1]["metrics"]["val_accuracy"] > 0.9
    out = generate_text(ws, run["id"], "reverse: moon fish star", max_new_tokens=30, mode="beam", device="cpu")
    assert out["text"] == "star fish moon Z"
