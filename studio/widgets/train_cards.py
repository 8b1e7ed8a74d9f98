"""The Train panel's rows of big numbers: step, losses, learning rate, gradient norm, speed, time so far and ETA;
and under them the objective's own metrics (the words are studio/state/train_summary.py's)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout

from studio import theme
from studio.state.train_summary import metric_caption, metric_text, metric_tooltip

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


class MetricCards:
    """The objective's own metrics at the latest evaluation (perplexity, masked-token accuracy, pair accuracy, …):
    one card per metric the shown run reports, on the validation text, the training text's value in its tooltip.
    They sit in the row under the cards of CARDS, in the same grid, so they line up; a long caption takes two
    columns."""

    def __init__(self, grid: QGridLayout, row: int = 1):
        self.grid = grid
        self.row = row
        self.cards: dict[str, StatCard] = {}
        self.names: list[str] = []

    def set_metrics(self, names: list[str]) -> None:
        """Cards for these metrics (keys of engine.objectives.catalog.METRIC_LABELS), in this order."""
        if names == self.names:
            return
        for card in self.cards.values():
            self.grid.removeWidget(card)
            card.setParent(None)
            card.deleteLater()
        self.cards = {}
        column = 0
        for name in names:
            caption = metric_caption(name)
            span = 2 if len(caption) > 20 else 1
            if column + span > len(CARDS):
                break  # more metrics than the row holds: the first ones, as the objective lists them
            self.cards[name] = StatCard(caption, metric_tooltip(name, None))
            self.grid.addWidget(self.cards[name], self.row, column, 1, span)
            self.cards[name].show()  # at once: a layout shows a widget added to a shown window one event later
            column += span
        self.names = list(names)

    def show_values(self, last: dict[str, float]) -> None:
        """The latest "<split>_<metric>" values (RunCurves.last_metrics)."""
        for name, card in self.cards.items():
            card.set(metric_text(name, last.get(f"val_{name}")))
            card.setToolTip(metric_tooltip(name, last.get(f"train_{name}")))

    def value(self, name: str) -> str:
        """The text a metric's card shows ('' when there is no card for it)."""
        card = self.cards.get(name)
        return card.value.text() if card is not None else ""
