"""A read-only table under a bold caption, the form of the Train panel's evaluation tables (the confusion matrix,
REINFORCE's samples); the caption and the table share one tooltip that says how to read them."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableWidget, QVBoxLayout, QWidget


class CaptionedTable(QWidget):
    def __init__(self, tooltip: str, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel("")
        self.caption.setToolTip(tooltip)
        lay.addWidget(self.caption)
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setToolTip(tooltip)
        lay.addWidget(self.table, 1)
        self._shown: tuple | None = None  # what the table shows: the panel redraws at 30 Hz, the data changes rarely

    def unchanged(self, shown: tuple) -> bool:
        """Whether `shown` is what the table already shows (else it becomes what it shows)."""
        if shown == self._shown:
            return True
        self._shown = shown
        return False
