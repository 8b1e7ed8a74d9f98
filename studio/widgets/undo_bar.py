"""The line that follows a delete: what went to the trash and an Undo button (Ctrl+Z while it shows).

Deleting asks no question: it is undone as easily, here or with `studio-engine restore`, and the trash keeps
what was deleted for 30 days.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from engine import protocol as p
from studio import theme
from studio.widgets.form_helpers import guarded


class UndoBar(QWidget):
    """Deletes and restores through the engine; says what went wrong (or was restored) on the panel's message
    line, and selects a restored dataset or tokenizer again."""

    restored = Signal(str, object)  # item kind, its row: the undo worked
    failed = Signal(str)  # a delete or undo the engine refused, in words

    def __init__(self, session, message_line=None, parent=None):
        super().__init__(parent)
        self.session = session
        self.message_line = message_line
        self.trash_id: int | None = None
        self.item: tuple[str, object] | None = None  # (kind, id) of what Undo would put back
        self._trash_check: str | None = None
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setShortcut(QKeySequence.StandardKey.Undo)  # only while the bar shows
        self.undo_button.setToolTip(
            "Put it back as it was (Ctrl+Z). Deleted items stay in the workspace's trash for 30 days."
        )
        self.undo_button.clicked.connect(self.undo)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.undo_button)
        # The bar appears right after a click on Delete: the room is kept so that nothing moves under the cursor.
        theme.reserve_space(self)
        self.hide()
        # Restored (or deleted for good) from File → Trash, the item is no longer this bar's to undo.
        session.workspaceChanged.connect(self._check_still_in_trash)  # a bound method: gone with the bar

    def delete(self, kind: str, row: dict) -> str:
        """Ask the engine to move a dataset, tokenizer or run to the trash; the bar offers Undo when it has."""
        name = row.get("name", "")

        if self.message_line is not None:
            self.message_line.clear_message()

        def done(reply):
            if not reply.ok:
                self._tell(f"Could not delete the {kind} “{name}”: {reply.error}", "error")
                self.failed.emit(f"Could not delete the {kind} “{name}”: {reply.error}")
                return
            self.trash_id = int(reply.trash.get("id"))
            self.item = (kind, row.get("id"))
            self.label.setText(f"Moved the {kind} “{name}” to the trash.")
            self.undo_button.setEnabled(True)
            self.show()

        return self.session.request(p.DeleteRequest(item_kind=kind, ref=row.get("id", name)), guarded(self, done))

    def undo(self) -> str | None:
        if self.trash_id is None:
            return None
        self.undo_button.setEnabled(False)

        def done(reply):
            self.undo_button.setEnabled(True)
            if not reply.ok:
                self._tell(f"Could not undo: {reply.error}", "error")
                self.failed.emit(f"Could not undo: {reply.error}")
                return
            self.trash_id = None
            self.hide()
            self._tell(f"Restored the {reply.item_kind} “{reply.row.get('name', '')}”.", "info")
            select = {
                "dataset": self.session.select_dataset,
                "tokenizer": self.session.select_tokenizer,
                "run": self.session.select_run,
            }
            if reply.item_kind in select:
                select[reply.item_kind](reply.row)
            self.restored.emit(reply.item_kind, reply.row)

        return self.session.request(p.RestoreRequest(trash_id=self.trash_id), guarded(self, done))

    def _tell(self, text: str, level: str) -> None:
        if self.message_line is not None:
            self.message_line.show_message(text, level)

    def dismiss(self) -> None:
        self.trash_id = None
        self.item = None
        self._trash_check = None
        self.hide()

    # -------------------------------------------------------------------------- undone from somewhere else
    def _check_still_in_trash(self, summary=None) -> None:
        if self.trash_id is None:
            return
        kind, item_id = self.item or (None, None)
        listed = (summary or {}).get(f"{kind}s") or []
        if item_id is not None and any(r.get("id") == item_id for r in listed):
            self.dismiss()  # back in the workspace: restored from the trash dialog or the command line
            return
        self._trash_check = self.session.request(p.TrashRequest(), guarded(self, self._on_trash))

    def _on_trash(self, reply) -> None:
        if reply.parent != self._trash_check or self.trash_id is None or not reply.ok:
            return
        if all(int(entry.get("id", -1)) != self.trash_id for entry in reply.rows):
            self.dismiss()  # deleted for good: there is nothing left to undo
