"""Runs: every training run in the workspace, to compare, resume, or open in the playground."""
from __future__ import annotations

import datetime as _dt
import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine import protocol as p
from studio import theme
from studio.widgets.form_helpers import MessageLine
from studio.widgets.undo_bar import UndoBar

COLUMNS = ("ID", "Name", "Status", "Steps", "Best val loss", "Device", "Created")


def fmt_created(value) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, (int, float)):
        return _dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
    try:
        stamp = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value).replace("T", " ")[:16]
    # The workspace stores UTC; people read their own clock.
    return (stamp.astimezone() if stamp.tzinfo else stamp).strftime("%Y-%m-%d %H:%M")


class _Item(QTableWidgetItem):
    """Sorts by the raw value (numbers as numbers), shows the formatted text."""

    def __init__(self, text: str, key=None):
        super().__init__(text)
        self.key = key if key is not None else text
        self.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)

    def __lt__(self, other):
        try:
            return self.key < other.key
        except TypeError:
            return str(self.key) < str(other.key)


class RunsPanel(QWidget):
    openInPlayground = Signal(int)
    showCurves = Signal(int)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._build()
        session.workspaceChanged.connect(self._fill)
        session.runSelected.connect(self._on_run_selected)
        session.engineStateChanged.connect(lambda *_: self._update_buttons())
        session.statusReceived.connect(lambda *_: self._update_buttons())
        self._fill()

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(theme.panel_header(
            "Runs", "Every model trained in this workspace: pick one to see its curves, continue it, or try it "
                    "in the playground."))
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setToolTip("Runs, oldest first. Click one to select it: the Train panel shows its curves and "
                              "the Playground uses it.")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_table_selection)

        buttons = QHBoxLayout()
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected stopped or interrupted run from its last checkpoint.")
        self.resume_button.clicked.connect(self.resume)
        self.curves_button = QPushButton("Show curves")
        self.curves_button.setToolTip("Open the Train panel with this run's loss curves.")
        self.curves_button.clicked.connect(lambda: self._emit_selected(self.showCurves))
        self.playground_button = theme.make_primary(QPushButton("Open in Playground"))
        self.playground_button.setToolTip("Generate text with this run's latest checkpoint.")
        self.playground_button.clicked.connect(lambda: self._emit_selected(self.openInPlayground))
        for b in (self.resume_button, self.curves_button, self.playground_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Move the selected run, with its curves and checkpoints, to the workspace's "
                                      "trash (Del). Undo puts it back; a run that is training cannot be deleted.")
        self.delete_button.clicked.connect(self.delete_selected)
        buttons.addWidget(self.delete_button)
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.table)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self.delete_selected)
        self.message_label = theme.description_label("")
        self.error_label = MessageLine(self)
        self.undo_bar = UndoBar(self.session, self.error_label, self)

        self.config_view = QPlainTextEdit()
        self.config_view.setReadOnly(True)
        self.config_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.config_view.setToolTip("The selected run's full configuration (the same JSON the command line "
                                    "takes: studio-engine train CONFIG).")
        self.config_view.setPlaceholderText("Select a run to see its configuration.")

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table)
        tl.addLayout(buttons)
        tl.addWidget(self.message_label)
        tl.addWidget(self.undo_bar)
        tl.addWidget(self.error_label)
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(QLabel("Configuration"))
        bl.addWidget(self.config_view)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        root.addWidget(split, 1)
        self._update_buttons()

    # ---------------------------------------------------------------------------------------------------- table
    def _fill(self, *_):
        runs = self.session.workspace.get("runs", [])
        self.table.blockSignals(True)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(runs))
        for i, run in enumerate(runs):
            step, max_iters = int(run.get("step") or 0), int(run.get("max_iters") or 0)
            best = run.get("best_val_loss")
            cells = [
                _Item(str(run.get("id")), run.get("id")),
                _Item(str(run.get("name") or "")),
                _Item(str(run.get("status") or "")),
                _Item(f"{step:,} / {max_iters:,}" if max_iters else f"{step:,}", step),
                _Item(f"{best:.3f}" if isinstance(best, (int, float)) else "—",
                      best if isinstance(best, (int, float)) else float("inf")),
                _Item(str(run.get("device") or "")),
                _Item(fmt_created(run.get("created")), str(run.get("created") or "")),
            ]
            for col, item in enumerate(cells):
                if col in (0, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, col, item)
        self.table.blockSignals(False)
        self._on_run_selected(self.session.run)

    def _row_of(self, run_id) -> int:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.key == run_id:
                return row
        return -1

    def _on_run_selected(self, run) -> None:
        row = self._row_of(run.get("id")) if run else -1
        self.table.blockSignals(True)
        if row >= 0:
            self.table.selectRow(row)
        else:
            self.table.clearSelection()
        self.table.blockSignals(False)
        self._show_run(run)

    def _on_table_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        run_id = self.table.item(rows[0].row(), 0).key
        self.session.select_run(run_id)

    def _show_run(self, run) -> None:
        if not run:
            self.config_view.setPlainText("")
            self.message_label.setText("")
        else:
            self.config_view.setPlainText(json.dumps(run.get("config") or {}, indent=2))
            self.message_label.setText(str(run.get("message") or ""))
        self._update_buttons()

    def selected_run(self) -> dict | None:
        return self.session.run

    # --------------------------------------------------------------------------------------------------- actions
    def _emit_selected(self, signal) -> None:
        run = self.session.run
        if run is not None:
            signal.emit(int(run["id"]))

    def resume(self) -> None:
        run = self.session.run
        if run is None:
            return
        self.error_label.clear_message()

        def done(reply):
            if not reply.ok:
                self.error_label.show_message(f"Could not resume run {run['id']}: {reply.error}", "error")
        self.session.request(p.TrainRequest(resume_run=run["id"]), done)
        self.showCurves.emit(int(run["id"]))

    def delete_selected(self) -> str | None:
        """Move the selected run to the trash (the undo bar offers it back)."""
        run = self.session.run
        if run is None or run.get("id") == self.session.training_run:
            return None
        return self.undo_bar.delete("run", run)

    def _update_buttons(self) -> None:
        run = self.session.run
        has = run is not None
        step = int(run.get("step") or 0) if has else 0
        resumable = has and not self.session.is_training and run.get("status") != "finished" \
            and 0 < step < int(run.get("max_iters") or 0) \
            and self.session.engine_state not in ("dead", "hung", "stopped")
        self.resume_button.setEnabled(bool(resumable))
        self.curves_button.setEnabled(has)
        self.delete_button.setEnabled(has and run.get("id") != self.session.training_run)
        self.playground_button.setEnabled(has and step > 0)
