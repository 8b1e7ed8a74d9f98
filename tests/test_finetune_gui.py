"""Fine-tuning in the window, through a real engine: Runs → Fine-tune… on a trained run, LoRA chosen, Start;
the Train panel trains the child with the parent's curves faded behind it, and the Runs panel shows the
lineage."""

import pytest
from PySide6.QtCore import Qt

from tests.conftest import main_window, start_session, stop_session, wait_until
from engine.config import RunConfig
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training

pytestmark = pytest.mark.timeout(240)
LINE = "to be or not to be, that is the question.\n"


def _parent(path) -> int:
    """A tiny decoder trained 40 steps on a repeated line: the run to start from."""
    (path.parent / "hamlet.txt").write_text(LINE * 200, encoding="utf-8")
    with Workspace(path) as ws:
        ws.import_dataset([path.parent / "hamlet.txt"], "hamlet", 0.1)
        cfg = RunConfig.from_dict(
            {
                "data": {"dataset": "hamlet"},
                "tokenizer": {"kind": "char", "vocab_size": 64},
                "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16},
                "train": {"batch_size": 8, "max_iters": 40, "lr_decay_iters": 40, "eval_interval": 10,
                          "warmup_iters": 5, "eval_iters": 2, "log_interval": 5, "device": "cpu"},
            }
        )  # fmt: skip
        run = prepare_run(ws, cfg)
        assert run_training(ws, run["id"], on_event=lambda e: None) == "finished"
        return run["id"]


def _parent_steps(train) -> list:
    faded = train.loss_plot.parent_curves
    xs = faded[1].getData()[0] if faded is not None else None
    return [] if xs is None else list(xs)


def _open_finetune(qtbot, session, qsettings, parent: int):
    """The window, and Runs → Fine-tune… opened on the parent run by a click."""
    win = main_window(qtbot, session, qsettings, size=(1280, 860))
    runs = win.panels["runs"]
    win.show_page("runs")
    session.select_run(parent)
    qtbot.waitUntil(lambda: runs.finetune_button.isEnabled(), timeout=10_000)
    qtbot.mouseClick(runs.finetune_button, Qt.MouseButton.LeftButton)
    return win, runs.finetune_dialog


def test_fine_tune_a_run_with_lora_from_the_runs_panel(qtbot, qsettings, tmp_path):
    parent = _parent(tmp_path / "ws")
    session = start_session(tmp_path / "ws")
    try:
        win, dialog = _open_finetune(qtbot, session, qsettings, parent)
        runs, train = win.panels["runs"], win.panels["train"]
        assert dialog.isVisible() and dialog.windowTitle() == f"Fine-tune run {parent}"
        assert not dialog.rank_box.isEnabled()  # LoRA's settings wait for LoRA
        assert "Every one of the" in dialog.trainable_label.text()
        qtbot.waitUntil(lambda: dialog.checkpoint_combo.count() > 1, timeout=10_000)  # the kept steps arrived
        dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("lora"))
        assert dialog.rank_box.isEnabled() and "LoRA trains " in dialog.trainable_label.text()
        dialog.steps_box.setValue(20)
        dialog.lr_box.setValue(1e-3)
        assert dialog.start_button.isEnabled() and not dialog.error_label.isVisible()
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        assert win.current_page() == "train"
        wait_until(lambda: len(session.workspace.get("runs", [])) == 2, 60, "the child run")
        child = session.workspace["runs"][-1]
        wait_until(
            lambda: (session.find("runs", child["id"]) or {}).get("status") == "finished", 120, "the child to finish"
        )
        config = session.find("runs", child["id"])["config"]["train"]
        assert config["finetune"] == "lora" and config["init_from"]["run"] == parent
        session.select_run(child["id"])
        # The parent's curves lead into the child's, faded, ending at step 0.
        qtbot.waitUntil(lambda: len(_parent_steps(train)) > 0, timeout=10_000)
        xs = _parent_steps(train)
        assert xs == [-30, -20, -10, 0]  # its evaluations, every 10 of its 40 steps, ending where the child begins
        assert f"from run {parent}</b>" in train.summary.text() and "LoRA rank 8" in train.summary.text()
        # A 1280x720 window still has room for the longer summary of a fine-tuned run: nothing overlaps.
        win.resize(1280, 720)
        qtbot.waitUntil(lambda: train.height() < 700, timeout=5_000)
        assert train.minimumSizeHint().height() <= train.height()
        assert train.loss_plot.geometry().bottom() < train.lr_plot.geometry().top()
        win.show_page("runs")
        row = runs._row_of(child["id"])
        assert runs.table.item(row, runs.table.columnCount() - 1).text() == f"← {parent} LoRA"
        assert f"Started from run {parent}" in runs.message_label.text()
        session.select_run(parent)
        qtbot.waitUntil(lambda: f"Run {child['id']} started from it" in runs.message_label.text(), timeout=5_000)
        win.close()
    finally:
        stop_session(session)


def test_reward_a_run_with_reinforce_and_watch_its_samples(qtbot, qsettings, tmp_path):
    parent = _parent(tmp_path / "ws")
    session = start_session(tmp_path / "ws")
    try:
        win, dialog = _open_finetune(qtbot, session, qsettings, parent)
        train = win.panels["train"]
        assert not dialog.reward_edit.isVisible()  # REINFORCE's rows wait for REINFORCE
        dialog.objective_combo.setCurrentIndex(dialog.objective_combo.findData("reinforce"))
        assert dialog.reward_edit.isVisible() and dialog.prompts_edit.isVisible()
        dialog.reward_edit.setText("length")
        assert dialog.error_label.isVisible() and "length&#x27; is not a reward" in dialog.error_label.text()
        assert not dialog.start_button.isEnabled()
        dialog.reward_edit.setText("contains:question")
        dialog.prompts_edit.setPlainText("to be or\nthat is")
        dialog.steps_box.setValue(20)
        dialog.lr_box.setValue(1e-3)
        assert dialog.start_button.isEnabled(), dialog.error_label.text()
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        wait_until(lambda: len(session.workspace.get("runs", [])) == 2, 60, "the REINFORCE run")
        child = session.workspace["runs"][-1]
        objective = child["config"]["objective"]
        assert (objective["name"], objective["reward"], objective["prompts"]) == (
            "reinforce", "contains:question", ["to be or", "that is"]
        )  # fmt: skip
        session.select_run(child["id"])
        qtbot.waitUntil(lambda: train.samples_view.isVisible(), timeout=120_000)  # the first evaluation's samples
        table = train.samples_view.table
        assert table.rowCount() == 8
        assert {table.item(r, 0).text() for r in range(8)} <= {"to be or", "that is"}
        assert all(table.item(r, 2).text() in ("0.00", "1.00") for r in range(8))
        assert "mean reward" in train.samples_view.caption.text()
        assert train.metric_plots["reward"].isVisible() and train.metric_plots["ref_kl"].isVisible()
        wait_until(
            lambda: (session.find("runs", child["id"]) or {}).get("status") == "finished", 120, "the run to finish"
        )
        win.close()
    finally:
        stop_session(session)
