"""Small pieces the panels share: a panel header, an error line, a scientific spin box (numbers in words are
engine/format.py's).

Colours are picked from the widget's palette so the same code reads well in light and dark themes.
"""

from __future__ import annotations

import html
import math
from typing import Callable

import shiboken6

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPalette, QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.config import range_message


def is_dark(widget: QWidget) -> bool:
    return widget.palette().color(QPalette.ColorRole.Window).lightness() < 128


def error_color(widget: QWidget) -> QColor:
    # A pure red is hard to read on a dark window; a lighter red keeps the contrast.
    return QColor("#ff8a80") if is_dark(widget) else QColor("#c62828")


def warning_color(widget: QWidget) -> QColor:
    return QColor("#ffd180") if is_dark(widget) else QColor("#9a5b00")


def muted_color(widget: QWidget) -> QColor:
    return widget.palette().color(QPalette.ColorGroup.Active, QPalette.ColorRole.PlaceholderText)


def monospace_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


class PanelHeader(QWidget):
    """The title and the one line that says what a panel is for (the shell's theme look)."""

    def __init__(self, title: str, description: str, parent=None):
        super().__init__(parent)
        from studio import theme

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 4)
        lay.setSpacing(2)
        self.title = theme.title_label(title)
        self.description = theme.description_label(description)
        lay.addWidget(self.title)
        lay.addWidget(self.description)


class MessageLine(QLabel):
    """One readable line for errors, warnings or notes; hidden when empty."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "error", detail: str = "") -> None:
        """`detail`: a second, smaller line for the technical part (a config key, a byte offset) that the
        plain words leave out."""
        self.level = level if text else ""
        self.detail = detail if text else ""
        color = {"error": error_color, "warning": warning_color}.get(level)
        # A style sheet colour (not a palette) so that clearing it falls back to the theme's colours.
        self.setStyleSheet(f"color: {color(self).name()};" if color else "")
        if self.detail:
            self.setTextFormat(Qt.TextFormat.RichText)
            lines = html.escape(text).replace("\n", "<br>")
            self.setText(f"{lines}<br><small>{html.escape(self.detail)}</small>")
        else:
            self.setTextFormat(Qt.TextFormat.PlainText)
            self.setText(text)
        self.setVisible(bool(text))

    def clear_message(self) -> None:
        self.show_message("", "")


def set_invalid(widget: QWidget, invalid: bool, label: QLabel | None = None) -> None:
    """Mark a form field as the one a validation error is about, or clear the mark.

    A tinted background (palette, not a style sheet: a style sheet would replace the native spin box arrows)
    and, when given, the field's label in the error colour.
    """
    if bool(widget.property("invalid")) == invalid:
        return
    widget.setProperty("invalid", invalid)
    if invalid:
        pal = widget.palette()
        tint = error_color(widget)
        base = pal.color(QPalette.ColorRole.Base)
        mixed = QColor(
            (base.red() * 2 + tint.red()) // 3,
            (base.green() * 2 + tint.green()) // 3,
            (base.blue() * 2 + tint.blue()) // 3,
        )
        for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Button):
            pal.setColor(role, mixed)
        widget.setPalette(pal)
    else:
        widget.setPalette(QPalette())  # an empty palette (no roles set) means: inherit the theme's again
    if label is not None:
        label.setStyleSheet(f"color: {error_color(label).name()}; font-weight: bold;" if invalid else "")


class SciSpinBox(QDoubleSpinBox):
    """A spin box for small positive numbers such as learning rates, shown as '6e-4' instead of '0.000600'.

    The arrows multiply or divide by about 1.26 (ten steps per factor of ten), which suits values that span
    several orders of magnitude better than adding a fixed step.
    """

    def __init__(self, minimum: float = 0.0, maximum: float = 10.0, parent=None):
        super().__init__(parent)
        self.setDecimals(12)  # the text, not QDoubleSpinBox's rounding, decides what is shown
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:
        if value == 0:
            return "0"
        text = f"{value:.3g}"
        if "e" in text:
            mant, exp = text.split("e")
            return f"{mant}e{int(exp)}"
        return text

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        if not t:
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            # '1e', '1e-' and '.' are on the way to a number
            ok_prefix = all(ch in "0123456789.eE+-" for ch in t)
            return (QValidator.State.Intermediate if ok_prefix else QValidator.State.Invalid), text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        v = self.value()
        if v <= 0:
            v = max(self.minimum(), 1e-6)
            self.setValue(v)
            return
        new = v * 10 ** (steps / 10)
        digits = 3 - int(math.floor(math.log10(abs(new)))) - 1
        self.setValue(round(new, max(digits, 0) + 0))


def _typed_number(box: QAbstractSpinBox, text: str) -> float | None:
    """The number in a spin box's text as typed (group separators and affixes dropped), or None."""
    t = text.removeprefix(box.prefix()) if box.prefix() else text
    t = t.removesuffix(box.suffix()) if box.suffix() else t
    loc = box.locale()
    if loc.groupSeparator():
        t = t.replace(loc.groupSeparator(), "")
    t = t.replace(loc.decimalPoint(), ".").strip()
    try:
        return float(t)
    except ValueError:
        return None


def _watch_range(box) -> None:
    box.typed_out_of_range = None
    box._typed = ""
    # validate() runs inside Qt's own handling of the spin box (even while painting), where changing another
    # widget crashes; the check runs just after instead.
    box._range_timer = QTimer(box)
    box._range_timer.setSingleShot(True)
    box._range_timer.setInterval(0)
    box._range_timer.timeout.connect(lambda: _check_range(box))


def _typed_text(box, text: str) -> None:
    box._typed = text
    box._range_timer.start()


def _check_range(box) -> None:
    number = _typed_number(box, box._typed)
    out = number if number is not None and not box.minimum() <= number <= box.maximum() else None
    if out != box.typed_out_of_range:
        box.typed_out_of_range = out
        box.outOfRange.emit(out)


class _RangeWatching:
    """What both Bounded spin boxes add to Qt's: every text typed is checked against the range."""

    def __init__(self, parent=None):
        super().__init__(parent)
        _watch_range(self)

    def validate(self, text: str, pos: int):
        _typed_text(self, text)
        return super().validate(text, pos)


class BoundedSpinBox(_RangeWatching, QSpinBox):
    """A QSpinBox that tells when the number typed into it is outside its range.

    Qt itself refuses such a number without a word (it puts the last value back when editing ends, or drops
    the key press); outOfRange lets a RangeHint beside the field say why."""

    outOfRange = Signal(object)  # the typed number outside the range, or None once the text is back inside


class BoundedDoubleSpinBox(_RangeWatching, QDoubleSpinBox):
    """BoundedSpinBox for decimal numbers."""

    outOfRange = Signal(object)


class RangeHint(QLabel):
    """Beside a Bounded spin box: why the number typed is not taken ("Layers must be at least 1, not 0").

    Its place beside the field is always kept (an empty label that takes no width from the form), so the form
    does not move when the hint appears; it stays after the field put its last value back, saying which value
    was kept, until the next edit."""

    def __init__(self, box: BoundedSpinBox | BoundedDoubleSpinBox, label: str, parent=None):
        super().__init__(parent)
        self.box, self.label = box, label
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setStyleSheet(f"color: {warning_color(self).name()};")
        box.outOfRange.connect(self._on_out_of_range)
        box.editingFinished.connect(self._on_editing_finished)
        box.lineEdit().textEdited.connect(self._on_text_edited)

    def _on_text_edited(self, text: str) -> None:
        if (
            _typed_number(self.box, text) is None
            or self.box.minimum() <= _typed_number(self.box, text) <= self.box.maximum()
        ):
            self._show("")

    def _number_text(self, value: float) -> int | float:
        return int(value) if isinstance(self.box, QSpinBox) or float(value).is_integer() else value

    def _on_out_of_range(self, number) -> None:
        # Back in range (None) clears nothing here: Qt putting the old value back looks the same, and the hint
        # should then stay; typing clears it (_on_text_edited).
        if number is not None:
            lo, hi = self.box.minimum(), self.box.maximum()
            self._show(
                range_message(self.label, self._number_text(number), self._number_text(lo), self._number_text(hi))
            )

    def _on_editing_finished(self) -> None:
        if self.text() and not self.text().endswith(")"):
            self._show(f"{self.text()} (kept {self.box.textFromValue(self.box.value())})")

    def _show(self, text: str) -> None:
        self.setText(text)
        self.setToolTip(text)


def field_with_hint(box: BoundedSpinBox | BoundedDoubleSpinBox, label: str) -> tuple[QWidget, RangeHint]:
    """The spin box with its RangeHint to the right, as one form field (give the form ExpandingFieldsGrow)."""
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(box)
    hint = RangeHint(box, label)
    lay.addWidget(hint, 1)
    row.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return row, hint


def guarded(widget: QWidget, fn: Callable) -> Callable:
    """A reply callback that does nothing once `widget` is gone (a reply can outlive the panel that asked)."""

    def call(*args):
        if shiboken6.isValid(widget):
            return fn(*args)
        return None

    return call


def disclosure_button(text: str, tooltip: str, section: QWidget) -> QToolButton:
    """A flat "▸ text" toggle that shows and hides `section` (hidden at first), its arrow following."""
    button = QToolButton()
    button.setText(text)
    button.setCheckable(True)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    button.setArrowType(Qt.ArrowType.RightArrow)
    button.setAutoRaise(True)
    button.setToolTip(tooltip)
    section.setVisible(False)

    def toggled(on: bool) -> None:
        section.setVisible(on)
        button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    button.toggled.connect(toggled)
    return button


def choice_combo(choices, tooltip: str) -> QComboBox:
    """A combo box of (data, label) choices with its tooltip."""
    combo = QComboBox()
    for data, label in choices:
        combo.addItem(label, data)
    combo.setToolTip(tooltip)
    return combo


def open_warning(parent: QWidget, title: str, text: str, detail: str = "") -> QMessageBox:
    """A warning box opened, never exec()'d: the event loop (and the engine connection) keeps running."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    if detail:
        box.setInformativeText(detail)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
