"""A workspace is one folder: copied, it trains and resumes on its own files and never touches the original's;
moved, it finds its checkpoints; a workspace written before checkpoint paths were relative (schema 6, absolute
paths of the folder it was copied from) reads its own files once opened (issue 12, item 1)."""

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.run_generation import generate_text
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import Control, run_training


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


def _cfg(steps: int) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": "notes"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
            "train": {"batch_size": 4, "max_iters": steps, "lr_decay_iters": 40, "eval_interval": 10, "eval_iters": 1,
                      "log_interval": 5, "checkpoint_interval": 5, "keep_checkpoints": 1, "device": "cpu",
                      "warmup_iters": 1, "probe_attention": False},
        }
    )  # fmt: skip


def _files(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("workspace.db")
    }


@pytest.fixture
def original(tmp_path):
    (tmp_path / "notes.txt").write_text("a small text to learn from, again and again.\n" * 80, encoding="utf-8")
    with Workspace(tmp_path / "ws1") as ws:
        ws.import_dataset([tmp_path / "notes.txt"], "notes", 0.1)
        run = prepare_run(ws, _cfg(40))
        control = Control()

        def stop_half_way(event):  # stopped half way, with a checkpoint: the copy resumes it
            if getattr(event, "step", 0) >= 20:
                control.request_stop()

        assert run_training(ws, run["id"], on_event=stop_half_way, control=control) == "stopped"
    return tmp_path / "ws1", run["id"]


def test_a_copy_resumes_on_its_own_files_and_the_original_is_untouched(original, tmp_path):
    ws1, run_id = original
    before = _files(ws1)
    shutil.copytree(ws1, tmp_path / "ws2")
    with Workspace(tmp_path / "ws2") as copy:
        assert all(str(tmp_path / "ws2") in ck["path"] for ck in copy.checkpoints(run_id))
        assert run_training(copy, run_id, on_event=lambda e: None, resume=True) == "finished"
        assert copy.run(run_id)["step"] == 40
        assert all(Path(c["path"]).is_relative_to(tmp_path / "ws2") for c in copy.checkpoints(run_id))
    assert _files(ws1) == before  # not one file of the original deleted or rewritten


def test_a_moved_workspace_finds_its_checkpoints(original, tmp_path):
    ws1, run_id = original
    shutil.move(ws1, tmp_path / "moved")
    with Workspace(tmp_path / "moved") as ws:
        out = generate_text(ws, run_id, "a small", max_new_tokens=5, mode="greedy", device="cpu")
        assert out["n_tokens"] == 5 and out["checkpoint"] == "latest"


def test_an_older_workspace_with_absolute_paths_reads_its_own_files(original, tmp_path):
    ws1, run_id = original
    shutil.copytree(ws1, tmp_path / "old")
    db = sqlite3.connect(tmp_path / "old" / "workspace.db")
    # As schema 6 wrote them: absolute paths of the folder the copy came from.
    db.execute("UPDATE checkpoints SET path = ? || '/' || path", [str(ws1)])
    db.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    before = _files(ws1)
    with Workspace(tmp_path / "old") as ws:
        assert all(ck["path"].startswith(str(tmp_path / "old")) for ck in ws.checkpoints(run_id))
        assert run_training(ws, run_id, on_event=lambda e: None, resume=True) == "finished"
    stored = sqlite3.connect(tmp_path / "old" / "workspace.db").execute("SELECT path FROM checkpoints").fetchall()
    assert all(not p.startswith("/") for (p,) in stored)  # kept relative from now on
    assert _files(ws1) == before
