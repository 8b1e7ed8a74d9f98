"""End to end through the real MainWindow and a real engine process (docs/DESIGN.md "Testing"): import a text, train a
char vocabulary and a tiny model, see the loss fall on the plot, generate, quit, reopen and find it all again."""

import random

import pytest
from PySide6.QtCore import Qt

from tests.conftest import ended_runs, open_studio
from engine import protocol as p

pytestmark = pytest.mark.timeout(180)

WORDS = {
    "subject": ["the cat", "a dog", "the old man", "my sister", "a small bird", "the king"],
    "verb": ["sees", "likes", "follows", "paints", "finds", "greets"],
    "object": ["the river", "a red apple", "the tall tree", "our house", "the moon", "a quiet song"],
}


def write_corpus(path, n_bytes=40_000, seed=7):
    rng = random.Random(seed)
    lines, size = [], 0
    while size < n_bytes:
        line = f"{rng.choice(WORDS['subject'])} {rng.choice(WORDS['verb'])} {rng.choice(WORDS['object'])}.\n"
        lines.append(line)
        size += len(line)
    path.write_text("".join(lines), encoding="utf-8")


def _ys(curve):
    xs, ys = curve.getData()
    return [] if ys is None else [float(y) for y in ys]


def test_import_train_generate_quit_and_reopen(qtbot, tmp_path, qsettings):
    ws, corpus = tmp_path / "workspace", tmp_path / "patterns.txt"
    write_corpus(corpus)
    with open_studio(qtbot, qsettings, ws) as (win, session):
        # Data: preview the file, press Import.
        win.show_page("data")
        data = win.panels["data"]
        data.preview_paths([str(corpus)])
        with qtbot.waitSignal(data.importFinished, timeout=30_000) as imported:
            data.import_button.click()
        dataset = imported.args[0]
        assert dataset and dataset["name"] == "patterns" and session.dataset["id"] == dataset["id"]

        # Vocabulary: a character-level tokenizer.
        win.show_page("vocab")
        vocab = win.panels["vocab"]
        vocab.kind_combo.setCurrentIndex(vocab.kind_combo.findData("char"))
        with qtbot.waitSignal(vocab.tokenizerTrained, timeout=30_000) as trained:
            vocab.train_button.click()
        tokenizer = trained.args[0]
        assert tokenizer and session.config.tokenizer.tokenizer == tokenizer["id"]

        # Model and training settings: tiny, so the test stays fast on two cores.
        session.update_config("model", n_layer=2, n_head=2, n_embd=32, block_size=32)
        session.update_config(
            "train",
            batch_size=8,
            max_iters=60,
            eval_interval=20,
            eval_iters=4,
            log_interval=2,
            warmup_iters=5,
            lr_decay_iters=60,
            learning_rate=3e-3,
            min_lr=3e-4,
            checkpoint_interval=1000,
        )

        win.show_page("train")
        train = win.panels["train"]
        assert "2 layers × 2 heads × 32 wide" in train.summary.text()
        ended = ended_runs(session)
        train.train_button.click()
        qtbot.waitUntil(lambda: bool(ended), timeout=90_000)
        assert ended[0].state == "finished", ended[0].message
        run_id = ended[0].run
        assert session.run["id"] == run_id
        qtbot.waitUntil(lambda: len(_ys(train.train_curve)) >= 25 and len(_ys(train.val_curve)) >= 3, timeout=5000)
        losses = _ys(train.train_curve)
        assert losses[-1] < losses[0] - 0.8, f"the loss did not fall: {losses[0]:.3f} -> {losses[-1]:.3f}"
        assert train.cards["step"].value.text() == "60 / 60"
        assert train.state_label.text().startswith("Finished") and f"Run {run_id} “" in train.run_caption.text()
        assert "finished, 60 / 60 steps" in train.run_caption.text()
        qtbot.waitUntil(lambda: session.engine_state == "ready" and train.train_button.isEnabled(), timeout=5000)

        # Playground: stream a continuation of a prompt.
        win.show_page("playground")
        play = win.panels["playground"]
        assert play.selected_run_id() == run_id
        play.prompt.setPlainText("the cat ")
        play.max_new.setValue(40)
        play.seed.setValue(1)
        streamed = []
        original = play._on_event
        play._on_event = lambda m: (streamed.append(m) if isinstance(m, p.Token) else None, original(m))
        play.generate_button.click()
        qtbot.waitUntil(lambda: not play.writing, timeout=30_000)
        assert not play.error_label.isVisible(), play.error_label.text()
        assert len(streamed) == 40 and play.generated == "".join(m.text for m in streamed)
        assert play.output.toPlainText() == "the cat " + play.generated
        assert "tok/s" in play.stats_label.text()

        # Runs: the finished run is listed with its steps.
        runs = win.panels["runs"]
        assert runs.table.rowCount() == 1 and runs.table.item(0, 3).text() == "60 / 60"

        # Delete it: every panel lets go of it; Undo brings it back with its whole curve.
        win.show_page("runs")
        runs.delete_button.click()
        qtbot.waitUntil(lambda: runs.table.rowCount() == 0, timeout=10_000)
        assert session.run is None and runs.undo_bar.isVisible()
        assert not runs.delete_button.isEnabled() and play.selected_run_id() is None
        runs.undo_bar.undo_button.click()
        qtbot.waitUntil(lambda: runs.table.rowCount() == 1 and session.run is not None, timeout=10_000)
        assert session.run["id"] == run_id and "Restored the run" in runs.error_label.text()
        qtbot.waitUntil(lambda: _ys(train.train_curve) == pytest.approx(losses), timeout=10_000)
        win.show_page("playground")

    # Quit (leaving the block closes the window): the engine goes away cleanly.
    assert session.client.state == "stopped" and session.client.proc.poll() is not None

    # Reopen the same workspace: the run and its whole loss curve are still there.
    with open_studio(qtbot, qsettings, ws, show=False) as (win2, session2):
        assert win2.current_page() == "playground"  # the last panel is remembered
        assert session2.run is not None and session2.run["id"] == run_id and session2.run["status"] == "finished"
        train2 = win2.panels["train"]
        qtbot.waitUntil(lambda: len(_ys(train2.train_curve)) == len(losses), timeout=5000)
        assert _ys(train2.train_curve) == pytest.approx(losses)
        assert len(_ys(train2.val_curve)) >= 3


# ---------------------------------------------------------------------------- the window without an engine


def test_status_bar_follows_the_engine(offline_window):
    s = offline_window.session
    s.deliver_hello(
        p.HelloReply(
            device="cpu",
            device_name="CPU (2 threads)",
            workspace={"path": "/w", "datasets": [], "tokenizers": [], "runs": []},
        )
    )
    assert offline_window.engine_status_text() == "Engine ready · CPU (2 threads)"
    assert "Workspace: /w" in offline_window.workspace_label.text() and not offline_window.restart_button.isVisible()
    s.deliver([p.Status(state="training", run=4)])
    assert offline_window.engine_status_text() == "Training · CPU (2 threads)"
    s.deliver_death("the engine was killed by SIGKILL")
    assert offline_window.engine_status_text() == "Engine stopped: the engine was killed by SIGKILL"
    assert offline_window.restart_button.isVisible()
    assert "killed by SIGKILL" in offline_window.notice_label.text()  # the notice line, in the status bar too


def test_sidebar_order_and_shortcuts(qtbot, offline_window):
    labels = [offline_window.sidebar.item(i).text() for i in range(offline_window.sidebar.count())]
    assert labels == ["Data", "Vocabulary", "Model", "Objective", "Train", "Attention", "Playground", "Runs"]
    offline_window.activateWindow()
    offline_window.setFocus()
    qtbot.keyClick(offline_window, "5", modifier=Qt.KeyboardModifier.ControlModifier)
    assert offline_window.current_page() == "train"
    qtbot.keyClick(offline_window, "6", modifier=Qt.KeyboardModifier.ControlModifier)
    assert offline_window.current_page() == "attention"
    qtbot.keyClick(offline_window, "8", modifier=Qt.KeyboardModifier.ControlModifier)
    assert offline_window.current_page() == "runs"


def _hello(session) -> None:
    session.deliver_hello(
        p.HelloReply(
            device="cpu", device_name="CPU", workspace={"path": "/w", "datasets": [], "tokenizers": [], "runs": []}
        )
    )


def test_closing_while_training_asks_first(offline_window):
    s = offline_window.session
    _hello(s)
    s.deliver([p.Status(state="idle"), p.Status(state="training", run=1, max_iters=100)])
    asked = []
    offline_window.ask_quit_while_training = lambda: asked.append(s.training_run) or "cancel"
    offline_window.close()
    assert offline_window.isVisible() and asked == [1]
    offline_window.ask_quit_while_training = lambda: "stop"
    offline_window.close()
    assert not offline_window.isVisible()


def test_ctrl_c_closes_the_window(qtbot, offline_window):
    import os
    import signal

    from PySide6.QtWidgets import QApplication

    from studio.app import install_sigint_handler

    previous = signal.getsignal(signal.SIGINT)
    try:
        install_sigint_handler(QApplication.instance(), offline_window)
        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: not offline_window.isVisible(), timeout=3000)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_runs_panel_selects_and_opens_in_playground(offline_window):
    s = offline_window.session
    runs = [
        {
            "id": 1,
            "name": "a",
            "status": "finished",
            "step": 50,
            "max_iters": 50,
            "best_val_loss": 2.0,
            "config": {"model": {"n_layer": 2}},
            "created": "2026-11-23T09:00:00+00:00",
            "device": "CPU",
        },
        {
            "id": 2,
            "name": "b",
            "status": "stopped",
            "step": 20,
            "max_iters": 50,
            "best_val_loss": None,
            "config": {},
            "created": "2026-11-23T10:00:00+00:00",
            "device": "CPU",
        },
    ]
    _hello(s)
    s.deliver([p.Status(state="idle")])
    s.apply_workspace({"path": "/w", "datasets": [], "tokenizers": [], "runs": runs})
    panel = offline_window.panels["runs"]
    assert panel.table.rowCount() == 2 and panel.table.item(1, 0).text() == "2"  # newest last
    assert s.run["id"] == 2 and panel.resume_button.isEnabled()  # stopped at 20 of 50
    assert panel.table.item(0, 6).text() == "2026-11-23 09:00" and panel.table.item(1, 4).text() == "—"
    panel.table.selectRow(0)
    shown_config = [
        [panel.config_table.item(r, c).text() for c in range(3)] for r in range(panel.config_table.rowCount())
    ]
    assert s.run["id"] == 1 and ["Model", "Layers", "2"] in shown_config
    assert not panel.resume_button.isEnabled()  # finished
    panel.playground_button.click()
    assert offline_window.current_page() == "playground"
    assert offline_window.panels["playground"].selected_run_id() == 1


def test_file_menu_opens_the_trash(offline_window):
    assert offline_window.trash_action in offline_window.menuBar().actions()[0].menu().actions()
    dialog = offline_window.show_trash()
    assert dialog.isVisible() and dialog.windowTitle() == "Trash" and not dialog.restore_button.isEnabled()
    dialog.close()


def test_times_are_shown_on_the_users_clock(monkeypatch):
    import time

    from engine.format import fmt_created

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert fmt_created("2026-11-23T09:00:00+00:00") == "2026-11-23 14:30"  # stored in UTC
        assert fmt_created("2026-11-23T09:00:00") == "2026-11-23 09:00"  # no zone: as written
    finally:
        monkeypatch.undo()
        time.tzset()
