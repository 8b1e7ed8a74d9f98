"""kill -9 during training, then resume: the metric rows up to the checkpoint it resumes from were made durable
before that checkpoint was published, so the resumed curve equals an uninterrupted one row for row (issue 12,
item 3). The trainer is a real `studio-engine train` process, killed with SIGKILL right after a checkpoint at a
step that is not an evaluation."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from engine.store import Workspace
from tests.test_cli import ENV, ROOT
from tests.faults.conftest import lines_workspace

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
SETTINGS = {"model.n_layer": 1, "model.n_head": 2, "model.n_embd": 16, "model.block_size": 16,
            "train.batch_size": 4, "train.max_iters": 120, "train.lr_decay_iters": 120, "train.eval_interval": 1000,
            "train.eval_iters": 1, "train.log_interval": 1, "train.checkpoint_interval": 30, "train.warmup_iters": 0,
            "train.device": "cpu", "train.keep_checkpoints": 0, "train.probe_attention": "false"}  # fmt: skip


def _train_command(ws_path) -> list[str]:
    sets = [f"--set={k}={v}" for k, v in SETTINGS.items()]
    return [sys.executable, "-m", "engine.cli", "train", "--preset", "baby", "--set=data.dataset=lines",
            "--set=tokenizer.kind=char", *sets, "--workspace", str(ws_path)]  # fmt: skip


def _checkpoint_steps(db, run_id: int) -> list[int]:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return [r[0] for r in con.execute("select step from checkpoints where run_id = ?", (run_id,))]
    except sqlite3.OperationalError:  # locked for a moment by the trainer's write
        return []


def _rows(ws, run_id) -> list[tuple]:
    return [(r["step"], r["split"], r["loss"], r["lr"], r["grad_norm"]) for r in ws.metrics(run_id)]


def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_curve(tmp_path):
    path = lines_workspace(tmp_path)
    whole = subprocess.run(_train_command(path), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0, whole.stderr
    killed = subprocess.Popen(_train_command(path), env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    db, deadline = path / "workspace.db", time.monotonic() + 120
    try:
        while time.monotonic() < deadline and max(_checkpoint_steps(db, 2), default=0) < 60:
            time.sleep(0.005)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
    with Workspace(path) as ws:
        first, second = (r["id"] for r in ws.runs())
        assert 60 <= ws.run(second)["step"] < 120
        latest = max(r["step"] for r in ws.checkpoints(second))
        assert [r[0] for r in _rows(ws, second) if r[1] == "train"][-1] >= latest  # nothing up to it was lost
    # Resumed as it was trained, by the CLI (the same threads, so the same float sums).
    resumed = subprocess.run([sys.executable, "-m", "engine.cli", "train", "--resume", str(second), "--workspace",
                              str(path)], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    with Workspace(path) as ws:
        assert _rows(ws, second) == _rows(ws, first)  # the whole curve, row for row
