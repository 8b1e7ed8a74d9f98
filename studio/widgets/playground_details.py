"""The Playground's token details: what the model thought at one written token — its probability, the entropy
of the choice, the alternatives as bars, and where it looked (one layer and head, or the mean of the heads).
The words and the arithmetic are in studio/state/playground.py; this paints them."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QTextBrowser, QVBoxLayout, QWidget

from studio import theme
from studio.state.playground import (
    NO_TOKEN,
    attention_html,
    entropy_text,
    html_text,
    probability_text,
    strongest_text,
    token_heading,
    visible,
)


class AlternativesBars(QWidget):
    """The model's top choices at one position as horizontal bars; the chosen token is highlighted."""

    ROW = 20

    def __init__(self, parent=None, plain: bool = False):
        super().__init__(parent)
        self.rows: list[tuple[str, float]] = []
        self.chosen: str | None = None
        # plain: the rows are words (an answer), shown as they are; else tokens, with their spaces made visible.
        self._shown = (lambda text: text) if plain else visible
        self.label_cap = 240 if plain else 110  # a class name is words; a token is short
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "What the model considered writing here, with the probability it gave each (temperature "
            "1). The highlighted bar is the token that was written."
        )

    def set_rows(self, rows: list, chosen: str | None) -> None:
        self.rows = [(str(t), float(pr)) for t, pr in rows]
        # The engine names alternatives in their readable form (␣ for a space), the chosen token in raw text.
        self.chosen = self._shown(chosen) if chosen is not None else None
        self.setFixedHeight(max(1, len(self.rows)) * self.ROW + 4)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(260, max(1, len(self.rows)) * self.ROW + 4)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        fm = painter.fontMetrics()
        bold = painter.font()
        bold.setBold(True)
        # Measured in bold: the chosen row is drawn bold, and measured plainly its first letters were cut.
        wide = QFontMetrics(bold)
        label_w = min(self.label_cap, max([wide.horizontalAdvance(self._shown(t)) for t, _ in self.rows] + [30]) + 8)
        value_w = fm.horizontalAdvance("100.0 %") + 6
        bar_w = max(10, self.width() - label_w - value_w - 4)
        for i, (text, prob) in enumerate(self.rows):
            y = 2 + i * self.ROW
            chosen = self._shown(text) == self.chosen
            painter.setPen(pal.color(QPalette.ColorRole.WindowText))
            font = painter.font()
            font.setBold(chosen)
            painter.setFont(font)
            painter.drawText(
                0,
                y,
                label_w - 6,
                self.ROW,
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                (wide if chosen else fm).elidedText(self._shown(text), Qt.TextElideMode.ElideRight, label_w - 6),
            )
            color = QColor(theme.ACCENT) if chosen else pal.color(QPalette.ColorRole.Mid)
            painter.fillRect(label_w, y + 3, max(1, int(bar_w * prob)), self.ROW - 6, color)
            painter.drawText(
                label_w + bar_w + 4,
                y,
                value_w,
                self.ROW,
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                f"{100 * prob:.1f} %",
            )
        painter.end()


class TokenDetails(QWidget):
    """What the model thought at one generated token."""

    attentionWanted = Signal()  # the layer or head changed: redraw from the cached reply

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 0, 0, 0)
        lay.addWidget(QLabel("<b>Token details</b>"))
        self.token_label = QLabel(NO_TOKEN)
        self.token_label.setWordWrap(True)
        lay.addWidget(self.token_label)
        self.prob_label = QLabel("")
        self.prob_label.setToolTip("The probability the model gave this token (temperature 1, before top-k/top-p).")
        self.entropy_label = QLabel("")
        self.entropy_label.setWordWrap(True)
        self.entropy_label.setToolTip(
            "Entropy of the model's choice here, in nats: 0 means it was sure; higher "
            "means it spread its bets over many tokens."
        )
        lay.addWidget(self.prob_label)
        lay.addWidget(self.entropy_label)
        lay.addWidget(QLabel("Alternatives"))
        self.bars = AlternativesBars()
        lay.addWidget(self.bars)
        lay.addSpacing(6)
        lay.addWidget(QLabel("<b>Where it looked</b> before writing this token"))
        lay.addLayout(self._build_picker())
        self.attention_text = QTextBrowser()
        self.attention_text.setToolTip(
            "The prompt and the tokens written before this one; the stronger the colour, "
            "the more attention the model paid to that token when choosing this one."
        )
        self.attention_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        lay.addWidget(self.attention_text, 1)
        self.strongest_label = QLabel("")
        self.strongest_label.setWordWrap(True)
        lay.addWidget(self.strongest_label)
        self.setMinimumWidth(260)

    def _build_picker(self) -> QHBoxLayout:
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Layer"))
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Which layer's attention to show (layer 0 reads the tokens first).")
        self.layer_combo.currentIndexChanged.connect(lambda *_: self.attentionWanted.emit())
        pick.addWidget(self.layer_combo)
        pick.addWidget(QLabel("Head"))
        self.head_combo = QComboBox()
        self.head_combo.setToolTip("One head, or the mean of all heads of the layer.")
        # Filled later: sized empty, it cut "mean of heads"; that item is always there, so room for it is reserved.
        self.head_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.head_combo.setMinimumContentsLength(len("mean of heads") + 1)
        self.head_combo.currentIndexChanged.connect(lambda *_: self.attentionWanted.emit())
        pick.addWidget(self.head_combo)
        pick.addStretch(1)
        return pick

    def show_token(self, token: dict, index: int, n_tokens: int) -> None:
        self.token_label.setText(token_heading(token, index, n_tokens))
        self.prob_label.setText(probability_text(token.get("prob")))
        self.entropy_label.setText(entropy_text(token.get("entropy")))
        self.bars.set_rows(token.get("top") or [], token["text"])
        self.attention_text.setHtml("")
        self.strongest_label.setText("")

    def set_shape(self, n_layer: int, n_head: int) -> None:
        if self.layer_combo.count() != n_layer:
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            for layer in range(n_layer):
                self.layer_combo.addItem(f"{layer}", layer)
            self.layer_combo.setCurrentIndex(n_layer - 1)
            self.layer_combo.blockSignals(False)
        if self.head_combo.count() != n_head + 1:
            self.head_combo.blockSignals(True)
            self.head_combo.clear()
            self.head_combo.addItem("mean of heads", -1)
            for h in range(n_head):
                self.head_combo.addItem(f"{h}", h)
            self.head_combo.blockSignals(False)

    def show_attention(self, tokens: list[str], weights: np.ndarray) -> None:
        """Colour each earlier token by the weight it got; list the strongest."""
        base = self.palette().color(QPalette.ColorRole.Highlight)
        self.attention_text.setHtml(attention_html(tokens, weights, (base.red(), base.green(), base.blue())))
        self.strongest_label.setText(strongest_text(tokens, weights))

    def clear(self) -> None:
        self.token_label.setText(NO_TOKEN)
        self.prob_label.setText("")
        self.entropy_label.setText("")
        self.bars.set_rows([], None)
        self.attention_text.setHtml("")
        self.strongest_label.setText("")

    def show_note(self, text: str) -> None:
        self.attention_text.setHtml(f"<i>{html_text(text)}</i>")
        self.strongest_label.setText("")

    def layer(self) -> int:
        return max(0, self.layer_combo.currentIndex())

    def head(self) -> int:
        data = self.head_combo.currentData()
        return -1 if data is None else int(data)
