"""Attention: look inside the model while it learns — every head of every layer, one head large, lines between
tokens, and a time slider through the snapshots the engine stores at each evaluation. A decoder's maps are causal
(nothing above the diagonal), an encoder's are drawn whole; an encoder-decoder run offers its encoder
self-attention, decoder self-attention and cross-attention (decoder tokens by encoder tokens).

The panel composes the controls (studio/widgets/attention_controls.py), the two views (attention_views.py) and
the export (attention_export.py); what is looked at — the run's snapshots, the step wanted, the head opened — is
an AttentionView (studio/state/attention_view.py), tested without a window. The panel talks to the engine and
redraws on a timer."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from engine import protocol as p
from studio.state.attention import AttentionError, Snapshot, decode_snapshot
from studio.state.attention_view import AttentionView, summary_names, window_text
from studio.widgets.attention_controls import MAX_TEXT_TOKENS, AttentionSource, Timeline, WindowBar
from studio.widgets.attention_export import AttentionExports
from studio.widgets.attention_views import HeadDetail, ModelView
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded

REDRAW_MS = 33  # snapshots arrive in bursts; the views redraw at most ~30 times a second
PLAY_MS = 450  # one snapshot per tick while playing
# The parts' controls, reached from the panel as before (tests, screenshots, the benchmark).
CONTROLS = {
    "source": ("run_combo", "probe_combo", "part_combo", "text_edit", "checkpoint_combo", "look_button"),
    "timeline": ("play_button", "time_slider", "step_label"),
    "model_view": ("summaries_box", "scale_combo", "grid", "legend"),
    "detail": ("layer_spin", "head_combo", "tabs", "heatmap", "head_view", "head_scroll"),
    "window_bar": ("cap_spin", "start_spin", "window_label", "export_button"),
}


class AttentionPanel(AttentionExports, QWidget):
    snapshotShown = Signal(int)  # the step now on screen (tests and the status line)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.view = AttentionView()
        self.shown: Snapshot | None = None  # what the views show now
        self._text_request: str | None = None
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self.render_now)
        self._play = QTimer(self)
        self._play.setInterval(PLAY_MS)
        self._play.timeout.connect(self._play_tick)
        self._build()
        session.workspaceChanged.connect(self._fill_runs)
        session.runSelected.connect(self._on_run_selected)
        session.runUpdated.connect(self._on_run_updated)
        session.attentionReceived.connect(self._on_attention)
        session.engineStateChanged.connect(self._on_engine_state)  # a bound method: disconnected when this panel goes
        self._fill_runs()

    # What is looked at, as the panel's own attributes (tests and the benchmark read them here).
    history = property(lambda self: self.view.history)
    step = property(lambda self: self.view.step)
    custom = property(lambda self: self.view.custom)
    layer = property(lambda self: self.view.layer)
    column = property(lambda self: self.view.column)

    @property
    def fetching(self) -> bool:
        """True while a stored snapshot is being fetched from the engine."""
        return self.view.fetch is not None

    @property
    def head_boxes(self) -> list:
        """The head view's tick boxes, one per head of the layer."""
        return self.detail.head_boxes

    def redraw_pending(self) -> bool:
        return self._redraw.isActive()

    def set_play_interval(self, ms: int) -> None:
        self._play.setInterval(ms)

    # ------------------------------------------------------------------------------------------------- build
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(
            PanelHeader(
                "Attention",
                "See where each head of the model looks while it reads a text, and watch the heads learn "
                "their jobs as training goes on.",
            )
        )
        self.source, self.timeline = AttentionSource(), Timeline()
        self.model_view, self.detail = ModelView(), HeadDetail()
        self.window_bar = WindowBar(self.export_menu())
        for part, names in CONTROLS.items():
            for name in names:
                setattr(self, name, getattr(getattr(self, part), name))
        root.addWidget(self.source)
        root.addWidget(self.timeline)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.model_view)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 4)
        root.addWidget(split, 1)
        root.addWidget(self.window_bar)
        self.message = MessageLine()
        root.addWidget(self.message)
        self._connect()
        self._update_controls()

    def _connect(self) -> None:
        self.run_combo.currentIndexChanged.connect(self._on_run_combo)
        self.probe_combo.currentIndexChanged.connect(lambda *_: self._on_probe_changed())
        self.part_combo.currentIndexChanged.connect(lambda *_: self._on_part_changed())
        self.text_edit.returnPressed.connect(self.look_at_text)
        self.look_button.clicked.connect(self.look_at_text)
        self.play_button.toggled.connect(self._on_play_toggled)
        self.time_slider.valueChanged.connect(self._on_slider)
        self.summaries_box.toggled.connect(lambda *_: self._schedule())
        self.scale_combo.currentIndexChanged.connect(lambda *_: self._schedule())
        self.grid.cellClicked.connect(self._on_cell_clicked)
        self.detail.layerPicked.connect(lambda layer: self.select(layer, self.view.column))
        self.detail.columnPicked.connect(lambda column: self.select(self.view.layer, column))
        self.detail.changed.connect(self._schedule)
        self.cap_spin.valueChanged.connect(lambda *_: self._schedule())
        self.start_spin.valueChanged.connect(lambda *_: self._schedule())

    # -------------------------------------------------------------------------------------------------- runs
    def _fill_runs(self, *_) -> None:
        current = self.run_id()
        self.source.set_runs(self.session.workspace.get("runs", []))
        want = current
        if want is None and self.session.run is not None:
            want = self.session.run.get("id")
        i = self.run_combo.findData(want)
        if i < 0 and self.run_combo.count():
            i = self.run_combo.count() - 1
        if i >= 0:
            self.run_combo.setCurrentIndex(i)
            if self.run_combo.itemData(i) != self.history.run:
                self.open_run(self.run_combo.itemData(i))
        self._update_controls()

    def _on_run_updated(self, run: dict) -> None:
        self.source.update_run(run)

    def _on_run_selected(self, run) -> None:
        if run is None:
            return
        if self.run_combo.findData(run.get("id")) < 0:
            self._fill_runs()
        i = self.run_combo.findData(run.get("id"))
        if i >= 0:
            self.run_combo.setCurrentIndex(i)
        if run.get("id") != self.history.run:
            self.open_run(run.get("id"))

    def _on_run_combo(self, index: int) -> None:
        run_id = self.run_combo.itemData(index) if index >= 0 else None
        if run_id is not None and run_id != self.history.run:
            self.open_run(run_id)

    def run_id(self):
        return self.run_combo.currentData() if self.run_combo.count() else None

    def open_run(self, run_id) -> None:
        """Show run `run_id`: ask for its latest snapshot (and the list of its steps) and its checkpoints."""
        self._play_stop()
        self.view.open(run_id)
        self.shown = None
        self._set_slider_steps()
        self._fetch_step(None)
        self.source.set_checkpoints(None)

        def on_checkpoints(reply):
            if reply.ok and self.history.run == run_id:
                self.source.set_checkpoints(reply.rows)

        self.session.request(p.CheckpointsRequest(run=run_id), guarded(self, on_checkpoints))
        self._schedule()

    # ------------------------------------------------------------------------------------------------ fetching
    def _fetch_step(self, step: int | None) -> None:
        """Ask the engine for the stored snapshot of `step` (None = the latest); one request at a time."""
        run_id = self.history.run
        if run_id is None or self.view.fetch is not None:
            return  # while one is fetched, its reply's handler fetches what is wanted then
        msg = p.AttentionRequest(run=run_id, step=step)
        self.view.fetch = (msg.id, step)
        self._set_status_text()
        self.session.request(msg, guarded(self, lambda reply: self._on_attention_reply(run_id, step, reply)))

    def _on_attention_reply(self, run_id, asked, reply) -> None:
        self.view.fetch = None
        if run_id != self.history.run:
            return
        if not reply.ok:
            if asked is None:
                self.message.show_message(f"No attention to show yet: {reply.error}", "info")
            else:
                self.message.show_message(f"Could not load the snapshot of step {asked:,}: {reply.error}")
            self._set_status_text()
            return
        self.message.clear_message()
        missing = self.view.take_reply(asked, reply)
        self._set_slider_steps()
        if missing is not None:
            self._fetch_step(missing)
        self._schedule()

    def _on_attention(self, msg: p.Attention) -> None:
        """A new snapshot of a training run (each evaluation). Buffered; drawn on the redraw timer."""
        if msg.run != self.history.run:
            return
        try:
            self.view.take_broadcast(msg)
        except AttentionError as e:
            self.message.show_message(str(e))
            return
        if self.message.level == "info":
            self.message.clear_message()  # "no snapshots yet" is over
        self._set_slider_steps()
        self._schedule()

    # ------------------------------------------------------------------------------------------------ slider
    def _set_slider_steps(self) -> None:
        self.timeline.set_steps(self.history.steps, self.step)
        self._update_controls()
        self._set_status_text()

    def _on_slider(self, index: int) -> None:
        steps = self.history.steps
        if 0 <= index < len(steps):
            self.show_step(steps[index])

    def show_step(self, step: int) -> None:
        """Show the stored snapshot of `step` (fetched from the engine if not here yet)."""
        self.view.step = int(step)
        if self._custom_selected():
            self.probe_combo.setCurrentIndex(0)  # scrubbing means looking at the stored probes again
        if not self.history.has(self.step):
            self._fetch_step(self.step)
        self._set_slider_steps()
        self._schedule()

    def _on_play_toggled(self, on: bool) -> None:
        if on:
            start = self.view.play_from()
            if start is not None:
                self.show_step(start)  # at the end: play from the start
            self._play.start()
        else:
            self._play.stop()

    def _play_tick(self) -> None:
        action, step = self.view.play_tick()
        if action == "stop":
            self._play_stop()
        elif action == "show":
            self.show_step(step)

    def _play_stop(self) -> None:
        if self.play_button.isChecked():
            self.play_button.setChecked(False)

    # ----------------------------------------------------------------------------------------------- own text
    def look_at_text(self) -> None:
        text = self.text_edit.text()
        run_id = self.run_id()
        if not text.strip():
            self.message.show_message(
                "Type a text first: the model reads it and the heads' attention is shown.", "warning"
            )
            return
        if run_id is None:
            self.message.show_message("Train a model first: there is no run to look inside yet.", "warning")
            return
        if self._text_request is not None:
            self.session.cancel(self._text_request)
        msg = p.AttentionRequest(
            run=run_id, text=text, checkpoint=self.checkpoint_combo.currentData(), max_tokens=MAX_TEXT_TOKENS
        )
        self._text_request = msg.id
        self.look_button.setEnabled(False)
        self.message.show_message("Reading your text…", "info")
        self.session.request(msg, guarded(self, lambda reply: self._on_text_reply(msg.id, run_id, reply)))

    def _on_text_reply(self, request_id: str, run_id, reply) -> None:
        if request_id != self._text_request:
            return
        self._text_request = None
        self._update_controls()
        if not reply.ok:
            self.message.show_message(f"Could not look at your text: {reply.error}")
            return
        try:
            snap = decode_snapshot(reply.meta, reply.buffers, step=reply.step, run=run_id)
        except AttentionError as e:
            self.message.show_message(str(e))
            return
        self.message.clear_message()
        self.show_custom(snap)

    def show_custom(self, snap: Snapshot) -> None:
        """Show attention computed for a text (the reply to look_at_text, or a snapshot built by a caller)."""
        self.view.set_custom(snap)
        self._fill_probes()
        self.probe_combo.setCurrentIndex(self.probe_combo.count() - 1)
        self._schedule()

    # -------------------------------------------------------------------------------------------- selections
    def _stored_snapshot(self) -> Snapshot | None:
        try:
            return self.view.stored()
        except AttentionError as e:
            self.message.show_message(str(e))
            return None

    def _fill_probes(self, stored: Snapshot | None = None) -> None:
        stored = stored if stored is not None else self._stored_snapshot()
        titles = self.view.titles(stored)
        if titles != self.view.probe_titles:
            self.view.probe_titles = titles
            self.source.set_titles(titles)

    def _custom_selected(self) -> bool:
        return self.view.is_custom(self.probe_combo.currentIndex())

    def current_snapshot_and_probe(self):
        """(snapshot, probe) on screen, or (None, None)."""
        index = self.probe_combo.currentIndex()
        return self.view.current(index, None if self.view.is_custom(index) else self._stored_snapshot())

    def _on_part_changed(self) -> None:
        part = self.part_combo.currentData()
        if part is not None:
            self.show_part(part)

    def show_part(self, part: str) -> None:
        """Show one attention of an encoder-decoder: "encoder", "decoder" or "cross"."""
        self.view.part = part
        self._schedule()

    def _fill_parts(self, stored: Snapshot | None) -> None:
        """The part choice, offered when the snapshot shown has several parts (an encoder-decoder run)."""
        whole = self.view.custom if self._custom_selected() or stored is None else stored
        parts = whole.parts if whole is not None else []
        self.source.set_parts(parts, self.view.part_of(whole))

    def _on_probe_changed(self) -> None:
        self._update_controls()
        self._schedule()

    def _on_cell_clicked(self, layer: int, column: int) -> None:
        self.select(layer, column)
        if column < self.grid.n_head and column < len(self.head_boxes):
            self.head_boxes[column].setChecked(True)

    def select(self, layer: int, column: int) -> None:
        """Open head `column` of `layer` large (columns past the heads: mean, rollout)."""
        self.view.select(layer, column)
        self._sync_selection()
        self._schedule()

    def _sync_selection(self) -> None:
        self.detail.show_selection(self.layer, self.column)
        self.grid.select(self.layer, self.column)

    # ----------------------------------------------------------------------------------------------- drawing
    def _schedule(self) -> None:
        if not self._redraw.isActive():
            self._redraw.start()

    def render_now(self) -> None:
        """Bring every view up to date with the wanted snapshot (called by the redraw timer)."""
        self._redraw.stop()
        stored = self._stored_snapshot()
        self._fill_probes(stored)
        self._fill_parts(stored)
        snap, probe = self.current_snapshot_and_probe()
        self.shown = snap
        self._set_status_text()
        if snap is None:
            self.grid.clear()
            self.heatmap.clear_matrix()
            self.head_view.clear()
            self._update_controls()
            return
        names = summary_names(probe)
        self.detail.set_shape(snap.n_layer, snap.n_head, names)
        self.view.fit_selection(snap.n_layer, snap.n_head, len(names))
        self._draw_model_view(snap, probe)
        self.window_bar.set_token_count(probe.n_tokens)
        (s, e), text = window_text(probe, self.cap_spin.value(), self.start_spin.value())
        self.window_label.setText(text)
        self._draw_large(snap, probe, s, e)
        self._update_controls()
        self.snapshotShown.emit(int(snap.step))

    def _draw_model_view(self, snap: Snapshot, probe) -> None:
        self.legend.set_explanations(snap.explanations())
        self.legend.set_patterns(
            {cell.get("label") for row in snap.labels for cell in row}
            | {name for row in snap.labels for cell in row for name in cell.get("scores") or {}}
        )
        summaries = self.model_view.summaries_box.isChecked()
        self.grid.set_attention(
            probe.attn,
            snap.labels,
            self.view.summaries(probe) if summaries else None,
            levels=None if self.model_view.stretched() else (0.0, 1.0),
        )
        if self.column >= snap.n_head and not summaries:
            self.grid.selected = None
        else:
            self._sync_selection()

    def _draw_large(self, snap: Snapshot, probe, s: int, e: int) -> None:
        """The heatmap or the head view of tokens s..e-1 of the head opened large."""
        layer = min(self.layer, snap.n_layer - 1)
        tokens, rows = probe.tokens[s:e], probe.row_tokens[s:e]  # keys, queries (the decoder's for cross)
        if self.detail.heatmap_shown():
            self.heatmap.set_kind("cross" if not probe.square else "causal" if probe.causal else "bidirectional")
            m = self.view.matrix(probe, layer, self.column)[s:e, s:e]
            hi = float(m.max()) if self.model_view.stretched() and m.size else 1.0
            self.heatmap.set_matrix(
                m,
                rows,
                tokens,
                q_offset=s,
                k_offset=s,
                title=self.view.title(snap, layer, self._custom_selected()),
                levels=(0.0, max(hi, 1e-6)),
            )
        else:
            keys = None if probe.square else tokens
            heads = self.detail.checked_heads()
            self.head_view.set_attention(probe.attn[layer][:, s:e, s:e], rows, heads, offset=s, key_tokens=keys)

    def _set_status_text(self) -> None:
        self.step_label.setText(self.view.where(self._custom_selected()))

    def _on_engine_state(self, *_) -> None:
        self._update_controls()

    def _update_controls(self) -> None:
        engine_ok = self.session.engine_state not in ("dead", "hung", "stopped")
        custom = self._custom_selected()
        many = len(self.history.steps) > 1
        self.time_slider.setEnabled(many and not custom)
        self.play_button.setEnabled(many and not custom)
        self.look_button.setEnabled(engine_ok and self._text_request is None and self.run_combo.count() > 0)
        self.export_button.setEnabled(self.shown is not None)
        self.start_spin.setEnabled(self.start_spin.maximum() > 0)

    def sizeHint(self) -> QSize:
        return QSize(1100, 760)
