"""A combo box that shortens its shown text with "…" when it is narrower than its text, as desktop apps do.

Qt's QComboBox cuts its current text off mid-word ("finished, 600 / 600 step"); run names are the user's and can
be long, so no width is always enough. The whole text stays in the popup list and in the tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QStyle, QStyleOptionComboBox, QStylePainter


class ElidedComboBox(QComboBox):
    """`tooltip` says what the combo is for; the current item's whole text is added to it."""

    def __init__(self, tooltip: str = "", parent=None):
        super().__init__(parent)
        self._purpose = tooltip
        self.setToolTip(tooltip)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(16)
        self.currentIndexChanged.connect(self._update_tooltip)

    def shown_text(self) -> str:
        """The current text as painted: elided to the room the style gives it."""
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        room = (
            self.style()
            .subControlRect(QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, self)
            .width()
        )
        return self.fontMetrics().elidedText(self.currentText(), Qt.TextElideMode.ElideRight, max(room, 0))

    def paintEvent(self, _event) -> None:
        painter = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        opt.currentText = self.shown_text()
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)

    def _update_tooltip(self, index: int) -> None:
        whole = ""
        if index >= 0:
            whole = str(self.itemData(index, Qt.ItemDataRole.ToolTipRole) or self.itemText(index))
        self.setToolTip("\n".join(t for t in (whole, self._purpose) if t))
