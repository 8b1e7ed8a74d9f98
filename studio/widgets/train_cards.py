"""The Train panel's row of big numbers: step, losses, learning rate, gradient norm, speed, time so far and ETA."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout

from studio import theme

# (key, caption, tooltip), left to right.
CARDS = [
    ("step", "Step", "Training steps done (one step = one optimizer update on one batch)."),
    ("train_loss", "Train loss", "Loss on the latest training batch, in nats per token. Lower is better."),
    (
        "val_loss",
        "Val loss",
        "Loss on held-out text at the latest evaluation: how well the model generalises. Lower is better.",
    ),
    ("lr", "Learning rate", "Current step size of the optimizer (warm-up, then cosine decay)."),
    ("grad_norm", "Grad norm", "Size of the gradient before clipping; spikes mean unstable training."),
    ("speed", "Speed", "Training throughput in tokens per second."),
    ("elapsed", "Elapsed", "Training time so far."),
    ("eta", "ETA", "Estimated time until the run reaches max_iters."),
]


class StatCard(QFrame):
    """A big number with a small caption."""

    def __init__(self, caption: str, tooltip: str, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(0)
        self.caption = theme.description_label(caption)
        self.value = QLabel("—")
        font = self.value.font()
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.value.setFont(font)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.caption)
        lay.addWidget(self.value)
        self.setToolTip(tooltip)

    def set(self, text: str) -> None:
        self.value.setText(text)


def stat_cards() -> tuple[QGridLayout, dict[str, StatCard]]:
    """One row of CARDS in a grid, and the cards by key."""
    grid = QGridLayout()
    grid.setSpacing(6)
    cards: dict[str, StatCard] = {}
    for i, (key, caption, tip) in enumerate(CARDS):
        cards[key] = StatCard(caption, tip)
        grid.addWidget(cards[key], 0, i)
    return grid, cards
