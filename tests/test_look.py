"""How the window looks: wrapped tooltips, reserved message lines, charts, plurals, sorting, the trash."""
import html

from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QLabel, QToolTip

from conftest import shown
from studio import theme
from studio.panels.data import DataPanel


def _tooltip_label() -> QLabel:
    labels = [w for w in QApplication.topLevelWidgets() if w.objectName() == "qtooltip_label" and w.isVisible()]
    assert labels, "no tooltip is shown"
    return labels[0]


def _hover(widget) -> None:
    """What Qt sends when the mouse rests on `widget`."""
    pos = QPoint(5, 5)
    QApplication.sendEvent(widget, QHelpEvent(QEvent.Type.ToolTip, pos, widget.mapToGlobal(pos)))


def test_a_long_tooltip_is_shown_in_lines_of_about_sixty_characters(qtbot, qapp, module_session):
    theme.install_tooltip_wrapping(qapp)
    panel = shown(qtbot, DataPanel(module_session))
    button = panel.import_file_button
    assert len(button.toolTip()) > 150 and "<" not in button.toolTip()     # a long plain tooltip

    _hover(button)
    qtbot.waitUntil(lambda: QToolTip.isVisible(), timeout=5000)
    label = _tooltip_label()
    assert label.wordWrap() and label.text().startswith('<p style="white-space:pre">')
    lines = label.text().split("<br>")
    assert len(lines) >= 3
    # No line much longer than 60 characters: the label is no wider than about 64 average characters.
    assert label.width() <= label.fontMetrics().averageCharWidth() * 64 + 20
    assert label.width() < label.fontMetrics().horizontalAdvance(button.toolTip()) / 2
    QToolTip.hideText()


def test_short_and_rich_tooltips_are_left_alone():
    assert theme.wrap_tooltip("Start the engine again.") == "Start the engine again."
    rich = "<b>Bold</b> " + "word " * 40
    assert theme.wrap_tooltip(rich) == rich
    wrapped = theme.wrap_tooltip("a < b and " * 20)
    assert "a &lt; b" in wrapped
    body = wrapped.removeprefix('<p style="white-space:pre">').removesuffix("</p>")
    assert all(len(html.unescape(line)) <= 60 for line in body.split("<br>"))
