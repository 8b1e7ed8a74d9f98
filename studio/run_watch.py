"""Runs that another process trains (a `studio-engine train` in a terminal, another studio): the window follows
them from the workspace, since their events never reach this engine.

While a run is trained elsewhere, RunWatch asks the engine for the workspace's rows every FOLLOW_MS; otherwise
every DISCOVER_MS, so a run started from the command line appears by itself. A list that did not change is not
applied (panels would redraw for nothing), and the run this engine trains is left out of the comparison: its
own events keep it live. The Train panel, hearing the new rows, reloads the curve of a run trained elsewhere.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from engine import protocol as p

FOLLOW_MS = 1500
DISCOVER_MS = 10_000
_VOLATILE = ("updated",)


def trained_elsewhere(run: dict | None) -> bool:
    """A run another live process trains (its lease names that process): this window only watches it."""
    return bool(run and run.get("trainer") and not run.get("trained_here"))


def _comparable(summary: dict, skip_run: int | None) -> tuple:
    runs = tuple(
        tuple(sorted((k, repr(v)) for k, v in r.items() if k not in _VOLATILE))
        for r in summary.get("runs", [])
        if r.get("id") != skip_run
    )
    rest = tuple(tuple(repr(r) for r in summary.get(kind, [])) for kind in ("datasets", "tokenizers"))
    return runs, rest


class RunWatch(QObject):
    def __init__(self, session):
        super().__init__(session)
        self.session = session
        self._asking = False
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.tick)
        self._timer.start(FOLLOW_MS)
        self._quiet_ticks = 0

    def following(self) -> bool:
        return any(trained_elsewhere(r) for r in self.session.workspace.get("runs", []))

    def tick(self) -> None:
        if self._asking or not self.session.ready:
            return
        if not self.following():
            self._quiet_ticks += 1
            if self._quiet_ticks * FOLLOW_MS < DISCOVER_MS:
                return
        self._quiet_ticks = 0
        self._asking = True
        self.session.request(p.WorkspaceRequest(), self._on_reply)

    def _on_reply(self, reply) -> None:
        self._asking = False
        if not reply.ok:
            return  # the next tick asks again; a real problem shows where the user acts
        skip = self.session.training_run
        if _comparable(reply.workspace, skip) != _comparable(self.session.workspace, skip):
            self.session.apply_workspace(reply.workspace)
