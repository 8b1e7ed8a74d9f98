"""AttentionPanel: the model view, the heatmap, the head view, the time slider, export; first with snapshots the
test plays as the engine, then with a tiny run trained by the real engine."""

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from engine import protocol as p
from studio.panels.attention import AttentionPanel
from studio.session import Session
from studio.state.attention import PATTERNS, mean_over_heads, rollout
from test_attention_state import causal_attention, encode

RUN = {"id": 3, "name": "tiny", "status": "finished", "step": 300, "max_iters": 300}


def labels_for(L, H):
    names = ["previous-token", "first-token", "self", "induction"]
    return [
        [
            {
                "label": names[(la + h) % 4],
                "score": 0.5 + 0.1 * h,
                "explanation": f"why {names[(la + h) % 4]}",
                "scores": {"previous-token": 0.1},
            }
            for h in range(H)
        ]
        for la in range(L)
    ]


def previous_token_attention(L, H, T):
    a = np.zeros((L, H, T, T), np.float32)
    a[..., 0, 0] = 1
    for i in range(1, T):
        a[..., i, i - 1] = 1
    return a


@pytest.fixture
def panel(qtbot, tmp_path):
    session = Session(str(tmp_path / "ws"))  # no engine: the test plays the engine's messages
    session.deliver([p.Status(state="idle")])
    session.apply_workspace({"path": str(tmp_path), "datasets": [], "tokenizers": [], "runs": [RUN]})
    w = AttentionPanel(session)
    qtbot.addWidget(w)
    w.resize(1300, 850)
    w.show()
    return w


def reply_with(panel, attn, step, steps, **kw):
    """Answer the panel's newest attention request with `attn` at `step`."""
    s = panel.session
    req = [m for m in s.queued if isinstance(m, p.AttentionRequest)][-1]
    meta, blobs = encode(attn, step=step, **kw)
    s.deliver([p.AttentionReply(parent=req.id, run=RUN["id"], step=step, meta=meta, steps=steps, buffers=tuple(blobs))])
    panel.render_now()
    return req


def test_opens_the_latest_snapshot_with_labels_and_legend(panel):
    req = [m for m in panel.session.queued if isinstance(m, p.AttentionRequest)][-1]
    assert (req.run, req.step, req.text) == (3, None, None)  # the latest stored snapshot of the run
    attn = causal_attention(3, 4, 20)
    reply_with(panel, attn, 300, [0, 100, 200, 300], labels=labels_for(3, 4))
    g = panel.grid
    assert (g.n_layer, g.n_head) == (3, 4) and g.columns[-2:] == ["mean", "rollout"]
    assert g.label(2, 1)["label"] == "induction"
    tip = g.tooltip_for(2, 1)
    assert "Layer 2, head 1" in tip and "induction" in tip and "why induction" in tip
    assert "why self" in panel.legend.items["self"].toolTip()
    assert panel.step_label.text() == "step 300 (4 of 4)"
    assert panel.time_slider.maximum() == 3 and panel.time_slider.value() == 3
    # The first head is open large: its weights, its tokens, its label in the title.
    np.testing.assert_allclose(panel.heatmap.matrix, attn[0, 0].astype(np.float16), atol=1e-3)
    assert "Layer 0 · head 0 — previous-token 0.50 · step 300" == panel.heatmap.title
    # The plot shows it whole or cut with … to its width, never pushing the colour bar out of the widget.
    shown = panel.heatmap.plot.titleLabel.text
    assert shown == panel.heatmap.title or panel.heatmap.title.startswith(shown[:-1].rstrip(" ·—"))
    assert panel.heatmap.colorbar.sceneBoundingRect().right() <= panel.heatmap.width()
    # A decoder has one attention: no choice of encoder, decoder or cross-attention is offered.
    assert not panel.part_combo.isVisible() and not panel.source.part_label.isVisible()
    assert "looking back" in panel.heatmap.toolTip()


def test_clicking_a_thumbnail_opens_it_large_and_summaries_are_right(qtbot, panel):
    attn = causal_attention(3, 4, 20)
    reply_with(panel, attn, 300, [300], labels=labels_for(3, 4))
    qtbot.mouseClick(panel.grid, Qt.MouseButton.LeftButton, pos=panel.grid.cell_rect(2, 3).center())
    panel.render_now()
    assert (panel.layer, panel.column) == (2, 3) and panel.layer_spin.value() == 2
    np.testing.assert_allclose(panel.heatmap.matrix, attn[2, 3].astype(np.float16), atol=1e-3)
    half = attn.astype(np.float16)
    qtbot.mouseClick(panel.grid, Qt.MouseButton.LeftButton, pos=panel.grid.cell_rect(1, 4).center())  # mean
    panel.render_now()
    np.testing.assert_allclose(panel.heatmap.matrix, mean_over_heads(half)[1], atol=1e-6)
    assert "mean of its heads" in panel.heatmap.title
    panel.head_combo.setCurrentIndex(5)  # rollout
    panel.render_now()
    np.testing.assert_allclose(panel.heatmap.matrix, rollout(half)[1], atol=1e-6)


def test_hovering_the_heatmap_names_the_tokens_and_the_weight(qtbot, panel):
    attn = causal_attention(1, 2, 12)
    tokens = ["The", "␣cat", "␣sat", "␣on", "␣the", "␣mat", ".", "⏎", "It", "␣was", "␣warm", "."]
    reply_with(panel, attn, 10, [10], tokens=tokens)
    panel.select(0, 1)
    panel.render_now()
    hm = panel.heatmap
    seen = []
    hm.hovered.connect(seen.append)
    qtbot.mouseMove(hm.viewport(), hm.cell_center_in_widget(9, 4))
    w = float(attn[0, 1, 9, 4].astype(np.float16))
    assert hm.hover_text == f"query ‘␣was’ (#9) → key ‘␣the’ (#4): {w:.3f}" and seen[-1] == hm.hover_text
    qtbot.mouseMove(hm.viewport(), hm.cell_center_in_widget(3, 0))
    assert hm.hover_text.startswith("query ‘␣on’ (#3) → key ‘The’ (#0): ")


def test_time_slider_fetches_by_step_caches_and_plays(qtbot, panel):
    s = panel.session
    early = causal_attention(2, 2, 16, seed=5)  # uniform-ish, as at the start of training
    late = previous_token_attention(2, 2, 16)  # a previous-token head
    reply_with(panel, late, 200, [0, 100, 200])
    late_pixels = panel.grid.cell_pixels(0, 0).copy()
    panel.time_slider.setValue(0)
    req = [m for m in s.queued if isinstance(m, p.AttentionRequest)][-1]
    assert req.step == 0 and panel.step_label.text().endswith("fetching…")
    reply_with(panel, early, 0, [0, 100, 200])
    assert panel.step_label.text() == "step 0 (1 of 3)"
    assert not np.array_equal(panel.grid.cell_pixels(0, 0), late_pixels)  # the picture changed with time
    n_requests = len(s.queued)
    panel.time_slider.setValue(2)  # back to a step already here: no new request
    panel.render_now()
    assert len(s.queued) == n_requests and np.array_equal(panel.grid.cell_pixels(0, 0), late_pixels)

    # Play from the start: it waits for each fetch and stops at the end.
    panel.time_slider.setValue(0)
    panel.render_now()
    panel.set_play_interval(10)
    panel.play_button.click()
    qtbot.waitUntil(lambda: any(isinstance(m, p.AttentionRequest) and m.step == 100 for m in s.queued), timeout=2000)
    reply_with(panel, causal_attention(2, 2, 16, seed=6), 100, [0, 100, 200])
    qtbot.waitUntil(lambda: not panel.play_button.isChecked(), timeout=2000)
    assert panel.step == 200 and panel.play_button.text() == "▶ Play"


def test_live_snapshots_follow_the_end_but_not_a_user_looking_back(panel):
    s = panel.session
    reply_with(panel, causal_attention(1, 2, 8), 100, [0, 100])
    meta, blobs = encode(causal_attention(1, 2, 8, seed=2), step=150)
    s.deliver([p.Attention(run=3, step=150, meta=meta, buffers=tuple(blobs))])
    assert panel.step == 150 and panel.time_slider.value() == 2
    s.deliver([p.Attention(run=99, step=175, meta=meta, buffers=tuple(blobs))])  # another run: ignored
    assert panel.history.steps == [0, 100, 150]
    panel.time_slider.setValue(1)
    meta, blobs = encode(causal_attention(1, 2, 8, seed=3), step=200)
    s.deliver([p.Attention(run=3, step=200, meta=meta, buffers=tuple(blobs))])
    assert panel.step == 100 and panel.history.steps == [0, 100, 150, 200] and panel.time_slider.maximum() == 3


def test_long_texts_are_windowed_in_the_heatmap_and_head_view(qtbot, panel):
    T = 200
    attn = previous_token_attention(2, 3, T)
    reply_with(panel, attn, 10, [10])
    assert panel.heatmap.matrix.shape == (64, 64) and panel.window_label.text() == "tokens 0–63 of 200"
    panel.start_spin.setValue(100)
    panel.render_now()
    hm = panel.heatmap
    assert hm.matrix.shape == (64, 64) and hm.q_tokens[0] == "t100"
    qtbot.mouseMove(hm.viewport(), hm.cell_center_in_widget(5, 4))
    assert hm.hover_text == "query ‘t105’ (#105) → key ‘t104’ (#104): 1.000"
    g = panel.grid
    assert g.thumb < 200 and g.thumb <= g.cell_rect(0, 0).width()  # the whole text, shrunk to the cell size
    brightest = g._lut32[255]
    assert (g.cell_pixels(1, 2) == brightest).any(axis=1).all()  # the diagonal survives in every row

    panel.tabs.setCurrentIndex(1)
    panel.render_now()
    hv = panel.head_view
    assert len(hv.tokens) == 64 and hv.offset == 100
    assert len(hv.links) == 3 * 63  # three heads, each query but the window's first looks one back
    panel.head_boxes[1].setChecked(False)
    panel.render_now()
    assert {h for h, *_ in hv.links} == {0, 2}
    qtbot.mouseMove(hv, hv.token_point("query", 10).toPoint())
    assert hv.hover == ("query", 10)
    assert sorted(hv.visible_links()) == [(0, 10, 9, 1.0), (2, 10, 9, 1.0)]


def test_own_text_is_sent_to_the_engine_and_shown(panel):
    s = panel.session
    reply_with(panel, causal_attention(2, 2, 10), 100, [0, 100])
    panel.text_edit.setText("the cat sat")
    panel.look_button.click()
    req = [m for m in s.queued if isinstance(m, p.AttentionRequest)][-1]
    assert (req.text, req.checkpoint, req.max_tokens) == ("the cat sat", None, 256)
    attn = causal_attention(2, 2, 11, seed=9)
    meta, blobs = encode(attn, tokens=list("the cat sat"))
    s.deliver([p.AttentionReply(parent=req.id, run=3, step=100, meta=meta, buffers=tuple(blobs))])
    panel.render_now()
    assert panel.probe_combo.currentText() == "Your text: the cat sat"
    assert panel.heatmap.q_tokens == list("the cat sat") and not panel.time_slider.isEnabled()
    assert "your text" in panel.heatmap.title
    panel.look_button.click()
    req2 = [m for m in s.queued if isinstance(m, p.AttentionRequest)][-1]
    s.deliver([p.AttentionReply(parent=req2.id, status="error", error="run 3 has no checkpoint yet")])
    assert panel.message.text() == "Could not look at your text: run 3 has no checkpoint yet"


def test_exports_png_svg_and_npz_without_pickle(panel, tmp_path):
    attn = causal_attention(2, 3, 12)
    reply_with(panel, attn, 100, [100], labels=labels_for(2, 3))
    for name, export in (
        ("grid.png", panel.export_grid_png),
        ("grid.svg", panel.export_grid_svg),
        ("heat.png", panel.export_heatmap_png),
        ("heat.svg", panel.export_heatmap_svg),
        ("lines.png", panel.export_head_view_png),
    ):
        assert export(str(tmp_path / name)) == str(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") if name.endswith(".png") else b"<svg" in data[:2000]
    # The SVG shows what the screen shows: each thumbnail its own head (not the whole mosaic squeezed per cell).
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    g = panel.grid
    drawn = QImage(g.size(), QImage.Format.Format_ARGB32)
    painter = QPainter(drawn)
    QSvgRenderer(str(tmp_path / "grid.svg")).render(painter)
    painter.end()
    screen = g.grab().toImage()
    for layer, column in ((0, 0), (1, 2), (1, 4)):
        r = g.cell_rect(layer, column)
        for pt in (r.center(), r.topLeft() + QPoint(2, 2), r.bottomRight() - QPoint(2, 2)):
            a, b = drawn.pixelColor(pt), screen.pixelColor(pt)
            diff = max(abs(a.red() - b.red()), abs(a.green() - b.green()), abs(a.blue() - b.blue()))
            assert diff < 40, (layer, column, pt)
    panel.export_npz(str(tmp_path / "w.npz"))
    with np.load(tmp_path / "w.npz", allow_pickle=False) as z:
        np.testing.assert_allclose(z["attn"], attn.astype(np.float16))
        assert list(z["tokens"]) == [f"t{i}" for i in range(12)] and int(z["step"]) == 100
        assert z["labels"][1, 2] == labels_for(2, 3)[1][2]["label"] and z["rollout"].shape == (2, 12, 12)
    assert panel.message.text() == f"Saved {tmp_path / 'w.npz'}"
    assert not panel.export_grid_png("/no/such/dir/x.png") and panel.message.text().startswith("Could not save")


def test_no_snapshots_yet_is_explained(panel):
    s = panel.session
    req = [m for m in s.queued if isinstance(m, p.AttentionRequest)][-1]
    s.deliver([p.AttentionReply(parent=req.id, status="error", error="run 3 has no attention snapshots yet")])
    panel.render_now()
    assert panel.message.text() == "No attention to show yet: run 3 has no attention snapshots yet"
    assert panel.grid.image is None and not panel.play_button.isEnabled()
    # Training starts: the first snapshot arrives live, the note goes and the views fill.
    meta, blobs = encode(causal_attention(1, 2, 6), step=0)
    s.deliver([p.Attention(run=3, step=0, meta=meta, buffers=tuple(blobs))])
    panel.render_now()
    assert not panel.message.isVisible() and panel.grid.n_head == 2
    hm = panel.heatmap
    assert hm.plot in hm.ci.items and hm.matrix.shape == (6, 6)  # clearing it earlier removed nothing
    picture = hm.grab().toImage()
    assert picture.pixelColor(hm.cell_center_in_widget(5, 0)) != picture.pixelColor(2, 2)


# ------------------------------------------------------------------------------------------ the real engine

TRAIN = {
    "model": dict(n_layer=2, n_head=2, n_embd=32, block_size=32),
    "train": dict(
        batch_size=8,
        max_iters=40,
        eval_interval=10,
        eval_iters=2,
        log_interval=5,
        warmup_iters=2,
        lr_decay_iters=40,
        learning_rate=3e-3,
        min_lr=3e-4,
        checkpoint_interval=20,
    ),
}


@pytest.fixture(scope="module")
def trained(module_session):
    """A tiny run trained by the real engine, watched live by an Attention panel opened before it started."""
    from tests.conftest import wait_until

    s = module_session
    wait_until(lambda: bool(s.workspace.get("datasets")), 20, "the sample dataset")
    s.update_config("tokenizer", kind="char")
    for section, values in TRAIN.items():
        s.update_config(section, **values)
    live = AttentionPanel(s)
    live.resize(1200, 800)
    live.show()
    broadcasts, ended, replies = [], [], []
    s.attentionReceived.connect(broadcasts.append)
    s.statusReceived.connect(
        lambda st: ended.append(st) if st.run is not None and st.state in ("finished", "stopped", "failed") else None
    )
    s.request(p.TrainRequest(config=s.config.to_dict()), replies.append)
    wait_until(lambda: bool(ended) or (replies and not replies[0].ok), 120, "the tiny run to finish")
    wait_until(lambda: not live.redraw_pending(), 5, "the panel's redraw")
    s.attentionReceived.disconnect(broadcasts.append)
    assert replies[0].ok, replies[0].error
    assert ended[0].state == "finished", ended[0].message
    yield s, ended[0].run, broadcasts, live
    live.close()
    live.deleteLater()


def test_real_engine_snapshots_fill_the_model_view_live(trained):
    s, run_id, broadcasts, live = trained
    assert len(broadcasts) >= 2 and {b.run for b in broadcasts} == {run_id}
    assert live.history.run == run_id  # the new run was opened when training started
    assert live.history.steps == sorted({b.step for b in broadcasts}) and live.step == broadcasts[-1].step
    assert live.step_label.text().startswith(f"step {broadcasts[-1].step:,} ")
    g = live.grid
    assert (g.n_layer, g.n_head) == (2, 2) and g.image is not None
    for layer in range(2):
        for head in range(2):
            info = g.label(layer, head)
            assert info["label"] in PATTERNS and 0 <= info["score"] <= 1
            assert info["explanation"] in g.tooltip_for(layer, head)
    assert live.heatmap.matrix.shape[0] == live.shown.probes[0].n_tokens


def test_real_engine_time_slider_shows_different_steps(qtbot, trained):
    s, run_id, broadcasts, _ = trained
    w = AttentionPanel(s)  # opens the selected (just trained) run: fetches its latest snapshot
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.history.run == run_id and w.history.latest is not None and not w.fetching, timeout=10_000)
    assert w.history.steps == sorted({b.step for b in broadcasts})
    w.render_now()
    last = w.grid.mosaic.copy()
    w.time_slider.setValue(0)  # the untrained model: fetched by step from the engine's store
    qtbot.waitUntil(lambda: w.history.has(w.history.steps[0]), timeout=10_000)
    w.render_now()
    assert w.step == w.history.steps[0] and not np.array_equal(w.grid.mosaic, last)

    w.text_edit.setText("the cat sat on the mat")
    w.look_button.click()
    qtbot.waitUntil(lambda: w.custom is not None or w.message.level == "error", timeout=10_000)
    assert w.custom is not None, w.message.text()
    w.render_now()
    assert "".join(w.heatmap.q_tokens).replace("␣", " ") == "the cat sat on the mat"
