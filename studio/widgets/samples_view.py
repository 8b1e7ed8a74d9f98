"""The Train panel's samples of a REINFORCE run (studio/state/samples.py reads them): the latest evaluation's
prompts, what the model wrote after each and its reward, the reward cell shaded from the lowest shown (orange)
to the highest (blue), so a user sees what is being rewarded as the run learns."""

from __future__ import annotations

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidgetItem

from studio.state.samples import sample_rows, samples_caption
from studio.widgets.captioned_table import CaptionedTable
from studio.widgets.confusion_view import RIGHT, WRONG

HEADERS = ("Prompt", "What the model wrote", "Reward")


class SamplesView(CaptionedTable):
    def __init__(self, parent=None):
        super().__init__(
            "The evaluation's prompts are the same every time and sampled with the same random numbers, so what "
            "changes from one evaluation to the next is the model.",
            parent,
        )
        self.table.setColumnCount(len(HEADERS))
        self.table.setObjectName("samples")
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setWordWrap(False)
        self.setMinimumWidth(320)

    def set_samples(self, samples: list[dict], step: int | None) -> None:
        if self.unchanged((repr(samples), step)):
            return
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
