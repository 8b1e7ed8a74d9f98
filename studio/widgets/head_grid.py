"""The model view: every head of every layer as a small attention thumbnail, labelled with its pattern.

Thousands of ImageItems would make a 12 x 12 model crawl, so the grid is one widget painting one mosaic image:
set_attention() shrinks every head to about the cell's size in pixels (block maximum, so sharp lines survive),
colours all of them with one table lookup, and paintEvent only scales rectangles of that mosaic.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPaintEngine, QPainter, QPalette, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QToolTip, QWidget

from studio.state.attention import PATTERNS, downsample_max, square_up
from studio.widgets.heatmap import lookup_table

MAX_CELL_PX = 150
MIN_CELL_PX = 14
GAP = 6
# Okabe-Ito colours: told apart with common colour-vision deficiencies.
PATTERN_COLORS = {
    "previous-token": "#56b4e9",
    "next-token": "#0072b2",
    "first-token": "#e69f00",
    "self": "#cc79a7",
    "local": "#009e73",
    "induction": "#d55e00",
    "aligned": "#f0e442",
    "mixed": "#8b949e",
}
SHORT = {
    "previous-token": "prev",
    "next-token": "next",
    "first-token": "first",
    "self": "self",
    "local": "local",
    "induction": "induct",
    "aligned": "aligned",
    "mixed": "mixed",
}


def pattern_color(label: str | None) -> QColor:
    return QColor(PATTERN_COLORS.get(label or "", "#8b949e"))


def to_color_index(values: np.ndarray, levels: tuple[float, float] | None) -> np.ndarray:
    """uint8 colour-table indices for values [..., t, t]; levels None stretches each matrix to its own max."""
    v = np.asarray(values, dtype=np.float32)
    if levels is None:
        hi = v.max(axis=(-2, -1), keepdims=True)
        scale = 255.0 / np.maximum(hi, 1e-6)
        lo = 0.0
    else:
        lo, hi = levels
        scale = 255.0 / max(hi - lo, 1e-6)
    out = (v - lo) * scale if lo else v * scale
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


class HeadGrid(QWidget):
    """Layers as rows, heads as columns (then optional summary columns such as 'mean' and 'rollout')."""

    cellClicked = Signal(int, int)  # layer, column

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 160)
        self.n_layer = 0
        self.n_head = 0
        self.columns: list[str] = []  # titles: "0", "1", ..., then summary names
        self.labels: list[list[dict]] = []
        self.mosaic: np.ndarray | None = None
        self.image: QImage | None = None
        self.thumb = 0  # data pixels per thumbnail side
        self._source = None  # what the mosaic was made from, to remake it at a new size
        self._built_for = 0
        self._geom = None
        self._caption_cache = None
        self.selected: tuple[int, int] | None = None
        self.hovered: tuple[int, int] | None = None
        lut = lookup_table().astype(np.uint32)
        self._lut32 = (0xFF000000 | (lut[:, 0] << 16) | (lut[:, 1] << 8) | lut[:, 2]).astype(np.uint32)
        self.small_font = QFont(self.font())
        self.small_font.setPointSizeF(max(6.5, self.font().pointSizeF() * 0.82))

    # ------------------------------------------------------------------------------------------------ data
    def set_attention(
        self,
        attn: np.ndarray,
        labels: list[list[dict]] | None = None,
        summaries: dict[str, np.ndarray] | None = None,
        levels: tuple[float, float] | None = (0.0, 1.0),
    ) -> None:
        """attn [L, H, Tq, Tk]; summaries name -> [L, Tq, Tk] become extra columns; levels None = stretch each cell.
        Every map is drawn whole (an encoder's has no causal triangle); cross-attention (Tq != Tk) is stretched to
        a square thumbnail."""
        attn = square_up(attn)
        summaries = {name: square_up(v) for name, v in summaries.items()} if summaries else summaries
        L, H = attn.shape[:2]
        names = [str(h) for h in range(H)] + list(summaries or {})
        layout_changed = (L, H, names) != (self.n_layer, self.n_head, self.columns)
        self.n_layer, self.n_head, self.columns = L, H, names
        self.labels = labels or []
        self._caption_cache = None
        self._source = (attn, summaries, levels)
        self._build_mosaic()
        if self.selected is not None and not (self.selected[0] < L and self.selected[1] < len(names)):
            self.selected = None
        if layout_changed:
            self.updateGeometry()
        self.update()

    def _thumb_target(self) -> int:
        """Thumbnail resolution: the cell's size in device pixels, so a thumbnail is drawn about 1:1 (a fast
        blit that loses no line to resampling)."""
        return max(8, min(MAX_CELL_PX, int(self._cell_size() * self.devicePixelRatioF())))

    def _build_mosaic(self) -> None:
        attn, summaries, levels = self._source
        L = attn.shape[0]
        target = self._thumb_target()
        self._built_for = target
        parts = [downsample_max(attn, target)]
        for values in (summaries or {}).values():
            parts.append(downsample_max(np.asarray(values), target)[:, None])
        cells = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]  # (L, C, t, t)
        idx = to_color_index(cells, levels)
        C, t = cells.shape[1], cells.shape[-1]
        idx = idx.transpose(0, 2, 1, 3).reshape(L * t, C * t)  # rows of thumbnails side by side
        # 0xffRRGGBB words: Qt's native raster format, drawn without a conversion per thumbnail.
        self.mosaic = np.take(self._lut32, idx)
        self.image = QImage(self.mosaic.data, C * t, L * t, C * t * 4, QImage.Format.Format_RGB32)
        self.thumb = t

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._source is not None and self._thumb_target() != self._built_for:
            self._build_mosaic()

    def clear(self) -> None:
        self.n_layer = self.n_head = 0
        self.columns, self.labels, self.mosaic, self.image = [], [], None, None
        self._source = None
        self.update()

    def label(self, layer: int, column: int) -> dict | None:
        if column >= self.n_head:
            return None
        try:
            return self.labels[layer][column]
        except (IndexError, TypeError):
            return None

    def cell_pixels(self, layer: int, column: int) -> np.ndarray:
        """The thumbnail shown in a cell, as 0xffRRGGBB words (tests and export look at it)."""
        t = self.thumb
        return self.mosaic[layer * t : (layer + 1) * t, column * t : (column + 1) * t]

    def select(self, layer: int, column: int) -> None:
        self.selected = (layer, column)
        self.update()

    # ---------------------------------------------------------------------------------------------- geometry
    def _geometry(self) -> tuple[QFontMetrics, int, int, int, int]:
        """(font metrics, left margin, top margin, caption height, cell size); cached per size and shape,
        since painting asks for it once per cell."""
        key = (self.width(), self.height(), self.n_layer, len(self.columns), self.n_head)
        if self._geom is not None and self._geom[0] == key:
            return self._geom[1]
        fm = QFontMetrics(self.small_font)
        left = fm.horizontalAdvance(f"L{max(0, self.n_layer - 1)}") + 10
        top = fm.height() + 4
        label_h = fm.height() + 5  # room for the selection frame between a thumbnail and its caption
        size = 0
        if self.n_layer and self.columns:
            extra = GAP if len(self.columns) > self.n_head else 0
            w = (self.width() - left - 4 - extra) / len(self.columns) - GAP
            h = (self.height() - top - 4) / self.n_layer - label_h - GAP
            size = int(max(MIN_CELL_PX, min(MAX_CELL_PX, w, h)))
        self._geom = (key, (fm, left, top, label_h, size))
        return self._geom[1]

    def _cell_size(self) -> int:
        return self._geometry()[4]

    def cell_rect(self, layer: int, column: int) -> QRect:
        """The thumbnail's rectangle (without its caption) in widget coordinates."""
        _, left, top, label_h, s = self._geometry()
        x = left + column * (s + GAP) + (GAP if column >= self.n_head else 0)
        y = top + layer * (s + label_h + GAP)
        return QRect(x, y, s, s)

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        _, left, top, label_h, s = self._geometry()
        if not s:
            return None
        layer = (pos.y() - top) // (s + label_h + GAP)
        for column in ((pos.x() - left) // (s + GAP), (pos.x() - left - GAP) // (s + GAP)):
            if (
                0 <= layer < self.n_layer
                and 0 <= column < len(self.columns)
                and self.cell_rect(layer, column).adjusted(0, 0, 0, label_h).contains(pos)
            ):
                return int(layer), int(column)
        return None

    def sizeHint(self) -> QSize:
        if not self.n_layer:
            return QSize(480, 360)
        _, left, top, label_h, _ = self._geometry()
        s = 72
        return QSize(left + len(self.columns) * (s + GAP) + GAP + 4, top + self.n_layer * (s + label_h + GAP) + 4)

    # ------------------------------------------------------------------------------------------------ paint
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        self.render_grid(painter)
        painter.end()

    def _captions(self, fm: QFontMetrics, width: int) -> dict[tuple[int, int], tuple[QPen, str]]:
        """(frame pen, elided caption) per labelled head; made once per data and cell size."""
        if self._caption_cache is not None and self._caption_cache[0] == width:
            return self._caption_cache[1]
        out = {}
        for layer in range(self.n_layer):
            for head in range(self.n_head):
                info = self.label(layer, head)
                if info is None:
                    continue
                pen = QPen(pattern_color(info.get("label")))
                pen.setWidth(2)
                caption = f"{SHORT.get(info.get('label'), info.get('label', ''))} {info.get('score', 0):.2f}"
                out[layer, head] = (pen, fm.elidedText(caption, Qt.TextElideMode.ElideRight, width))
        self._caption_cache = (width, out)
        return out

    def render_grid(self, painter: QPainter) -> None:
        pal = self.palette()
        text = pal.color(QPalette.ColorRole.WindowText)
        muted = pal.color(QPalette.ColorRole.PlaceholderText)
        painter.setFont(self.small_font)
        if self.image is None:
            painter.setPen(muted)
            painter.drawText(
                self.rect(),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                "No attention yet: the heads appear here at the run's first evaluation.",
            )
            return
        fm, left, top, label_h, s = self._geometry()
        # Smoothing only when shrinking (a window too small for the thumbnails); enlarging stays crisp.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, s * self.devicePixelRatioF() < self.thumb)
        t = self.thumb
        painter.setPen(muted)
        for column, title in enumerate(self.columns):
            r = self.cell_rect(0, column)
            name = f"H{title}" if column < self.n_head else title
            painter.drawText(
                QRect(r.x(), 0, s, top),
                Qt.AlignmentFlag.AlignCenter,
                fm.elidedText(name, Qt.TextElideMode.ElideRight, s + GAP),
            )
        for layer in range(self.n_layer):
            r0 = self.cell_rect(layer, 0)
            painter.drawText(
                QRect(0, r0.y(), left - 6, s), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"L{layer}"
            )
        # The SVG engine ignores a source rectangle (it embeds the whole mosaic per cell): give it one tile each.
        tiles = painter.paintEngine().type() == QPaintEngine.Type.SVG
        for layer in range(self.n_layer):
            for column in range(len(self.columns)):
                target = QRectF(self.cell_rect(layer, column))
                if tiles:
                    painter.drawImage(target, self.image.copy(column * t, layer * t, t, t))
                else:
                    painter.drawImage(target, self.image, QRectF(column * t, layer * t, t, t))
        captions = self._captions(fm, s + 4)
        for (layer, head), (pen, caption) in captions.items():
            r = self.cell_rect(layer, head)
            painter.setPen(pen)
            painter.drawRect(r.adjusted(-1, -1, 0, 0))
        painter.setPen(text)
        for (layer, head), (pen, caption) in captions.items():
            r = self.cell_rect(layer, head)
            painter.drawText(QRect(r.x() - 2, r.bottom() + 4, s + 4, label_h), Qt.AlignmentFlag.AlignHCenter, caption)
        for cell, color, width in (
            (self.hovered, pal.color(QPalette.ColorRole.Text), 1),
            (self.selected, pal.color(QPalette.ColorRole.Highlight), 3),
        ):
            if cell is not None and cell[0] < self.n_layer and cell[1] < len(self.columns):
                pen = QPen(color)
                pen.setWidth(width)
                painter.setPen(pen)
                painter.drawRect(self.cell_rect(*cell).adjusted(-3, -3, 2, 2))

    # ------------------------------------------------------------------------------------------------ mouse
    def mouseMoveEvent(self, event) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell != self.hovered:
            self.hovered = cell
            self.setCursor(Qt.CursorShape.PointingHandCursor if cell else Qt.CursorShape.ArrowCursor)
            self.update()

    def leaveEvent(self, event) -> None:
        if self.hovered is not None:
            self.hovered = None
            self.update()

    def mousePressEvent(self, event) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self.select(*cell)
            self.cellClicked.emit(*cell)

    def tooltip_for(self, layer: int, column: int) -> str:
        if column >= self.n_head:
            what = {
                "mean": "the average of all heads of this layer",
                "rollout": "attention rollout: how much each token draws on each input token through all "
                "layers up to this one (heads averaged, the residual path counted)",
            }.get(self.columns[column], self.columns[column])
            return f"<b>Layer {layer}, {self.columns[column]}</b><br>{what}.<br>Click to open it large."
        info = self.label(layer, column)
        head = f"<b>Layer {layer}, head {column}</b>"
        if info is None:
            return f"{head}<br>Click to open it large."
        scores = info.get("scores") or {}
        listed = " · ".join(f"{name} {value:.2f}" for name, value in scores.items())
        return (
            f"{head}<br><b>{info.get('label')}</b> (score {info.get('score', 0):.2f})<br>"
            f"<i>{info.get('explanation', '')}</i>"
            + (f"<br>{listed}" if listed else "")
            + "<br>Click to open it large."
        )

    def event(self, event) -> bool:
        if event.type() == event.Type.ToolTip:
            cell = self.cell_at(event.pos())
            if cell is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(event.globalPos(), self.tooltip_for(*cell), self)
            return True
        return super().event(event)


class PatternLegend(QWidget):
    """What the coloured frames mean; hover a pattern for its one-sentence explanation."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        # Eight patterns since encoders and cross-attention have their own: tight enough to fit at 1280 px.
        lay.setSpacing(6)
        title = QLabel("Head patterns:")
        title.setToolTip(
            "Every head gets the pattern it follows most (measured on the probe texts at each "
            "evaluation), or 'mixed' when none reaches 0.4."
        )
        lay.addWidget(title)
        self.items: dict[str, QLabel] = {}
        self.shown = list(PATTERNS)
        for name in PATTERNS:
            label = QLabel(f'<span style="color:{PATTERN_COLORS[name]}; font-size:14pt">■</span> {name}')
            label.setToolTip(name)
            self.items[name] = label
            lay.addWidget(label)
        lay.addStretch(1)

    def set_patterns(self, names) -> None:
        """Show only these patterns (the ones the heads on screen were scored on, and mixed); none: all."""
        names = set(names or PATTERNS) | {"mixed"}
        self.shown = [n for n in PATTERNS if n in names]
        for name, label in self.items.items():
            label.setVisible(name in names)

    def set_explanations(self, explanations: dict[str, str]) -> None:
        for name, text in explanations.items():
            if name in self.items:
                self.items[name].setToolTip(f"<b>{name}</b><br>{text}")
