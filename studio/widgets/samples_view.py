"""The Train panel's samples of a REINFORCE run (studio/state/samples.py reads them): the latest evaluation's
prompts, what the model wrote after each and its reward, the reward cell shaded from the lowest shown (orange)
to the highest (blue), so a user sees what is being rewarded as the run learns."""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.state.samples import sample_rows, samples_caption
from studio.widgets.confusion_view import RIGHT, WRONG

HEADERS = ("Prompt", "What the model wrote", "Reward")


class SamplesView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.caption = QLabel("")
        self.caption.setToolTip(
            "The evaluation's prompts are the same every time and sampled with the same random numbers, so what "
            "changes from one evaluation to the next is the model."
        )
        lay.addWidget(self.caption)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setObjectName("samples")
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table, 1)
        self._shown: tuple | None = None

    def set_samples(self, samples: list[dict], step: int | None) -> None:
        shown = (repr(samples), step)
        if shown == self._shown:  # the panel redraws at 30 Hz; the samples change at evaluations only
            return
        self._shown = shown
        rows = sample_rows(samples)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            reward = QTableWidgetItem("—" if row.reward is None else f"{row.reward:.2f}")
            if row.reward is not None:
                shade = QColor(RIGHT if row.share >= 0.5 else WRONG)
                shade.setAlphaF(0.2 + 0.6 * abs(row.share - 0.5) * 2)
                reward.setBackground(QBrush(shade))
            for column, item in enumerate((QTableWidgetItem(row.prompt), QTableWidgetItem(row.text), reward)):
                item.setToolTip(f"{row.prompt} → {row.text}")
                self.table.setItem(i, column, item)
        self.caption.setText(f"<b>{samples_caption(samples, step)}</b>")
