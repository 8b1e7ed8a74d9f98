"""Palette, accent colour and plot colours: Fusion with a light or dark palette that follows the system scheme.

The colours and sizes are data, in resources/theme.json (read through engine.resources, which finds it in a
checkout and in an installed wheel); this module turns them into Qt palettes, style sheets and helpers.
"""

from __future__ import annotations

import html
import os
import textwrap

from PySide6.QtCore import QEvent, QObject, QSize, Qt
from PySide6 import QtGui
from PySide6.QtGui import QColor, QFont, QFontMetrics, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpacerItem,
    QWidget,
)

from engine.resources import read_json

THEME = read_json("theme.json")
SIZES = THEME["sizes"]

# Tooltips longer than this are broken into lines of about this many characters.
TOOLTIP_LINE_CHARS: int = SIZES["tooltip_line_chars"]
# Room the window manager takes from a title bar for its buttons and margins (measured on common themes).
TITLE_BAR_CHROME_PX: int = SIZES["title_bar_chrome_px"]

# The selection colour in both schemes, the primary button and the progress bars.
ACCENT = QColor(THEME["accent"])
# Plot series: distinguishable for common colour-vision deficiencies (Okabe-Ito).
TRAIN_COLOR: str = THEME["plot"]["train"]
VAL_COLOR: str = THEME["plot"]["val"]
LR_COLOR: str = THEME["plot"]["lr"]
GRAD_COLOR: str = THEME["plot"]["grad"]
# The engine's state in the status bar.
STATE_COLORS: dict[str, str] = dict(THEME["engine_states"])


def is_dark() -> bool:
    app = QGuiApplication.instance()
    if app is None:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def scheme_palette(scheme: str, base: QPalette) -> QPalette:
    """`base` with the colours resources/theme.json gives the scheme ("light" or "dark"): its roles, the accent
    as the selection colour, then its colours for disabled widgets."""
    spec = THEME[scheme]
    for name, color in spec["roles"].items():
        base.setColor(getattr(QPalette.ColorRole, name), QColor(color))
    base.setColor(QPalette.ColorRole.Highlight, ACCENT)
    for name, color in spec["disabled"].items():
        base.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, name), QColor(color))
    return base


def apply_theme(app: QApplication) -> None:
    """Fusion plus a palette for the system's colour scheme; re-applied when the system scheme changes."""
    app.setStyle("Fusion")
    _apply_palette(app)
    install_tooltip_wrapping(app)
    install_progress_bar_style(app)
    hints = app.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(lambda *_: _apply_palette(app))


def _apply_palette(app: QApplication) -> None:
    forced = os.environ.get("STUDIO_THEME", "").lower()  # "dark" | "light": for screenshots and odd desktops
    scheme = app.styleHints().colorScheme() if hasattr(app.styleHints(), "colorScheme") else None
    dark = forced == "dark" or (forced != "light" and scheme == Qt.ColorScheme.Dark)
    # The dark scheme is drawn from scratch; the light one starts from Fusion's own palette.
    if dark:
        app.setPalette(scheme_palette("dark", QPalette()))
    else:
        app.setPalette(scheme_palette("light", app.style().standardPalette()))
    configure_pyqtgraph()


def wrap_tooltip(text: str, width: int = TOOLTIP_LINE_CHARS) -> str:
    """A plain tooltip with a line longer than `width` characters, as rich text broken at about `width`.

    Qt shows plain text on one line (up to the screen's width); rich text it wraps, but with its own guess at a
    width, so the lines are broken here and kept as they are ("white-space: pre"). Rich text and short plain
    text come back unchanged."""
    if not text or QtGui.Qt.mightBeRichText(text):
        return text
    lines = text.splitlines()
    if all(len(line) <= width for line in lines):
        return text
    broken = [part for line in lines for part in (textwrap.wrap(line, width, break_on_hyphens=False) or [""])]
    return '<p style="white-space:pre">' + "<br>".join(html.escape(part, quote=False) for part in broken) + "</p>"


def fit_title(box: QMessageBox) -> None:
    """Widen a message box so the window manager can show its whole title ("Restart engine — Transformer
    Studio"): Qt sizes a QMessageBox to its text alone, and a short text gave "…rmer Studio"."""
    title = box.windowTitle()
    display = QGuiApplication.applicationDisplayName()
    if display and display not in title:
        title = f"{title} — {display}" if title else display
    bold = QFont(box.font())
    bold.setBold(True)
    need = QFontMetrics(bold).horizontalAdvance(title) + TITLE_BAR_CHROME_PX
    layout = box.layout()
    if layout is None or box.property("_title_fitted") or box.sizeHint().width() >= need:
        return
    box.setProperty("_title_fitted", True)
    layout.addItem(
        QSpacerItem(need, 0, QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Minimum),
        layout.rowCount(),
        0,
        1,
        layout.columnCount(),
    )


class _TooltipWrapper(QObject):
    """Application-wide: rewraps whatever the tooltip label is about to show, whoever asked for the tooltip
    (a widget's toolTip, an item's ToolTipRole, a QToolTip.showText call); and widens message boxes to their
    title, whoever opened them."""

    def eventFilter(self, obj, event) -> bool:
        # The type check comes first: this runs for every event of the application.
        kind = event.type()
        if (
            kind in (QEvent.Type.Show, QEvent.Type.Resize)
            and obj.objectName() == "qtooltip_label"
            and isinstance(obj, QLabel)
        ):
            self._rewrap(obj)
        elif kind == QEvent.Type.Show and isinstance(obj, QMessageBox):
            fit_title(obj)
        return False

    @staticmethod
    def _rewrap(label: QLabel) -> None:
        text = label.text()
        wrapped = wrap_tooltip(text)
        if wrapped == text:
            return
        label.setWordWrap(True)
        label.setText(wrapped)
        label.setFixedSize(label.sizeHint() + QSize(1, 0))  # the label was sized for the one long line


def install_tooltip_wrapping(app: QApplication) -> None:
    """Wrap long tooltips everywhere in `app` (once per application)."""
    if getattr(app, "_tooltip_wrapper", None) is None:
        app._tooltip_wrapper = _TooltipWrapper(app)
        app.installEventFilter(app._tooltip_wrapper)


def progress_bar_style() -> str:
    """A filled track in the accent colour, no sunken frame: Fusion's white, framed box read as a text field."""
    radius, height = SIZES["corner_radius_px"], SIZES["progress_bar_height_px"]
    return (
        f"QProgressBar {{ border: none; border-radius: {radius}px; background: palette(midlight);"
        f" color: palette(window-text); text-align: center; min-height: {height}px; max-height: {height}px; }}"
        f"QProgressBar::chunk {{ background: {ACCENT.name()}; border-radius: {radius}px; }}"
    )


def install_progress_bar_style(app: QApplication) -> None:
    """Every progress bar of the application (import, tokenizer, training) drawn the same way."""
    style = progress_bar_style()
    if style not in app.styleSheet():
        app.setStyleSheet(app.styleSheet() + style)


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    app = QGuiApplication.instance()
    pal = app.palette() if app is not None else QPalette()
    pg.setConfigOptions(
        antialias=True, background=pal.color(QPalette.ColorRole.Base), foreground=pal.color(QPalette.ColorRole.Text)
    )


def make_primary(button: QPushButton) -> QPushButton:
    """The highlighted button a newcomer should press next."""
    button.setProperty("primary", True)
    button.setDefault(True)
    (pad_v, pad_h), radius = SIZES["primary_button_padding_px"], SIZES["corner_radius_px"]
    hover = ACCENT.lighter(SIZES["primary_button_hover_lighter"]).name()
    button.setStyleSheet(
        f"QPushButton {{ background: {ACCENT.name()}; color: white; border: none; border-radius: {radius}px;"
        f" padding: {pad_v}px {pad_h}px; font-weight: {SIZES['primary_button_weight']}; }}"
        f"QPushButton:hover {{ background: {hover}; }}"
        "QPushButton:disabled { background: palette(mid); color: palette(window); }"
    )
    return button


def fit_to_contents(combo: QComboBox) -> QComboBox:
    """A combo at least as wide as its longest item, also after its items change.

    AdjustToContents alone is not enough inside a stretching layout: Qt keeps the combo's minimum size hint from
    the first items it had, and a layout short of room shrinks the combo down to it ("728 toke")."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    combo.setSizePolicy(QSizePolicy.Policy.Minimum, combo.sizePolicy().verticalPolicy())
    return combo


def reserve_space(widget: QWidget, lines: int = 0) -> QWidget:
    """Keep `widget`'s room in the layout while it is hidden (and at least `lines` lines of text high), so that
    a message appearing does not move the buttons around it under the user's cursor."""
    policy = widget.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(policy)
    if lines:
        widget.setMinimumHeight(widget.fontMetrics().lineSpacing() * lines + 2)
    return widget


def title_label(text: str) -> QLabel:
    label = QLabel(text)
    font = QFont(label.font())
    font.setPointSizeF(font.pointSizeF() * SIZES["title_font_scale"])
    font.setBold(True)
    label.setFont(font)
    return label


def description_label(text: str) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    return label
