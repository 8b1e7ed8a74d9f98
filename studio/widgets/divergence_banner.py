"""The Train panel's banner for a run the training-health guard paused: what probably happened, in words, and
one button that applies the suggested settings and resumes (Pause's "Resume" goes on without them)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton

from studio.widgets.form_helpers import MessageLine

APPLY_SHORTCUT = "Ctrl+Shift+A"


class DivergenceBanner(QFrame):
    applyClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        self.text = MessageLine()
        self.apply_button = QPushButton("Apply and resume")
        self.apply_button.setShortcut(APPLY_SHORTCUT)
        self.apply_button.clicked.connect(self._apply)
        row.addWidget(self.text, 1)
        row.addWidget(self.apply_button)
        self.advice: dict | None = None
        self.hide()

    def show_advice(self, advice: dict | None) -> None:
        """The advice of a paused Status (engine/health.py Advice.as_dict), or None to hide the banner."""
        self.advice = advice
        if not advice:
            self.hide()
            return
        self.text.show_message(str(advice.get("text") or ""), "warning")
        words = str(advice.get("change_words") or "")
        self.apply_button.setEnabled(bool(advice.get("changes")))
        self.apply_button.setToolTip(
            f"Resume from step {advice.get('rolled_back_to', 0):,} with {words} ({APPLY_SHORTCUT}). "
            "Resume (beside Pause) goes on with the settings as they were."
        )
        self.show()

    def _apply(self) -> None:
        if self.advice:
            self.apply_button.setEnabled(False)  # one request per pause
            self.applyClicked.emit()
