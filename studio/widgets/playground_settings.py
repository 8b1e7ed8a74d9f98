"""The Playground's side column: how the next token is chosen (mode, temperature, top-k, top-p, beam width, length
penalty, how many tokens, seed), Compare, Colour by confidence with its legend, and Generate / Stop.
Only the settings the chosen mode reads are shown (studio.state.playground.MODE_SETTINGS)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio import theme
from studio.state.playground import MODES, shown_settings
from studio.widgets.playground_output import confidence_legend


def _spin(cls, low, high, value, tip: str, step=None, special: str | None = None):
    box = cls()
    box.setRange(low, high)
    if step is not None:
        box.setSingleStep(step)
    box.setValue(value)
    if special is not None:
        box.setSpecialValueText(special)
    box.setToolTip(tip)
    return box


# The sampling settings, in the order the form shows them: attribute, label, spin box, range, default, options.
SETTINGS = (
    (
        "temperature",
        "Temperature",
        QDoubleSpinBox,
        0.05,
        3.0,
        0.8,
        dict(
            step=0.05,
            tip="Randomness: below 1 picks likely tokens (safer, repetitive); above 1 is wilder. 0.7–1.0 usually "
            "reads best.",
        ),
    ),
    (
        "top_k",
        "Top-k",
        QSpinBox,
        0,
        100000,
        40,
        dict(special="off", tip="Sample only from the k most likely tokens (0 = off). 20–100 keeps text on track."),
    ),
    (
        "top_p",
        "Top-p",
        QDoubleSpinBox,
        0.0,
        1.0,
        0.0,
        dict(
            step=0.05,
            special="off",
            tip="Nucleus sampling: keep the smallest set of tokens whose probabilities add up to p (0 = off). 0.9 "
            "is common.",
        ),
    ),
    (
        "beam_width",
        "Beam width",
        QSpinBox,
        1,
        32,
        4,
        dict(
            tip="How many candidate texts beam search keeps (1 is greedy). 3–8 is usual; more is slower and tends "
            "to give blander text."
        ),
    ),
    (
        "length_penalty",
        "Length penalty",
        QDoubleSpinBox,
        0.0,
        3.0,
        1.0,
        dict(
            step=0.1,
            tip="Beam scores are divided by length to this power: above 1 favours longer texts, below 1 shorter "
            "ones, 1 is neutral.",
        ),
    ),
    (
        "max_new",
        "Max new tokens",
        QSpinBox,
        1,
        100000,
        300,
        dict(step=50, tip="How many tokens to write. More takes longer; you can stop at any time."),
    ),
    (
        "seed",
        "Seed",
        QSpinBox,
        -1,
        2_000_000_000,
        -1,
        dict(
            special="random",
            tip="Fix the random seed to get the same text again for the same settings; 'random' gives a new text "
            "each time (in Compare mode both sides share one seed).",
        ),
    ),
)


class GenerationSettings(QWidget):
    """The settings a Generate sends, and the buttons that start and stop it."""

    changed = Signal()  # a setting kept in the workspace changed

    def __init__(self, parent=None):
        super().__init__(parent)
        side = QVBoxLayout(self)
        side.setContentsMargins(6, 0, 6, 0)
        side.addLayout(self._build_form())
        self.compare_box = QCheckBox("Compare two models")
        self.compare_box.setToolTip(
            "Write with two checkpoints (of one run or of two runs) side by side, from the "
            "same prompt with the same settings and seed."
        )
        side.addWidget(self.compare_box)
        self.confidence_box = QCheckBox("Colour by confidence")
        self.confidence_box.setChecked(True)
        self.confidence_box.setToolTip(
            "Colour each written token by the probability the model gave it: orange-red "
            "= unsure, yellow = in between, blue = sure."
        )
        side.addWidget(self.confidence_box)
        self.legend = QLabel(confidence_legend())
        self.legend.setToolTip("Token colours: the probability the model gave each written token.")
        side.addWidget(self.legend)
        self.generate_button = theme.make_primary(QPushButton("Generate"))
        self.generate_button.setToolTip("Write a continuation of the prompt (Ctrl+Return).")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop writing now (Esc); what was written so far stays.")
        side.addWidget(self.generate_button)
        side.addWidget(self.stop_button)
        side.addStretch(1)
        for w in self.setting_widgets().values():
            changed = (
                w.currentIndexChanged
                if isinstance(w, QComboBox)
                else w.toggled
                if isinstance(w, QCheckBox)
                else w.valueChanged
            )
            changed.connect(lambda *_: self.changed.emit())
        self.show_mode_settings()

    def _build_form(self) -> QFormLayout:
        form = QFormLayout()
        self.mode_combo = QComboBox()
        for key, name in MODES:
            self.mode_combo.addItem(name, key)
        self.mode_combo.setToolTip(
            "How the next token is chosen. Sampling draws at random from the likely tokens "
            "(varied text); greedy always takes the most likely (repeats itself); beam "
            "search keeps several candidate texts and returns the most likely whole text."
        )
        self.mode_combo.currentIndexChanged.connect(lambda *_: self.show_mode_settings())
        form.addRow("Mode", self.mode_combo)
        self._rows: dict[str, tuple[QLabel, QWidget]] = {}
        for key, label, kind, lowest, highest, default, options in SETTINGS:
            widget = _spin(kind, lowest, highest, default, **options)
            setattr(self, key, widget)
            lab = QLabel(label)
            form.addRow(lab, widget)
            self._rows[key] = (lab, widget)
        return form

    def show_mode_settings(self) -> None:
        """Show the settings the chosen mode reads, hide the others."""
        shown = shown_settings(self.mode_combo.currentData())
        for key, (label, widget) in self._rows.items():
            label.setVisible(key in shown)
            widget.setVisible(key in shown)

    def mode(self) -> str:
        return self.mode_combo.currentData()

    def chosen_seed(self) -> int | None:
        return None if self.seed.value() < 0 else self.seed.value()

    # ------------------------------------------------------------------------------------------ saved settings
    def setting_widgets(self) -> dict:
        return {
            "mode": self.mode_combo,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "beam_width": self.beam_width,
            "length_penalty": self.length_penalty,
            "max_new": self.max_new,
            "seed": self.seed,
            "confidence": self.confidence_box,
        }

    def values(self) -> dict:
        """The settings as kept in the workspace."""
        out = {}
        for key, w in self.setting_widgets().items():
            out[key] = (
                w.currentData()
                if isinstance(w, QComboBox)
                else w.isChecked()
                if isinstance(w, QCheckBox)
                else w.value()
            )
        return out

    def restore(self, saved: dict) -> None:
        """Settings kept in the workspace; a missing or odd value leaves the default."""
        for key, w in self.setting_widgets().items():
            value = saved.get(key)
            if value is None:
                pass
            elif isinstance(w, QComboBox):
                i = w.findData(value)
                if i >= 0:
                    w.setCurrentIndex(i)
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(value, (int, float)):
                w.setValue(value)
