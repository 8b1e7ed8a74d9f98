"""Live line plots of training curves (pyqtgraph), redrawn by their owner from buffered data.

The legend sits under the plot area, never on the curves; a plot of one curve has no legend and says what it
shows in its title. A plot without data shows no made-up axes, only a short line saying how to get some."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy

from studio import theme

EMPTY_TEXT = "Press Train to start"
LEGEND_ROW = 4  # PlotItem's grid: title 0, top axis 1, view 2, bottom axis 3; the row under it is free


class CurvePlot(pg.PlotWidget):
    """A plot with named curves; `set_series(name, xs, ys)` replaces a curve's data (so does the curve's own
    setData: the empty-plot text follows either)."""

    @property
    def first_curve(self) -> str:
        """The name of its first curve (a one-curve plot's only one)."""
        return next(iter(self.curves))

    def __init__(
        self, x_label: str, y_label: str | None, title: str | None = None, parent=None, empty_text: str = EMPTY_TEXT
    ):
        super().__init__(parent=parent)
        item = self.getPlotItem()
        if title:
            item.setTitle(title, size="10pt")
        item.setLabel("bottom", x_label)
        if y_label:
            item.setLabel("left", y_label)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMenuEnabled(False)
        self.legend = self._legend_under_the_plot(item)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.empty_label = self._empty_label(empty_text)
        self._empty: bool | None = None
        self._update_empty()

    # ------------------------------------------------------------------------------------------- legend
    def _legend_under_the_plot(self, item: pg.PlotItem) -> pg.LegendItem:
        # Not addLegend(): that anchors the legend inside the view box, on top of the curves.
        legend = pg.LegendItem(offset=None, colCount=1, verSpacing=-6)
        legend.layout.setContentsMargins(0, 0, 0, 0)
        legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        item.layout.addItem(legend, LEGEND_ROW, 1)
        item.layout.setAlignment(legend, Qt.AlignmentFlag.AlignHCenter)
        item.legend = legend  # plot(name=...) adds named curves to it
        legend.setVisible(False)  # until a curve is listed
        return legend

    def add_curve(
        self, name: str, color: str, *, symbol: str | None = None, width: float = 1.6, legend: bool = True
    ) -> pg.PlotDataItem:
        pen = pg.mkPen(color, width=width)
        kwargs = {"pen": pen, "name": name if legend else None}
        if symbol:
            kwargs.update(symbol=symbol, symbolSize=7, symbolBrush=pg.mkBrush(color), symbolPen=pg.mkPen(color))
        curve = self.getPlotItem().plot([], [], **kwargs)
        self.curves[name] = curve
        if legend:
            self.legend.setColumnCount(max(1, len(self.legend.items)))  # one row, side by side
            self.legend.setVisible(True)
        curve.sigPlotChanged.connect(self._update_empty)
        return curve

    def remove_curves(self) -> None:
        """No curves any more (a plot whose curves are chosen anew, as the Runs panel's overlay)."""
        item = self.getPlotItem()
        for curve in self.curves.values():
            item.removeItem(curve)
        self.legend.clear()
        self.legend.setVisible(False)
        self.curves = {}
        self._update_empty()

    # ------------------------------------------------------------------------------------------ data
    def set_series(self, name: str, xs, ys) -> None:
        self.curves[name].setData(list(xs), list(ys))

    def clear_data(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])

    def has_data(self) -> bool:
        for curve in self.curves.values():
            _, ys = curve.getData()
            if ys is not None and len(ys):
                return True
        return False

    # ----------------------------------------------------------------------------------- the empty plot
    def _empty_label(self, text: str) -> QLabel:
        label = QLabel(text, self)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
        font = label.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        label.setFont(font)
        return label

    def set_empty_text(self, text: str) -> None:
        self.empty_label.setText(text)

    def _update_empty(self, *_) -> None:
        empty = not self.has_data()
        if empty == self._empty:
            return
        self._empty = empty
        self.empty_label.setVisible(empty)
        item = self.getPlotItem()
        for side in ("left", "bottom"):
            # No data, no scale: the default 0–1 range would show numbers that mean nothing.
            item.getAxis(side).setTicks([[], []] if empty else None)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if "empty_label" in self.__dict__:  # pyqtgraph resizes once inside its own __init__
            self.empty_label.setGeometry(self.rect())


class LossPlot(CurvePlot):
    """Train loss (every logged step) and validation loss (eval points, with markers) against step."""

    def set_axis_text(self, text: str) -> None:
        """What the loss is, on the left axis (REINFORCE's is minus its reward, not nats per token)."""
        axis = self.getPlotItem().getAxis("left")
        if axis.labelText != text:
            self.getPlotItem().setLabel("left", text)

    def __init__(self, parent=None):
        super().__init__("step", "loss (nats/token)", parent=parent)
        self.getPlotItem().getAxis("left").enableAutoSIPrefix(False)  # a loss reads as itself, never x0.001
        self.train_curve = self.add_curve("train loss", theme.TRAIN_COLOR)
        self.val_curve = self.add_curve("val loss", theme.VAL_COLOR, symbol="o", width=2.0)
        self.base_tooltip = (
            "Cross-entropy loss per token, in nats: lower is better. The blue line is measured on\n"
            "each training batch; orange dots are measured on held-out validation text. If the\n"
            "orange dots rise while the blue line falls, the model is memorising (overfitting)."
        )
        self.setToolTip(self.base_tooltip)
        self.setMinimumHeight(190)  # legend and step axis fit; a 1280x720 window keeps room for the small plots
        self.parent_curves: tuple[pg.PlotDataItem, pg.PlotDataItem] | None = None

    def set_parent(self, label: str | None, train: tuple[list, list] = ([], []), val: tuple[list, list] = ([], [])):
        """The curves of the run this one started from, faded and ending at step 0 where this run begins (the
        steps before are negative); label None takes them away."""
        item = self.getPlotItem()
        if label is None:
            if self.parent_curves is not None:
                for curve in self.parent_curves:
                    item.removeItem(curve)
                    self.legend.removeItem(curve)
                self.parent_curves = None
                self._update_empty()
            return
        if self.parent_curves is None:
            faded = [QColor(theme.TRAIN_COLOR), QColor(theme.VAL_COLOR)]
            for color in faded:
                color.setAlpha(80)
            train_curve = item.plot([], [], pen=pg.mkPen(faded[0], width=1.4))
            val_curve = item.plot(
                [], [], pen=pg.mkPen(faded[1], width=1.6), symbol="o", symbolSize=5,
                symbolBrush=pg.mkBrush(faded[1]), symbolPen=pg.mkPen(faded[1]),
            )  # fmt: skip
            for curve in (train_curve, val_curve):
                curve.setZValue(-1)  # behind this run's own curves
                curve.sigPlotChanged.connect(self._update_empty)
            self.parent_curves = (train_curve, val_curve)
        else:
            self.legend.removeItem(self.parent_curves[1])
        self.legend.addItem(self.parent_curves[1], label)
        self.legend.setColumnCount(max(1, len(self.legend.items)))
        self.parent_curves[0].setData(list(train[0]), list(train[1]))
        self.parent_curves[1].setData(list(val[0]), list(val[1]))

    def has_data(self) -> bool:
        if super().has_data():
            return True
        faded = self.__dict__.get("parent_curves")  # None until set_parent, absent inside CurvePlot's __init__
        return faded is not None and any(len(c.getData()[1] if c.getData()[1] is not None else []) for c in faded)


def small_plot(y_label: str, name: str, color: str, parent=None, symbol: str | None = None) -> CurvePlot:
    """A plot of one curve: its name is the title (no legend), so the left axis needs no label either. `symbol`
    marks each point (for values measured only at evaluations)."""
    plot = CurvePlot("step", None if y_label == name else y_label, title=name[:1].upper() + name[1:], parent=parent)
    plot.add_curve(name, color, legend=False, symbol=symbol)
    plot.setMinimumHeight(125)
    left = plot.getPlotItem().getAxis("left")
    left.enableAutoSIPrefix(False)  # "learning rate (x0.001)" would be cut off; show 0.002 plainly
    left.setWidth(64)
    plot.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
    return plot


def metric_plot(caption: str, tooltip: str, parent=None) -> CurvePlot:
    """An objective's metric at each evaluation (e.g. 'Val masked-token accuracy'), points marked as the
    validation loss's are."""
    plot = small_plot(caption, caption, theme.VAL_COLOR, parent=parent, symbol="o")
    plot.setToolTip(tooltip)
    return plot
