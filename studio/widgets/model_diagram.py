"""The Model panel's block diagram: Embedding → N × [Norm → Attention → Norm → MLP] → Norm → LM head, drawn from
a ModelConfig (the boxes' words come from studio/state/model_form.py)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.config import ModelConfig
from studio.state.model_form import ASSUMED_CHAR_VOCAB, diagram_boxes
from studio.widgets.form_helpers import error_color, muted_color

# Box colours by role (norms grey); their fill is the same colour, mostly transparent.
ACCENTS = {
    "embed": (80, 140, 255),
    "attn": (255, 150, 40),
    "mlp": (60, 190, 110),
    "head": (170, 110, 255),
    "norm": (150, 150, 150),
}


class ArchitectureDiagram(QWidget):
    """Embedding → N × [Norm → Attention → Norm → MLP] → Norm → LM head, redrawn from a ModelConfig."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ModelConfig()
        self.vocab_size = ASSUMED_CHAR_VOCAB
        self.problem = ""  # why the model in the form cannot be built; then no model is drawn
        self.setMinimumSize(250, self._content_height())
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip(
            "The model drawn from the settings: each token passes through the embedding, then N "
            "identical blocks (each adds attention and MLP results to a running residual stream), "
            "then a final norm and the LM head that scores every possible next token."
        )

    def _content_height(self) -> int:
        # 9 rows of boxes, the block frame's title and bottom margin, and a little air
        return 9 * (self.fontMetrics().height() + 10 + 12) + 14 + 10 + 4

    def sizeHint(self):
        return QSize(280, self._content_height())

    def set_model(self, m: ModelConfig, vocab_size: int) -> None:
        self.model, self.vocab_size, self.problem = m, vocab_size, ""
        self.update()

    def set_problem(self, message: str) -> None:
        """Draw no model, only why there is none: a diagram of an impossible model (3 heads × 42 for a width
        of 128) would show something the trainer never builds."""
        self.problem = message
        self.update()

    def boxes(self) -> list[tuple[str, str]]:
        """The diagram's boxes as (role, text), top to bottom (none while the model is impossible); also what
        tests read."""
        if self.problem:
            return []
        return diagram_boxes(self.model, self.vocab_size)

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
        text = QColor(pal.color(QPalette.ColorRole.WindowText))
        line = QColor(pal.color(QPalette.ColorRole.Mid))
        x, w = 10.0, self.width() - 20
        centers, block_top, block_bottom = self._paint_boxes(qp, pal, x, w)
        # arrows between consecutive boxes
        qp.setPen(QPen(line, 1.2))
        for (cx, _, bottom), (_, top, _) in zip(centers, centers[1:]):
            qp.drawLine(QPointF(cx, bottom + 1), QPointF(cx, top - 2))
            qp.drawLine(QPointF(cx, top - 2), QPointF(cx - 3, top - 6))
            qp.drawLine(QPointF(cx, top - 2), QPointF(cx + 3, top - 6))
        # the repeated block
        frame = QRectF(x + 2, block_top, w - 4, block_bottom - block_top)
        pen = QPen(line, 1.2, Qt.PenStyle.DashLine)
        qp.setPen(pen)
        qp.drawRoundedRect(frame, 7, 7)
        f = QFont(self.font())
        f.setBold(True)
        qp.setFont(f)
        qp.setPen(text)
        qp.drawText(
            QRectF(frame.left() + 8, frame.top() + 2, frame.width() - 16, 18),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            f"× {self.model.n_layer} block{'s' if self.model.n_layer != 1 else ''}",
        )

    def _paint_boxes(self, qp: QPainter, pal: QPalette, x: float, w: float):
        """The boxes top to bottom; returns each box's (centre x, top, bottom) and the block frame's top and
        bottom (boxes 2-5 are the repeated block, drawn indented inside it)."""
        fm = self.fontMetrics()
        bh = fm.height() + 10
        gap = 12
        y = 6.0
        block_top = block_bottom = 0.0
        centers = []
        for i, (role, label) in enumerate(self.boxes()):
            if i == 2:
                y += 14  # room for the block frame's title
                block_top = y - 20
            inner = 2 <= i <= 5
            rect = QRectF(x + (12 if inner else 0), y, w - (24 if inner else 0), bh)
            self._paint_box(qp, pal, rect, role, label)
            centers.append((rect.center().x(), rect.top(), rect.bottom()))
            if i == 5:
                block_bottom = y + bh + 8
                y += 10
            y += bh + gap
        return centers, block_top, block_bottom

    def _paint_box(self, qp: QPainter, pal: QPalette, rect: QRectF, role: str, label: str) -> None:
        if role == "io":
            qp.setPen(muted_color(self))
            qp.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
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
        qp.setPen(QColor(pal.color(QPalette.ColorRole.WindowText)))
        qp.drawText(
            rect.adjusted(6, 0, -6, 0),
            Qt.AlignmentFlag.AlignCenter,
            self.fontMetrics().elidedText(label, Qt.TextElideMode.ElideRight, int(rect.width() - 12)),
        )

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
