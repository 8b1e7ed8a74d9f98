"""The Objective panel's options form: the chosen objective's objective.* settings as fields (labels from
engine.config.FIELD_LABELS, the paper's default in each tooltip), a check box per noise function for denoising,
and a button that puts the paper's defaults back.

The panel decides what an edit does (studio/panels/objective.py); this only shows and reads the fields.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.config import DENOISING_NOISES, RunConfig
from engine.objectives.catalog import OBJECTIVE_CATALOG, objective_info
from studio.state.objective import default_text, noises_value, option_fields, option_not_applying
from studio.widgets.form_helpers import MessageLine, set_invalid
from studio.widgets.model_fields import field_value, make_field, set_field_value


class NoiseChoice(QWidget):
    """One check box per denoising noise function; its value is their names, comma-separated."""

    def __init__(self, labels: tuple[str, ...], on_change: Callable, parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.boxes: dict[str, QCheckBox] = {}
        for i, (name, label) in enumerate(zip(DENOISING_NOISES, labels)):
            box = QCheckBox(label)
            box.toggled.connect(on_change)
            grid.addWidget(box, i // 2, i % 2)
            self.boxes[name] = box

    def value(self) -> str:
        return noises_value([n for n, b in self.boxes.items() if b.isChecked()])

    def set_value(self, text: str) -> None:
        chosen = {n.strip() for n in text.split(",")}
        for name, box in self.boxes.items():
            box.blockSignals(True)
            box.setChecked(name in chosen)
            box.blockSignals(False)


class ObjectiveOptions(QGroupBox):
    """The options of one objective; `on_change()` is called on every edit, `on_defaults()` by the button."""

    def __init__(self, on_change: Callable, on_defaults: Callable, parent=None):
        super().__init__("Options", parent)
        self.on_change = on_change
        self.teacher_choices: Callable[[], list[tuple[int, str]]] = lambda: []  # the panel gives the runs
        self.fields: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self._label_text: dict[str, str] = {}
        self.name = ""
        self._loading = False
        lay = QVBoxLayout(self)
        self.holder = QWidget()
        lay.addWidget(self.holder)
        self.none_label = QLabel("This objective has no options: it is the same as in its paper.")
        self.none_label.setWordWrap(True)
        lay.addWidget(self.none_label)
        row = QHBoxLayout()
        self.defaults_button = QPushButton("Paper's defaults")
        self.defaults_button.setToolTip("Put every option of this objective back to the value its paper used.")
        self.defaults_button.clicked.connect(on_defaults)
        row.addWidget(self.defaults_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.error_line = MessageLine(self)
        lay.addWidget(self.error_line)

    def show_objective(self, cfg: RunConfig) -> None:
        """Rebuild the form for cfg's objective (when it changed) and show cfg's values."""
        name = cfg.objective.name
        if name != self.name:
            self._build(name)
        self.write(cfg)

    def _build(self, name: str) -> None:
        self.name = name
        old = self.holder
        self.holder = QWidget()
        self.layout().replaceWidget(old, self.holder)
        old.hide()  # at once: its deletion waits for the event loop
        old.deleteLater()
        form = QFormLayout(self.holder)
        form.setContentsMargins(0, 0, 0, 0)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.fields, self.labels, self._label_text = {}, {}, {}
        specs = option_fields(name)
        for spec in specs:
            if spec.kind == "noises":
                w: QWidget = NoiseChoice(spec.options or (), self._changed)
            else:
                w = make_field(spec, self._changed)
                w.setMinimumWidth(110)
            if spec.name == "teacher_run":
                self._fill_teachers(w)
            tip = (
                f"{spec.tooltip}\n\nThe paper's default: {default_text(spec.name)}.\n\nIn a config file or on the "
                f"command line: objective.{spec.name}"
            )
            w.setToolTip(tip)
            w.setObjectName(f"objective.{spec.name}")
            label = QLabel(spec.label + ":")
            label.setToolTip(tip)
            label.setBuddy(w)
            form.addRow(label, w)
            self.fields[spec.name], self.labels[spec.name] = w, label
            self._label_text[spec.name] = spec.label
        self.none_label.setVisible(not specs)
        self.defaults_button.setVisible(bool(specs))
        self.setTitle(f"Options of {objective_info(name).label}" if name in OBJECTIVE_CATALOG else "Options")

    def _fill_teachers(self, box) -> None:
        """The Teacher run list: the runs a student can learn from, after a line asking to choose one."""
        chosen = box.currentData() if box.count() else ""
        box.blockSignals(True)
        box.clear()
        box.addItem("Choose a trained run…", "")
        for run_id, text in self.teacher_choices():
            box.addItem(text, run_id)
        box.setCurrentIndex(max(0, box.findData(chosen)))
        box.blockSignals(False)

    def refresh_teachers(self) -> None:
        """The workspace's runs changed: offer the runs it has now."""
        if "teacher_run" in self.fields:
            self._fill_teachers(self.fields["teacher_run"])

    def write(self, cfg: RunConfig) -> None:
        self._loading = True
        try:
            for key, w in self.fields.items():
                value = getattr(cfg.objective, key)
                if key == "teacher_run" and value is None:
                    value = ""  # the "Choose a trained run…" line
                if isinstance(w, NoiseChoice):
                    w.set_value(value)
                else:
                    set_field_value(w, value)
                why = option_not_applying(key, cfg)
                w.setEnabled(not why)
                label = self.labels[key]
                label.setEnabled(not why)
                label.setText(f"{self._label_text[key]} ({why}):" if why else f"{self._label_text[key]}:")
        finally:
            self._loading = False

    def values(self) -> dict[str, object]:
        return {k: (w.value() if isinstance(w, NoiseChoice) else field_value(w)) for k, w in self.fields.items()}

    def mark(self, keys: set[str]) -> None:
        for key, w in self.fields.items():
            set_invalid(w, key in keys, self.labels[key])

    def _changed(self, *_) -> None:
        if not self._loading:
            self.on_change()
