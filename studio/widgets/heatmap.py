"""A heatmap of one attention matrix (pyqtgraph ImageItem, as in its MatrixDisplayExample): token labels on both
axes, a colour bar, and the query token, key token and weight under the mouse."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

# What the axes and the tooltip say, by the kind of attention shown (studio.state.attention's parts).
AXIS_WORDS = {
    "causal": (
        "query: the token that looks",
        "key: the token looked at",
        "Each row is a token looking back at the tokens before it; a bright cell means it pays much "
        "attention to that token. Hover a cell for the tokens and the weight; scroll to zoom.",
    ),
    "bidirectional": (
        "query: the token that looks",
        "key: the token looked at",
        "Each row is a token looking at every token of the text, before and after it (an encoder reads both "
        "ways); a bright cell means it pays much attention to that token. Hover a cell for the tokens and the "
        "weight; scroll to zoom.",
    ),
    "cross": (
        "query: the decoder's token that looks",
        "key: the encoder's token looked at",
        "Each row is a token of the decoder's text looking at the encoder's tokens (the input); a bright cell "
        "means it pays much attention to that input token. Hover a cell for the tokens and the weight; scroll "
        "to zoom.",
    ),
}
COLORMAP = "inferno"  # perceptually uniform, reads in light and dark themes, prints in grey
MAX_LABEL_CHARS = 10


def colormap() -> pg.ColorMap:
    return pg.colormap.get(COLORMAP)


def lookup_table() -> np.ndarray:
    """uint8 [256, 3]: the colour map as a table, for colouring many thumbnails with one numpy index."""
    return colormap().getLookupTable(nPts=256, alpha=False).astype(np.uint8)


def clip_label(text: str, n: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class TokenAxis(pg.AxisItem):
    """An axis whose ticks are tokens: one per cell centre, thinned out so labels never overlap."""

    def __init__(self, orientation: str, **kwargs):
        super().__init__(orientation, **kwargs)
        self.tokens: list[str] = []
        self.offset = 0  # position of the first token in the whole text (shown in the tooltips)
        self.label_chars = MAX_LABEL_CHARS  # labels are cut to this many characters (horizontal axes)
        self.setStyle(hideOverlappingLabels=True)

    def set_tokens(self, tokens: list[str], offset: int = 0) -> None:
        self.tokens = [clip_label(t) for t in tokens]
        self.offset = offset
        # Labels are cut to the usual length, not spaced for the longest: one long token (a decoder's start
        # token) would otherwise thin out every label and widen the axis; hover shows it whole.
        lengths = sorted(len(t) for t in self.tokens) or [1]
        self.label_chars = max(2, lengths[int(0.9 * (len(lengths) - 1))])
        self.picture = None
        self.update()

    def tickValues(self, minVal, maxVal, size):
        n = len(self.tokens)
        if n == 0 or size <= 0:
            return []
        lo, hi = sorted((minVal, maxVal))
        first, last = max(0, math.ceil(lo - 0.5)), min(n - 1, math.floor(hi - 0.5))
        if last < first:
            return []
        px_per_token = size / max(hi - lo, 1e-9)
        if self.orientation in ("left", "right"):
            need = 13.0
        else:
            longest = max(len(t) for t in self.tokens[first : last + 1])
            need = 7.0 * min(longest, self.label_chars) + 8.0
        stride = max(1, math.ceil(need / px_per_token))
        start = first + (-first) % stride
        return [(float(stride), [i + 0.5 for i in range(start, last + 1, stride)])]

    def tickStrings(self, values, scale, spacing):
        out = []
        for v in values:
            i = int(math.floor(v))
            out.append(clip_label(self.tokens[i], self.label_chars) if 0 <= i < len(self.tokens) else "")
        return out


class AttentionHeatmap(pg.GraphicsLayoutWidget):
    """Rows are queries (the token that looks), columns keys (the token looked at)."""

    hovered = Signal(str)  # one readable line about the cell under the mouse ("" when outside)

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.setMinimumSize(320, 280)
        # Never empty: a label row that appears and disappears would move the plot under the mouse.
        self.info = self.addLabel(" ", row=0, col=0, justify="left")
        self.left_axis = TokenAxis("left")
        self.bottom_axis = TokenAxis("bottom")
        self.plot = self.addPlot(row=1, col=0, axisItems={"left": self.left_axis, "bottom": self.bottom_axis})
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.invertY(True)  # query 0 at the top, like reading the text
        self.kind = ""
        self.set_kind("causal")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(0.0, 1.0),
            colorMap=colormap(),
            label="attention weight",
            interactive=False,
            colorMapMenu=False,
            width=16,
        )
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.cursor = QGraphicsRectItem(QRectF(0, 0, 1, 1))
        pen = QPen(QColor("#56b4e9"))
        pen.setWidth(2)
        pen.setCosmetic(True)
        self.cursor.setPen(pen)
        self.cursor.setZValue(10)
        self.cursor.hide()
        self.plot.addItem(self.cursor)
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.q_tokens: list[str] = []
        self.k_tokens: list[str] = []
        self.q_offset = 0
        self.k_offset = 0
        self.hover_text = ""
        self._title = ""  # the whole title; the plot shows it cut to fit
        self._hover_cell: tuple[int, int] | None = None
        self._shape = None

    # ----------------------------------------------------------------------------------------------- data
    def set_kind(self, kind: str) -> None:
        """Word the axes and the tooltip for "causal", "bidirectional" or "cross" attention."""
        if kind == self.kind or kind not in AXIS_WORDS:
            return
        self.kind = kind
        left, bottom, tip = AXIS_WORDS[kind]
        self.plot.setLabel("left", left)
        self.plot.setLabel("bottom", bottom)
        self.setToolTip(tip)

    def set_matrix(
        self,
        weights,
        q_tokens: list[str],
        k_tokens: list[str],
        *,
        q_offset: int = 0,
        k_offset: int = 0,
        title: str = "",
        levels: tuple[float, float] | None = None,
    ) -> None:
        """Show weights [n_queries, n_keys]; offsets are the positions of the first row/column in the text."""
        m = np.asarray(weights, dtype=np.float32)
        if m.ndim != 2 or m.shape != (len(q_tokens), len(k_tokens)):
            raise ValueError(f"weights of shape {m.shape} do not match {len(q_tokens)} x {len(k_tokens)} tokens")
        self.matrix = m
        self.q_tokens, self.k_tokens = list(q_tokens), list(k_tokens)
        self.q_offset, self.k_offset = q_offset, k_offset
        if levels is None:
            levels = (0.0, 1.0)
        self.image.setImage(m, levels=levels, autoLevels=False)
        self.colorbar.setLevels(levels)
        self.left_axis.set_tokens(self.q_tokens, q_offset)
        self.bottom_axis.set_tokens(self.k_tokens, k_offset)
        self._title = title
        self._fit_title()
        if self._shape != m.shape:
            self._shape = m.shape
            self.plot.setLimits(xMin=0, xMax=max(1, m.shape[1]), yMin=0, yMax=max(1, m.shape[0]))
            self.plot.setRange(xRange=(0, max(1, m.shape[1])), yRange=(0, max(1, m.shape[0])), padding=0)
        self._refresh_hover()

    @property
    def title(self) -> str:
        """The whole title (the plot may show it cut)."""
        return self._title

    def _fit_title(self) -> None:
        """The title, cut with … to the plot's width: pyqtgraph makes a plot at least as wide as its title, so
        a long one would push the colour bar out of the widget. A layout made wider once gets the widget's
        size back."""
        room = self.width() - self.left_axis.width() - self.colorbar.width() - 24
        text = self._title
        self.plot.setTitle(text)
        while len(text) > 8 and self.plot.titleLabel.itemRect().width() > room:
            text = text[: max(8, int(len(text) * room / self.plot.titleLabel.itemRect().width()) - 1)]
            self.plot.setTitle(text.rstrip(" ·—") + "…")
        self.ci.layout.activate()
        if self.centralWidget is not None:
            self.centralWidget.setGeometry(self.range)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if getattr(self, "_title", ""):
            self._fit_title()

    def clear_matrix(self) -> None:
        """Show nothing. (Not named clear: GraphicsLayoutWidget puts its layout's clear(), which removes every
        item, on each instance under that name.)"""
        self.matrix = np.zeros((0, 0), dtype=np.float32)
        self.q_tokens, self.k_tokens = [], []
        self.image.clear()
        self.left_axis.set_tokens([])
        self.bottom_axis.set_tokens([])
        self._title = ""
        self.plot.setTitle("")
        self._clear_hover()

    # ----------------------------------------------------------------------------------------------- hover
    def describe(self, row: int, col: int) -> str:
        """'query ‘t’ (#12) → key ‘h’ (#11): 0.734' for the cell at row, col (positions in the whole text)."""
        w = float(self.matrix[row, col])
        q, k = self.q_tokens[row], self.k_tokens[col]
        return f"query ‘{q}’ (#{row + self.q_offset}) → key ‘{k}’ (#{col + self.k_offset}): {w:.3f}"

    def cell_at_scene(self, scene_pos: QPointF) -> tuple[int, int] | None:
        if not self.plot.sceneBoundingRect().contains(scene_pos) or self.matrix.size == 0:
            return None
        pt = self.plot.vb.mapSceneToView(scene_pos)
        col, row = int(math.floor(pt.x())), int(math.floor(pt.y()))
        if 0 <= row < self.matrix.shape[0] and 0 <= col < self.matrix.shape[1]:
            return row, col
        return None

    def cell_center_in_widget(self, row: int, col: int):
        """Where the centre of a cell is, in this widget's (viewport's) coordinates."""
        # A new title or wider tick labels re-lay the plot out on the next event loop pass; do it now.
        self.ci.layout.activate()
        self.plot.layout.activate()
        scene = self.plot.vb.mapViewToScene(QPointF(col + 0.5, row + 0.5))
        return self.mapFromScene(scene)

    def mouseMoveEvent(self, ev) -> None:
        super().mouseMoveEvent(ev)
        # Not the scene's sigMouseMoved: it drops moves that come fast, so the last position could be lost.
        self._on_mouse_moved(self.mapToScene(ev.position().toPoint()))

    def leaveEvent(self, ev) -> None:
        super().leaveEvent(ev)
        self._clear_hover()

    def _on_mouse_moved(self, scene_pos) -> None:
        self._hover_cell = self.cell_at_scene(scene_pos)
        self._refresh_hover()

    def _refresh_hover(self) -> None:
        cell = self._hover_cell
        if cell is not None and (cell[0] >= self.matrix.shape[0] or cell[1] >= self.matrix.shape[1]):
            cell = None
        text = self.describe(*cell) if cell is not None else ""
        if cell is not None:
            self.cursor.setRect(QRectF(cell[1], cell[0], 1, 1))
            self.cursor.show()
        else:
            self.cursor.hide()
        if text != self.hover_text:
            self.hover_text = text
            self.info.setText(text or " ")
            self.hovered.emit(text)

    # ----------------------------------------------------------------------------------------------- export
    def export_png(self, path: str, width: int = 1200) -> None:
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.scene())
        exporter.parameters()["width"] = width
        exporter.export(str(path))

    def export_svg(self, path: str) -> None:
        # Not pyqtgraph's SVGExporter: it fails on this scene (a ValueError in correctCoordinates, pyqtgraph 0.14).
        if self.hover_text:
            self._clear_hover()  # the hover frame and line are not part of the picture
        write_svg(self, path, lambda painter: self.render(painter))

    def _clear_hover(self) -> None:
        self._hover_cell = None
        self._refresh_hover()


def write_svg(widget, path: str, paint) -> None:
    """Paint a widget into an SVG file: vector text and lines, pictures embedded."""
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(widget.size())
    gen.setViewBox(QRectF(0, 0, widget.width(), widget.height()))
    # The generator's default 72 dpi would draw text and pens at a different scale from the pixels around them.
    gen.setResolution(widget.logicalDpiX())
    gen.setTitle("Transformer Studio attention")
    painter = QPainter(gen)
    if not painter.isActive():
        raise OSError("the file cannot be written")
    try:
        paint(painter)
    finally:
        painter.end()
