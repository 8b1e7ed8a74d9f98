"""The head view: the tokens twice, side by side, and a line from each token (left) to each token it attends to
(right); the thicker and more opaque the line, the larger the weight. One colour per head. For cross-attention the
left column is the decoder's tokens and the right one the encoder's.

At 12 heads x 256 tokens there would be close to 400,000 lines, so only the strongest TOP_K keys of each query
above MIN_WEIGHT are kept, at most MAX_LINES of them (the strongest) are drawn at rest, in batches of one pen
(head x a few opacity steps), into a cached picture: hovering and scrolling only copy it.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from studio.widgets.heatmap import clip_label

MIN_WEIGHT = 0.02
TOP_K = 8
MAX_LINES = 1500  # the strongest lines drawn at rest; a hovered token shows all of its own
ROW_PX = 18
LEVELS = 8  # opacity steps: lines of one head are batched per step
# Twelve colours that stay apart (Okabe-Ito first, then Tableau's), cycled for more heads.
HEAD_COLORS = [
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#d55e00",
    "#cc79a7",
    "#56b4e9",
    "#f0e442",
    "#000000",
    "#9467bd",
    "#8c564b",
    "#17becf",
    "#bcbd22",
]


def head_color(head: int, dark: bool = False) -> QColor:
    c = QColor(HEAD_COLORS[head % len(HEAD_COLORS)])
    if dark and c == QColor("#000000"):
        c = QColor("#e6e6e6")  # black lines vanish on a dark window
    return c


def strongest_links(
    attn: np.ndarray, heads: list[int], min_weight: float = MIN_WEIGHT, top_k: int = TOP_K
) -> list[tuple[int, int, int, float]]:
    """(head, query, key, weight) for the top_k keys of each query with weight >= min_weight, per head,
    strongest first.

    attn is [H, T, T] (one layer, possibly a window of the tokens)."""
    out = []
    T = attn.shape[-1]
    k = min(top_k, T)
    for h in heads:
        a = np.asarray(attn[h], dtype=np.float32)
        if k < T:
            idx = np.argpartition(-a, k - 1, axis=1)[:, :k]  # (T, k), unordered
        else:
            idx = np.broadcast_to(np.arange(T), (T, T))
        w = np.take_along_axis(a, idx, axis=1)
        q, j = np.nonzero(w >= min_weight)
        keys = idx[q, j]
        out.extend(zip([h] * len(q), q.tolist(), keys.tolist(), w[q, j].tolist()))
    out.sort(key=lambda link: -link[3])  # strongest first: a cap on how many are drawn keeps these
    return out


class HeadView(QWidget):
    tokenHovered = Signal(str, int)  # side ("query" | "key" | ""), token index in the window (-1: none)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.attn = np.zeros((0, 0, 0), dtype=np.float32)
        self.tokens: list[str] = []  # the queries (left)
        self.key_tokens: list[str] = []  # the keys (right): the same tokens but for cross-attention
        self.cross = False
        self.offset = 0
        self.heads: list[int] = []
        self.links: list[tuple[int, int, int, float]] = []
        self.hover: tuple[str, int] | None = None
        self._base: QPixmap | None = None
        self.setToolTip(
            "Lines go from each token (left) to the tokens it attends to (right); thicker and darker "
            "means more attention. Hover a token to see only its lines."
        )

    def set_attention(
        self,
        attn: np.ndarray,
        tokens: list[str],
        heads: list[int],
        offset: int = 0,
        key_tokens: list[str] | None = None,
    ) -> None:
        """attn [H, Tq, Tk] of one layer (a window of the text: `offset` is the first token's position); `tokens`
        label the queries, `key_tokens` the keys when they differ (cross-attention)."""
        attn = np.asarray(attn)
        keys = tokens if key_tokens is None else key_tokens
        if attn.ndim != 3 or attn.shape[1:] != (len(tokens), len(keys)):
            raise ValueError(f"attention of shape {attn.shape} does not match {len(tokens)} x {len(keys)} tokens")
        self.attn, self.tokens, self.offset = attn, [clip_label(t, 14) for t in tokens], offset
        self.key_tokens = [clip_label(t, 14) for t in keys]
        self.cross = key_tokens is not None
        self.heads = [h for h in heads if 0 <= h < attn.shape[0]]
        self.links = strongest_links(attn, self.heads)
        self._base = None
        if self.hover is not None and self.hover[1] >= len(self.side_tokens(self.hover[0])):
            self.hover = None
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.set_attention(np.zeros((0, 0, 0)), [], [])

    # ------------------------------------------------------------------------------------------------- geometry
    def side_tokens(self, side: str) -> list[str]:
        return self.tokens if side == "query" else self.key_tokens

    def _rows(self) -> int:
        return max(len(self.tokens), len(self.key_tokens))

    def _columns(self) -> tuple[float, float, int]:
        fm = QFontMetrics(self.font())
        text_w = max([fm.horizontalAdvance(t) for t in (*self.tokens, *self.key_tokens)] + [20]) + 8
        return float(text_w + 4), float(self.width() - text_w - 4), text_w

    def _row_y(self, i: int) -> float:
        return 24 + i * ROW_PX + ROW_PX / 2

    def sizeHint(self) -> QSize:
        return QSize(360, 24 + max(1, self._rows()) * ROW_PX + 8)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, 24 + max(1, self._rows()) * ROW_PX + 8)

    def token_at(self, pos: QPointF) -> tuple[str, int] | None:
        left, right, text_w = self._columns()
        i = int((pos.y() - 24) // ROW_PX)
        side = "query" if pos.x() <= left else "key" if pos.x() >= right else None
        if side is None or not 0 <= i < len(self.side_tokens(side)):
            return None
        return side, i

    def token_point(self, side: str, i: int) -> QPointF:
        left, right, text_w = self._columns()
        return QPointF(left - text_w / 2 if side == "query" else right + text_w / 2, self._row_y(i))

    def visible_links(self) -> list[tuple[int, int, int, float]]:
        """The lines drawn at full strength: all of them, or only the hovered token's."""
        if self.hover is None:
            return self.links
        side, i = self.hover
        pos = 1 if side == "query" else 2
        return [link for link in self.links if link[pos] == i]

    # ------------------------------------------------------------------------------------------------- paint
    def changeEvent(self, event) -> None:
        if event.type() in (event.Type.PaletteChange, event.Type.FontChange):
            self._base = None
        super().changeEvent(event)

    def resizeEvent(self, event) -> None:
        self._base = None
        super().resizeEvent(event)

    def _draw_links(self, painter: QPainter, links, dark: bool, faint: bool = False) -> None:
        """Lines batched by (head, strength step): one pen and one drawLines call per batch."""
        left, right, _ = self._columns()
        batches: dict[tuple[int, int], list[QLineF]] = {}
        for h, q, k, w in links:
            level = min(LEVELS - 1, int(w * LEVELS))
            batches.setdefault((h, level), []).append(QLineF(left + 2, self._row_y(q), right - 2, self._row_y(k)))
        for (h, level), lines in sorted(batches.items(), key=lambda kv: kv[0][1]):
            color = head_color(h, dark)
            strength = (level + 1) / LEVELS
            color.setAlphaF(0.06 if faint else min(1.0, 0.15 + 0.85 * strength))
            pen = QPen(color)
            pen.setWidthF(1.0 + 2.5 * strength)
            painter.setPen(pen)
            painter.drawLines(lines)

    def _draw_tokens(self, painter: QPainter, only: tuple[str, int] | None = None) -> None:
        pal = self.palette()
        left, right, text_w = self._columns()
        for i in range(self._rows()):
            y = int(self._row_y(i) - ROW_PX / 2)
            for side, rect, align in (
                ("query", QRect(0, y, int(left) - 4, ROW_PX), Qt.AlignmentFlag.AlignRight),
                ("key", QRect(int(right) + 4, y, text_w, ROW_PX), Qt.AlignmentFlag.AlignLeft),
            ):
                tokens = self.side_tokens(side)
                if i >= len(tokens) or (only is not None and only != (side, i)):
                    continue
                token = tokens[i]
                if only is not None:
                    painter.fillRect(rect.adjusted(-2, 0, 2, 0), pal.color(QPalette.ColorRole.Highlight))
                    painter.setPen(pal.color(QPalette.ColorRole.HighlightedText))
                else:
                    painter.setPen(pal.color(QPalette.ColorRole.WindowText))
                painter.drawText(rect, align | Qt.AlignmentFlag.AlignVCenter, token)

    def _render_base(self) -> QPixmap:
        """Every line and label, drawn once per data, size and palette: hover and scrolling only copy it."""
        dpr = self.devicePixelRatioF()
        pix = QPixmap(int(self.width() * dpr), int(self.height() * dpr))
        pix.setDevicePixelRatio(dpr)
        pix.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pix)
        pal = self.palette()
        dark = pal.color(QPalette.ColorRole.Window).lightness() < 128
        left, right, text_w = self._columns()
        painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
        words = ("from (decoder)", "to (encoder)") if self.cross else ("from", "to")
        painter.drawText(QRect(0, 2, int(left) + 120, 20), Qt.AlignmentFlag.AlignLeft, words[0])
        painter.drawText(
            QRect(int(right) - 120, 2, self.width() - int(right) + 116, 20), Qt.AlignmentFlag.AlignRight, words[1]
        )
        if not self.tokens:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No attention to show yet.")
        else:
            # No antialiasing: Qt's raster engine strokes antialiased lines wider than 1 px ~100x slower.
            self._draw_links(painter, self.links[:MAX_LINES], dark)
            self._draw_tokens(painter)
        painter.end()
        return pix

    def paintEvent(self, event) -> None:
        if self._base is None:
            self._base = self._render_base()
        painter = QPainter(self)
        painter.drawPixmap(event.rect(), self._base, self._source_rect(event.rect()))
        if self.hover is not None and self.tokens:
            pal = self.palette()
            fade = pal.color(QPalette.ColorRole.Window)
            fade.setAlpha(215)
            left, right, _ = self._columns()
            painter.fillRect(QRect(int(left), 0, int(right - left), self.height()), fade)
            self._draw_links(painter, self.visible_links(), pal.color(QPalette.ColorRole.Window).lightness() < 128)
            self._draw_tokens(painter, only=self.hover)
        painter.end()

    def _source_rect(self, rect: QRect) -> QRect:
        dpr = self.devicePixelRatioF()
        return QRect(int(rect.x() * dpr), int(rect.y() * dpr), int(rect.width() * dpr), int(rect.height() * dpr))

    # ------------------------------------------------------------------------------------------------- mouse
    def mouseMoveEvent(self, event) -> None:
        self._set_hover(self.token_at(event.position()))

    def leaveEvent(self, event) -> None:
        self._set_hover(None)

    def _set_hover(self, hover: tuple[str, int] | None) -> None:
        if hover != self.hover:
            self.hover = hover
            self.tokenHovered.emit(*(hover or ("", -1)))
            self.update()
