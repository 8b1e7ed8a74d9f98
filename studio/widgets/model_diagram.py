"""The Model panel's block diagram, drawn from a ModelConfig: a decoder, an encoder, or an encoder beside a
decoder with the encoder's output running into every decoder block's cross-attention.

Each stack shows the tokens coming in, the embedding, one block framed "× N blocks", and what comes out. The
residual additions are drawn as ⊕ with the branch that skips the sub-layer, so pre-norm (the branch skips the
norm too) and post-norm (the norm comes after the ⊕) look different; each attention box carries a small mask:
a triangle for causal attention, a full square where every token sees every other. The boxes and their words
are studio/state/architecture_diagram.py's.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from engine.config import ModelConfig
from studio.state.architecture_diagram import Box, Diagram, Stack, diagram
from studio.state.model_form import ASSUMED_CHAR_VOCAB
from studio.widgets.form_helpers import error_color, muted_color

# Box colours by role (norms grey); their fill is the same colour, mostly transparent.
ACCENTS = {
    "embed": (80, 140, 255),
    "attn": (255, 150, 40),
    "cross": (230, 80, 130),
    "mlp": (60, 190, 110),
    "head": (170, 110, 255),
    "norm": (150, 150, 150),
}
MARGIN = 10.0
GAP = 14.0  # between boxes: room for an arrow and a ⊕
COLUMN_GAP = 30.0  # between an encoder and its decoder: room for the cross-attention arrows
INDENT = 14.0  # block boxes sit inside the block's frame
TITLE_H = 18.0


@dataclass
class _Placed:
    """One stack laid out: its boxes' rectangles, the block frame, where its bypasses run."""

    stack: Stack
    rects: list[tuple[QRectF, Box]]
    block_start: int  # index in rects of the block's first box
    frame: QRectF
    title: QRectF
    bypass_x: float  # the x of the residual bypass lines
    bypass_side: int  # -1: bypasses left of the boxes, +1: right


class ArchitectureDiagram(QWidget):
    """The model drawn from a ModelConfig; redrawn on every valid edit."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ModelConfig()
        self.vocab_size = ASSUMED_CHAR_VOCAB
        self.problem = ""  # why the model in the form cannot be built; then no model is drawn
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        self.setToolTip(
            "The model drawn from the settings: each token passes through the embedding, then N identical blocks "
            "(each adds its attention and MLP results to a running residual stream, the ⊕), then what the "
            "objective reads off. Hover a box for its full text."
        )
        self._fit_size()

    # ------------------------------------------------------------------------------------------------ public
    def set_model(self, m: ModelConfig, vocab_size: int) -> None:
        self.model, self.vocab_size, self.problem = m, vocab_size, ""
        self._fit_size()
        self.update()

    def set_problem(self, message: str) -> None:
        """Draw no model, only why there is none: a diagram of an impossible model (3 heads × 42 for a width
        of 128) would show something the trainer never builds."""
        self.problem = message
        self.update()

    def diagram(self) -> Diagram | None:
        return None if self.problem else diagram(self.model, self.vocab_size)

    def boxes(self) -> list[Box]:
        """Every box as (role, text), stack by stack, top to bottom (none while the model is impossible); also
        what tests read."""
        d = self.diagram()
        return d.boxes() if d else []

    # ------------------------------------------------------------------------------------------------ layout
    def _box_height(self) -> float:
        return self.fontMetrics().height() + 10.0

    def _content_height(self) -> int:
        d = diagram(self.model, self.vocab_size)
        return int(max(self._place(s, 0, 100, -1).rects[-1][0].bottom() for s in d.stacks) + 8)

    def _fit_size(self) -> None:
        two = self.model.arch == "encoder-decoder"
        self.setMinimumSize(470 if two else 250, self._content_height())
        self.updateGeometry()

    def sizeHint(self):
        return QSize(520 if self.model.arch == "encoder-decoder" else 280, self._content_height())

    def _layout(self) -> list[_Placed]:
        d = diagram(self.model, self.vocab_size)
        n = len(d.stacks)
        width = (self.width() - 2 * MARGIN - COLUMN_GAP * (n - 1)) / n
        placed = []
        for i, stack in enumerate(d.stacks):
            x = MARGIN + i * (width + COLUMN_GAP)
            side = 1 if n == 2 and i == 1 else -1  # a decoder beside its encoder: bypasses away from the arrows
            placed.append(self._place(stack, x, width, side))
        return placed

    def _place(self, stack: Stack, x: float, w: float, side: int) -> _Placed:
        bh = self._box_height()
        title = QRectF(x, 4, w, TITLE_H)
        y = title.bottom() + 6
        rects: list[tuple[QRectF, Box]] = []
        for box in stack.inputs:
            rects.append((QRectF(x, y, w, bh), box))
            y += bh + GAP
        frame_top = y - GAP / 2 + 2
        y = frame_top + TITLE_H + 10  # the first branch leaves the stream below the frame's title
        block_start = len(rects)
        for box in stack.block:
            rects.append((QRectF(x + INDENT, y, w - 2 * INDENT, bh), box))
            y += bh + GAP
        frame = QRectF(x + 2, frame_top, w - 4, y - frame_top)
        y = frame.bottom() + GAP
        for box in stack.outputs:
            rects.append((QRectF(x, y, w, bh), box))
            y += bh + GAP
        bypass_x = x + INDENT / 2 if side < 0 else x + w - INDENT / 2
        return _Placed(stack, rects, block_start, frame, title, bypass_x, side)

    # ---------------------------------------------------------------------------------------------- painting
    def paintEvent(self, _event):
        qp = QPainter(self)
        qp.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.problem:
            self._paint_problem(qp)
        else:
            self._paint_model(qp)
        qp.end()

    def _paint_model(self, qp: QPainter) -> None:
        # Copies: the palette and its colours come back as references into the widget, which a palette change
        # while painting would leave dangling.
        pal = QPalette(self.palette())
        placed = self._layout()
        for p in placed:
            self._paint_stack(qp, pal, p)
        if len(placed) == 2:
            self._paint_cross(qp, pal, placed[0], placed[1])

    def _paint_stack(self, qp: QPainter, pal: QPalette, p: _Placed) -> None:
        text = QColor(pal.color(QPalette.ColorRole.WindowText))
        line = QColor(pal.color(QPalette.ColorRole.Mid))
        bold = QFont(self.font())
        bold.setBold(True)
        qp.setFont(bold)
        qp.setPen(muted_color(self))
        qp.drawText(p.title, Qt.AlignmentFlag.AlignCenter, p.stack.title)
        qp.setPen(QPen(line, 1.2))
        for (a, _), (b, _) in zip(p.rects, p.rects[1:]):
            _arrow(qp, QPointF(a.center().x(), a.bottom() + 1), QPointF(a.center().x(), b.top() - 2))
        qp.setPen(QPen(line, 1.2, Qt.PenStyle.DashLine))
        qp.drawRoundedRect(p.frame, 7, 7)
        n = p.stack.n_layers
        title = f"× {n} block{'s' if n != 1 else ''} · {self.model.norm_position}-norm"
        room = QRectF(p.frame.left() + 10, p.frame.top() + 2, p.frame.width() - 20, TITLE_H)
        width = min(QFontMetrics(bold).horizontalAdvance(title) + 8, room.width())
        spot = QRectF(room.right() - width if p.bypass_side < 0 else room.left(), room.top(), width, TITLE_H)
        qp.fillRect(spot, QColor(pal.color(QPalette.ColorRole.Window)))  # over the arrow that passes under it
        qp.setPen(text)
        qp.drawText(spot, Qt.AlignmentFlag.AlignCenter, title)
        qp.setFont(self.font())
        self._paint_residuals(qp, pal, p)
        for rect, (role, label) in p.rects:
            self._paint_box(qp, pal, rect, role, label, causal=p.stack.causal)

    def _paint_residuals(self, qp: QPainter, pal: QPalette, p: _Placed) -> None:
        """Per sub-layer: a branch leaves the stream above the box it starts at and comes back at a ⊕ below the
        sub-layer."""
        line = QColor(pal.color(QPalette.ColorRole.WindowText))
        line.setAlpha(150)
        block = p.rects[p.block_start : p.block_start + len(p.stack.block)]
        for branch, added in p.stack.residuals:
            top = block[branch][0]
            sub = block[added][0]
            cx, y0, y1 = sub.center().x(), top.top() - GAP / 2, sub.bottom() + GAP / 2
            qp.setPen(QPen(line, 1.1))
            path = QPainterPath(QPointF(cx, y0))
            path.lineTo(p.bypass_x, y0)
            path.lineTo(p.bypass_x, y1)
            path.lineTo(cx + 5 * p.bypass_side, y1)
            qp.drawPath(path)
            qp.setBrush(QColor(pal.color(QPalette.ColorRole.Base)))
            qp.drawEllipse(QPointF(cx, y1), 5.0, 5.0)
            qp.drawLine(QPointF(cx - 3, y1), QPointF(cx + 3, y1))
            qp.drawLine(QPointF(cx, y1 - 3), QPointF(cx, y1 + 3))
            qp.setBrush(Qt.BrushStyle.NoBrush)

    def _paint_cross(self, qp: QPainter, pal: QPalette, enc: _Placed, dec: _Placed) -> None:
        """The encoder's output into each cross-attention box of the decoder block."""
        color = QColor(*ACCENTS["cross"])
        qp.setPen(QPen(color, 1.4))
        source = enc.rects[-1][0]  # "→ every decoder block"
        start = QPointF(source.right(), source.center().y())
        mid_x = enc.frame.right() + COLUMN_GAP / 2
        for rect, (role, _) in dec.rects:
            if role != "cross":
                continue
            end = QPointF(rect.left() - 2, rect.center().y())
            path = QPainterPath(start)
            path.lineTo(mid_x, start.y())
            path.lineTo(mid_x, end.y())
            path.lineTo(end)
            qp.drawPath(path)
            _head(qp, end, QPointF(1, 0))

    def _paint_box(self, qp: QPainter, pal: QPalette, rect: QRectF, role: str, label: str, causal: bool) -> None:
        if role == "io":
            qp.setPen(muted_color(self))
            qp.drawText(rect, Qt.AlignmentFlag.AlignCenter, self._elided(label, rect.width() - 4))
            return
        line = QColor(pal.color(QPalette.ColorRole.Mid))
        accent = QColor(*ACCENTS[role]) if role in ACCENTS else line
        fill = QColor(accent)
        fill.setAlpha(55)
        path = QPainterPath()
        path.addRoundedRect(rect, 5, 5)
        qp.fillPath(path, QColor(pal.color(QPalette.ColorRole.Base)))
        qp.fillPath(path, fill)
        qp.setPen(QPen(accent, 1.2))
        qp.drawPath(path)
        text_rect = rect.adjusted(6, 0, -6, 0)
        if role in ("attn", "cross"):
            _mask_icon(qp, QRectF(rect.left() + 6, rect.center().y() - 5, 10, 10), accent, causal and role == "attn")
            text_rect.adjust(14, 0, 0, 0)
        qp.setPen(QColor(pal.color(QPalette.ColorRole.WindowText)))
        qp.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, self._elided(label, text_rect.width()))

    def _elided(self, text: str, width: float) -> str:
        return self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, int(width))

    def _paint_problem(self, qp: QPainter) -> None:
        area = QRectF(self.rect()).adjusted(12, 12, -12, -12)
        pen = QPen(error_color(self), 1.2, Qt.PenStyle.DashLine)
        qp.setPen(pen)
        qp.drawRoundedRect(area, 7, 7)
        qp.setPen(QColor(self.palette().color(QPalette.ColorRole.WindowText)))
        qp.drawText(
            area.adjusted(14, 14, -14, -14),
            Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
            f"No model to draw: {self.problem}.\n\nFix the marked field and the diagram comes back.",
        )

    # ---------------------------------------------------------------------------------------------- tooltips
    def box_at(self, point: QPointF) -> Box | None:
        """The box under a point of the widget (its full text may be elided on screen)."""
        if self.problem:
            return None
        for p in self._layout():
            for rect, box in p.rects:
                if rect.contains(point):
                    return box
        return None

    def event(self, e):
        if e.type() == QEvent.Type.ToolTip:
            box = self.box_at(QPointF(e.pos()))
            if box is not None:
                QToolTip.showText(e.globalPos(), box[1], self)
                return True
        return super().event(e)


def _arrow(qp: QPainter, a: QPointF, b: QPointF) -> None:
    qp.drawLine(a, b)
    _head(qp, b, QPointF(0, 1))


def _head(qp: QPainter, tip: QPointF, direction: QPointF) -> None:
    """Two short strokes behind `tip`, pointing along `direction` (a unit step right or down)."""
    back = QPointF(tip.x() - 4 * direction.x(), tip.y() - 4 * direction.y())
    side = QPointF(3 * direction.y(), 3 * direction.x())
    qp.drawLine(tip, back + side)
    qp.drawLine(tip, back - side)


def _mask_icon(qp: QPainter, r: QRectF, color: QColor, causal: bool) -> None:
    """Which keys a query sees: the lower triangle (causal) or the whole square (both ways)."""
    fill = QColor(color)
    fill.setAlpha(170)
    qp.setPen(QPen(color, 1.0))
    qp.setBrush(Qt.BrushStyle.NoBrush)
    qp.drawRect(r)
    if causal:
        qp.setBrush(fill)
        qp.drawPolygon(QPolygonF([r.topLeft(), r.bottomLeft(), r.bottomRight()]))
    else:
        qp.fillRect(r, fill)
    qp.setBrush(Qt.BrushStyle.NoBrush)
