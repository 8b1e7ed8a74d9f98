"""The Model panel's fields as widgets: one control per FieldSpec (studio/state/config_fields.py), laid out in
forms, read and written as {(section, name): value}, marked when an error is about them, and greyed out with a
few words of why when the rest of the config makes them meaningless (studio/state/model_form.py inapplicable)."""

from __future__ import annotations

from typing import Callable, Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

from engine.config import RunConfig
from studio.state.model_form import FieldKey, FieldSpec
from studio.widgets.form_helpers import (
    BoundedDoubleSpinBox,
    BoundedSpinBox,
    RangeHint,
    SciSpinBox,
    field_with_hint,
    muted_color,
    set_invalid,
)


def make_field(spec: FieldSpec, on_change: Callable) -> QWidget:
    """The control for one field; `on_change` is called on every edit."""
    kind, opts = spec.kind, spec.options
    if kind == "int":
        w = BoundedSpinBox()
        w.setRange(opts[0], opts[1])
        w.setSingleStep(opts[2])
        w.setGroupSeparatorShown(True)
        w.valueChanged.connect(on_change)
    elif kind == "float":
        w = BoundedDoubleSpinBox()
        w.setRange(opts[0], opts[1])
        w.setSingleStep(opts[2])
        w.setDecimals(opts[3])
        w.valueChanged.connect(on_change)
    elif kind == "sci":
        w = SciSpinBox(opts[0], opts[1])
        w.valueChanged.connect(on_change)
    elif kind == "bool":
        w = QCheckBox()
        w.toggled.connect(on_change)
    elif kind == "text":  # one line; a line break is written \n (a template's)
        w = QLineEdit()
        w.textChanged.connect(on_change)
    else:
        w = QComboBox()
        for value, label in opts:
            w.addItem(label, value)
        w.currentIndexChanged.connect(on_change)
    return w


def field_value(w: QWidget) -> object:
    if isinstance(w, QCheckBox):
        return w.isChecked()
    if isinstance(w, QLineEdit):
        return w.text().replace("\\n", "\n")
    if isinstance(w, QComboBox):
        return w.currentData()
    if isinstance(w, QDoubleSpinBox):
        return float(w.value())
    return int(w.value())


def set_field_value(w: QWidget, value) -> None:
    if isinstance(w, QCheckBox):
        w.setChecked(bool(value))
    elif isinstance(w, QLineEdit):
        shown = str(value).replace("\n", "\\n")
        if w.text() != shown:  # a rewrite while typing would move the cursor to the end
            w.setText(shown)
    elif isinstance(w, QComboBox):
        i = w.findData(value)
        if i < 0:  # a value this GUI has no label for (a newer config): show it as it is
            w.addItem(str(value), value)
            i = w.count() - 1
        w.setCurrentIndex(i)
    else:
        w.setValue(value)


class ConfigFields:
    """Every field's control, label and range hint, by (section, name)."""

    def __init__(self, on_change: Callable):
        self.on_change = on_change
        self.fields: dict[FieldKey, QWidget] = {}
        self.labels: dict[FieldKey, QLabel] = {}
        self.hints: dict[FieldKey, RangeHint] = {}
        self.reasons: dict[FieldKey, QLabel] = {}  # why a field does not apply, beside it
        self._tips: dict[FieldKey, str] = {}
        self.off: set[FieldKey] = set()  # greyed out as not applying

    def form(self, specs: Iterable[FieldSpec], conditional: Iterable[FieldKey] = ()) -> QFormLayout:
        """A form with a row per spec (label, control and, for a bounded number, its range hint); the fields in
        `conditional` get room beside them for why they do not apply (set_applicable)."""
        conditional = set(conditional)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        # Only the fields with a range hint beside them (Expanding) take the row's width; the rest keep theirs.
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        for spec in specs:
            w = make_field(spec, self.on_change)
            # The config key is for people who write configs or use the CLI; the label is what the form says.
            tip = f"{spec.tooltip}\n\nIn a config file or on the command line: {spec.section}.{spec.name}"
            w.setToolTip(tip)
            self._tips[spec.key] = tip
            w.setObjectName(f"{spec.section}.{spec.name}")
            if spec.name == "seed" and isinstance(w, QSpinBox):
                w.setGroupSeparatorShown(False)  # an identifier, not a quantity
            w.setMinimumWidth(130)
            self.fields[spec.key] = w
            lab = QLabel(spec.label + ":")
            lab.setToolTip(tip)
            lab.setBuddy(w)
            self.labels[spec.key] = lab
            row: QWidget = w
            if isinstance(w, (BoundedSpinBox, BoundedDoubleSpinBox)):
                row, self.hints[spec.key] = field_with_hint(w, spec.label)
            if spec.key in conditional:
                row = self._with_reason(spec.key, row, w)
            form.addRow(lab, row)
        return form

    def _with_reason(self, key: FieldKey, row: QWidget, w: QWidget) -> QWidget:
        reason = QLabel()
        reason.setStyleSheet(f"color: {muted_color(reason).name()};")
        reason.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # takes no width
        reason.hide()
        self.reasons[key] = reason
        if row is not w:  # a field with its range hint: the reason shares the hint's place
            row.layout().addWidget(reason, 1)
            return row
        holder = QWidget()
        lay = QHBoxLayout(holder)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(w)
        lay.addWidget(reason, 2)
        lay.addStretch(1)  # the field keeps its own width while the reason is hidden
        holder.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        return holder

    def set_applicable(self, reasons: dict[FieldKey, str], keep: Iterable[FieldKey] = ()) -> None:
        """Grey out the fields in `reasons` and say why beside them; the fields in `keep` (an error is about
        them) stay editable so the error can be fixed."""
        keep = set(keep)
        self.off = set()
        for key, label in self.reasons.items():
            why = reasons.get(key, "")
            off = bool(why) and key not in keep
            if off:
                self.off.add(key)
            self.fields[key].setEnabled(not off)
            self.labels[key].setEnabled(not off)
            label.setText(f"({why})" if off else "")
            label.setVisible(off)
            if key in self.hints:
                self.hints[key].setVisible(not off)
            tip = f"Not used now ({why}).\n\n{self._tips[key]}" if off else self._tips[key]
            self.fields[key].setToolTip(tip)
            self.labels[key].setToolTip(tip)

    def values(self) -> dict[FieldKey, object]:
        return {key: field_value(w) for key, w in self.fields.items()}

    def config_values(self, cfg: RunConfig) -> dict[FieldKey, object]:
        """cfg's values of the fields this form has."""
        return {k: getattr(getattr(cfg, k[0]), k[1]) for k in self.fields}

    def write(self, cfg: RunConfig) -> None:
        for (section, name), w in self.fields.items():
            set_field_value(w, getattr(getattr(cfg, section), name))

    def mark(self, bad: Iterable[FieldKey]) -> None:
        """Mark exactly the fields in `bad` as those an error is about."""
        bad = set(bad)
        for key, w in self.fields.items():
            set_invalid(w, key in bad, self.labels.get(key))

    def invalid(self) -> list[FieldKey]:
        return [k for k, w in self.fields.items() if w.property("invalid")]
