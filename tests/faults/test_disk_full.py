"""The workspace's disk fills during training (issue 12, item 13). SQLite's own page limit (`PRAGMA max_page_count`
on the trainer's connection) makes every write fail with SQLITE_FULL, "database or disk is full", exactly as a
full disk does. Before, the run failed with "OperationalError: database or disk is full" and lost the batch of
metric rows it was writing. Now it checkpoints, pauses in words, keeps the rows (in memory and in the checkpoint),
and either goes on by itself once there is space, or stops, and resuming writes the rows back: the curve equals
an uninterrupted run's row for row."""

import errno
import os

import pytest

from engine import training_events as ev
from engine import training_space
from engine.checkpoint import find_checkpoint
from engine.config import RunConfig
from engine.control import Control
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training
from tests.faults.conftest import lines_workspace

FULL_AT = 23  # a logged step that is neither an evaluation nor a checkpoint step


def _cfg() -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": "lines"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16},
            "train": {"batch_size": 4, "max_iters": 60, "lr_decay_iters": 60, "eval_interval": 20, "eval_iters": 1,
                      "log_interval": 1, "checkpoint_interval": 20, "warmup_iters": 0, "device": "cpu",
                      "keep_checkpoints": 0, "probe_attention": False},
        }
    )  # fmt: skip


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(training_space, "SPACE_RETRY_S", 0.05)


def _curve(ws, run_id) -> list[tuple]:
    return [(r["step"], r["split"], round(r["loss"], 6)) for r in ws.metrics(run_id)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    with Workspace(lines_workspace(tmp_path_factory.mktemp("clean"))) as ws:
        run = prepare_run(ws, _cfg())
        assert run_training(ws, run["id"], on_event=lambda e: None) == "finished"
        return _curve(ws, run["id"])


class Disk:
    """Fills the trainer's database at step FULL_AT (from inside its thread: a connection's page limit is its
    own), and records what the run said; `on_metrics` and `on_pause` are what the test does then."""

    def __init__(self, ws, full_at: int | None = FULL_AT):
        self.ws, self.full_at, self.events, self.on_pause, self.on_metrics = ws, full_at, [], None, None

    def __call__(self, e) -> None:
        self.events.append(e)
        if isinstance(e, ev.Metrics) and self.on_metrics is not None:
            self.on_metrics(e)
        if isinstance(e, ev.Metrics) and e.step == self.full_at:
            pages = self.ws.db.execute("PRAGMA page_count").fetchone()[0]
            self.ws.db.execute(f"PRAGMA max_page_count = {pages}")
        if isinstance(e, ev.Status) and e.state == "paused" and self.on_pause is not None:
            self.on_pause(e)

    def free(self) -> None:
        self.ws.db.execute("PRAGMA max_page_count = 1073741823")

    def said(self, kind, state=None) -> list[str]:
        return [e.message for e in self.events if isinstance(e, kind) and (state is None or e.state == state)]


def test_a_full_disk_pauses_the_run_in_words_and_it_goes_on_by_itself_once_there_is_space(ws, uninterrupted):
    run = prepare_run(ws, _cfg())
    disk = Disk(ws)
    disk.on_pause = lambda e: disk.free()  # someone frees space as soon as the run says it waits
    assert run_training(ws, run["id"], on_event=disk, control=Control()) == "finished"

    (paused,) = disk.said(ev.Status, "paused")
    assert paused.startswith("the disk is full, so training paused at step")
    assert "a checkpoint of step" in paused and "metric rows not yet written" in paused
    assert "training goes on by itself" in paused
    assert any("There is space again" in m for m in disk.said(ev.Notice))
    assert ws.run(run["id"])["status"] == "finished"
    assert _curve(ws, run["id"]) == uninterrupted, "rows were lost or written twice while the disk was full"


def test_stopped_while_full_the_checkpoint_keeps_the_rows_and_resuming_writes_them_back(ws, uninterrupted):
    run = prepare_run(ws, _cfg())
    disk, control = Disk(ws), Control()
    disk.on_pause = lambda e: control.request_stop()  # nobody frees space: the user stops (a kill is no worse)
    assert run_training(ws, run["id"], on_event=disk, control=control) == "stopped"
    (stopped,) = disk.said(ev.Status, "stopped")
    assert "with the disk full" in stopped and "wait in its checkpoint and are written when it resumes" in stopped
    held_at = int(stopped.split("stopped at step ")[1].split()[0])
    assert held_at >= FULL_AT

    with Workspace(ws.path) as again:  # space again (a new connection has no page limit)
        assert max(r["step"] for r in again.metrics(run["id"])) < held_at  # the rows are not in the database yet
        assert run_training(again, run["id"], on_event=lambda e: None, resume=True) == "finished"
        assert _curve(again, run["id"]) == uninterrupted, "the resumed curve differs from the uninterrupted one"


def test_resume_pressed_while_still_full_pauses_again_and_says_so(ws):
    run = prepare_run(ws, _cfg())
    disk, control = Disk(ws), Control()
    pauses = []

    def on_pause(e):
        pauses.append(e.message)
        if len(pauses) == 1:
            control.request_resume()  # Resume, but the disk is as full as it was
        else:
            disk.free()

    disk.on_pause = on_pause
    assert run_training(ws, run["id"], on_event=disk, control=control) == "finished"
    assert len(pauses) == 2 and pauses[1].startswith("the disk is still full:")


def test_a_checkpoint_file_that_cannot_be_written_is_written_once_there_is_space(ws, uninterrupted, monkeypatch):
    real_fsync, full = os.fsync, {"on": False}

    def fsync(fd):
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)  # the checkpoint's files; SQLite syncs on its own
    run = prepare_run(ws, _cfg())
    disk = Disk(ws, full_at=None)
    disk.on_metrics = lambda e: full.update(on=True) if e.step == 39 else None
    disk.on_pause = lambda e: full.update(on=False)
    assert run_training(ws, run["id"], on_event=disk, control=Control()) == "finished"
    (paused,) = disk.said(ev.Status, "paused")
    assert "no checkpoint could be written (the last is of step 20)" in paused, paused
    assert find_checkpoint(ws, run["id"], "latest")["step"] == 60
    assert _curve(ws, run["id"]) == uninterrupted
