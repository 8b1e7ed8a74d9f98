"""What a new user meets in the first hour, through the real window and a real engine process: Train pressed before
the engine is ready, Ctrl+Return from any panel, choices that come back after a restart, one run shown at a time,
and run status that stays live everywhere."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.conftest import ended_runs, open_studio, window_on
from engine import protocol as p
from studio.session import Session

pytestmark = pytest.mark.timeout(240)

AT_WORK = dict(size=(1280, 720), active=True)  # the window as a user has it: a laptop's size, active
TINY_MODEL = dict(n_layer=2, n_head=2, n_embd=32, block_size=32)


def tiny_training(session, steps: int = 40, **extra) -> None:
    session.update_config("model", **TINY_MODEL)
    session.update_config(
        "train",
        **dict(
            dict(
                batch_size=8,
                max_iters=steps,
                eval_interval=20,
                eval_iters=2,
                log_interval=2,
                warmup_iters=5,
                lr_decay_iters=steps,
                learning_rate=3e-3,
                min_lr=3e-4,
                checkpoint_interval=1000,
            ),
            **extra,
        ),
    )


def visible_message_boxes() -> list[str]:
    return [w.text() for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


# --------------------------------------------------------------------------------------------- first run
def test_first_run_ctrl_return_at_once_trains_and_the_playground_writes(qtbot, tmp_path, qsettings, monkeypatch):
    """An empty per-user folder, Ctrl+Return the moment the window shows (the engine is still importing torch):
    the run waits for the engine, trains on the sample corpus, and the playground writes text. No error dialog."""
    from studio.app import choose_workspace

    monkeypatch.delenv("STUDIO_WORKSPACE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    workspace = choose_workspace(None, None)
    assert str(workspace).startswith(str(tmp_path / "user-data")) and not workspace.exists()

    session = Session(str(workspace))
    session.start_engine()
    tiny_training(session, steps=40)
    with window_on(qtbot, session, qsettings, **AT_WORK) as win:
        train = win.panels["train"]
        ended = ended_runs(session)
        assert session.hello is None, "the engine answered before the test pressed anything"
        win.show_page("model")
        qtbot.keyClick(win.panels["model"], Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert win.current_page() == "train"
        assert train.train_button.text() == "Starting…" and not train.train_button.isEnabled()
        assert "as soon as the engine is ready" in train.state_label.text()
        qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
        assert ended[0].state == "finished", ended[0].message
        assert not train.error_label.isVisible(), train.error_label.text()
        assert visible_message_boxes() == []
        assert session.dataset and session.dataset["name"] == "sample"
        qtbot.waitUntil(lambda: session.engine_state == "ready", timeout=10_000)

        win.show_page("playground")
        play = win.panels["playground"]
        assert play.selected_run_id() == ended[0].run
        play.prompt.setPlainText("the ")
        play.max_new.setValue(30)
        play.generate_button.click()
        qtbot.waitUntil(lambda: not play.writing, timeout=30_000)
        assert not play.error_label.isVisible(), play.error_label.text()
        assert len(play.generated) > 0 and play.output.toPlainText().startswith("the ")
        assert visible_message_boxes() == []


def test_ctrl_return_in_the_playground_writes_instead(qtbot, tmp_path, qsettings):
    with open_studio(qtbot, qsettings, tmp_path / "ws", **AT_WORK) as (win, session):
        win.show_page("playground")
        play = win.panels["playground"]
        play.prompt.setFocus()
        sent = []
        session.client.send = lambda msg, send=session.client.send: (sent.append(msg), send(msg))[1]
        qtbot.keyClick(play.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        assert win.current_page() == "playground"
        assert not any(isinstance(m, p.TrainRequest) for m in sent)
        assert "Ctrl+Return" in win.panels["train"].train_button.toolTip()


# ------------------------------------------------------------------------------------ kept per workspace
def test_every_choice_comes_back_after_a_restart(qtbot, tmp_path, qsettings):
    ws = tmp_path / "ws"
    with open_studio(qtbot, qsettings, ws, **AT_WORK) as (win, session):
        vocab = win.panels["vocab"]
        win.show_page("vocab")
        vocab.kind_combo.setCurrentIndex(vocab.kind_combo.findData("bpe"))
        with qtbot.waitSignal(vocab.tokenizerTrained, timeout=60_000) as trained:
            vocab.train_button.click()
        bpe = trained.args[0]
        assert session.tokenizer["id"] == bpe["id"] and bpe["kind"] == "bpe"
        tiny_training(session, steps=10)
        session.update_config("model", n_layer=3, dropout=0.1)
        ended = ended_runs(session)
        win.panels["train"].start_training()
        qtbot.waitUntil(lambda: bool(ended), timeout=90_000)
        # The engine goes idle just after the run's outcome; closing before that would ask "Stop training?".
        qtbot.waitUntil(lambda: not session.is_training, timeout=30_000)
        run_id = ended[0].run
        play = win.panels["playground"]
        play.temperature.setValue(1.3)
        play.top_k.setValue(7)
        play.mode_combo.setCurrentIndex(play.mode_combo.findData("greedy"))
        play.prompt.setPlainText("once upon")
        win.show_page("vocab")
        win.showMaximized()
        qtbot.waitUntil(lambda: session.ui("window") == "maximized", timeout=3000)
        saved_config = session.config.to_dict()

    with open_studio(qtbot, qsettings, ws, **AT_WORK) as (win2, session2):
        assert session2.tokenizer and session2.tokenizer["id"] == bpe["id"]
        assert session2.config.to_dict() == saved_config
        assert session2.run and session2.run["id"] == run_id
        assert win2.current_page() == "vocab" and win2.isMaximized()
        vocab2 = win2.panels["vocab"]
        assert "No tokenizer" not in vocab2.tokenizer_info.text()
        assert bpe["name"] in vocab2.tokenizer_combo.currentText()
        assert vocab2.export_button.isEnabled() and vocab2.delete_button.isEnabled()
        summary = win2.panels["train"].summary.text()
        assert bpe["name"] in summary and "a new char vocabulary" not in summary
        assert "3 layers" in summary
        play2 = win2.panels["playground"]
        assert play2.temperature.value() == pytest.approx(1.3) and play2.top_k.value() == 7
        assert play2.mode_combo.currentData() == "greedy" and play2.prompt.toPlainText() == "once upon"


def test_a_broken_state_file_is_ignored_and_nothing_else_changes(qtbot, tmp_path, qsettings):
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "studio-state.json").write_bytes(b"\x00\xff not json")
    with open_studio(qtbot, qsettings, ws, **AT_WORK) as (win, session):
        assert session.dataset and session.dataset["name"] == "sample"  # the defaults
        assert session.save_state()
        assert b"not json" not in (ws / "studio-state.json").read_bytes()


# --------------------------------------------------------------------------------- one run shown at a time
def test_the_train_panel_shows_one_run_and_its_own_settings(qtbot, tmp_path, qsettings):
    with open_studio(qtbot, qsettings, tmp_path / "ws", **AT_WORK) as (win, session):
        train = win.panels["train"]
        ended = ended_runs(session)
        tiny_training(session, steps=10)
        train.start_training()
        qtbot.waitUntil(lambda: len(ended) == 1, timeout=90_000)
        first = ended[0].run
        qtbot.waitUntil(lambda: session.engine_state == "ready", timeout=10_000)
        session.update_config("model", n_layer=3)
        train.start_training()
        qtbot.waitUntil(lambda: len(ended) == 2, timeout=90_000)
        second = ended[1].run
        qtbot.waitUntil(lambda: f"Run {second}" in train.run_caption.text(), timeout=5000)
        assert "3 layers" in train.summary.text()

        runs = win.panels["runs"]
        runs.table.selectRow(runs._row_of(first))  # Runs → Show curves of the first run
        qtbot.waitUntil(lambda: train.curves.run_id == first, timeout=5000)
        caption, summary = train.run_caption.text(), train.summary.text()
        assert f"Run {first}" in caption and f"Run {second}" not in caption
        assert f"Run {second}" not in train.state_label.text()
        assert summary.startswith("<b>Model</b> 2 layers")
        assert "Train starts a new run with your current settings</i> (they differ in Layers)" in summary
        assert "3 layers" in summary
        qtbot.waitUntil(lambda: len(train.curves.steps) > 0, timeout=5000)
        assert train.curves.run_id == first


# ------------------------------------------------------------------------------------------ live status
def test_every_view_of_a_training_run_updates_live(qtbot, tmp_path, qsettings):
    with open_studio(qtbot, qsettings, tmp_path / "ws", **AT_WORK) as (win, session):
        tiny_training(session, steps=400, eval_interval=100, log_interval=5)
        steps_seen = []
        session.metricsReceived.connect(lambda run, rows: steps_seen.extend(int(r["step"]) for r in rows))
        win.panels["train"].start_training()
        qtbot.waitUntil(lambda: bool(steps_seen) and max(steps_seen) >= 60, timeout=90_000)
        qtbot.wait(300)  # one redraw
        step = session.run["step"]
        assert session.is_training and 0 < step < 400
        runs = win.panels["runs"]
        steps_cell = runs.table.item(runs._row_of(session.run["id"]), 3).text()
        combos = {name: win.panels[name].run_combo.currentText() for name in ("playground", "attention")}
        shown = [int(s.replace(",", "")) for s in _numbers_before("/", steps_cell)]
        assert shown and shown[0] >= 60, steps_cell
        for name, text in combos.items():
            assert "0 / 400" not in text and f"{step:,}" in text or _close_step(text, step), (name, text, step)
        assert "training" in win.run_label.text()
        session.control("stop")
        qtbot.waitUntil(lambda: not session.is_training, timeout=30_000)


def _numbers_before(sep: str, text: str) -> list[str]:
    head = text.split(sep)[0].strip().split()
    return head[-1:] if head else []


def _close_step(text: str, step: int) -> bool:
    """A combo redrawn a moment before the session's latest row may show a step a little behind it."""
    import re

    nums = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?= /)", text)]
    return bool(nums) and step - 40 <= nums[0] <= step


def test_the_vocabulary_combo_never_shows_a_tokenizer_that_is_not_in_use(qtbot, tmp_path, qsettings):
    with open_studio(qtbot, qsettings, tmp_path / "ws", **AT_WORK) as (win, session):
        vocab = win.panels["vocab"]
        vocab.kind_combo.setCurrentIndex(vocab.kind_combo.findData("char"))
        with qtbot.waitSignal(vocab.tokenizerTrained, timeout=60_000) as trained:
            vocab.train_button.click()
        assert trained.args[0]["name"] in vocab.tokenizer_combo.currentText()  # before the list catches up
        qtbot.waitUntil(
            lambda: any(t["id"] == trained.args[0]["id"] for t in session.workspace["tokenizers"]), timeout=10_000
        )
        session.select_tokenizer(None)
        assert vocab.tokenizer_combo.currentText().startswith("(none chosen")
        assert vocab.tokenizer_info.text().startswith("No tokenizer chosen: pick one above")
        assert not vocab.export_button.isEnabled()
        assert "a new char vocabulary" in win.panels["train"].summary.text()
        vocab.tokenizer_combo.setCurrentIndex(1)
        vocab.tokenizer_combo.activated.emit(1)
        assert session.tokenizer and session.tokenizer["id"] == trained.args[0]["id"]
        assert vocab.tokenizer_combo.findText("(none chosen: pick one)") < 0


def test_train_clicked_before_the_engine_said_hello_starts_the_run(qtbot, tmp_path, qsettings):
    session = Session(str(tmp_path / "ws"))
    session.start_engine()
    tiny_training(session, steps=400)
    with window_on(qtbot, session, qsettings, **AT_WORK) as win:
        train = win.panels["train"]
        win.show_page("train")
        assert session.hello is None and train.train_button.isEnabled()
        train.train_button.click()
        assert train.train_button.text() == "Starting…" and train.stop_button.isEnabled()
        qtbot.waitUntil(lambda: session.training_run is not None and session.is_training, timeout=60_000)
        assert not train.error_label.isVisible() and visible_message_boxes() == []
        assert train.train_button.text() == "▶  Train" and session.config.data.dataset == session.dataset["id"]
        qtbot.waitUntil(lambda: len(train.curves.steps) > 0, timeout=60_000)  # it trains
        session.control("stop")
        qtbot.waitUntil(lambda: not session.is_training, timeout=30_000)


def test_stop_before_the_engine_is_ready_cancels_the_waiting_start(qtbot, tmp_path, qsettings):
    session = Session(str(tmp_path / "ws"))
    session.start_engine()
    with window_on(qtbot, session, qsettings, **AT_WORK) as win:
        train = win.panels["train"]
        train.start_training()
        assert train.train_button.text() == "Starting…"
        train.stop_training()
        assert train.train_button.text() == "▶  Train" and train.state_label.text() == ""
        qtbot.waitUntil(lambda: session.engine_state == "ready", timeout=60_000)
        qtbot.wait(500)
        assert session.training_run is None and not session.is_training
