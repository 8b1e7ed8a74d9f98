"""A run the command line trains, seen from the window (issue 12, item 2): the Runs panel says "training
elsewhere", offers no Resume and no Delete, the Train panel follows its curve live from the workspace, and the
engine refuses a Resume with the owner's name. Once the CLI stops, the run is the window's again."""

import os
import signal
import subprocess

import pytest

from engine import protocol as p
from tests.conftest import open_studio
from tests.faults.test_one_trainer import _cli, _leased, _made_run, _wait_for
from tests.test_cli import ENV, ROOT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGTERM")


def _status_cell(runs_panel, run_id) -> str:
    table = runs_panel.table
    for row in range(table.rowCount()):
        if table.item(row, 0).text() == str(run_id):
            return table.item(row, 2).text()
    return ""


def test_the_window_follows_a_run_the_cli_trains_and_never_resumes_it_beside(qtbot, qsettings, tmp_path):
    path, run_id = _made_run(tmp_path, steps=100_000)
    trainer = subprocess.Popen(_cli(path, "train", "--resume", str(run_id)), env=ENV, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert _wait_for(lambda: _leased(path, run_id))
        with open_studio(qtbot, qsettings, path) as (win, session):
            runs, train = win.panels["runs"], win.panels["train"]
            session.select_run(session.find("runs", run_id))
            qtbot.waitUntil(lambda: _status_cell(runs, run_id) == "training elsewhere", timeout=15_000)
            assert not runs.resume_button.isEnabled() and not runs.delete_button.isEnabled()
            assert "Trained by process" in runs.resume_button.toolTip()
            assert "training elsewhere" in train.run_caption.text()
            assert not train.resume_button.isEnabled()

            qtbot.waitUntil(lambda: train.curves.run_id == run_id and len(train.curves.steps) > 0, timeout=15_000)
            seen = train.curves.steps[-1]
            qtbot.waitUntil(lambda: train.curves.steps and train.curves.steps[-1] > seen + 20, timeout=15_000)

            replies = []
            session.request(p.TrainRequest(resume_run=run_id), replies.append)
            qtbot.waitUntil(lambda: bool(replies), timeout=10_000)
            assert not replies[0].ok and f"is being trained by process {trainer.pid}" in replies[0].error

            trainer.send_signal(signal.SIGTERM)
            assert trainer.wait(60) == 0, trainer.stderr.read()
            qtbot.waitUntil(lambda: _status_cell(runs, run_id) == "stopped", timeout=15_000)
            assert runs.resume_button.isEnabled()
            last = session.find("runs", run_id)["step"]
            qtbot.waitUntil(lambda: train.curves.steps[-1] == last, timeout=10_000)  # the curve to its end
    finally:
        trainer.kill()
