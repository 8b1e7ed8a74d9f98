"""Run leases: the one process that trains a run says so in the workspace, and keeps saying it.

A trainer takes the run's lease before it changes anything and drops it when it ends. While it trains, a thread
renews the lease every LEASE_RENEW_S seconds on a connection of its own (LeaseKeeper), so a long step or a pause
never lets it lapse. A lease is stale, and another trainer may take it, when its process is gone (same computer)
or when it was not renewed for LEASE_STALE_S seconds (a process killed on another computer of a synced folder).
A trainer whose lease was taken over sees it at its next renewal and stops before it writes again.

A run whose row says it is training but whose lease is gone was left by a process that died (kill -9, a crash, a
power cut): Workspace.runs() shows it as "interrupted", and Resume takes it from its last checkpoint.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import threading
import time
from datetime import datetime, timezone

from engine.store.errors import WorkspaceError

LEASE_RENEW_S = 2.0
LEASE_STALE_S = 20.0  # ten missed renewals
# The states a run's row holds only while a process trains it.
LIVE_STATES = frozenset({"starting", "training", "running", "paused", "stopping"})
HOST = socket.gethostname()


class RunBusyError(WorkspaceError):
    """Another live process trains the run."""


def process_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would send Ctrl-C, not a probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or no way to tell: count it as alive
    return True


def lease_is_live(row: dict, now: float | None = None) -> bool:
    if row["host"] == HOST and not process_alive(int(row["pid"])):
        return False
    return (now if now is not None else time.time()) - float(row["renewed"]) <= LEASE_STALE_S


def owner_words(row: dict) -> str:
    """'process 4711 on this computer, since 11:02 UTC'."""
    where = "this computer" if row["host"] == HOST else str(row["host"])
    since = datetime.fromtimestamp(float(row["started"]), timezone.utc).strftime("%H:%M UTC")
    return f"process {row['pid']} on {where}, since {since}"


def held_here(row: dict) -> bool:
    return row["host"] == HOST and int(row["pid"]) == os.getpid()


class LeaseMethods:
    """The leases table (a mixin of Workspace)."""

    def take_lease(self, run_id: int) -> str:
        """Make this process the run's trainer; its token. RunBusyError names the live owner if there is one."""
        run = self.run(run_id)
        now = time.time()
        token = secrets.token_hex(8)
        with self._write():
            rows = self._rows("SELECT * FROM leases WHERE run_id = ?", [run["id"]])
            if rows and lease_is_live(rows[0], now):
                raise RunBusyError(
                    f"run {run['id']} ({run['name']}) is being trained by {owner_words(rows[0])}: "
                    f"stop it there first, or watch it from the Runs panel"
                )
            self.db.execute(
                "INSERT OR REPLACE INTO leases(run_id, token, pid, host, started, renewed) VALUES (?, ?, ?, ?, ?, ?)",
                [run["id"], token, os.getpid(), HOST, now, now],
            )
        return token

    def drop_lease(self, run_id: int, token: str) -> None:
        with self._write():
            self.db.execute("DELETE FROM leases WHERE run_id = ? AND token = ?", [int(run_id), token])

    def live_leases(self) -> dict[int, dict]:
        """Run id -> its live lease row."""
        now = time.time()
        return {r["run_id"]: r for r in self._rows("SELECT * FROM leases") if lease_is_live(r, now)}

    def live_lease(self, run_id: int) -> dict | None:
        rows = self._rows("SELECT * FROM leases WHERE run_id = ?", [int(run_id)])
        return rows[0] if rows and lease_is_live(rows[0]) else None

    def check_not_leased(self, run_id: int, doing: str) -> None:
        """Refuse `doing` ("delete") a run another process trains."""
        row = self.live_lease(run_id)
        if row is not None and not held_here(row):
            raise RunBusyError(f"cannot {doing} run {run_id} while {owner_words(row)} trains it: stop it there first")


def with_trainer(run: dict, lease: dict | None) -> dict:
    """A run row as the lists show it: who trains it ("trainer", in words; "trained_here") and "interrupted" for
    a run left training by a process that is gone."""
    run["trainer"] = owner_words(lease) if lease else None
    run["trained_here"] = bool(lease and held_here(lease))
    if lease is None and run.get("status") in LIVE_STATES:
        run["status"] = "interrupted"
        step = int(run.get("step") or 0)
        run["message"] = (
            f"the process training it ended without a word at step {step:,} (killed or crashed): "
            f"Resume continues from its last checkpoint"
        )
    return run


class LeaseKeeper:
    """Renews a lease from a thread of its own until stopped; `lost` tells the trainer its lease was taken."""

    def __init__(self, db_path, run_id: int, token: str, every_s: float = LEASE_RENEW_S):
        self.db_path, self.run_id, self.token, self.every_s = str(db_path), int(run_id), token, every_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name=f"lease-{run_id}", daemon=True)

    def start(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _renew_until_stopped(self) -> None:
        conn = sqlite3.connect(self.db_path, timeout=10.0)
        try:
            while not self._stop.wait(self.every_s):
                try:
                    with conn:
                        cur = conn.execute(
                            "UPDATE leases SET renewed = ? WHERE run_id = ? AND token = ?",
                            [time.time(), self.run_id, self.token],
                        )
                    if cur.rowcount == 0:
                        self.lost = True
                        return
                except sqlite3.Error:
                    continue  # a locked or busy database: the next renewal tries again, well before it lapses
        finally:
            conn.close()
