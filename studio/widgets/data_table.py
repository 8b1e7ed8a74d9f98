"""The Data panel's table of the workspace's datasets: names sorted as people read them, counts shown short
but sorted by their value, each row carrying its dataset row."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from engine.format import human_count
from studio.state.data_details import DATASET_COLUMNS, sources_text


class _NameItem(QTableWidgetItem):
    """A name that sorts as people read names: "alpha", "Notes", "sample" (not capitals first)."""

    def __lt__(self, other):
        return (self.text().casefold(), self.text()) < (other.text().casefold(), other.text())


class _NumberItem(QTableWidgetItem):
    """Shows a human-formatted number but sorts by the number itself."""

    def __init__(self, value):
        super().__init__(human_count(value) if isinstance(value, (int, float)) else str(value or ""))
        self._value = value if isinstance(value, (int, float)) else -1
        if isinstance(value, (int, float)):
            self.setToolTip(f"{int(value):,}")
            self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other):
        if isinstance(other, _NumberItem):
            return self._value < other._value
        return super().__lt__(other)


class DatasetTable(QTableWidget):
    """One row per dataset; filling or selecting from code emits no selection signal."""

    def __init__(self, parent=None):
        super().__init__(0, len(DATASET_COLUMNS), parent)
        self.setHorizontalHeaderLabels([c[1] for c in DATASET_COLUMNS])
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.setSortingEnabled(True)
        # Qt's default indicator is Name, descending: start A to Z, as the arrow will then say.
        self.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.setAlternatingRowColors(True)
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(DATASET_COLUMNS)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.setToolTip(
            "The datasets imported into this workspace. Click one to use it for the tokenizer and for training."
        )

    def fill(self, datasets: list[dict]) -> None:
        self.blockSignals(True)
        self.setSortingEnabled(False)
        self.setRowCount(len(datasets))
        for r, ds in enumerate(datasets):
            for c, (key, _) in enumerate(DATASET_COLUMNS):
                item = _NameItem(str(ds.get(key, ""))) if key == "name" else _NumberItem(ds.get(key))
                item.setData(Qt.ItemDataRole.UserRole, ds)
                if key == "name":
                    item.setToolTip(sources_text(ds) or str(ds.get("name", "")))
                self.setItem(r, c, item)
        self.setSortingEnabled(True)
        self.blockSignals(False)

    def select_dataset(self, ds: dict | None) -> None:
        """Select the row of `ds` (by id), or none."""
        self.blockSignals(True)
        self.clearSelection()
        if ds:
            for r in range(self.rowCount()):
                row = self.item(r, 0).data(Qt.ItemDataRole.UserRole)
                if row and row.get("id") == ds.get("id"):
                    self.selectRow(r)
                    break
        self.blockSignals(False)

    def selected_dataset(self) -> dict | None:
        items = self.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None
