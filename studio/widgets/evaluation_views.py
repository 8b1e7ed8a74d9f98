"""What the Train panel shows of each evaluation besides the loss: a small plot per metric worth a curve (the
accuracies in percent, macro-F1, distillation's KL, REINFORCE's reward, KL and entropy), a classification run's
confusion matrix, and a REINFORCE run's samples with their rewards. Each appears only for a run that reports it."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout

from studio.state.curves import RunCurves
from studio.state.train_summary import ACCURACIES, metric_caption, metric_tooltip
from studio.widgets.confusion_view import ConfusionView
from studio.widgets.loss_plot import EMPTY_TEXT, CurvePlot, metric_plot
from studio.widgets.samples_view import SamplesView

# The metrics with a plot of their own (perplexity follows the loss plot).
PLOTTED = (*ACCURACIES, "macro_f1", "kl", "reward", "ref_kl", "entropy")
NOT_RECORDED = "Not recorded for this run"  # short enough for a small plot: trained before the studio kept it


class EvaluationViews:
    """The plots, made when a run first needs them, go into `row` before the confusion matrix; the samples table
    is the panel's to place."""

    def __init__(self, row: QHBoxLayout):
        self.row = row
        self.plots: dict[str, CurvePlot] = {}
        self.confusion = ConfusionView()
        self.confusion.hide()
        row.addWidget(self.confusion)
        self.samples = SamplesView()
        self.samples.hide()

    def draw(self, c: RunCurves, names: list[str], classes: list[str]) -> None:
        for name in names:
            if name in PLOTTED and name not in self.plots:
                caption = metric_caption(name) + (" (%)" if name in ACCURACIES else "")
                self.plots[name] = plot = metric_plot(caption, metric_tooltip(name, None))
                self.row.insertWidget(self.row.indexOf(self.confusion), plot, 1)
        for name, plot in self.plots.items():
            plot.setVisible(name in names)
            steps, values = c.metrics.get(f"val_{name}", ([], []))
            plot.set_series(plot.first_curve, steps, [100 * v if name in ACCURACIES else v for v in values])
            # A run evaluated without this metric (trained before it was kept) says so, not "Press Train".
            plot.set_empty_text(NOT_RECORDED if c.val_steps and not values else EMPTY_TEXT)
        if c.confusion:
            self.confusion.set_matrix(c.confusion, classes, c.confusion_step)
        self.confusion.setVisible(bool(c.confusion))
        if c.samples:
            self.samples.set_samples(c.samples, c.samples_step)
        self.samples.setVisible(bool(c.samples))
