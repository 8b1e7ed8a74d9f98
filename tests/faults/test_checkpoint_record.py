"""A checkpoint's JSON record is covered by a digest too: one character changed in its stored random-number state
(which would resume silently on another trajectory) is refused in words, and an older record without a digest
that lacks a key says which one instead of failing with a KeyError; either way the run's curve is kept."""

import json

import pytest

from engine.checkpoint import find_checkpoint, read_checkpoint_meta
from engine.config import RunConfig
from engine.errors import user_text
from engine.run_setup import prepare_run
from engine.store import Workspace
from tests.conftest import train_until_stopped
from engine.train import run_training


@pytest.fixture
def stopped(tmp_path):
    """A workspace and a run stopped at step 6 of 12, its `latest` checkpoint's JSON path."""
    (tmp_path / "lines.txt").write_text("the cat sat on the mat. the dog ran to the log.\n" * 100, encoding="utf-8")
    with Workspace(tmp_path / "ws") as ws:
        ws.import_dataset([tmp_path / "lines.txt"], "lines", 0.1)
        cfg = RunConfig.from_dict(
            {
                "data": {"dataset": "lines"},
                "tokenizer": {"kind": "char", "vocab_size": 64},
                "model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
                "train": {"batch_size": 4, "max_iters": 12, "lr_decay_iters": 12, "eval_interval": 100,
                          "eval_iters": 1, "log_interval": 1, "warmup_iters": 0, "device": "cpu",
                          "keep_checkpoints": 0},
            }
        )  # fmt: skip
        run = prepare_run(ws, cfg)
        assert train_until_stopped(ws, run["id"], 6) == "stopped"
        yield ws, run["id"], find_checkpoint(ws, run["id"], "latest")["path"]


def _edit(path, change) -> None:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    change(doc)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)


def test_one_changed_character_of_the_rng_state_is_refused_in_words(stopped):
    ws, run_id, path = stopped
    rows = ws.metrics(run_id)

    def flip(doc):
        torch_state = doc["extra"]["rng"]["torch"]
        doc["extra"]["rng"]["torch"] = ("B" if torch_state[40] == "A" else "A").join(
            (torch_state[:40], torch_state[41:])
        )

    _edit(path, flip)
    with pytest.raises(Exception) as e:
        read_checkpoint_meta(path)
    assert "its record (settings, step, random-number state) was changed after it was written" in user_text(e.value)
    assert run_training(ws, run_id, on_event=lambda e: None, resume=True) == "failed"
    assert "was changed after it was written" in ws.run(run_id)["message"]
    assert ws.metrics(run_id) == rows  # the curve is as it was


def test_an_old_record_without_its_rng_key_says_what_it_lacks(stopped):
    ws, run_id, path = stopped

    def drop(doc):  # as a checkpoint written before records had a digest, then edited
        del doc["sha256"], doc["extra"]["rng"]

    _edit(path, drop)
    assert run_training(ws, run_id, on_event=lambda e: None, resume=True) == "failed"
    message = ws.run(run_id)["message"]
    assert "cannot be resumed: its record lacks extra.rng" in message and "KeyError" not in message


def test_an_untouched_record_resumes(stopped):
    ws, run_id, path = stopped
    assert "sha256" in read_checkpoint_meta(path)
    assert run_training(ws, run_id, on_event=lambda e: None, resume=True) == "finished"
