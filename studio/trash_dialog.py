"""File → Trash…: what was deleted from this workspace, to restore or to delete for good.

The Undo line under a delete covers the moment; this dialog covers the 30 days the trash keeps things.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from engine import protocol as p
from engine.format import fmt_created, plural
from studio.widgets.form_helpers import MessageLine, guarded

COLUMNS = ("What", "Name", "Deleted")
KIND_NAMES = {"dataset": "Dataset", "tokenizer": "Tokenizer", "run": "Run"}


class TrashDialog(QDialog):
    loaded = Signal(int)  # rows now listed

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.setWindowTitle("Trash")
        self.resize(620, 380)
        v = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Datasets, tokenizers and runs deleted from this workspace in the last 30 days.")
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda *_: self.restore_selected())
        self.empty_label = QLabel("The trash is empty.")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.empty_label.setToolTip(
            "What you delete in the Data, Vocabulary and Runs panels comes here first and stays for 30 days."
        )
        self.pages = QStackedWidget()
        self.pages.addWidget(self.table)
        self.pages.addWidget(self.empty_label)
        v.addWidget(self.pages, 1)
        self.message = MessageLine(self)
        v.addWidget(self.message)
        row = QHBoxLayout()
        self.restore_button = QPushButton("Restore")
        self.restore_button.setToolTip(
            "Put the selected item back where it was, with its id (double-click works "
            "too). A tokenizer or run needs its dataset (and tokenizer) back first."
        )
        self.restore_button.clicked.connect(self.restore_selected)
        self.empty_button = QPushButton("Empty trash…")
        self.empty_button.setToolTip("Delete everything in the trash for good. This cannot be undone.")
        self.empty_button.clicked.connect(self.empty)
        row.addWidget(self.restore_button)
        row.addStretch(1)
        row.addWidget(self.empty_button)
        v.addLayout(row)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        v.addWidget(close)
        self.confirm = lambda text: QMessageBox.question(self, "Empty trash", text) == QMessageBox.StandardButton.Yes
        self._update_buttons()  # nothing to restore until the engine has answered
        self.refresh()

    def refresh(self, empty: bool = False) -> str:
        return self.session.request(p.TrashRequest(empty=empty), guarded(self, self._on_trash))

    def _on_trash(self, reply) -> None:
        if not reply.ok:
            self.message.show_message(f"Could not read the trash: {reply.error}", "error")
            return
        if reply.emptied:
            self.message.show_message(f"Deleted {plural(reply.emptied, 'item')} for good.", "info")
            self.session.refresh_workspace()  # an Undo line for one of them has nothing left to undo
        rows = list(reversed(reply.rows))  # the newest first: what was just deleted is on top
        self.table.setRowCount(len(rows))
        for r, entry in enumerate(rows):
            cells = (KIND_NAMES.get(entry["kind"], entry["kind"]), entry["name"], fmt_created(entry["deleted"]))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, entry)
                self.table.setItem(r, c, item)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(2)
        self.pages.setCurrentWidget(self.table if rows else self.empty_label)
        if rows:
            self.table.selectRow(0)
        self._update_buttons()
        self.loaded.emit(len(rows))

    def _selected(self) -> dict | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _update_buttons(self) -> None:
        self.restore_button.setEnabled(self._selected() is not None)
        self.empty_button.setEnabled(self.table.rowCount() > 0)

    def restore_selected(self) -> str | None:
        entry = self._selected()
        if entry is None:
            return None

        def done(reply):
            if not reply.ok:
                self.message.show_message(f"Could not restore: {reply.error}", "error")
                return
            self.message.show_message(f"Restored the {reply.item_kind} “{reply.row.get('name', '')}”.", "info")
            self.refresh()

        return self.session.request(p.RestoreRequest(trash_id=int(entry["id"])), guarded(self, done))

    def empty(self) -> str | None:
        n = self.table.rowCount()
        if not n or not self.confirm(f"Delete the {plural(n, 'item')} in the trash for good? This cannot be undone."):
            return None
        return self.refresh(empty=True)
