"""The faded curves of the run a run started from (train.init_from), behind its own on the Train panel's loss
plot: asked of the engine when the run is shown, drawn ending at step 0 where the child begins."""

from __future__ import annotations

from collections.abc import Callable

from engine import protocol as p
from studio.state.finetune import parent_of, parent_series, start_step
from studio.state.runs import run_objective
from studio.widgets.form_helpers import guarded
from studio.widgets.loss_plot import LossPlot


def load_parent_curves(session, plot: LossPlot, run: dict, shown_run: Callable[[], int | None]) -> None:
    """Ask for the parent's metric rows and draw them on `plot`; none for a run from random weights, and none
    when `shown_run()` has moved on to another run by the time they arrive."""
    parent, start = parent_of(run), start_step(run)
    plot.set_parent(None)
    # A REINFORCE run's curve is minus its reward, not a cross-entropy: the parent's losses would read as its past.
    if parent is None or start is None or run_objective(run) == "reinforce":
        return
    run_id = run.get("id")

    def done(reply) -> None:
        if run_id != shown_run() or not reply.ok:
            return  # another run is shown now, or the parent is gone (deleted)
        train_x, train_y, val_x, val_y = parent_series(reply.rows, start)
        plot.set_parent(f"run {parent} (started from)", (train_x, train_y), (val_x, val_y))

    session.request(p.MetricsRequest(run=parent), guarded(plot, done))
