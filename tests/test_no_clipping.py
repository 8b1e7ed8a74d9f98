"""No text is cut off: every panel of the real window, at 1280×720 and 1920×1080, with a real engine and a run.

`clipped_texts(root)` is the reusable check: it lists every visible single-line label, button, check box,
radio button and combo box under `root` whose text is wider than the room the widget gives it."""

import pytest
from PySide6 import QtGui
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QPushButton,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
    QStyleOptionComboBox,
    QWidget,
)

from tests.conftest import ended_runs, main_window, use_a_seconds_long_run
from engine import protocol as p
from studio.main_window import PAGES
from studio.widgets.elided_combo import ElidedComboBox

pytestmark = pytest.mark.timeout(240)

SLACK_PX = 1  # rounding in text layout


def _plain(text: str) -> str:
    """The text as drawn: mnemonic ampersands removed ("&&" is a literal "&")."""
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _label_text_width(label: QLabel) -> int:
    text = label.text()
    if label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and QtGui.Qt.mightBeRichText(text)
    ):
        doc = QTextDocument()
        doc.setDefaultFont(label.font())
        doc.setDocumentMargin(0)
        doc.setHtml(text)
        return int(doc.idealWidth() + 0.999)
    fm = label.fontMetrics()
    return max((fm.horizontalAdvance(line) for line in text.split("\n")), default=0)


def _label_room(label: QLabel) -> int:
    room = label.contentsRect().width() - 2 * max(label.margin(), 0)
    if label.indent() > 0:
        room -= label.indent()
    return room


def _wrapped_label_clipped(label: QLabel) -> str | None:
    """A word-wrapped label cut off at the bottom ("Will y" for "Will you…")."""
    need, room = label.heightForWidth(label.width()), label.height()
    return f"wrapped label {label.text()[:60]!r}: needs {need} px high, has {room}" if need > room + SLACK_PX else None


def _label_clipped(label: QLabel) -> str | None:
    if not label.text() or label.pixmap() is not None and not label.pixmap().isNull():
        return None
    if label.wordWrap():
        return _wrapped_label_clipped(label)
    need, room = _label_text_width(label), _label_room(label)
    return f"label {label.text()!r}: needs {need} px, has {room}" if need > room + SLACK_PX else None


def _button_option(button: QAbstractButton) -> QStyleOptionButton:
    opt = QStyleOptionButton()
    opt.initFrom(button)
    opt.text = button.text()
    opt.icon = button.icon()
    opt.iconSize = button.iconSize()
    return opt


def _button_clipped(button: QAbstractButton) -> str | None:
    if not button.text():
        return None
    style = button.style()
    opt = _button_option(button)
    if isinstance(button, QCheckBox):
        room = style.subElementRect(QStyle.SubElement.SE_CheckBoxContents, opt, button).width()
    elif isinstance(button, QRadioButton):
        room = style.subElementRect(QStyle.SubElement.SE_RadioButtonContents, opt, button).width()
    elif isinstance(button, QPushButton):
        room = style.subElementRect(QStyle.SubElement.SE_PushButtonContents, opt, button).width()
        if not button.icon().isNull():
            room -= button.iconSize().width() + 4
    else:
        return None
    need = button.fontMetrics().horizontalAdvance(_plain(button.text()))
    return f"{type(button).__name__} {button.text()!r}: needs {need} px, has {room}" if need > room + SLACK_PX else None


def _combo_clipped(combo: QComboBox) -> str | None:
    if combo.isEditable() or combo.count() == 0:
        return None
    opt = QStyleOptionComboBox()
    opt.initFrom(combo)
    opt.currentText = combo.currentText()
    opt.editable = False
    field = combo.style().subControlRect(
        QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, combo
    )
    room = field.width()
    if not combo.itemIcon(combo.currentIndex()).isNull():
        room -= combo.iconSize().width() + 4
    # Any item can become the current one ("mean of heads" in a combo sized for "head 0").
    fm = combo.fontMetrics()
    widest = max((combo.itemText(i) for i in range(combo.count())), key=fm.horizontalAdvance)
    need = fm.horizontalAdvance(widest)
    return f"combo item {widest!r}: needs {need} px, has {room}" if need > room + SLACK_PX else None


def _elided_combo_clipped(combo: ElidedComboBox) -> str | None:
    """An eliding combo may shorten its text with "…", but must still show a readable part of it."""
    text, shown = combo.currentText(), combo.shown_text()
    if shown != text and (not shown.endswith("…") or len(shown) < min(len(text), 12)):
        return f"combo {text!r} shows only {shown!r}"
    return None


def clipped_texts(root: QWidget) -> list[str]:
    """Every visible widget under `root` (and root itself) whose text does not fit, described for a failure."""
    found = []
    for w in [root, *root.findChildren(QWidget)]:
        if not w.isVisible() or w.width() <= 0:
            continue
        if isinstance(w, QLabel):
            problem = _label_clipped(w)
        elif isinstance(w, QAbstractButton):
            problem = _button_clipped(w)
        elif isinstance(w, ElidedComboBox):
            problem = _elided_combo_clipped(w)
        elif isinstance(w, QComboBox):
            problem = _combo_clipped(w)
        else:
            continue
        if problem:
            found.append(f"{_where(w)}: {problem}")
    return found


def _where(w: QWidget) -> str:
    names = []
    while w is not None:
        names.append(w.objectName() or type(w).__name__)
        w = w.parentWidget()
    return "/".join(reversed(names[:4]))


def _train_a_short_run(qtbot, session) -> None:
    """A finished run, so the run combos, the charts and the Attention panel have something to show."""
    use_a_seconds_long_run(session)
    ended = ended_runs(session)
    started = []
    session.request(p.TrainRequest(config=session.config.to_dict()), started.append)
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended[0].state == "finished", ended[0].message
    session.refresh_workspace()
    qtbot.waitUntil(lambda: any(r["id"] == ended[0].run for r in session.workspace.get("runs", [])), timeout=10_000)
    session.select_run(ended[0].run)


def _write_and_open_a_token(qtbot, win) -> None:
    win.show_page("playground")
    play = win.panels["playground"]
    play.max_new.setValue(8)
    play.generate_button.click()
    qtbot.waitUntil(lambda: not play.writing and len(play.pane.tokens) == 8, timeout=30_000)
    play.show_token_details(play.pane, 3)
    qtbot.waitUntil(lambda: play.details.head_combo.count() > 1, timeout=10_000)


def _visit_every_page(qtbot, win, size) -> list[str]:
    win.resize(*size)
    qtbot.waitUntil(lambda: win.size().toTuple() == size, timeout=5000)
    problems = []
    for key, *_ in PAGES:
        win.show_page(key)
        qtbot.wait(150)  # layouts settle; panels fetch what they show from the engine
        QApplication.processEvents()
        problems += [f"{size[0]}×{size[1]} {key}: {p}" for p in clipped_texts(win)]
    return problems


def test_no_text_is_clipped_on_any_panel_at_either_size(qtbot, session, qsettings):
    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)
    win = main_window(qtbot, session, qsettings)
    # First with nothing trained (combos are first shown empty), then with a run in every run combo.
    problems = _visit_every_page(qtbot, win, (1280, 720))
    _train_a_short_run(qtbot, session)
    _write_and_open_a_token(qtbot, win)  # the token details and their layer/head combos take room too
    for size in ((1280, 720), (1920, 1080)):
        problems += _visit_every_page(qtbot, win, size)
    dialog = win.show_trash()  # File → Trash…, empty at first
    qtbot.waitUntil(dialog.empty_label.isVisible, timeout=10_000)
    problems += [f"trash: {p}" for p in clipped_texts(dialog)]
    dialog.close()
    assert not problems, "\n".join(problems)
