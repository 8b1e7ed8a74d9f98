"""The Train panel's confusion matrix for a classification run (studio/state/confusion.py says what each cell
means): a small table, the true class down the side and the predicted class across, each cell shaded by its
share of the row, so a good classifier shows a bright diagonal."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidgetItem

from studio.state.confusion import confusion_caption, confusion_cells
from studio.widgets.captioned_table import CaptionedTable

RIGHT = QColor(86, 180, 233)  # sky blue (Okabe-Ito): the diagonal
WRONG = QColor(230, 159, 0)  # orange (Okabe-Ito): confusions


class ConfusionView(CaptionedTable):
    def __init__(self, parent=None):
        super().__init__(
            "Rows: the class a validation text has; columns: the class the model named, numbered as the rows. "
            "A bright diagonal is a good classifier.",
            parent,
        )
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.matrix: list[list[int]] = []
        self.setMinimumWidth(220)
        self.setMaximumWidth(300)  # beside the small plots, which share the rest of the row

    def set_matrix(self, matrix: list[list[int]], classes: list[str], step: int | None) -> None:
        shown = ([list(row) for row in matrix], list(classes), step)
        if self.unchanged(shown):
            return
        self.matrix = shown[0]
        names = [str(c) for c in classes][: len(matrix)]
        names += [str(i) for i in range(len(names), len(matrix))]
        self.table.setRowCount(len(matrix))
        self.table.setColumnCount(len(matrix))
        # Columns are numbered as the rows: class names side by side would not fit a small table.
        self.table.setHorizontalHeaderLabels([str(i + 1) for i in range(len(names))])
        self.table.setVerticalHeaderLabels([f"{i + 1} {n}" for i, n in enumerate(names)])
        for i, n in enumerate(names):
            self.table.horizontalHeaderItem(i).setToolTip(f"Texts the model took for {n!r}")
            self.table.verticalHeaderItem(i).setToolTip(f"Validation texts labelled {n!r}")
        for cell in confusion_cells(matrix, names):
            item = QTableWidgetItem(f"{cell.count:,}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            item.setToolTip(cell.tip)
            shade = QColor(RIGHT if cell.row == cell.column else WRONG)
            shade.setAlphaF(0.15 + 0.7 * cell.share if cell.count else 0.0)
            item.setBackground(QBrush(shade))
            self.table.setItem(cell.row, cell.column, item)
        self.caption.setText(f"<b>{confusion_caption(matrix)}</b>")
        self.caption.setToolTip(
            f"At step {step:,}. {self.table.toolTip()}" if step is not None else self.table.toolTip()
        )
