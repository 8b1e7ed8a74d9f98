"""The Playground adapts to the run: each kind of run gets its own modes (and a line saying why); Fill mask, Infill,
Score a pair and Text to text send their requests and show the answers. The engine is played here (its messages
delivered to a real Session); tests/test_playground_real_modes.py asks a real engine."""

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from engine import protocol as p
from studio.panels.playground import PlaygroundPanel
from studio.session import Session


def _run(run_id, name, arch, objective):
    config = {"model": {"arch": arch}, "objective": {"name": objective}}
    return {"id": run_id, "name": name, "status": "finished", "step": 50, "max_iters": 50, "config": config}


RUNS = [
    _run(1, "gpt", "decoder", "causal_lm"),
    _run(2, "bert", "encoder", "masked_lm"),
    _run(3, "t5", "encoder-decoder", "span_corruption"),
    _run(4, "bart", "encoder-decoder", "denoising"),
    _run(5, "bert+nsp", "encoder", "masked_lm+nsp"),
    _run(6, "albert", "encoder", "sop"),
]


@pytest.fixture
def panel(qtbot, tmp_path):
    session = Session(str(tmp_path / "ws"))  # no engine: the test plays the engine's messages
    session.deliver([p.Status(state="idle")])
    session.apply_workspace({"path": str(tmp_path), "datasets": [], "tokenizers": [], "runs": RUNS})
    w = PlaygroundPanel(session)
    qtbot.addWidget(w)
    w.resize(1300, 800)
    w.show()
    return w


def choose(panel, run_id) -> None:
    panel.run_combo.setCurrentIndex(panel.run_combo.findData(run_id))


def shown_buttons(panel) -> list[str]:
    """The mode buttons a user sees, left to right."""
    shown = [b for b in panel.mode_bar.buttons.values() if b.isVisibleTo(panel)]
    return [b.property("mode") for b in sorted(shown, key=lambda b: panel.mode_bar.layout().indexOf(b))]


def test_each_run_shows_only_its_modes_with_a_line_saying_why(panel):
    choose(panel, 1)
    assert panel.modes() == ["generate"] and shown_buttons(panel) == []  # one mode: no buttons to choose from
    assert panel.stack.currentWidget() is panel.generate_page and panel.prompt_label.text() == "Prompt"
    assert "a decoder trained with causal language modelling" in panel.modes_label.text()
    choose(panel, 2)
    assert panel.modes() == ["fill_mask"] and panel.stack.currentWidget() is panel.mode_pages["fill_mask"]
    assert (
        panel.modes_label.text() == "This run is an encoder trained with masked language modelling: it fills in blanks."
    )
    choose(panel, 3)
    assert shown_buttons(panel) == ["infill", "text2text"] and panel.mode == "infill"
    panel.mode_bar.buttons["text2text"].click()
    assert panel.mode == "text2text" and panel.stack.currentWidget() is panel.generate_page
    assert panel.prompt_label.text() == "Input"
    choose(panel, 4)  # text to text is a denoising run's own mode too: it stays
    assert panel.modes() == ["text2text"] and panel.mode == "text2text"
    assert "writes it back repaired" in panel.modes_label.text()
    choose(panel, 5)
    assert shown_buttons(panel) == ["fill_mask", "pair"] and panel.mode == "fill_mask"
    assert panel.mode_pages["pair"].question.text() == "<b>Does B follow A?</b>"
    choose(panel, 6)
    assert panel.mode == "pair" and panel.mode_pages["pair"].question.text() == "<b>Are A and B in order?</b>"
    choose(panel, 1)
    assert panel.mode == "generate" and panel.prompt_label.text() == "Prompt"


def test_ctrl_m_turns_the_selection_into_a_mask_and_fill_shows_the_guesses(qtbot, panel):
    s = panel.session
    choose(panel, 2)
    page = panel.mode_pages["fill_mask"]
    page.edit.setPlainText("To be or not to be")
    panel.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is panel, timeout=3000)
    page.edit.setFocus()
    cursor = page.edit.textCursor()
    cursor.setPosition(16)
    cursor.setPosition(18, cursor.MoveMode.KeepAnchor)  # "be"
    page.edit.setTextCursor(cursor)
    qtbot.keyClick(page.edit, Qt.Key.Key_M, Qt.KeyboardModifier.ControlModifier)
    assert page.edit.toPlainText() == "To be or not to [MASK]"
    assert page.edit.textCursor().position() == len("To be or not to [MASK]")
    page.top_k.setValue(3)
    page.ask_button.click()
    req = s.queued[-1]
    assert isinstance(req, p.FillMaskRequest)
    assert (req.run, req.checkpoint, req.text, req.top_k) == (2, None, "To be or not to [MASK]", 3)
    assert not page.ask_button.isEnabled() and page.status_label.text() == "Asking the model…"
    candidates = [["␣be", 0.62], ["␣go", 0.2], ["␣me", 0.05]]
    s.deliver([p.FillMaskReply(parent=req.id, masks=[{"position": 6, "candidates": candidates}], text="x")])
    assert page.ask_button.isEnabled() and page.bars[0].rows == [("␣be", 0.62), ("␣go", 0.2), ("␣me", 0.05)]
    assert page.bars[0].chosen == "␣be"
    assert page.result.toPlainText() == "To be or not to be1"  # the best guess in place, numbered as its bars
    assert "background-color" in page.result.toHtml()


def test_fill_without_a_mask_says_what_to_do_and_sends_nothing(panel):
    choose(panel, 2)
    page = panel.mode_pages["fill_mask"]
    page.edit.setPlainText("no blanks here")
    n = len(panel.session.queued)
    panel.handle_ctrl_return()  # Ctrl+Return asks, as the button does
    assert len(panel.session.queued) == n and page.error_label.text().startswith("Put [MASK] where")
    page.edit.setPlainText("a [MASK]")
    panel.handle_ctrl_return()
    assert isinstance(panel.session.queued[-1], p.FillMaskRequest) and not page.error_label.isVisible()


def test_gaps_are_marked_and_the_fills_shown_in_their_place(panel):
    s = panel.session
    choose(panel, 3)
    page = panel.mode_pages["infill"]
    page.edit.setPlainText("But soft,  window breaks?")
    cursor = page.edit.textCursor()
    cursor.setPosition(len("But soft, "))
    page.edit.setTextCursor(cursor)
    page.gap_button.click()
    assert page.edit.toPlainText() == "But soft, [GAP] window breaks?"
    page.mode_combo.setCurrentIndex(page.mode_combo.findData("sample"))
    assert page.temperature.isVisibleTo(page)
    page.ask_button.click()
    req = s.queued[-1]
    assert isinstance(req, p.InfillRequest) and req.segments == ["But soft, ", " window breaks?"]
    assert (req.run, req.mode, req.max_new_tokens) == (3, "sample", 32)
    s.deliver([p.InfillReply(parent=req.id, fills=["what light through yonder"], text="")])
    assert page.result.toPlainText() == "But soft, what light through yonder window breaks?"
    assert page.fills_label.text() == "Gap 1: ‘what␣light␣through␣yonder’"
    page.edit.setPlainText("no gap")
    page.ask_button.click()
    assert page.error_label.text().startswith("Mark at least one gap")


def test_score_a_pair_says_how_likely_b_follows_a_with_a_bar(panel):
    s = panel.session
    choose(panel, 5)
    panel.mode_bar.buttons["pair"].click()
    page = panel.mode_pages["pair"]
    page.a_edit.setPlainText("The sun had set.")
    page.b_edit.setPlainText("It was dark.")
    page.ask_button.click()
    req = s.queued[-1]
    assert isinstance(req, p.ScorePairRequest) and (req.run, req.a, req.b) == (5, "The sun had set.", "It was dark.")
    s.deliver([p.ScorePairReply(parent=req.id, task="nsp", prob=0.871, words="B follows A: 87 %")])
    assert page.answer_label.text() == "B follows A: 87 %" and page.bar.rows == [("B follows A", 0.871)]
    page.ask_button.click()
    req = s.queued[-1]
    s.deliver([p.ScorePairReply(parent=req.id, status="error", error="run 5 has no checkpoint yet")])
    assert page.error_label.text() == "Could not score the pair: run 5 has no checkpoint yet"
    assert page.ask_button.isEnabled()


def test_text_to_text_streams_the_output_without_the_input_before_it(qtbot, panel):
    s = panel.session
    choose(panel, 4)
    panel.prompt.setPlainText("the cat sat mat")
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("beam"))
    panel.generate_button.click()
    req = s.queued[-1]
    assert isinstance(req, p.GenerateRequest) and (req.run, req.prompt, req.mode) == (4, "the cat sat mat", "beam")
    s.deliver([p.Token(parent=req.id, token_id=i, text=t, prob=0.5) for i, t in enumerate(["the", " cat", " sat"])])
    s.deliver([p.GenerateReply(parent=req.id, text="the cat sat", n_tokens=3, tokens_per_sec=9.0, token_ids=[0, 1, 2])])
    assert panel.output.toPlainText() == "the cat sat"  # its own text, not a continuation of the input
    qtbot.mouseClick(panel.output.viewport(), Qt.MouseButton.LeftButton, pos=panel.pane.token_center(1))
    assert "cross-attention" in panel.details.attention_text.toPlainText()
    assert not any(isinstance(m, p.TokenAttentionRequest) for m in s.queued)


def test_each_modes_text_is_kept_for_the_next_window(qtbot, panel):
    choose(panel, 2)
    panel.mode_pages["fill_mask"].edit.setPlainText("a [MASK] b")
    panel.mode_pages["pair"].a_edit.setPlainText("first")
    panel.mode_pages["infill"].max_new.setValue(7)
    again = PlaygroundPanel(panel.session)
    qtbot.addWidget(again)
    assert again.mode_pages["fill_mask"].edit.toPlainText() == "a [MASK] b"
    assert again.mode_pages["pair"].a_edit.toPlainText() == "first" and again.mode_pages["infill"].max_new.value() == 7


def test_no_text_of_any_mode_is_clipped_at_1280_by_720(qtbot, panel):
    from test_no_clipping import clipped_texts

    panel.resize(1280 - 200, 720 - 120)  # the window less its sidebar and menu
    problems = []
    for run_id in (2, 3, 5):
        choose(panel, run_id)
        for mode in panel.modes():
            panel.show_mode(mode)
            qtbot.wait(20)
            problems += [f"{mode}: {p}" for p in clipped_texts(panel)]
    assert not problems, "\n".join(problems)
