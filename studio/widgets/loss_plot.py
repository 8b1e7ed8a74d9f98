"""Live line plots of training curves (pyqtgraph), redrawn by their owner from buffered data."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from studio import theme


class CurvePlot(pg.PlotWidget):
    """A plot with named curves; `set_series(name, xs, ys)` replaces a curve's data."""

    def __init__(self, x_label: str, y_label: str, title: str | None = None, parent=None):
        super().__init__(parent=parent)
        item = self.getPlotItem()
        if title:
            item.setTitle(title)
        item.setLabel("bottom", x_label)
        item.setLabel("left", y_label)
        item.showGrid(x=True, y=True, alpha=0.15)
        item.setMenuEnabled(False)
        self.legend = item.addLegend(offset=(-10, 10))
        self.curves: dict[str, pg.PlotDataItem] = {}

    def add_curve(self, name: str, color: str, *, symbol: str | None = None, width: float = 1.6,
                  legend: bool = True) -> pg.PlotDataItem:
        pen = pg.mkPen(color, width=width)
        kwargs = {"pen": pen, "name": name if legend else None}
        if symbol:
            kwargs.update(symbol=symbol, symbolSize=7, symbolBrush=pg.mkBrush(color), symbolPen=pg.mkPen(color))
        curve = self.getPlotItem().plot([], [], **kwargs)
        self.curves[name] = curve
        return curve

    def set_series(self, name: str, xs, ys) -> None:
        self.curves[name].setData(list(xs), list(ys))

    def clear_data(self) -> None:
        for curve in self.curves.values():
            curve.setData([], [])


class LossPlot(CurvePlot):
    """Train loss (every logged step) and validation loss (eval points, with markers) against step."""

    def __init__(self, parent=None):
        super().__init__("step", "loss (nats/token)", parent=parent)
        self.train_curve = self.add_curve("train loss", theme.TRAIN_COLOR)
        self.val_curve = self.add_curve("val loss", theme.VAL_COLOR, symbol="o", width=2.0)
        self.setToolTip("Cross-entropy loss per token, in nats: lower is better. The blue line is measured on\n"
                        "each training batch; orange dots are measured on held-out validation text. If the\n"
                        "orange dots rise while the blue line falls, the model is memorising (overfitting).")
        self.setMinimumHeight(220)


def small_plot(y_label: str, name: str, color: str, parent=None) -> CurvePlot:
    plot = CurvePlot("step", y_label, parent=parent)
    plot.add_curve(name, color)
    plot.setMinimumHeight(140)
    left = plot.getPlotItem().getAxis("left")
    left.enableAutoSIPrefix(False)   # "learning rate (x0.001)" would be cut off; show 0.002 plainly
    left.setWidth(64)
    plot.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
    return plot
