"""Small pieces the panels share: a panel header, an error line, number formatting, a scientific spin box.

Colours are picked from the widget's palette so the same code reads well in light and dark themes.
"""
from __future__ import annotations

import math
from typing import Callable

import shiboken6

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPalette, QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QToolButton, QVBoxLayout, QWidget

from engine.config import human_count


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

    def show_message(self, text: str, level: str = "error") -> None:
        self.level = level if text else ""
        color = {"error": error_color, "warning": warning_color}.get(level)
        # A style sheet colour (not a palette) so that clearing it falls back to the theme's colours.
        self.setStyleSheet(f"color: {color(self).name()};" if color else "")
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
        mixed = QColor((base.red() * 2 + tint.red()) // 3, (base.green() * 2 + tint.green()) // 3,
                       (base.blue() * 2 + tint.blue()) // 3)
        for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Button):
            pal.setColor(role, mixed)
        widget.setPalette(pal)
    else:
        widget.setPalette(QPalette())   # an empty palette (no roles set) means: inherit the theme's again
    if label is not None:
        label.setStyleSheet(f"color: {error_color(label).name()}; font-weight: bold;" if invalid else "")


def human_exact(n: int | None) -> str:
    """'12.3 k (12,345)' - short for reading, exact for checking; just '123' when both are the same."""
    if n is None:
        return "—"
    short = human_count(n)
    exact = f"{int(n):,}"
    return short if short.replace(",", "") == exact.replace(",", "") else f"{short} ({exact})"


def human_flops(n: float) -> str:
    """5.2e6 -> '5.2 MFLOP'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}FLOP"
    return f"{n:.0f} FLOP"


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
