"""Attention: look inside the model while it learns — every head of every layer, one head large, lines between
tokens, and a time slider through the snapshots the engine stores at each evaluation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QMenu,
                               QPushButton, QScrollArea, QSlider, QSpinBox, QSplitter, QTabWidget, QToolButton,
                               QVBoxLayout, QWidget)

from engine import protocol as p
from engine.config import plural
from studio import theme
from studio.run_names import run_line
from studio.state.attention import (AttentionError, AttentionHistory, Snapshot, decode_snapshot, mean_over_heads,
                                    rollout, token_window)
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded
from studio.widgets.head_grid import HeadGrid, PatternLegend
from studio.widgets.head_view import HeadView, head_color
from studio.widgets.heatmap import AttentionHeatmap, write_svg

REDRAW_MS = 33          # snapshots arrive in bursts; the views redraw at most ~30 times a second
PLAY_MS = 450           # one snapshot per tick while playing
MAX_TEXT_TOKENS = 256   # a typed text is cut to its last this many tokens
SUMMARIES = ("mean", "rollout")


class AttentionPanel(QWidget):
    snapshotShown = Signal(int)     # the step now on screen (tests and the status line)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.history = AttentionHistory()
        self.step: int | None = None            # the stored snapshot wanted on screen
        self.custom: Snapshot | None = None      # attention computed for a typed text
        self.shown: Snapshot | None = None       # what the views show now
        self.layer = 0
        self.column = 0                          # < n_head: a head; then "mean", "rollout"
        self._fetch: tuple[str, int] | None = None   # (request id, step) of the snapshot being fetched
        self._text_request: str | None = None
        self._summaries: tuple[object, dict] | None = None
        self._probe_titles: list[str] = []
        self._head_boxes: list[QCheckBox] = []
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
        session.engineStateChanged.connect(self._on_engine_state)   # a bound method: disconnected when this panel goes
        self._fill_runs()

    # ------------------------------------------------------------------------------------------------- build
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(PanelHeader(
            "Attention", "See where each head of the model looks while it reads a text, and watch the heads learn "
                         "their jobs as training goes on."))

        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("The training run whose attention is shown.")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.run_combo.currentIndexChanged.connect(self._on_run_combo)
        top.addWidget(self.run_combo)
        top.addSpacing(12)
        top.addWidget(QLabel("Text:"))
        self.probe_combo = QComboBox()
        self.probe_combo.setToolTip("The text the heads are looking at: the engine's probe texts (taken from the "
                                    "validation text, the same at every evaluation), a random sequence repeated "
                                    "twice (to find induction heads), or your own text.")
        self.probe_combo.setMinimumContentsLength(28)
        self.probe_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.probe_combo.currentIndexChanged.connect(lambda *_: self._on_probe_changed())
        top.addWidget(self.probe_combo, 1)
        root.addLayout(top)

        own = QHBoxLayout()
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Type your own text to look at, e.g. the cat sat on the mat. the cat")
        self.text_edit.setToolTip(f"Any text: the chosen checkpoint reads it and its attention is shown. Long text "
                                  f"is cut to its last {MAX_TEXT_TOKENS} tokens.")
        self.text_edit.returnPressed.connect(self.look_at_text)
        own.addWidget(self.text_edit, 1)
        own.addWidget(QLabel("on"))
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip("Which saved checkpoint of the run reads your text (the latest by default).")
        self.checkpoint_combo.addItem("latest checkpoint", None)
        # Its items change with the run: sized once when first shown, the longer ones would be cut.
        theme.fit_to_contents(self.checkpoint_combo)
        own.addWidget(self.checkpoint_combo)
        self.look_button = QPushButton("Look")
        self.look_button.setToolTip("Compute the attention of every head for your text (Enter).")
        self.look_button.clicked.connect(self.look_at_text)
        own.addWidget(self.look_button)
        root.addLayout(own)

        time_row = QHBoxLayout()
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play the run's snapshots in order, to watch the heads change as it learned.")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._on_play_toggled)
        time_row.addWidget(self.play_button)
        self.time_slider = QSlider(Qt.Orientation.Horizontal)
        self.time_slider.setToolTip("Scrub through the snapshots taken at every evaluation: left is early in "
                                    "training, right the latest. At the right end it follows a running training.")
        self.time_slider.setRange(0, 0)
        self.time_slider.setPageStep(1)
        self.time_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.time_slider.valueChanged.connect(self._on_slider)
        time_row.addWidget(self.time_slider, 1)
        self.step_label = QLabel("no snapshots yet")
        self.step_label.setMinimumWidth(180)
        self.step_label.setToolTip("The training step of the snapshot on screen.")
        time_row.addWidget(self.step_label)
        root.addLayout(time_row)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        grid_title = QHBoxLayout()
        grid_title.addWidget(QLabel("<b>Model view</b> — every head, layer by layer"))
        grid_title.addStretch(1)
        self.summaries_box = QCheckBox("Summaries")
        self.summaries_box.setChecked(True)
        self.summaries_box.setToolTip("Add two columns per layer: the mean of its heads, and attention rollout "
                                      "(what each token draws on through all layers so far).")
        self.summaries_box.toggled.connect(lambda *_: self._schedule())
        grid_title.addWidget(self.summaries_box)
        self.scale_combo = QComboBox()
        self.scale_combo.addItem("colours 0 to 1", "fixed")
        self.scale_combo.addItem("stretch each head", "stretch")
        self.scale_combo.setToolTip("0 to 1 keeps heads and steps comparable; 'stretch' brightens each head to "
                                    "its own strongest weight, so faint patterns show (colours no longer compare).")
        self.scale_combo.currentIndexChanged.connect(lambda *_: self._schedule())
        grid_title.addWidget(self.scale_combo)
        ll.addLayout(grid_title)
        self.grid = HeadGrid()
        self.grid.setToolTip("Every head of every layer. The frame colour is the head's strongest pattern (see the "
                             "legend); hover for the explanation, click to open a head large.")
        self.grid.cellClicked.connect(self._on_cell_clicked)
        ll.addWidget(self.grid, 1)
        self.legend = PatternLegend()
        ll.addWidget(self.legend)
        split.addWidget(left)

        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Layer"))
        self.layer_spin = QSpinBox()
        self.layer_spin.setToolTip("Which layer to show large (layer 0 reads the tokens first).")
        self.layer_spin.valueChanged.connect(self._on_layer_spin)
        pick.addWidget(self.layer_spin)
        pick.addWidget(QLabel("Show"))
        self.head_combo = QComboBox()
        self.head_combo.setToolTip("One head, the mean of the layer's heads, or attention rollout up to this layer.")
        self.head_combo.currentIndexChanged.connect(self._on_head_combo)
        # Filled once a snapshot arrives; sized when first shown (empty), it cut "mean of heads" to "mean of he".
        theme.fit_to_contents(self.head_combo)
        pick.addWidget(self.head_combo)
        pick.addStretch(1)
        rl.addLayout(pick)
        self.tabs = QTabWidget()
        self.heatmap = AttentionHeatmap()
        self.tabs.addTab(self.heatmap, "Heatmap")
        hv = QWidget()
        hl = QVBoxLayout(hv)
        hl.setContentsMargins(4, 4, 4, 4)
        heads_row = QHBoxLayout()
        heads_row.addWidget(QLabel("Heads:"))
        self.heads_box_row = QHBoxLayout()
        self.heads_box_row.setSpacing(6)
        heads_row.addLayout(self.heads_box_row)
        all_button = QPushButton("All")
        all_button.setToolTip("Show the lines of every head of the layer.")
        all_button.clicked.connect(lambda: self._check_heads(True))
        none_button = QPushButton("None")
        none_button.setToolTip("Hide all heads (then tick the ones to compare).")
        none_button.clicked.connect(lambda: self._check_heads(False))
        heads_row.addWidget(all_button)
        heads_row.addWidget(none_button)
        heads_row.addStretch(1)
        hl.addLayout(heads_row)
        self.head_view = HeadView()
        self.head_scroll = QScrollArea()
        self.head_scroll.setWidgetResizable(True)
        self.head_scroll.setWidget(self.head_view)
        hl.addWidget(self.head_scroll, 1)
        self.tabs.addTab(hv, "Head view")
        self.tabs.currentChanged.connect(lambda *_: self._schedule())
        rl.addWidget(self.tabs, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 4)
        root.addWidget(split, 1)

        bottom = QHBoxLayout()
        bottom.addWidget(QLabel("Show at most"))
        self.cap_spin = QSpinBox()
        self.cap_spin.setRange(8, MAX_TEXT_TOKENS)
        self.cap_spin.setValue(64)
        self.cap_spin.setSuffix(" tokens")
        self.cap_spin.setToolTip("How many tokens the heatmap and the head view show at once (8 to 256). Long texts "
                                 "are shown through a window; the model view always shows the whole text.")
        self.cap_spin.valueChanged.connect(lambda *_: self._on_window_changed())
        bottom.addWidget(self.cap_spin)
        bottom.addWidget(QLabel("from token"))
        self.start_spin = QSpinBox()
        self.start_spin.setRange(0, 0)
        self.start_spin.setToolTip("Where the window of shown tokens starts, when the text is longer than the window.")
        self.start_spin.valueChanged.connect(lambda *_: self._schedule())
        bottom.addWidget(self.start_spin)
        self.window_label = theme.description_label("")
        bottom.addWidget(self.window_label, 1)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setToolTip("Save the model view or the heatmap as a picture (PNG, SVG), or the attention "
                                      "weights of this text as a NumPy .npz file.")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        menu.addAction("Model view as PNG…", lambda: self.export_grid_png())
        menu.addAction("Model view as SVG…", lambda: self.export_grid_svg())
        menu.addAction("Heatmap as PNG…", lambda: self.export_heatmap_png())
        menu.addAction("Heatmap as SVG…", lambda: self.export_heatmap_svg())
        menu.addAction("Head view as PNG…", lambda: self.export_head_view_png())
        menu.addSeparator()
        menu.addAction("Weights as .npz…", lambda: self.export_npz())
        self.export_button.setMenu(menu)
        bottom.addWidget(self.export_button)
        root.addLayout(bottom)

        self.message = MessageLine()
        root.addWidget(self.message)
        self._update_controls()

    # -------------------------------------------------------------------------------------------------- runs
    def _fill_runs(self, *_) -> None:
        runs = self.session.workspace.get("runs", [])
        current = self.run_id()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in runs:
            self.run_combo.addItem(run_line(run), run.get("id"))
        self.run_combo.blockSignals(False)
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
        i = self.run_combo.findData(run.get("id"))
        if i >= 0:
            self.run_combo.setItemText(i, run_line(run))

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
        self.history = AttentionHistory(run_id)
        self.step = None
        self.custom = None
        self.shown = None
        self._fetch = None
        self._set_slider_steps()
        self._fetch_step(None)
        self.checkpoint_combo.clear()
        self.checkpoint_combo.addItem("latest checkpoint", None)

        def on_checkpoints(reply):
            if reply.ok and self.history.run == run_id:
                for row in reply.rows:
                    val = row.get("val_loss")
                    val = f", val {val:.3f}" if isinstance(val, (int, float)) else ""
                    self.checkpoint_combo.addItem(f"{row.get('name')} (step {int(row.get('step') or 0):,}{val})",
                                                  row.get("name"))
        self.session.request(p.CheckpointsRequest(run=run_id), guarded(self, on_checkpoints))
        self._schedule()

    # ------------------------------------------------------------------------------------------------ fetching
    def _fetch_step(self, step: int | None) -> None:
        """Ask the engine for the stored snapshot of `step` (None = the latest); one request at a time."""
        run_id = self.history.run
        if run_id is None:
            return
        if self._fetch is not None:
            return      # the reply's handler fetches what is wanted then
        msg = p.AttentionRequest(run=run_id, step=step)
        self._fetch = (msg.id, step)
        self._set_status_text()
        self.session.request(msg, guarded(self, lambda reply: self._on_attention_reply(run_id, step, reply)))

    def _on_attention_reply(self, run_id, asked, reply) -> None:
        self._fetch = None
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
        follow = self._following()
        self.history.set_steps(reply.steps or [])
        if reply.meta:
            self.history.add(reply.step, reply.meta, reply.buffers)
        if self.step is None or (asked is None and follow):
            self.step = reply.step if reply.meta else self.history.latest
        self._set_slider_steps()
        if self.step is not None and not self.history.has(self.step):
            self._fetch_step(self.step)
        self._schedule()

    def _on_attention(self, msg: p.Attention) -> None:
        """A new snapshot of a training run (each evaluation). Buffered; drawn on the redraw timer."""
        if msg.run != self.history.run:
            return
        follow = self._following()
        try:
            self.history.add(msg.step, msg.meta, msg.buffers)
        except AttentionError as e:
            self.message.show_message(str(e))
            return
        if self.message.level == "info":
            self.message.clear_message()       # "no snapshots yet" is over
        if follow or self.step is None:
            self.step = msg.step
        self._set_slider_steps()
        self._schedule()

    def _following(self) -> bool:
        """True when the slider is at the newest snapshot (or there is none): new snapshots are then shown."""
        steps = self.history.steps
        return self.step is None or not steps or self.step == steps[-1]

    # ------------------------------------------------------------------------------------------------ slider
    def _set_slider_steps(self) -> None:
        steps = self.history.steps
        self.time_slider.blockSignals(True)
        self.time_slider.setRange(0, max(0, len(steps) - 1))
        if self.step is not None and self.step in steps:
            self.time_slider.setValue(steps.index(self.step))
        self.time_slider.blockSignals(False)
        self._update_controls()
        self._set_status_text()

    def _on_slider(self, index: int) -> None:
        steps = self.history.steps
        if not 0 <= index < len(steps):
            return
        self.show_step(steps[index])

    def show_step(self, step: int) -> None:
        """Show the stored snapshot of `step` (fetched from the engine if not here yet)."""
        self.step = int(step)
        if self.custom is not None and self.probe_combo.currentIndex() == self.probe_combo.count() - 1:
            self.probe_combo.setCurrentIndex(0)      # scrubbing means looking at the stored probes again
        if not self.history.has(self.step):
            self._fetch_step(self.step)
        self._set_slider_steps()
        self._schedule()

    def _on_play_toggled(self, on: bool) -> None:
        self.play_button.setText("■ Stop" if on else "▶ Play")
        if on:
            steps = self.history.steps
            if steps and self.step == steps[-1]:
                self.show_step(steps[0])         # at the end: play from the start
            self._play.start()
        else:
            self._play.stop()

    def _play_tick(self) -> None:
        steps = self.history.steps
        if self.step is None or not steps:
            self._play_stop()
            return
        if not self.history.has(self.step):
            return      # still fetching: wait for it rather than skipping snapshots
        i = steps.index(self.step) if self.step in steps else 0
        if i + 1 >= len(steps):
            self._play_stop()
            return
        self.show_step(steps[i + 1])

    def _play_stop(self) -> None:
        if self.play_button.isChecked():
            self.play_button.setChecked(False)

    # ----------------------------------------------------------------------------------------------- own text
    def look_at_text(self) -> None:
        text = self.text_edit.text()
        run_id = self.run_id()
        if not text.strip():
            self.message.show_message("Type a text first: the model reads it and the heads' attention is shown.",
                                      "warning")
            return
        if run_id is None:
            self.message.show_message("Train a model first: there is no run to look inside yet.", "warning")
            return
        if self._text_request is not None:
            self.session.cancel(self._text_request)
        msg = p.AttentionRequest(run=run_id, text=text, checkpoint=self.checkpoint_combo.currentData(),
                                 max_tokens=MAX_TEXT_TOKENS)
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
        for probe in snap.probes:
            probe.kind = "custom"
        self.message.clear_message()
        self.custom = snap
        self._fill_probes()
        self.probe_combo.setCurrentIndex(self.probe_combo.count() - 1)
        self._schedule()

    def show_custom(self, snap: Snapshot) -> None:
        """Show attention computed for a text (the reply to look_at_text, or a snapshot built by a caller)."""
        for probe in snap.probes:
            probe.kind = "custom"
        self.custom = snap
        self._fill_probes()
        self.probe_combo.setCurrentIndex(self.probe_combo.count() - 1)
        self._schedule()

    # -------------------------------------------------------------------------------------------- selections
    def _stored_snapshot(self) -> Snapshot | None:
        if self.step is None:
            return None
        try:
            return self.history.get(self.step)
        except AttentionError as e:
            self.message.show_message(str(e))
            return None

    def _fill_probes(self, stored: Snapshot | None = None) -> None:
        stored = stored if stored is not None else self._stored_snapshot()
        titles = [pr.title() for pr in stored.probes] if stored else []
        if self.custom is not None:
            titles.append("Your text: " + self.custom.probes[0].title())
        if titles == self._probe_titles:
            return
        keep = self.probe_combo.currentIndex()
        self._probe_titles = titles
        self.probe_combo.blockSignals(True)
        self.probe_combo.clear()
        for t in titles:
            self.probe_combo.addItem(t)
        self.probe_combo.setCurrentIndex(min(max(keep, 0), len(titles) - 1) if titles else -1)
        self.probe_combo.blockSignals(False)
        for i, t in enumerate(titles):
            self.probe_combo.setItemData(i, t, Qt.ItemDataRole.ToolTipRole)

    def _custom_selected(self) -> bool:
        return self.custom is not None and self.probe_combo.currentIndex() == self.probe_combo.count() - 1

    def current_snapshot_and_probe(self):
        """(snapshot, probe) on screen, or (None, None)."""
        if self._custom_selected():
            return self.custom, self.custom.probes[0]
        snap = self._stored_snapshot()
        if snap is None:
            return None, None
        i = min(max(self.probe_combo.currentIndex(), 0), len(snap.probes) - 1)
        return snap, snap.probes[i]

    def _on_probe_changed(self) -> None:
        self._update_controls()
        self._schedule()

    def _on_cell_clicked(self, layer: int, column: int) -> None:
        self.select(layer, column)
        if column < self.grid.n_head and column < len(self._head_boxes):
            self._head_boxes[column].setChecked(True)

    def select(self, layer: int, column: int) -> None:
        """Open head `column` of `layer` large (columns past the heads: mean, rollout)."""
        self.layer, self.column = layer, column
        self._sync_selection()
        self._schedule()

    def _sync_selection(self) -> None:
        self.layer_spin.blockSignals(True)
        self.layer_spin.setValue(self.layer)
        self.layer_spin.blockSignals(False)
        self.head_combo.blockSignals(True)
        self.head_combo.setCurrentIndex(self.column)
        self.head_combo.blockSignals(False)
        self.grid.select(self.layer, self.column)

    def _on_layer_spin(self, value: int) -> None:
        self.select(value, self.column)

    def _on_head_combo(self, index: int) -> None:
        if index >= 0:
            self.select(self.layer, index)

    def _ensure_shape_controls(self, n_layer: int, n_head: int) -> None:
        if self.layer_spin.maximum() != n_layer - 1:
            self.layer_spin.blockSignals(True)
            self.layer_spin.setRange(0, max(0, n_layer - 1))
            self.layer_spin.blockSignals(False)
        if self.head_combo.count() != n_head + len(SUMMARIES):
            self.head_combo.blockSignals(True)
            self.head_combo.clear()
            for h in range(n_head):
                self.head_combo.addItem(f"head {h}")
            self.head_combo.addItem("mean of heads")
            self.head_combo.addItem("rollout up to here")
            self.head_combo.blockSignals(False)
        if len(self._head_boxes) != n_head:
            for box in self._head_boxes:
                self.heads_box_row.removeWidget(box)
                box.deleteLater()
            self._head_boxes = []
            for h in range(n_head):
                box = QCheckBox(str(h))
                box.setChecked(True)
                box.setStyleSheet(f"QCheckBox {{ color: {head_color(h, theme.is_dark()).name()}; font-weight: 600; }}")
                box.setToolTip(f"Show the lines of head {h} (drawn in this colour).")
                box.toggled.connect(lambda *_: self._schedule())
                self.heads_box_row.addWidget(box)
                self._head_boxes.append(box)
        if self.layer >= n_layer or self.column >= n_head + len(SUMMARIES):
            self.layer, self.column = 0, 0

    def _check_heads(self, on: bool) -> None:
        for box in self._head_boxes:
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        self._schedule()

    def checked_heads(self) -> list[int]:
        return [h for h, box in enumerate(self._head_boxes) if box.isChecked()]

    def _on_window_changed(self) -> None:
        self._schedule()

    # ----------------------------------------------------------------------------------------------- drawing
    def _schedule(self) -> None:
        if not self._redraw.isActive():
            self._redraw.start()

    def summaries(self, probe) -> dict[str, np.ndarray]:
        """Mean over heads and rollout of a probe, computed once per probe."""
        if self._summaries is None or self._summaries[0] is not probe:
            self._summaries = (probe, {"mean": mean_over_heads(probe.attn), "rollout": rollout(probe.attn)})
        return self._summaries[1]

    def window(self, n_tokens: int) -> tuple[int, int]:
        return token_window(n_tokens, self.cap_spin.value(), self.start_spin.value())

    def render_now(self) -> None:
        """Bring every view up to date with the wanted snapshot (called by the redraw timer)."""
        self._redraw.stop()
        stored = self._stored_snapshot()
        self._fill_probes(stored)
        snap, probe = self.current_snapshot_and_probe()
        self.shown = snap
        self._set_status_text()
        if snap is None:
            self.grid.clear()
            self.heatmap.clear_matrix()
            self.head_view.clear()
            self._update_controls()
            return
        self._ensure_shape_controls(snap.n_layer, snap.n_head)
        self.legend.set_explanations(snap.explanations())
        stretch = self.scale_combo.currentData() == "stretch"
        self.grid.set_attention(probe.attn, snap.labels,
                                self.summaries(probe) if self.summaries_box.isChecked() else None,
                                levels=None if stretch else (0.0, 1.0))
        if self.column >= snap.n_head and not self.summaries_box.isChecked():
            self.grid.selected = None
        else:
            self._sync_selection()
        T = probe.n_tokens
        self.start_spin.blockSignals(True)
        self.start_spin.setRange(0, max(0, T - self.cap_spin.value()))
        self.start_spin.blockSignals(False)
        s, e = self.window(T)
        dropped = f" (the {plural(probe.n_dropped, 'token')} before them did not fit the model's context)"
        self.window_label.setText(f"tokens {s}–{e - 1} of {T}" + (dropped if probe.n_dropped else ""))
        layer = min(self.layer, snap.n_layer - 1)
        tokens = probe.tokens[s:e]
        if self.tabs.currentIndex() == 0:
            m = self.matrix(probe, layer, self.column)[s:e, s:e]
            hi = float(m.max()) if stretch and m.size else 1.0
            self.heatmap.set_matrix(m, tokens, tokens, q_offset=s, k_offset=s, title=self._title(snap, layer),
                                    levels=(0.0, max(hi, 1e-6)))
        else:
            self.head_view.set_attention(probe.attn[layer][:, s:e, s:e], tokens, self.checked_heads(), offset=s)
        self._update_controls()
        self.snapshotShown.emit(int(snap.step))

    def matrix(self, probe, layer: int, column: int) -> np.ndarray:
        """The [T, T] weights of one head, or of a layer's summary (column n_head: mean, n_head + 1: rollout)."""
        H = probe.attn.shape[1]
        if column < H:
            return probe.attn[layer, column]
        return self.summaries(probe)[SUMMARIES[column - H]][layer]

    def _title(self, snap: Snapshot, layer: int) -> str:
        when = "your text" if self._custom_selected() else f"step {snap.step:,}"
        if self.column >= snap.n_head:
            name = {"mean": "mean of its heads", "rollout": "rollout up to here"}[SUMMARIES[self.column - snap.n_head]]
            return f"Layer {layer} · {name} · {when}"
        info = snap.label(layer, self.column)
        label = f" — {info.get('label')} {info.get('score', 0):.2f}" if info else ""
        return f"Layer {layer} · head {self.column}{label} · {when}"

    def _set_status_text(self) -> None:
        steps = self.history.steps
        if self._custom_selected():
            self.step_label.setText("your text (not a stored snapshot)")
        elif self.step is None:
            self.step_label.setText("fetching…" if self._fetch else "no snapshots yet")
        else:
            where = f" ({steps.index(self.step) + 1} of {len(steps)})" if self.step in steps else ""
            fetching = " · fetching…" if not self.history.has(self.step) else ""
            self.step_label.setText(f"step {self.step:,}{where}{fetching}")

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

    # ------------------------------------------------------------------------------------------------ export
    def _ask_path(self, title: str, suffix: str, filt: str) -> str | None:
        snap, _ = self.current_snapshot_and_probe()
        name = f"attention-run{self.history.run}-step{snap.step if snap else 0}{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / name), filt)
        return path or None

    def _export(self, path, title, suffix, filt, write) -> str | None:
        if path is None:
            path = self._ask_path(title, suffix, filt)
            if path is None:
                return None
        self.render_now()
        try:
            write(str(path))
        except (OSError, ValueError) as e:
            self.message.show_message(f"Could not save {path}: {e}")
            return None
        self.message.show_message(f"Saved {path}", "info")
        return str(path)

    def export_grid_png(self, path: str | None = None) -> str | None:
        def write(target):
            if not self.grid.grab().save(target, "PNG"):
                raise OSError("the picture could not be written")
        return self._export(path, "Save the model view", ".png", "PNG image (*.png)", write)

    def export_grid_svg(self, path: str | None = None) -> str | None:
        return self._export(path, "Save the model view", ".svg", "SVG image (*.svg)",
                            lambda target: write_svg(self.grid, target, self.grid.render_grid))

    def export_heatmap_png(self, path: str | None = None) -> str | None:
        self.tabs.setCurrentIndex(0)
        return self._export(path, "Save the heatmap", ".png", "PNG image (*.png)", self.heatmap.export_png)

    def export_heatmap_svg(self, path: str | None = None) -> str | None:
        self.tabs.setCurrentIndex(0)
        return self._export(path, "Save the heatmap", ".svg", "SVG image (*.svg)", self.heatmap.export_svg)

    def export_head_view_png(self, path: str | None = None) -> str | None:
        self.tabs.setCurrentIndex(1)

        def write(target):
            if not self.head_view.grab().save(target, "PNG"):
                raise OSError("the picture could not be written")
        return self._export(path, "Save the head view", ".png", "PNG image (*.png)", write)

    def export_npz(self, path: str | None = None) -> str | None:
        """The weights of the text on screen: attn float32 [layer, head, query, key], tokens, ids, labels, step."""
        snap, probe = self.current_snapshot_and_probe()
        if probe is None:
            self.message.show_message("There is no attention on screen to save yet.", "warning")
            return None

        def write(target):
            L, H = probe.attn.shape[:2]
            labels = [[(snap.label(la, h) or {}).get("label", "") for h in range(H)] for la in range(L)]
            scores = [[float((snap.label(la, h) or {}).get("score", np.nan)) for h in range(H)] for la in range(L)]
            summ = self.summaries(probe)
            with open(target, "wb") as f:
                np.savez(f, attn=probe.attn.astype(np.float32), tokens=np.array(probe.tokens, dtype=str),
                         ids=np.array(probe.ids, dtype=np.int64), text=np.array(probe.text, dtype=str),
                         step=np.int64(snap.step), run=np.int64(self.history.run or 0),
                         labels=np.array(labels, dtype=str), label_scores=np.array(scores, dtype=np.float32),
                         mean=summ["mean"], rollout=summ["rollout"])
        return self._export(path, "Save the attention weights", ".npz", "NumPy arrays (*.npz)", write)

    def sizeHint(self) -> QSize:
        return QSize(1100, 760)
