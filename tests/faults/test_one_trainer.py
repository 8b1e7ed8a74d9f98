"""One trainer per run (issue 12, item 2): a lease in the workspace names the process that trains a run; a second
trainer is refused with the owner's name, a stale lease (its process gone, or not renewed) is taken over, a run
whose trainer died reads "interrupted", and a trainer that lost its lease stops without writing. The trainers
are real `studio-engine train` processes on a real workspace."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from engine.store import Workspace
from engine.store.leases import LEASE_STALE_S, RunBusyError
from tests.faults.test_kill_resume import SETTINGS, _checkpoint_steps
from tests.test_cli import ENV, ROOT
from tests.faults.conftest import lines_workspace

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process probes")


def _cli(path, *args) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *args, "--workspace", str(path)]


def _made_run(tmp_path, steps=400, **changes) -> tuple:
    """A workspace with a run of SETTINGS that did 30 steps of `steps` (checkpointed), ready to resume."""
    path = lines_workspace(tmp_path)
    sets = [f"--set={k}={v}" for k, v in {**SETTINGS, "train.max_iters": 30, **changes}.items()]
    made = subprocess.run(
        _cli(path, "train", "--preset", "baby", "--set=data.dataset=lines", "--set=tokenizer.kind=char", *sets),
        env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    with Workspace(path) as ws:
        run = ws.runs()[-1]
        cfg = run["config"]
        cfg["train"]["max_iters"] = cfg["train"]["lr_decay_iters"] = steps
        ws.update_run(run["id"], config=cfg, max_iters=steps)
    return path, run["id"]


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _leased(path, run_id) -> bool:
    try:
        with sqlite3.connect(path / "workspace.db", timeout=5) as con:
            return con.execute("select count(*) from leases where run_id = ?", (run_id,)).fetchone()[0] == 1
    except sqlite3.OperationalError:
        return False


def test_a_second_trainer_is_refused_with_the_owners_name_and_the_curve_stays_one(tmp_path):
    path, run_id = _made_run(tmp_path, steps=100_000)
    first = subprocess.Popen(_cli(path, "train", "--resume", str(run_id)), env=ENV, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert _wait_for(lambda: _leased(path, run_id))
        second = subprocess.run(_cli(path, "train", "--resume", str(run_id)), env=ENV, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert second.returncode != 0
        assert f"is being trained by process {first.pid} on this computer" in second.stderr
        listed = subprocess.run(_cli(path, "runs"), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert f"(trained by process {first.pid} on this computer" in listed.stdout
        with Workspace(path) as ws:
            run = ws.run(run_id)
            assert run["trainer"].startswith(f"process {first.pid} on this computer")
            assert not run["trained_here"]
            with pytest.raises(RunBusyError, match="stop it there first"):
                ws.delete("run", run_id)
    finally:
        first.send_signal(signal.SIGTERM)  # the CLI stops at the next step, as Stop would
        assert first.wait(120) == 0, first.stderr.read()
    with Workspace(path) as ws:
        steps = [r["step"] for r in ws.metrics(run_id, "train")]
        assert steps == sorted(set(steps)) and steps[-1] > 30  # one trajectory: no step twice
        assert ws.run(run_id)["status"] == "stopped" and ws.run(run_id)["trainer"] is None
        assert not _leased(path, run_id)  # the lease went with the trainer


def test_a_killed_trainer_leaves_an_interrupted_run_that_resumes_at_once(tmp_path):
    path, run_id = _made_run(tmp_path, **{"train.checkpoint_interval": 20})
    killed = subprocess.Popen(_cli(path, "train", "--resume", str(run_id)), env=ENV, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        assert _wait_for(lambda: max(_checkpoint_steps(path / "workspace.db", run_id), default=0) >= 60)
    finally:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(10)
    with Workspace(path) as ws:
        run = ws.run(run_id)
        assert run["status"] == "interrupted" and "Resume continues from its last checkpoint" in run["message"]
        assert run["trainer"] is None
    # The dead owner's lease is still in the table but recognised as stale: no waiting for it to lapse.
    assert _leased(path, run_id)
    started = time.monotonic()
    resumed = subprocess.run(_cli(path, "train", "--resume", str(run_id)), env=ENV, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert time.monotonic() - started < LEASE_STALE_S
    with Workspace(path) as ws:
        assert ws.run(run_id)["status"] == "finished"


def test_a_lease_from_another_computer_holds_until_it_is_not_renewed(tmp_path):
    path, run_id = _made_run(tmp_path)
    now = time.time()
    with Workspace(path) as ws:
        ws.db.execute("insert into leases values (?, 'x', 4242, 'far-away-box', ?, ?)", [run_id, now - 60, now])
        ws.db.conn.commit()
        with pytest.raises(RunBusyError, match="process 4242 on far-away-box"):
            ws.take_lease(run_id)
        ws.db.execute("update leases set renewed = ? where run_id = ?", [now - LEASE_STALE_S - 1, run_id])
        ws.db.conn.commit()
        token = ws.take_lease(run_id)  # stale: a synced folder whose trainer went away
        assert ws.live_lease(run_id)["token"] == token and ws.run(run_id)["trained_here"]


def test_a_trainer_whose_lease_was_taken_over_stops_without_writing(tmp_path):
    path, run_id = _made_run(tmp_path, **{"train.checkpoint_interval": 10})
    trainer = subprocess.Popen(_cli(path, "train", "--resume", str(run_id)), env=ENV, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert _wait_for(lambda: max(_checkpoint_steps(path / "workspace.db", run_id), default=0) >= 50)
        with Workspace(path) as ws:  # as a new owner would, once the old one looked stale
            ws.db.execute("update leases set token = 'new owner', pid = ? where run_id = ?", [os.getpid(), run_id])
            ws.db.conn.commit()
            ws.update_run(run_id, message="the new owner's words")
        err = trainer.communicate(timeout=60)[1]
    finally:
        trainer.kill()
    assert trainer.returncode != 0 and "another process took this run over" in err
    with Workspace(path) as ws:
        before = max(r["step"] for r in ws.checkpoints(run_id))
        time.sleep(0.2)
        assert ws.run(run_id)["message"] == "the new owner's words"  # the row is the new owner's
        assert max(r["step"] for r in ws.checkpoints(run_id)) == before < 400
