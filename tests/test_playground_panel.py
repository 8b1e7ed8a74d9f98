"""PlaygroundPanel: generation parameters out, streamed tokens in, errors shown as a readable line."""

import pytest
from PySide6.QtCore import QPoint, Qt

from engine import protocol as p
from studio.panels.playground import PlaygroundPanel
from studio.session import Session

RUNS = [
    {"id": 1, "name": "first", "status": "finished", "step": 300, "max_iters": 300, "best_val_loss": 1.91},
    {"id": 2, "name": "empty", "status": "created", "step": 0, "max_iters": 300, "best_val_loss": None},
]


@pytest.fixture
def panel(qtbot, tmp_path):
    session = Session(str(tmp_path / "ws"))  # no engine: the test plays the engine's messages
    session.deliver([p.Status(state="idle")])
    session.apply_workspace({"path": str(tmp_path), "datasets": [], "tokenizers": [], "runs": RUNS})
    w = PlaygroundPanel(session)
    qtbot.addWidget(w)
    w.show()
    return w


def test_defaults_to_a_trained_run_and_sends_the_parameters(panel):
    s = panel.session
    assert panel.run_combo.count() == 2
    assert panel.selected_run_id() == 1  # the latest run is selected in the session, but has no steps yet
    panel.prompt.setPlainText("ROMEO:")
    panel.temperature.setValue(0.5)
    panel.top_k.setValue(0)  # shown as "off"
    panel.top_p.setValue(0.9)
    panel.max_new.setValue(12)
    assert panel.seed.text() == "random"
    panel.generate_button.click()
    msg = s.queued[-1]
    assert isinstance(msg, p.GenerateRequest)
    assert (msg.run, msg.prompt, msg.temperature, msg.top_k, msg.top_p, msg.max_new_tokens, msg.seed) == (
        1,
        "ROMEO:",
        0.5,
        None,
        0.9,
        12,
        None,
    )
    assert not panel.generate_button.isEnabled() and panel.stop_button.isEnabled()

    panel.stop_button.click()
    assert msg not in s.queued  # cancelled before the engine saw it


def test_tokens_stream_in_highlighted_after_a_plain_prompt(qtbot, panel):
    s = panel.session
    panel.prompt.setPlainText("To be")
    panel.seed.setValue(42)
    panel.generate_button.click()
    req = s.queued[-1]
    assert req.seed == 42
    s.deliver([p.Token(parent=req.id, token_id=i, text=t) for i, t in enumerate([",", " or", " not"])])
    qtbot.waitUntil(lambda: panel.output.toPlainText() == "To be, or not", timeout=2000)
    s.deliver(
        [
            p.Token(parent=req.id, token_id=9, text=" to"),
            p.GenerateReply(parent=req.id, text=", or not to", n_tokens=4, tokens_per_sec=123.4),
        ]
    )
    assert panel.output.toPlainText() == "To be, or not to" and panel.generated == ", or not to"
    assert panel.stats_label.text() == "4 tokens · 123.4 tok/s"
    assert panel.generate_button.isEnabled() and not panel.stop_button.isEnabled()

    doc = panel.output.document()

    def background(pos):
        cursor = panel.output.textCursor()
        cursor.setPosition(pos + 1)  # the format of the character before the cursor
        return cursor.charFormat().background().style()

    assert background(1) == Qt.BrushStyle.NoBrush  # the prompt: plain
    assert background(7) != Qt.BrushStyle.NoBrush  # generated text: highlighted
    assert doc.characterCount() - 1 == len("To be, or not to")


def test_a_text_the_model_ended_itself_says_so(panel):
    s = panel.session
    panel.prompt.setPlainText("hello")
    panel.generate_button.click()
    req = s.queued[-1]
    s.deliver(
        [
            p.Token(parent=req.id, token_id=5, text=" there"),
            p.GenerateReply(parent=req.id, text=" there", n_tokens=1, tokens_per_sec=50.0, ended=True),
        ]
    )
    assert panel.stats_label.text() == "1 token · 50.0 tok/s · the model ended the text"


def test_error_reply_shows_a_readable_line(panel):
    s = panel.session
    panel.run_combo.setCurrentIndex(panel.run_combo.findData(2))
    panel.generate_button.click()
    req = s.queued[-1]
    s.deliver([p.GenerateReply(parent=req.id, status="error", error="run 2 has no checkpoint yet: train it first")])
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
    qtbot.waitUntil(lambda: not w.writing, timeout=10_000)
    assert w.error_label.text().startswith("Could not generate: ") and "999" in w.error_label.text()
    assert "Traceback" not in w.error_label.text()


# ------------------------------------------------------------------------------- modes, details, compare

import numpy as np  # noqa: E402

TOKENS = [
    (" the", 0.62, 1.1, [["␣the", 0.62], ["␣a", 0.2], ["␣my", 0.1]]),
    (" cat", 0.05, 2.9, [["␣dog", 0.4], ["␣man", 0.3], ["␣cat", 0.05]]),
    (" sat", 0.91, 0.4, [["␣sat", 0.91], ["␣ran", 0.04]]),
]


def play_generation(panel, prompt_tokens=({"id": 7, "text": "A"}, {"id": 8, "text": ":"})):
    """Generate with `panel` and answer as the engine does with details: three tokens, then the reply."""
    s = panel.session
    panel.prompt.setPlainText("A:")
    panel.generate_button.click()
    req = s.queued[-1]
    assert isinstance(req, p.GenerateRequest) and req.details
    s.deliver(
        [
            p.Token(parent=req.id, token_id=20 + i, text=t, prob=pr, entropy=h, top=top)
            for i, (t, pr, h, top) in enumerate(TOKENS)
        ]
    )
    s.deliver(
        [
            p.GenerateReply(
                parent=req.id,
                text="".join(t[0] for t in TOKENS),
                n_tokens=3,
                tokens_per_sec=50.0,
                prompt_tokens=list(prompt_tokens),
                token_ids=[20, 21, 22],
            )
        ]
    )
    return req


def test_clicking_a_generated_token_shows_its_alternatives_and_attention(qtbot, panel):
    s = panel.session
    play_generation(panel)
    assert panel.output.toPlainText() == "A: the cat sat"
    pane = panel.pane
    qtbot.mouseClick(panel.output.viewport(), Qt.MouseButton.LeftButton, pos=pane.token_center(1))
    d = panel.details
    assert pane.selected == 1
    assert d.token_label.text() == "Token 2 of 3: <b>‘␣cat’</b> (id 21)"
    assert d.prob_label.text() == "Probability: <b>5.0 %</b>"
    assert "2.90 nats" in d.entropy_label.text() and "18.2 equally likely" in d.entropy_label.text()
    assert d.bars.rows == [("␣dog", 0.4), ("␣man", 0.3), ("␣cat", 0.05)] and d.bars.chosen == "␣cat"
    # Where it looked when it chose "cat": the row of the position before it, over the prompt and " the".
    req = s.queued[-1]
    assert isinstance(req, p.TokenAttentionRequest)
    assert (req.run, req.checkpoint, req.ids, req.position) == (1, None, [7, 8, 20], 2)
    weights = np.array(
        [[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], [[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]]], dtype=np.float32
    )  # [layer, head, key]
    s.deliver(
        [
            p.TokenAttentionReply(
                parent=req.id, tokens=["A", ":", "␣the"], shape=[2, 2, 3], buffers=(weights.astype("<f2").tobytes(),)
            )
        ]
    )
    assert d.layer_combo.count() == 2 and d.layer() == 1 and d.head() == -1  # last layer, mean of heads
    assert d.strongest_label.text().startswith("Strongest: ‘␣the’ (#2) 0.62")
    d.layer_combo.setCurrentIndex(0)
    d.head_combo.setCurrentIndex(d.head_combo.findData(1))
    assert d.strongest_label.text().startswith("Strongest: ‘A’ (#0) 0.60")
    assert "background-color" in d.attention_text.toHtml()

    # A second click on a token already asked about is answered from the cache; the first token has a row too.
    n = len(s.queued)
    qtbot.mouseClick(panel.output.viewport(), Qt.MouseButton.LeftButton, pos=pane.token_center(0))
    assert s.queued[-1].ids == [7, 8] and s.queued[-1].position == 1 and len(s.queued) == n + 1
    qtbot.mouseClick(panel.output.viewport(), Qt.MouseButton.LeftButton, pos=pane.token_center(1))
    assert len(s.queued) == n + 1 and d.strongest_label.text().startswith("Strongest: ‘A’ (#0) 0.60")
    qtbot.mouseClick(panel.output.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(3, 3))  # the prompt
    assert pane.selected == 1
    panel.generate_button.click()  # a new text: the old token's details go
    assert d.bars.rows == [] and d.token_label.text().startswith("Click a written token")


def test_confidence_colours_follow_the_probability_and_can_be_turned_off(panel):
    play_generation(panel)
    pane = panel.pane

    def background(index):
        cursor = panel.output.textCursor()
        cursor.setPosition(pane.tokens[index]["start"] + 1)
        return cursor.charFormat().background().color()

    unsure, sure = background(1), background(2)  # 5 % and 91 %
    assert unsure.red() > unsure.blue() and sure.blue() > sure.red()
    panel.confidence_box.setChecked(False)
    assert background(1) == background(2)  # one highlight colour for all written text
    panel.confidence_box.setChecked(True)
    assert background(1) == unsure


def test_generation_modes_send_their_own_settings(panel):
    s = panel.session
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("beam"))
    assert panel.beam_width.isVisibleTo(panel) and not panel.temperature.isVisibleTo(panel)
    panel.beam_width.setValue(6)
    panel.length_penalty.setValue(0.7)
    panel.generate_button.click()
    msg = s.queued[-1]
    assert (msg.mode, msg.beam_width, msg.length_penalty) == ("beam", 6, 0.7)
    panel.stop_button.click()
    panel.mode_combo.setCurrentIndex(panel.mode_combo.findData("greedy"))
    assert not panel.temperature.isVisibleTo(panel) and not panel.beam_width.isVisibleTo(panel)
    assert panel.max_new.isVisibleTo(panel)
    panel.generate_button.click()
    assert s.queued[-1].mode == "greedy"


def test_compare_writes_with_two_checkpoints_from_one_prompt_and_seed(qtbot, panel):
    s = panel.session
    panel.compare_box.setChecked(True)
    b = panel.panes[1]
    assert b.isVisibleTo(panel) and b.run_id() == 1
    req = [m for m in s.queued if isinstance(m, p.CheckpointsRequest)][-1]
    rows = [
        {"name": "ckpt-000100", "step": 100, "val_loss": 2.51},
        {"name": "ckpt-000300", "step": 300, "val_loss": 1.91},
    ]
    s.deliver([p.CheckpointsReply(parent=req.id, rows=rows)])
    assert b.checkpoint() == "ckpt-000100"  # early against late, unless the user picks
    assert b.checkpoint_combo.itemText(1) == "step 100, val 2.51"
    panel.prompt.setPlainText("ROMEO:")
    panel.generate_button.click()
    a_req, b_req = [m for m in s.queued if isinstance(m, p.GenerateRequest)][-2:]
    assert (a_req.checkpoint, b_req.checkpoint) == (None, "ckpt-000100")
    assert a_req.prompt == b_req.prompt == "ROMEO:" and a_req.seed == b_req.seed is not None
    s.deliver(
        [
            p.Token(parent=b_req.id, token_id=3, text="x", prob=0.5, entropy=1.0, top=[["x", 0.5]]),
            p.Token(parent=a_req.id, token_id=4, text="y", prob=0.9, entropy=0.2, top=[["y", 0.9]]),
        ]
    )
    qtbot.waitUntil(
        lambda: b.output.toPlainText() == "ROMEO:x" and panel.output.toPlainText() == "ROMEO:y", timeout=2000
    )
    assert not panel.generate_button.isEnabled()
    s.deliver([p.GenerateReply(parent=a_req.id, text="y", n_tokens=1, tokens_per_sec=9.0)])
    assert panel.stop_button.isEnabled()  # B still writes
    s.deliver(
        [
            p.GenerateReply(
                parent=b_req.id,
                text="x",
                n_tokens=1,
                tokens_per_sec=8.0,
                prompt_tokens=[{"id": 1, "text": "R"}],
                token_ids=[3],
            )
        ]
    )
    assert b.stats_label.text() == "1 token · 8.0 tok/s" and panel.generate_button.isEnabled()
    qtbot.mouseClick(b.output.viewport(), Qt.MouseButton.LeftButton, pos=b.token_center(0))
    tar = s.queued[-1]
    assert isinstance(tar, p.TokenAttentionRequest) and tar.checkpoint == "ckpt-000100" and tar.ids == [1]


def _train_a_tiny_run(qtbot, session, **train) -> None:
    """A finished run of test_attention_panel's tiny model on a character vocabulary, with `train`'s settings."""
    from tests.conftest import ended_runs
    from test_attention_panel import TRAIN

    session.update_config("tokenizer", kind="char")
    for section, values in TRAIN.items():
        session.update_config(section, **values)
    session.update_config("train", **train)
    ended = ended_runs(session)
    session.request(p.TrainRequest(config=session.config.to_dict()))
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended[0].state == "finished", ended[0].message


def test_real_engine_token_details(qtbot, module_session, tmp_path):
    """Generate with details from a run the real engine trains here, click a token, see its attention."""
    from test_attention_panel import TRAIN

    s = module_session
    qtbot.waitUntil(lambda: bool(s.workspace.get("datasets")), timeout=20_000)
    _train_a_tiny_run(qtbot, s, max_iters=20, eval_interval=20)
    qtbot.waitUntil(lambda: any(r.get("status") == "finished" for r in s.workspace.get("runs", [])), timeout=10_000)
    w = PlaygroundPanel(s)
    qtbot.addWidget(w)
    w.show()
    run = [r for r in s.workspace["runs"] if r.get("status") == "finished"][-1]
    w.run_combo.setCurrentIndex(w.run_combo.findData(run["id"]))
    w.prompt.setPlainText("the ")
    w.max_new.setValue(6)
    w.seed.setValue(3)
    w.generate_button.click()
    qtbot.waitUntil(lambda: not w.writing, timeout=30_000)
    assert not w.error_label.isVisible(), w.error_label.text()
    pane = w.pane
    assert len(pane.tokens) == 6 and pane.token_ids == [t["id"] for t in pane.tokens]
    assert [t["id"] for t in pane.prompt_tokens] and all(0 < t["prob"] <= 1 for t in pane.tokens)
    index = next(i for i, t in enumerate(pane.tokens) if t["text"])
    qtbot.mouseClick(w.output.viewport(), Qt.MouseButton.LeftButton, pos=pane.token_center(index))
    assert w.details.bars.rows and w.details.prob_label.text().startswith("Probability: <b>")
    qtbot.waitUntil(lambda: w.details.strongest_label.text().startswith("Strongest"), timeout=20_000)
    n_keys = len(pane.prompt_tokens) + index
    assert w.details.layer_combo.count() == TRAIN["model"]["n_layer"]
    reply = w.attention_reply(pane, index)
    weights = w.token_attention(reply)
    assert weights.shape == (2, 2, n_keys) and np.allclose(weights.sum(-1), 1, atol=1e-2)


def test_generate_as_the_engine_dies_ends_the_writing_and_works_after_a_restart(qtbot, tmp_path):
    """The engine dies just before Generate is pressed, and the studio has not noticed yet: the request fails while
    it is being sent. The panel must not stay "writing" (Generate off, Stop on): it says why, and once the engine
    is restarted it writes again."""
    import os
    import signal

    from tests.conftest import start_session, stop_session

    s = start_session(tmp_path / "ws")
    try:
        _train_a_tiny_run(qtbot, s, max_iters=4, eval_interval=4, checkpoint_interval=4)
        w = PlaygroundPanel(s)
        qtbot.addWidget(w)
        w.show()
        w.max_new.setValue(4)
        qtbot.waitUntil(lambda: w.generate_button.isEnabled() and s.run is not None, timeout=10_000)

        os.killpg(os.getpgid(s.client.pid), signal.SIGKILL)
        s.client.proc.wait(10)  # gone, and no event has told the studio yet
        assert s.engine_state == "ready" and w.generate_button.isEnabled()
        w.generate_button.click()
        qtbot.waitUntil(lambda: not w.writing, timeout=5000)  # answered from the event loop
        assert s.engine_state == "dead" and not w.stop_button.isEnabled()
        assert w.error_label.text().startswith("Could not generate: the engine stopped: the engine was killed")

        s.restart_engine()
        qtbot.waitUntil(lambda: s.ready and w.generate_button.isEnabled(), timeout=60_000)
        w.generate_button.click()
        qtbot.waitUntil(lambda: not w.writing, timeout=30_000)
        assert len(w.pane.tokens) == 4 and not w.error_label.isVisible(), w.error_label.text()
    finally:
        stop_session(s)
