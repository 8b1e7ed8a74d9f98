"""PlaygroundPanel: generation parameters out, streamed tokens in, errors shown as a readable line."""
import pytest
from PySide6.QtCore import Qt

from engine import protocol as p
from studio.panels.playground import PlaygroundPanel
from studio.session import Session

RUNS = [{"id": 1, "name": "first", "status": "finished", "step": 300, "max_iters": 300, "best_val_loss": 1.91},
        {"id": 2, "name": "empty", "status": "created", "step": 0, "max_iters": 300, "best_val_loss": None}]


@pytest.fixture
def panel(qtbot, tmp_path):
    session = Session(str(tmp_path / "ws"))      # no engine: the test plays the engine's messages
    session._on_messages([p.Status(state="idle")])
    session._apply_workspace({"path": str(tmp_path), "datasets": [], "tokenizers": [], "runs": RUNS})
    w = PlaygroundPanel(session)
    qtbot.addWidget(w)
    w.show()
    return w


def test_defaults_to_a_trained_run_and_sends_the_parameters(panel):
    s = panel.session
    assert panel.run_combo.count() == 2
    assert panel.selected_run_id() == 1      # the latest run is selected in the session, but has no steps yet
    panel.prompt.setPlainText("ROMEO:")
    panel.temperature.setValue(0.5)
    panel.top_k.setValue(0)                  # shown as "off"
    panel.top_p.setValue(0.9)
    panel.max_new.setValue(12)
    assert panel.seed.text() == "random"
    panel.generate_button.click()
    msg = s._queue[-1]
    assert isinstance(msg, p.GenerateRequest)
    assert (msg.run, msg.prompt, msg.temperature, msg.top_k, msg.top_p, msg.max_new_tokens, msg.seed) == \
        (1, "ROMEO:", 0.5, None, 0.9, 12, None)
    assert not panel.generate_button.isEnabled() and panel.stop_button.isEnabled()

    panel.stop_button.click()
    assert msg not in s._queue               # cancelled before the engine saw it


def test_tokens_stream_in_highlighted_after_a_plain_prompt(qtbot, panel):
    s = panel.session
    panel.prompt.setPlainText("To be")
    panel.seed.setValue(42)
    panel.generate_button.click()
    req = s._queue[-1]
    assert req.seed == 42
    s._on_messages([p.Token(parent=req.id, token_id=i, text=t) for i, t in enumerate([",", " or", " not"])])
    qtbot.waitUntil(lambda: panel.output.toPlainText() == "To be, or not", timeout=2000)
    s._on_messages([p.Token(parent=req.id, token_id=9, text=" to"),
                    p.GenerateReply(parent=req.id, text=", or not to", n_tokens=4, tokens_per_sec=123.4)])
    assert panel.output.toPlainText() == "To be, or not to" and panel.generated == ", or not to"
    assert panel.stats_label.text() == "4 tokens · 123.4 tok/s"
    assert panel.generate_button.isEnabled() and not panel.stop_button.isEnabled()

    doc = panel.output.document()

    def background(pos):
        cursor = panel.output.textCursor()
        cursor.setPosition(pos + 1)      # the format of the character before the cursor
        return cursor.charFormat().background().style()
    assert background(1) == Qt.BrushStyle.NoBrush           # the prompt: plain
    assert background(7) != Qt.BrushStyle.NoBrush           # generated text: highlighted
    assert doc.characterCount() - 1 == len("To be, or not to")


def test_error_reply_shows_a_readable_line(panel):
    s = panel.session
    panel.run_combo.setCurrentIndex(panel.run_combo.findData(2))
    panel.generate_button.click()
    req = s._queue[-1]
    s._on_messages([p.GenerateReply(parent=req.id, status="error", error="run 2 has no checkpoint yet: train it first")])
    assert panel.error_label.isVisible()
    assert panel.error_label.text() == "Could not generate: run 2 has no checkpoint yet: train it first"
    assert panel.generate_button.isEnabled()


def test_no_runs_means_train_first(qtbot, tmp_path):
    s = Session(str(tmp_path / "ws"))
    w = PlaygroundPanel(s)
    qtbot.addWidget(w)
    w.generate()
    assert "Train a model first" in w.error_label.text()


def test_real_engine_error_for_a_missing_run(qtbot, module_session):
    s = module_session
    w = PlaygroundPanel(s)
    qtbot.addWidget(w)
    w.run_combo.addItem("#999 gone", 999)
    w.run_combo.setCurrentIndex(w.run_combo.findData(999))
    w.generate()
    qtbot.waitUntil(lambda: w._request is None, timeout=10_000)
    assert w.error_label.text().startswith("Could not generate: ") and "999" in w.error_label.text()
    assert "Traceback" not in w.error_label.text()
