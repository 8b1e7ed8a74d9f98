"""The Runs panel's Curves tab: the curves of several runs on one plot (the validation loss, the training loss or
an objective's metric), with a note when the runs' losses average over different things and so cannot be read
against each other (studio/state/runs.py's overlay_note).

The runs plotted are those ticked in the list beside the plot, or the selected run when none is ticked. Each
run's curves are asked for once (MetricsRequest) and then follow the run while it trains."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from engine import protocol as p
from studio.run_names import run_title
from studio.state.curves import RunCurves
from studio.state.runs import kind_cells, overlay_note
from studio.state.train_summary import metric_caption
from studio.widgets.form_helpers import MessageLine, guarded
from studio.widgets.loss_plot import CurvePlot

# Okabe-Ito colours (apart for colour-blind readers too), one per plotted run in order.
RUN_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#999999")
SERIES = (("val", "Validation loss"), ("train", "Training loss"))
REDRAW_MS = 100


class RunsOverlay(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.curves: dict[int, RunCurves] = {}  # runs whose history came, kept up to date while they train
        self._asked: set[int] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.run_list = QListWidget()
        self.run_list.setToolTip("Tick the runs to draw on one plot; with none ticked, the selected run is drawn.")
        self.run_list.setMaximumWidth(320)
        self.run_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.run_list.setTextElideMode(Qt.TextElideMode.ElideRight)  # the tooltip of a run has it whole
        self.run_list.itemChanged.connect(lambda *_: self.refresh())
        lay.addWidget(self.run_list)
        right = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(QLabel("Curve"))
        self.series_combo = QComboBox()
        self.series_combo.setToolTip("Which curve of each run to draw.")
        self.series_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for key, label in SERIES:
            self.series_combo.addItem(label, key)
        self.series_combo.currentIndexChanged.connect(lambda *_: self._schedule())
        row.addWidget(self.series_combo)
        row.addStretch(1)
        right.addLayout(row)
        self.note = MessageLine()
        right.addWidget(self.note)
        self.plot = CurvePlot("step", "loss (nats)", empty_text="Tick runs in the list to draw their curves")
        right.addWidget(self.plot, 1)
        lay.addLayout(right, 1)

    # ------------------------------------------------------------------------------------------------- runs
    def set_runs(self, runs: list[dict]) -> None:
        """The workspace's runs in the list; ticks are kept."""
        ticked = set(self.ticked_ids())
        self.run_list.blockSignals(True)
        self.run_list.clear()
        for run in runs:
            objective, arch = kind_cells(run)
            item = QListWidgetItem(f"{run_title(run)}\n{objective} · {arch.lower()}")
            item.setData(Qt.ItemDataRole.UserRole, run.get("id"))
            item.setToolTip(item.text())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run.get("id") in ticked else Qt.CheckState.Unchecked)
            self.run_list.addItem(item)
        self.run_list.blockSignals(False)
        self.refresh()

    def ticked_ids(self) -> list:
        items = (self.run_list.item(i) for i in range(self.run_list.count()))
        return [it.data(Qt.ItemDataRole.UserRole) for it in items if it.checkState() == Qt.CheckState.Checked]

    def tick(self, run_ids: list) -> None:
        """Tick exactly these runs (as a user does in the list)."""
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in run_ids
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def plotted_runs(self) -> list[dict]:
        """The ticked runs, or the selected run when none is ticked."""
        rows = {r.get("id"): r for r in self.session.workspace.get("runs", [])}
        ids = self.ticked_ids() or ([self.session.run.get("id")] if self.session.run else [])
        return [rows[i] for i in ids if i in rows]

    def refresh(self) -> None:
        """Ask for the curves of plotted runs not asked for yet, and redraw (only while the tab is shown)."""
        if not self.isVisible():
            return
        for run in self.plotted_runs():
            self._load(run["id"])
        self._schedule()

    def _load(self, run_id) -> None:
        if run_id in self._asked or self.session.engine_state in ("dead", "stopped"):
            return
        self._asked.add(run_id)

        def done(reply):
            if not reply.ok:
                self._asked.discard(run_id)  # ask again next time
                return
            curves = RunCurves(run_id)
            curves.merge_history(reply.rows)
            self.curves[run_id] = curves
            self._schedule()

        self.session.request(p.MetricsRequest(run=run_id), guarded(self, done))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    # ------------------------------------------------------------------------------------------------- live
    def on_metrics(self, run_id: int, rows: list) -> None:
        if run_id in self.curves:
            self.curves[run_id].add_rows(rows)
            self._schedule()

    def on_eval(self, ev) -> None:
        if ev.run in self.curves:
            self.curves[ev.run].add_eval(ev.step, ev.val_loss, getattr(ev, "metrics", None))
            self._schedule()

    # ---------------------------------------------------------------------------------------------- drawing
    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _fill_series(self, runs: list[dict]) -> None:
        """Losses, and the validation metrics any plotted run has."""
        keep = self.series_combo.currentData()
        names: list[str] = []
        for run in runs:
            curves = self.curves.get(run["id"])
            names += [m for m in (curves.metric_names() if curves else []) if m not in names]
        wanted = [*SERIES, *((f"val_{m}", metric_caption(m)) for m in names)]
        if [self.series_combo.itemData(i) for i in range(self.series_combo.count())] == [k for k, _ in wanted]:
            return
        self.series_combo.blockSignals(True)
        self.series_combo.clear()
        for key, label in wanted:
            self.series_combo.addItem(label, key)
        self.series_combo.setCurrentIndex(max(0, self.series_combo.findData(keep)))
        self.series_combo.blockSignals(False)

    def series(self, run_id) -> tuple[list, list]:
        """The chosen curve of one run: (steps, values)."""
        c = self.curves.get(run_id)
        key = self.series_combo.currentData()
        if c is None:
            return [], []
        if key == "val":
            return list(c.val_steps), list(c.val_loss)
        if key == "train":
            return list(c.steps), list(c.loss)
        return tuple(list(part) for part in c.metrics.get(key, ([], [])))  # type: ignore[return-value]

    def redraw(self) -> None:
        runs = self.plotted_runs()
        self._fill_series(runs)
        key = self.series_combo.currentData()
        self.plot.remove_curves()
        for n, run in enumerate(runs):
            curve = self.plot.add_curve(
                run_title(run), RUN_COLORS[n % len(RUN_COLORS)], symbol="o" if key != "train" else None
            )
            curve.setData(*self.series(run["id"]))
        self.plot.legend.setColumnCount(max(1, min(4, len(runs))))
        self.plot.getPlotItem().setLabel(
            "left", "loss (nats)" if key in ("val", "train") else self.series_combo.currentText()
        )
        loss = key in ("val", "train")
        note = overlay_note(runs) if loss else ""
        self.note.show_message(f"⚠ {note}" if note else "", "warning")
