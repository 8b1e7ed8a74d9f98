"""Runs: every training run in the workspace, to compare, rename, resume, or open in the playground.

What the tables say (dates, a run's settings and how two runs differ, the cells that follow a training run, each
run's objective and architecture) is studio/state/runs.py's, tested without a window. Under the table, a run's
configuration, or the curves of several runs on one plot (studio/widgets/runs_overlay.py), with a note when their
objectives make the losses incomparable."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from engine.format import fmt_created
from studio import theme
from studio.run_watch import trained_elsewhere
from studio.state.runs import config_diff, config_rows, kind_cells, progress_cells, run_heading, value_names
from studio.state.finetune import from_cell, lineage_text, parent_of
from studio.widgets.finetune_dialog import FinetuneDialog
from studio.widgets.form_helpers import MessageLine, PanelHeader
from studio.widgets.runs_overlay import RunsOverlay
from studio.widgets.undo_bar import UndoBar
from engine.format import plural

COLUMNS = ("ID", "Name", "Status", "Steps", "Best val loss", "Device", "Created", "Objective", "Architecture", "From")
NAME_COLUMN = 1
CONFIG_COLUMNS = ("Section", "Setting", "Value")


class _Item(QTableWidgetItem):
    """Sorts by the raw value (numbers as numbers), shows the formatted text."""

    def __init__(self, text: str, key=None, editable: bool = False):
        super().__init__(text)
        self.key = key if key is not None else text
        flags = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled
        self.setFlags(flags | Qt.ItemFlag.ItemIsEditable if editable else flags)

    def __lt__(self, other):
        try:
            return self.key < other.key
        except TypeError:
            return str(self.key) < str(other.key)


class RunsPanel(QWidget):
    openInPlayground = Signal(int)
    showCurves = Signal(int)
    fineTune = Signal(object)  # the RunConfig of a run to start from the selected one (the Train panel starts it)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._build()
        session.workspaceChanged.connect(self._fill)
        session.runSelected.connect(self._on_run_selected)
        # Bound methods, not lambdas: Qt drops them with the panel, so a later signal finds no dead widget.
        session.engineStateChanged.connect(self._update_buttons)
        session.statusReceived.connect(self._update_buttons)
        # A training run's cells follow it live; the workspace rows catch up when the run ends.
        self._live: dict[int, dict] = {}
        session.metricsReceived.connect(self._on_metrics)
        session.statusReceived.connect(self._on_status)
        session.evalReceived.connect(self._on_eval)
        self._fill()

    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(
            PanelHeader(
                "Runs",
                "Every model trained in this workspace: pick one to see its curves, continue it, or try it "
                "in the playground.",
            )
        )
        self._build_table()
        buttons = self._build_buttons()
        self.message_label = theme.description_label("")
        self.error_label = MessageLine(self)
        self.undo_bar = UndoBar(self.session, self.error_label, self)

        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table)
        tl.addLayout(buttons)
        tl.addWidget(self.message_label)
        tl.addWidget(self.undo_bar)
        tl.addWidget(self.error_label)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_config(), "Configuration")
        self.overlay = RunsOverlay(self.session)
        self.tabs.addTab(self.overlay, "Curves")
        self.tabs.setTabToolTip(1, "The curves of the runs you tick, on one plot.")
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        root.addWidget(split, 1)
        self._update_buttons()

    def _build_table(self) -> None:
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # Double-click opens a run; the name is edited with F2 or Rename only.
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.setToolTip(
            "Runs, oldest first. Click one to select it: the Train panel shows its curves and "
            "the Playground uses it. Double-click opens its curves; F2 renames it."
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(NAME_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_table_selection)
        self.table.itemDoubleClicked.connect(self._on_double_click)
        self.table.itemChanged.connect(self._on_item_changed)

    def _build_buttons(self) -> QHBoxLayout:
        """The buttons under the table, with their keys: Del deletes, F2 renames."""
        buttons = QHBoxLayout()
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the selected stopped or interrupted run from its last checkpoint.")
        self.resume_button.clicked.connect(self.resume)
        self.curves_button = QPushButton("Show curves")
        self.curves_button.setToolTip("Open the Train panel with this run's loss curves (or double-click the run).")
        self.curves_button.clicked.connect(lambda: self._emit_selected(self.showCurves))
        self.playground_button = theme.make_primary(QPushButton("Open in Playground"))
        self.playground_button.setToolTip(
            "Try this run in the Playground: continue a text, fill in blanks or gaps, or score two texts, as its "
            "training allows."
        )
        self.playground_button.clicked.connect(lambda: self._emit_selected(self.openInPlayground))
        self.finetune_button = QPushButton("Fine-tune…")
        self.finetune_button.setToolTip(
            "Start a new run from the selected run's weights (Ctrl+Shift+F): on the same or another dataset, "
            "training every weight or only small LoRA updates."
        )
        self.finetune_button.clicked.connect(self.fine_tune_selected)
        finetune_key = QShortcut(QKeySequence("Ctrl+Shift+F"), self)
        finetune_key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        finetune_key.setWhatsThis("Fine-tune the selected run")
        finetune_key.activated.connect(self.fine_tune_selected)
        self.rename_button = QPushButton("Rename")
        self.rename_button.setToolTip("Type a new name for the selected run (F2); Enter keeps it, Esc cancels.")
        self.rename_button.clicked.connect(self.start_rename)
        buttons_left = (
            self.resume_button,
            self.curves_button,
            self.playground_button,
            self.finetune_button,
            self.rename_button,
        )
        for b in buttons_left:
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip(
            "Move the selected run, with its curves and checkpoints, to the workspace's "
            "trash (Del). Undo puts it back; a run that is training cannot be deleted."
        )
        self.delete_button.clicked.connect(self.delete_selected)
        buttons.addWidget(self.delete_button)
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.table)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.setWhatsThis("Delete the selected run (Undo puts it back)")
        delete_key.activated.connect(self.delete_selected)
        self.rename_key = QShortcut(QKeySequence(Qt.Key.Key_F2), self)
        self.rename_key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.rename_key.setWhatsThis("Rename the selected run")
        self.rename_key.activated.connect(self.start_rename)
        return buttons

    def _build_config(self) -> QWidget:
        bottom = QWidget()
        bl = QVBoxLayout(bottom)
        bl.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.config_title = QLabel("Configuration")
        row.addWidget(self.config_title, 1)
        row.addWidget(QLabel("Compare with"))
        self.compare_combo = QComboBox()
        self.compare_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.compare_combo.setToolTip(
            "Pick another run to see only the settings in which the two differ, side by side."
        )
        self.compare_combo.currentIndexChanged.connect(lambda *_: self._show_config())
        row.addWidget(self.compare_combo)
        self.copy_json_button = QPushButton("Copy as JSON")
        self.copy_json_button.setToolTip(
            "Copy the selected run's configuration as JSON, the file the command line "
            "takes: studio-engine train CONFIG.json"
        )
        self.copy_json_button.clicked.connect(self.copy_config_json)
        row.addWidget(self.copy_json_button)
        bl.addLayout(row)
        self.config_table = QTableWidget(0, len(CONFIG_COLUMNS))
        self.config_table.setHorizontalHeaderLabels(CONFIG_COLUMNS)
        self.config_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.config_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.config_table.verticalHeader().setVisible(False)
        self.config_table.setAlternatingRowColors(True)
        self.config_table.setToolTip(
            "The selected run's settings, as the Model and Train panels name them. Point "
            "at a setting to see its name on the command line."
        )
        self.config_table.horizontalHeader().setStretchLastSection(True)
        bl.addWidget(self.config_table, 1)
        self.config_note = theme.description_label("Select a run to see its configuration.")
        bl.addWidget(self.config_note)
        return bottom

    # ---------------------------------------------------------------------------------------------------- table
    def _fill(self, *_):
        runs = self.session.workspace.get("runs", [])
        # Only the run in training is ahead of the workspace's rows; the others' live values are settled there.
        training = self.session.training_run
        self._live = {k: v for k, v in self._live.items() if k == training}
        self.table.blockSignals(True)
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(runs))
        for i, run in enumerate(runs):
            run = {**run, **self._live.get(run.get("id"), {})}
            objective, arch = kind_cells(run)
            cells = [
                _Item(str(run.get("id")), run.get("id")),
                _Item(str(run.get("name") or ""), editable=True),
                _Item(""),
                _Item(""),
                _Item(""),
                _Item(str(run.get("device") or "")),
                _Item(fmt_created(run.get("created")), str(run.get("created") or "")),
                _Item(objective),
                _Item(arch),
                _Item(from_cell(run), parent_of(run) or 0),
            ]
            for col, item in enumerate(cells):
                if col in (0, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, col, item)
            self._show_progress(i, run)
        self.table.blockSignals(False)
        self.overlay.set_runs(runs)
        self._on_run_selected(self.session.run)

    def _show_progress(self, row: int, run: dict) -> None:
        """The cells that change while a run trains: status, steps, best validation loss."""
        for col, text, key in progress_cells(run):
            item = self.table.item(row, col)
            item.setText(text)
            item.key = text if key is None else key

    # ----------------------------------------------------------------------------------------------- live
    def _on_metrics(self, run_id: int, rows: list) -> None:
        self.overlay.on_metrics(run_id, rows)
        if rows:
            self._update_live(run_id, step=int(rows[-1].get("step") or 0))

    def _on_status(self, st) -> None:
        run_state = p.status_states(st)[1]
        if st.run is None or run_state is None:
            return
        fields = {"status": run_state, "step": int(st.step or 0)}
        if st.max_iters:
            fields["max_iters"] = int(st.max_iters)
        self._update_live(st.run, **fields)
        run = self.session.run
        if st.message and run is not None and run.get("id") == st.run:
            self.message_label.setText("\n".join(filter(None, [st.message, self._lineage(run)])))

    def _on_eval(self, ev) -> None:
        self.overlay.on_eval(ev)
        if ev.val_loss is None:
            return
        best = self._current(ev.run).get("best_val_loss")
        if not isinstance(best, (int, float)) or ev.val_loss < best:
            self._update_live(ev.run, best_val_loss=float(ev.val_loss))

    def _current(self, run_id) -> dict:
        return {**(self._run_by_id(run_id) or {}), **self._live.get(run_id, {})}

    def _update_live(self, run_id, **fields) -> None:
        self._live.setdefault(run_id, {}).update(fields)
        row = self._row_of(run_id)
        if row >= 0:
            self.table.blockSignals(True)
            self._show_progress(row, self._current(run_id))
            self.table.blockSignals(False)

    def _row_of(self, run_id) -> int:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.key == run_id:
                return row
        return -1

    def _run_by_id(self, run_id) -> dict | None:
        return next((r for r in self.session.workspace.get("runs", []) if r.get("id") == run_id), None)

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

    def _on_double_click(self, item: QTableWidgetItem) -> None:
        """Open the run: select it and show its curves in the Train panel."""
        run_id = self.table.item(item.row(), 0).key
        self.session.select_run(run_id)
        self.showCurves.emit(int(run_id))

    def _show_run(self, run) -> None:
        lines = [str(run.get("message") or ""), self._lineage(run)] if run else []
        self.message_label.setText("\n".join(filter(None, lines)))
        self._fill_compare_choices()
        self._show_config()
        self._update_buttons()
        self.overlay.refresh()  # with no run ticked, the overlay draws the selected run

    # --------------------------------------------------------------------------------------------- config view
    def _fill_compare_choices(self) -> None:
        run = self.session.run
        keep = self.compare_combo.currentData()
        self.compare_combo.blockSignals(True)
        self.compare_combo.clear()
        self.compare_combo.addItem("Nothing: all settings", None)
        for other in self.session.workspace.get("runs", []):
            if run is not None and other.get("id") != run.get("id"):
                self.compare_combo.addItem(run_heading(other), other.get("id"))
        index = self.compare_combo.findData(keep) if keep is not None else 0
        self.compare_combo.setCurrentIndex(max(index, 0))
        self.compare_combo.setEnabled(self.compare_combo.count() > 1)
        self.compare_combo.blockSignals(False)

    def compare_with(self, run_id) -> None:
        """Show only the settings in which the selected run and run `run_id` differ (None: all settings)."""
        index = self.compare_combo.findData(run_id) if run_id is not None else 0
        if index < 0:
            raise KeyError(f"run {run_id} is not offered for comparison")
        self.compare_combo.setCurrentIndex(index)
        self._show_config()

    def _show_config(self) -> None:
        run = self.session.run
        other = self._run_by_id(self.compare_combo.currentData())
        self.copy_json_button.setEnabled(run is not None)
        if run is None:
            self._set_config_rows(CONFIG_COLUMNS, [])
            self.config_title.setText("Configuration")
            self.config_note.setText("Select a run to see its configuration.")
        elif other is None:
            rows = config_rows(run.get("config") or {}, value_names(self.session.workspace))
            self._set_config_rows(CONFIG_COLUMNS, rows)
            self.config_title.setText(f"Configuration of {run_heading(run)}")
            self.config_note.setText("")
        else:
            rows = config_diff(run.get("config") or {}, other.get("config") or {}, value_names(self.session.workspace))
            self._set_config_rows(("Section", "Setting", run_heading(run), run_heading(other)), rows)
            self.config_title.setText(f"{run_heading(run)} compared with {run_heading(other)}")
            self.config_note.setText(
                "The two runs have the same settings."
                if not rows
                else f"{plural(len(rows), 'setting')} differ; the rest are the same."
            )

    def _set_config_rows(self, headers, rows) -> None:
        table = self.config_table
        table.setColumnCount(len(headers))
        table.setHorizontalHeaderLabels(list(headers))
        table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            *cells, key = row
            for col, text in enumerate(cells):
                item = _Item(text)
                item.setToolTip(key)
                table.setItem(i, col, item)
        header = table.horizontalHeader()
        for col in range(len(headers) - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)

    def config_json(self) -> str:
        run = self.session.run
        return json.dumps(run.get("config") or {}, indent=2) if run else ""

    def copy_config_json(self) -> None:
        if self.session.run is not None:
            QGuiApplication.clipboard().setText(self.config_json())
            self.error_label.show_message("Copied the configuration as JSON.", "info")

    # --------------------------------------------------------------------------------------------------- rename
    def start_rename(self) -> None:
        """Open the selected run's Name cell for typing."""
        run = self.session.run
        row = self._row_of(run.get("id")) if run else -1
        if row < 0:
            return
        item = self.table.item(row, NAME_COLUMN)
        self.table.setCurrentItem(item)
        self.table.editItem(item)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != NAME_COLUMN:
            return
        run = self._run_by_id(self.table.item(item.row(), 0).key)
        if run is not None and item.text() != (run.get("name") or ""):
            self.rename(run["id"], item.text())

    def rename(self, run_id: int, name: str) -> str:
        """Ask the engine to rename run `run_id`; the table shows the new name, or the old one and why not."""
        self.error_label.clear_message()
        old = (self._run_by_id(run_id) or {}).get("name") or ""

        def done(reply):
            if reply.ok:
                self.error_label.show_message(f"Renamed run {run_id} to “{reply.row.get('name', name)}”.", "info")
                self.session.refresh_workspace()
            else:
                self._set_name_cell(run_id, old)
                self.error_label.show_message(
                    f"Could not rename run {run_id}: {reply.error or 'no reason given'}.", "error"
                )

        return self.session.request(p.RenameRequest(item_kind="run", ref=run_id, name=name), done)

    def _set_name_cell(self, run_id, name: str) -> None:
        row = self._row_of(run_id)
        if row >= 0:
            self.table.blockSignals(True)
            self.table.item(row, NAME_COLUMN).setText(name)
            self.table.blockSignals(False)

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
        if run is None or run.get("id") == self.session.training_run or trained_elsewhere(run):
            return None
        return self.undo_bar.delete("run", run)

    def _lineage(self, run: dict) -> str:
        return lineage_text(run, self.session.workspace.get("runs", []))

    def fine_tune_selected(self) -> None:
        """Fine-tune…: choose how to start a new run from the selected run, then hand its config on."""
        run = self.session.run
        if run is None or not self.finetune_button.isEnabled():
            return
        # Window-modal and opened, not exec()'d: the engine's replies (the checkpoint list) keep arriving.
        self.finetune_dialog = dialog = FinetuneDialog(self.session, run, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: dialog.config is not None and self.fineTune.emit(dialog.config))
        dialog.open()

    def _update_buttons(self, *_) -> None:
        run = self.session.run
        has = run is not None
        step = int(run.get("step") or 0) if has else 0
        elsewhere = trained_elsewhere(run)
        resumable = (
            has
            and not elsewhere
            and not self.session.is_training
            and run.get("status") != "finished"
            and 0 < step < int(run.get("max_iters") or 0)
            and self.session.engine_state not in ("dead", "hung", "stopped")
        )
        self.resume_button.setEnabled(bool(resumable))
        self.resume_button.setToolTip(
            f"Trained by {run['trainer']}: Show curves follows it live; stop it there to resume it here."
            if elsewhere
            else "Continue the selected stopped or interrupted run from its last checkpoint."
        )
        self.curves_button.setEnabled(has)
        self.rename_button.setEnabled(has)
        self.delete_button.setEnabled(has and not elsewhere and run.get("id") != self.session.training_run)
        self.playground_button.setEnabled(has and step > 0)
        self.finetune_button.setEnabled(has and step > 0 and run.get("id") != self.session.training_run)
