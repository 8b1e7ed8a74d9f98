"""The engine's sender: outgoing messages batched into frames on a thread of their own, with a heartbeat.

A frame holds at most MAX_BATCH messages and goes at least every FLUSH_INTERVAL_S (engine/protocol.py), so the
studio reads a few frames a second however fast training talks; a heartbeat every HEARTBEAT_S tells it the
engine is alive. Sending never blocks the caller: a studio that stops reading costs memory up to MAX_PENDING
messages, then the oldest broadcasts go.
"""

from __future__ import annotations

import collections
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable

from engine import protocol as p

HEARTBEAT_S = 1.0
# Broadcasts beyond this many waiting messages are dropped (oldest first) rather than buffered without bound
# when the studio stops reading; replies are never dropped.
MAX_PENDING = 5000
# Attention snapshots are on disk too: the studio can ask for a dropped one again (attention_request).
_DROPPABLE = (p.Metrics, p.Token, p.Progress, p.Heartbeat, p.Log, p.Status, p.Attention)


class Outbox:
    """Batches outgoing messages on a sender thread; never blocks the caller."""

    def __init__(self, conn: Connection, on_dead: Callable[[], None]):
        self._conn = conn
        self._on_dead = on_dead
        self._pending: collections.deque[p.Message] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dead = False
        self.state = "starting"
        self.dropped = 0
        self._thread = self._start(conn)

    def _start(self, conn: Connection) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(conn,), name="sender", daemon=True)
        thread.start()
        return thread

    def replace(self, conn: Connection) -> None:
        """Send to a new studio from now on (one that reattached to a run training in the background). What was
        waiting was meant for a window that is gone; the new one reads the run's history from the workspace."""
        with self._cond:
            self._conn = conn
            self._pending.clear()
            self.dead = False
            self._cond.notify()
        self._thread = self._start(conn)

    def send(self, msg: p.Message) -> None:
        with self._cond:
            if self.dead:
                return
            self._pending.append(msg)
            if len(self._pending) > MAX_PENDING:
                self._drop_one()
            if len(self._pending) >= p.MAX_BATCH:
                self._cond.notify()

    def _drop_one(self) -> None:
        for i, m in enumerate(self._pending):
            if isinstance(m, _DROPPABLE):
                del self._pending[i]
                self.dropped += 1
                return

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self, conn: Connection) -> None:
        last_beat = 0.0
        while True:
            with self._cond:
                if not self._pending and not self._closed:
                    self._cond.wait(p.FLUSH_INTERVAL_S)
                if conn is not self._conn:
                    return  # replaced: a newer thread sends to the new studio
                batch = [self._pending.popleft() for _ in range(min(p.MAX_BATCH, len(self._pending)))]
                closing = self._closed and not self._pending
            now = time.monotonic()
            if now - last_beat >= HEARTBEAT_S:
                batch.append(p.Heartbeat(state=self.state, time=time.time()))
                last_beat = now
            if batch:
                try:
                    conn.send_bytes(p.encode_batch(batch))
                except (OSError, EOFError, ValueError):
                    with self._cond:
                        if conn is not self._conn:
                            return
                        self.dead = True
                        self._pending.clear()
                    self._on_dead()
                    return
            if closing:
                return
