"""How a run is named and described for people, the same way in every panel, combo and status line (Qt-free)."""

from __future__ import annotations

from engine.format import plural

STATUS_WORDS = {
    "running": "training",
    "training": "training",
    "starting": "starting",
    "paused": "paused",
    "stopping": "stopping",
    "finished": "finished",
    "stopped": "stopped",
    "failed": "failed",
    "interrupted": "interrupted",
    "created": "not started",
}


def run_title(run: dict | None) -> str:
    """'Run 2 “baby on sample”' (or 'Run 2' when it has no name)."""
    if not run:
        return "No run"
    name = (run.get("name") or "").strip()
    return f"Run {run.get('id')} “{name}”" if name else f"Run {run.get('id')}"


def status_word(run: dict) -> str:
    """'training', 'interrupted', ... ; 'training elsewhere' for a run another process trains."""
    if run.get("trainer") and not run.get("trained_here"):
        return "paused elsewhere" if run.get("status") == "paused" else "training elsewhere"
    return STATUS_WORDS.get(str(run.get("status") or ""), str(run.get("status") or ""))


def run_status(run: dict | None) -> str:
    """'training, 350 / 2,000 steps' — what the run is doing and how far it got."""
    if not run:
        return ""
    status = status_word(run)
    step = int(run.get("step") or 0)
    total = int(run.get("max_iters") or (run.get("config") or {}).get("train", {}).get("max_iters") or 0)
    steps = f"{step:,} / {plural(total, 'step')}" if total else plural(step, "step")
    return f"{status}, {steps}" if status else steps


def run_line(run: dict | None, best: bool = True) -> str:
    """'Run 2 “baby” — training, 350 / 2,000 steps, best val 1.912': a combo item or a status bar (narrow combos
    leave out the best validation loss and put the whole line in the item's tooltip)."""
    if not run:
        return "No run"
    loss = run.get("best_val_loss")
    loss = f", best val {loss:.3f}" if best and isinstance(loss, (int, float)) else ""
    return f"{run_title(run)} — {run_status(run)}{loss}"
