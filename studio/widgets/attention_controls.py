"""The Attention panel's controls around its views: which run and text are shown (and a text of your own to
look at; for an encoder-decoder, which of its attentions), the time slider through the run's snapshots, and the window of tokens the large views show with the
Export menu. They hold no state of their own beyond their widgets; the panel keeps them in step."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio import theme
from studio.run_names import run_line
from studio.state.attention import PART_NAMES, PART_WORDS

MAX_TEXT_TOKENS = 256  # a typed text is cut to its last this many tokens


def _row(parent_layout: QVBoxLayout) -> QHBoxLayout:
    row = QHBoxLayout()
    parent_layout.addLayout(row)
    return row


class AttentionSource(QWidget):
    """Run and text: the run whose attention is shown, the probe text, and a text of your own with the
    checkpoint that reads it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = _row(lay)
        top.addWidget(QLabel("Run:"))
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("The training run whose attention is shown.")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        top.addWidget(self.run_combo)
        top.addSpacing(12)
        top.addWidget(QLabel("Text:"))
        self.probe_combo = QComboBox()
        self.probe_combo.setToolTip(
            "The text the heads are looking at: the engine's probe texts (taken from the "
            "validation text, the same at every evaluation), a random sequence repeated "
            "twice (to find induction heads), or your own text."
        )
        self.probe_combo.setMinimumContentsLength(28)
        self.probe_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        top.addWidget(self.probe_combo, 1)
        self.part_label = QLabel("Attention:")
        top.addWidget(self.part_label)
        self.part_combo = QComboBox()
        self.part_combo.setToolTip(
            "An encoder-decoder has three attentions: the encoder's tokens looking at each other (both ways), "
            "the decoder's tokens looking back at the decoder's, and cross-attention, where each decoder token "
            "looks at the encoder's tokens."
        )
        self.part_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        top.addWidget(self.part_combo)
        self.set_parts([], None)
        own = _row(lay)
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Type your own text to look at, e.g. the cat sat on the mat. the cat")
        self.text_edit.setToolTip(
            f"Any text: the chosen checkpoint reads it and its attention is shown. Long text "
            f"is cut to its last {MAX_TEXT_TOKENS} tokens."
        )
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
        own.addWidget(self.look_button)

    def set_runs(self, runs: list[dict]) -> None:
        """Fill the run list (no signal: the caller selects the run it wants)."""
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in runs:
            self.run_combo.addItem(run_line(run), run.get("id"))
        self.run_combo.blockSignals(False)

    def update_run(self, run: dict) -> None:
        i = self.run_combo.findData(run.get("id"))
        if i >= 0:
            self.run_combo.setItemText(i, run_line(run))

    def set_checkpoints(self, rows: list[dict] | None) -> None:
        """The run's checkpoints after 'latest checkpoint' (None: only that, until they are known)."""
        if rows is None:
            self.checkpoint_combo.clear()
            self.checkpoint_combo.addItem("latest checkpoint", None)
            return
        for row in rows:
            val = row.get("val_loss")
            val = f", val {val:.3f}" if isinstance(val, (int, float)) else ""
            self.checkpoint_combo.addItem(
                f"{row.get('name')} (step {int(row.get('step') or 0):,}{val})", row.get("name")
            )

    def set_parts(self, parts: list[str], current: str | None) -> None:
        """The parts of the model to choose from, shown only when there are several (an encoder-decoder); the
        combo's data is the part (no signal)."""
        combo = self.part_combo
        if [combo.itemData(i) for i in range(combo.count())] != list(parts):
            combo.blockSignals(True)
            combo.clear()
            for i, part in enumerate(parts):
                combo.addItem(PART_NAMES.get(part, part), part)
                combo.setItemData(i, PART_WORDS.get(part, ""), Qt.ItemDataRole.ToolTipRole)
            combo.blockSignals(False)
        i = combo.findData(current)
        combo.blockSignals(True)
        combo.setCurrentIndex(i if i >= 0 else (0 if parts else -1))
        combo.blockSignals(False)
        for widget in (self.part_label, combo):
            widget.setVisible(len(parts) > 1)

    def set_titles(self, titles: list[str]) -> None:
        """The texts to choose from; the one chosen stays chosen by its place (no signal)."""
        combo = self.probe_combo
        keep = combo.currentIndex()
        combo.blockSignals(True)
        combo.clear()
        for t in titles:
            combo.addItem(t)
        combo.setCurrentIndex(min(max(keep, 0), len(titles) - 1) if titles else -1)
        combo.blockSignals(False)
        for i, t in enumerate(titles):
            combo.setItemData(i, t, Qt.ItemDataRole.ToolTipRole)


class Timeline(QWidget):
    """Play and the slider through a run's snapshots, with the step on screen."""

    def __init__(self, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.play_button = QPushButton("▶ Play")
        self.play_button.setToolTip("Play the run's snapshots in order, to watch the heads change as it learned.")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(lambda on: self.play_button.setText("■ Stop" if on else "▶ Play"))
        row.addWidget(self.play_button)
        self.time_slider = QSlider(Qt.Orientation.Horizontal)
        self.time_slider.setToolTip(
            "Scrub through the snapshots taken at every evaluation: left is early in "
            "training, right the latest. At the right end it follows a running training."
        )
        self.time_slider.setRange(0, 0)
        self.time_slider.setPageStep(1)
        self.time_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        row.addWidget(self.time_slider, 1)
        self.step_label = QLabel("no snapshots yet")
        self.step_label.setMinimumWidth(180)
        self.step_label.setToolTip("The training step of the snapshot on screen.")
        row.addWidget(self.step_label)

    def set_steps(self, steps: list[int], step: int | None) -> None:
        """One slider position per stored step; the handle on `step` (no signal)."""
        self.time_slider.blockSignals(True)
        self.time_slider.setRange(0, max(0, len(steps) - 1))
        if step is not None and step in steps:
            self.time_slider.setValue(steps.index(step))
        self.time_slider.blockSignals(False)


class WindowBar(QWidget):
    """How many tokens the large views show and from where, and the Export menu."""

    def __init__(self, exports: list[tuple[str, object] | None], parent=None):
        super().__init__(parent)
        bottom = QHBoxLayout(self)
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addWidget(QLabel("Show at most"))
        self.cap_spin = QSpinBox()
        self.cap_spin.setRange(8, MAX_TEXT_TOKENS)
        self.cap_spin.setValue(64)
        self.cap_spin.setSuffix(" tokens")
        self.cap_spin.setToolTip(
            "How many tokens the heatmap and the head view show at once (8 to 256). Long texts "
            "are shown through a window; the model view always shows the whole text."
        )
        bottom.addWidget(self.cap_spin)
        bottom.addWidget(QLabel("from token"))
        self.start_spin = QSpinBox()
        self.start_spin.setRange(0, 0)
        self.start_spin.setToolTip("Where the window of shown tokens starts, when the text is longer than the window.")
        bottom.addWidget(self.start_spin)
        self.window_label = theme.description_label("")
        bottom.addWidget(self.window_label, 1)
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setToolTip(
            "Save the model view or the heatmap as a picture (PNG, SVG), or the attention "
            "weights of this text as a NumPy .npz file."
        )
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.export_button)
        for entry in exports:  # (label, action), None for a separator
            if entry is None:
                menu.addSeparator()
            else:
                menu.addAction(entry[0], entry[1])
        self.export_button.setMenu(menu)
        bottom.addWidget(self.export_button)

    def set_token_count(self, n_tokens: int) -> None:
        """Where a window can start in a text of `n_tokens` (no signal)."""
        self.start_spin.blockSignals(True)
        self.start_spin.setRange(0, max(0, n_tokens - self.cap_spin.value()))
        self.start_spin.blockSignals(False)
