"""The records an import would read, as the engine previews them: a table of the first records, the selected
record before and after cleaning side by side, and what each cleaning step did to these records.

It only displays an import_preview_reply (engine/protocol.py ImportPreviewReply); asking for it is the data
panel's job.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.format import plural
from studio.state.import_report import STEP_NAMES, step_effect
from studio.widgets.form_helpers import monospace_font, muted_color

DROPPED = "dropped by cleaning"
CELL_CHARS = 300  # a table cell shows one line; the whole record is in the before/after view


def one_line(text: str, limit: int = CELL_CHARS) -> str:
    flat = text.replace("\r\n", "\n").replace("\n", " ⏎ ").replace("\t", " ")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _source(record: dict) -> str:
    name = Path(str(record.get("source") or "")).name
    line = record.get("line")
    return f"{name}:{line}" if line is not None else name


def _bad_reason(record: dict, warnings: list[str]) -> str:
    """Why the engine could not read this record, from its preview warning "<path> line <n>: <reason>"."""
    prefix = f"{record.get('source')} line {record.get('line')}: "
    return next((w[len(prefix) :] for w in warnings if w.startswith(prefix)), "")


def _text_pane(tip: str) -> QPlainTextEdit:
    edit = QPlainTextEdit()
    edit.setReadOnly(True)
    edit.setFont(monospace_font())
    edit.setToolTip(tip)
    return edit


class ImportPreviewView(QWidget):
    """Tabs: Records (table + before/after), Cleaning summary, File start (the raw head of the first file)."""

    COLUMNS = ("#", "Source", "Text", "Label")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.records: list[dict] = []
        self.cleaned: list = []
        self.cleaning: dict = {}
        self.cleaning_on = False
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        v.addWidget(self.tabs)
        self.tabs.addTab(self._records_tab(), "Records")
        self.tabs.addTab(self._summary_tab(), "Cleaning summary")
        self.raw_text = _text_pane(
            "The first 4 KB of the first file, read before importing, so you can check that it is the text you meant."
        )
        self.tabs.addTab(self.raw_text, "File start")
        self.show_reply({}, [], {})

    def _records_tab(self) -> QSplitter:
        records = QSplitter(Qt.Orientation.Vertical)
        records.setChildrenCollapsible(False)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        hh = self.table.horizontalHeader()
        for c, mode in enumerate(
            (
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.ResizeToContents,
                QHeaderView.ResizeMode.Stretch,
                QHeaderView.ResizeMode.ResizeToContents,
            )
        ):
            hh.setSectionResizeMode(c, mode)
        self.table.setToolTip(
            "The first records the import would read, with the options on the left. Click "
            "one to see it whole, before and after cleaning. Struck-through records are "
            "dropped by cleaning."
        )
        self.table.itemSelectionChanged.connect(self._on_select)
        records.addWidget(self.table)

        sides = QSplitter(Qt.Orientation.Horizontal)
        sides.setChildrenCollapsible(False)
        for which in ("before", "after"):
            box = QWidget()
            bv = QVBoxLayout(box)
            bv.setContentsMargins(0, 0, 0, 0)
            title = QLabel(f"<b>{'Before' if which == 'before' else 'After'} cleaning</b>")
            pane = _text_pane(
                "The selected record as read from the file."
                if which == "before"
                else "The selected record as it will be stored, after the cleaning steps you chose."
            )
            bv.addWidget(title)
            bv.addWidget(pane, 1)
            sides.addWidget(box)
            setattr(self, f"{which}_title", title)
            setattr(self, f"{which}_text", pane)
        records.addWidget(sides)
        records.setSizes([260, 200])
        return records

    def _summary_tab(self) -> QWidget:
        summary = QWidget()
        sv = QVBoxLayout(summary)
        sv.setContentsMargins(0, 0, 0, 0)
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        sv.addWidget(self.summary_label)
        self.summary = QTreeWidget()
        self.summary.setColumnCount(2)
        self.summary.setHeaderLabels(["Step", "On the preview records"])
        self.summary.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.summary.setToolTip(
            "Each cleaning step you switched on, in the order they run, with what it did to "
            "the records previewed here. Open a step to see examples, before → after."
        )
        sv.addWidget(self.summary, 1)
        return summary

    # ---------------------------------------------------------------------------------------------- filling
    def show_reply(self, preview: dict, cleaned: list, cleaning: dict) -> None:
        """Show an import_preview_reply's preview, cleaned and cleaning fields."""
        selected = self.selected_row()
        self.records = list((preview or {}).get("records") or [])
        self.cleaned = list(cleaned or [])
        self.cleaning = dict(cleaning or {})
        self.cleaning_on = bool(self.cleaning)
        has_labels = any(r.get("label") is not None for r in self.records)
        warnings = list((preview or {}).get("warnings") or [])
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(self.records))
        muted = QBrush(muted_color(self))
        for i, r in enumerate(self.records):
            text = r.get("text")
            dropped = text is not None and self.is_dropped(i)
            if text is None:
                fields = r.get("fields") or {}
                bad = _bad_reason(r, warnings)
                shown = (
                    f"(bad record: {bad})"
                    if bad
                    else " · ".join(f"{k}: {one_line(str(v), 60)}" for k, v in fields.items()) or "(no text)"
                )
                tip = (
                    f"This record cannot be read: {bad}"
                    if bad
                    else "No text: choose the text column (or this record could not be read)."
                )
            else:
                shown, tip = one_line(str(text)), str(text)[:1000]
            cells = (str(i + 1), _source(r), shown, "" if r.get("label") is None else str(r.get("label")))
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                if c == 1:
                    item.setToolTip(str(r.get("source") or ""))
                elif c == 2:
                    item.setToolTip(DROPPED + ": " + tip if dropped else tip)
                if text is None or dropped:
                    item.setForeground(muted)
                    font = QFont(item.font())
                    font.setItalic(text is None)
                    font.setStrikeOut(dropped)
                    item.setFont(font)
                t.setItem(i, c, item)
        t.setColumnHidden(3, not has_labels)
        t.blockSignals(False)
        if self.records:
            t.selectRow(min(max(selected, 0), len(self.records) - 1))
        self._on_select()
        self._fill_summary()

    def is_dropped(self, row: int) -> bool:
        return row < len(self.cleaned) and self.cleaned[row] is None and self.records[row].get("text") is not None

    def selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else -1

    def _on_select(self) -> None:
        row = self.selected_row()
        if row < 0 or row >= len(self.records):
            self.before_text.clear()
            self.after_text.clear()
            self.after_title.setText("<b>After cleaning</b>")
            return
        text = self.records[row].get("text")
        self.before_text.setPlainText("" if text is None else str(text))
        self.before_text.setPlaceholderText("(no text in this record: choose the text column)")
        if text is None:
            self.after_text.clear()
            self.after_text.setPlaceholderText("")
            self.after_title.setText("<b>After cleaning</b>")
        elif self.is_dropped(row):
            self.after_text.clear()
            self.after_text.setPlaceholderText(f"({DROPPED})")
            self.after_title.setText(f"<b>After cleaning:</b> <i>{DROPPED}</i>")
        else:
            after = self.cleaned[row] if row < len(self.cleaned) else text
            self.after_text.setPlainText(str(after))
            same = " (unchanged)" if self.cleaning_on and after == text else ""
            self.after_title.setText(
                f"<b>After cleaning</b>{same}" if self.cleaning_on else "<b>After cleaning</b> (no cleaning step is on)"
            )

    def _fill_summary(self) -> None:
        tree = self.summary
        tree.clear()
        n = sum(1 for r in self.records if r.get("text") is not None)
        if not self.cleaning:
            self.summary_label.setText("No cleaning step is on: the text is imported as it is.")
            self.tabs.setTabText(1, "Cleaning summary")
            return
        removed = sum(1 for i in range(len(self.records)) if self.is_dropped(i))
        self.summary_label.setText(
            f"On the {plural(n, 'record')} previewed: {removed:,} dropped, "
            f"{n - removed:,} kept. The import applies the same steps to every record."
        )
        for step, stats in self.cleaning.items():
            item = QTreeWidgetItem([STEP_NAMES.get(step, step), step_effect(stats)])
            for before, after in (stats.get("examples") or [])[:2]:
                arrow = f"{one_line(str(before), 80)}  →  " + (
                    "(removed)" if after is None else one_line(str(after), 80)
                )
                child = QTreeWidgetItem(["example", arrow])
                child.setToolTip(1, f"before: {before}\nafter: {'(removed)' if after is None else after}")
                item.addChild(child)
            tree.addTopLevelItem(item)
        tree.expandAll()
        self.tabs.setTabText(1, f"Cleaning summary ({removed:,} dropped)")

    def summary_lines(self) -> list[str]:
        """'Lowercase: changed 60 documents' for each step, in order (what the summary tab lists)."""
        return [
            f"{self.summary.topLevelItem(i).text(0)}: {self.summary.topLevelItem(i).text(1)}"
            for i in range(self.summary.topLevelItemCount())
        ]
