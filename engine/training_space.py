"""A training whose workspace disk fills (issue 12, item 13): nothing the run made is lost, and it goes on by itself.

When a write fails because the disk is full (WorkspaceFull from the store, or ENOSPC from a checkpoint file), the
loop hands over to `hold_for_space`. It still attempts a checkpoint of this very step, and the metric rows that
could not be written (MetricsBuffer keeps a batch until a write succeeds) travel inside that checkpoint, so even a
kill while the disk is full loses none of them: resuming writes them back (`write_back_rows`). The run then says
"paused" in words and tries again every SPACE_RETRY_S; once a write succeeds it goes on where it was. Resume tries
at once; Stop stops with what could be saved. engine/train.py's `_Training` owns the state these functions read.
"""

from __future__ import annotations

import errno
import logging
import time

from engine import training_events as ev
from engine.format import plural
from engine.store.errors import WorkspaceFull

log = logging.getLogger(__name__)
SPACE_RETRY_S = 5.0
UNWRITTEN = "unwritten_metrics"  # the checkpoint's extra: rows the database could not take when it was written


def disk_full(e: BaseException | None) -> bool:
    """Whether `e`, or what caused it (a checkpoint's "cannot save" wraps the OSError), is a full disk."""
    while e is not None:
        if isinstance(e, WorkspaceFull) or (isinstance(e, OSError) and e.errno == errno.ENOSPC):
            return True
        e = e.__cause__
    return False


def hold_for_space(t) -> bool:
    """Checkpoint, pause and retry until the writes succeed (True: training goes on) or Stop is pressed (False)."""
    t0 = time.perf_counter()
    t.holding = True
    try:
        saved = _attempt(t.checkpoint)
        t.control.request_pause()
        _say(t, "paused", _held_words(t, saved))
        while not t.control.stop_requested:
            t.control.wait_while_paused(SPACE_RETRY_S)
            if t.control.stop_requested:
                break
            if _attempt(_write_back, t):
                t.control.request_resume()
                t.emit(ev.Notice("info", f"There is space again: training goes on at step {t.step:,}."))
                return True
            if not t.control.paused:  # Resume was pressed, and the disk is still full
                t.control.request_pause()
                _say(t, "paused", "the disk is still full: " + _held_words(t, t.last_ckpt_step == t.step))
        return False
    finally:
        t.holding = False
        t.paused_s += time.perf_counter() - t0


def stop_held(t) -> str:
    """Stop a run that waited for space: as usual if the writes go through now, else with what the disk takes (the
    checkpoint holds every row the database could not take)."""
    if _attempt(_write_back, t):
        return t.stop()
    t.holding = True
    saved = _attempt(t.checkpoint)
    rows = len(t.metrics.rows)
    if saved and rows:
        kept = f"{plural(rows, 'metric row')} wait in its checkpoint and are written when it resumes"
    elif saved:
        kept = "its checkpoint is saved"
    else:
        kept = f"no checkpoint could be written, so it resumes from step {t.last_ckpt_step or 0:,}"
    _say(t, "stopped", f"stopped at step {t.step:,} with the disk full; {kept}")
    return "stopped"


def write_back_rows(ws, run_id: int, rows: list[dict]) -> int:
    """Write the rows a checkpoint carried that the database lacks (by step and split); how many went in."""
    if not rows:
        return 0
    first = min(int(r["step"]) for r in rows)
    have = {(r["step"], r["split"]) for r in ws.metrics(run_id) if r["step"] >= first}
    missing = [r for r in rows if (int(r["step"]), r["split"]) not in have]
    ws.add_metrics(run_id, missing)
    return len(missing)


def _write_back(t) -> None:
    t.metrics.flush()
    t.ws.update_run(t.run_id, step=t.step)
    t.register_checkpoint()  # the one the hold wrote, whose row the database could not take then
    t.checkpoint()  # written now if it could not be then


def _held_words(t, saved: bool) -> str:
    rows = len(t.metrics.rows)
    where = (
        f"a checkpoint of step {t.step:,} is saved"
        + (f" with the {plural(rows, 'metric row')} not yet written" if rows else "")
        if saved
        else f"no checkpoint could be written (the last is of step {t.last_ckpt_step or 0:,})"
    )
    return (
        f"the disk is full, so training paused at step {t.step:,}; {where}. Free some space: training goes on by "
        f"itself within {SPACE_RETRY_S:.0f} s (or press Stop)"
    )


def _say(t, state: str, message: str) -> None:
    """The status event always goes out; the run's row is updated when the database can take it."""
    _attempt(t.status, state, message)


def _attempt(action, *args) -> bool:
    """Run `action`; False when the disk is full (anything else is a real failure and goes up)."""
    try:
        action(*args)
        return True
    except Exception as e:
        if not disk_full(e):
            raise
        log.info("the disk is still full: %s", e)
        return False
