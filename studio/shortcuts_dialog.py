"""Help → Keyboard shortcuts: every shortcut the window has, read from its real actions, shortcuts and buttons.

The list is built when the page opens, so a shortcut added or removed anywhere shows up here without editing this
file. A shortcut says what it does with its action's or button's text, or with QShortcut.whatsThis(); the few
shortcuts of other panels that have neither are described in KNOWN below, and a test fails for any that is
described nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

ANYWHERE = "Anywhere"

# (page key, keys) -> what a panel's QShortcut without whatsThis does.
KNOWN = {
    ("train", "Esc"): "Stop training",
    ("train", "Ctrl+."): "Stop training",
    ("playground", "Ctrl+Return"): "Generate text, or press the shown mode's button (Fill, Fill gaps, Score)",
    ("playground", "Ctrl+Enter"): "Generate text, or press the shown mode's button (Fill, Fill gaps, Score)",
    ("playground", "Esc"): "Stop generating",
    ("vocab", "Ctrl+T"): "Train the tokenizer",
    ("vocab", "Ctrl+F"): "Search the vocabulary",
    ("vocab", "Ctrl+Return"): "Compare the tokenizers on the text",
    ("vocab", "Ctrl+Enter"): "Compare the tokenizers on the text",
    ("model", "Ctrl+Z"): "Undo the last preset or change",
    ("data", "Del"): "Delete the selected dataset",
}


@dataclass(frozen=True)
class Shortcut:
    keys: str  # "Ctrl+O", or "Esc or Ctrl+." when several keys do the same
    what: str  # what it does, in the words of its menu entry or button
    where: str  # ANYWHERE or the sidebar label of the panel it works in


def key_text(seq: QKeySequence) -> str:
    return seq.toString(QKeySequence.SequenceFormat.NativeText)


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def _page_of(obj, window) -> tuple[str | None, str]:
    """(page key, sidebar label) of the panel that holds obj, or (None, ANYWHERE)."""
    from studio.main_window import PAGES

    labels = {p[0]: p[1] for p in PAGES}
    owners = {id(panel): key for key, panel in window.panels.items()}
    node = obj.parent()
    while node is not None and node is not window:
        if id(node) in owners:
            return owners[id(node)], labels[owners[id(node)]]
        node = node.parent()
    return None, ANYWHERE


def _found(window) -> list[tuple[str, str, str | None, str]]:
    """(keys, what, page key, where) for each key of each real shortcut in the window; what "" when unknown."""
    out = []
    for action in window.findChildren(QAction):
        page, where = _page_of(action, window)
        for seq in action.shortcuts():
            out.append((key_text(seq), _plain(action.text()), page, where))
    for sc in window.findChildren(QShortcut):
        page, where = _page_of(sc, window)
        keys = key_text(sc.key())
        out.append((keys, sc.whatsThis() or KNOWN.get((page, keys), ""), page, where))
    for button in window.findChildren(QAbstractButton):
        if not button.shortcut().isEmpty():
            page, where = _page_of(button, window)
            out.append((key_text(button.shortcut()), _plain(button.text()), page, where))
    return [row for row in out if row[0]]


def undescribed(window) -> list[str]:
    """Shortcuts the page could not say anything about (a test keeps this empty)."""
    return sorted({f"{keys} ({where})" for keys, what, _, where in _found(window) if not what})


def collect_shortcuts(window) -> list[Shortcut]:
    """Every shortcut of the window, those that work anywhere first, then panel by panel in sidebar order."""
    from studio.main_window import PAGES

    order = {ANYWHERE: -1, **{p[1]: i for i, p in enumerate(PAGES)}}
    merged: dict[tuple[str, str], list[str]] = {}
    for keys, what, _, where in _found(window):
        if what:
            entry = merged.setdefault((what, where), [])
            if keys not in entry:
                entry.append(keys)
    rows = [Shortcut(" or ".join(keys), what, where) for (what, where), keys in merged.items()]
    return sorted(rows, key=lambda r: (order.get(r.where, len(order)), _first_key_order(r.keys), r.what))


def _first_key_order(keys: str) -> tuple:
    # Ctrl+1 … Ctrl+8 in number order, then the rest alphabetically.
    first = keys.split(" or ")[0]
    digit = first[-1] if first[-1:].isdigit() and first[:-1] in ("Ctrl+", "⌘") else ""
    return (0, int(digit), "") if digit else (1, 0, first)


class ShortcutsDialog(QDialog):
    """A non-modal page: it stays open beside the window while the user tries the keys."""

    def __init__(self, window, parent: QWidget | None = None):
        super().__init__(parent if parent is not None else window)
        self.window_ = window
        self.setWindowTitle("Keyboard shortcuts")
        self.setModal(False)
        self.resize(560, 520)
        lay = QVBoxLayout(self)
        intro = QLabel(
            "Keys that work anywhere in the window, then those of each panel (they work while the panel is shown)."
        )
        intro.setWordWrap(True)
        lay.addWidget(intro)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Keys", "What it does", "Where"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        rows = collect_shortcuts(self.window_)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for col, text in enumerate((row.keys, row.what, row.where)):
                item = QTableWidgetItem(text)
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(i, col, item)

    def rows(self) -> list[tuple[str, str, str]]:
        return [tuple(self.table.item(r, c).text() for c in range(3)) for r in range(self.table.rowCount())]

    def showEvent(self, event) -> None:
        self.refresh()  # shortcuts made since it was last shown (a panel built lazily) appear too
        super().showEvent(event)
