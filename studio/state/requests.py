"""The requests a Session has made and not yet seen answered, with the panels' callbacks for their replies and events.

Plain data, without Qt or a connection (Session, in studio/session.py, does the sending): a request is pending
from `add` until its reply, or a failure made here, is handed to its callback, once. Requests made before the
engine is ready wait in a queue, in the order they were made.
"""

from __future__ import annotations

import sys
from typing import Callable, NamedTuple

from engine import protocol as p


def call_safely(fn: Callable | None, *args) -> None:
    """Run a panel's callback; a bug there is reported like any slot exception but never breaks dispatch."""
    if fn is None:
        return
    try:
        fn(*args)
    except Exception:
        sys.excepthook(*sys.exc_info())


class Pending(NamedTuple):
    msg: p.Message
    on_reply: Callable | None
    on_event: Callable | None


class PendingRequests:
    def __init__(self) -> None:
        self._pending: dict[str, Pending] = {}
        self._queue: list[p.Message] = []

    def add(self, msg: p.Message, on_reply: Callable | None, on_event: Callable | None) -> None:
        self._pending[msg.id] = Pending(msg, on_reply, on_event)

    # ------------------------------------------------------------------------------------------------ queue
    def hold(self, msg: p.Message) -> None:
        """Keep `msg` until the engine is ready (`take_queued`)."""
        self._queue.append(msg)

    @property
    def queued(self) -> tuple[p.Message, ...]:
        """The requests waiting for the engine, oldest first."""
        return tuple(self._queue)

    def take_queued(self) -> list[p.Message]:
        queued, self._queue = self._queue, []
        return queued

    def unqueue(self, request_id: str) -> bool:
        """Take a request out of the queue before the engine saw it; False when it is not queued."""
        for msg in self._queue:
            if msg.id == request_id:
                self._queue.remove(msg)
                return True
        return False

    # ------------------------------------------------------------------------------------------------ answers
    def pop(self, request_id: str | None) -> Pending | None:
        """The pending request `request_id`, no longer pending (None when there is none)."""
        return self._pending.pop(request_id, None) if request_id else None

    def event(self, msg: p.Message) -> None:
        """Hand a broadcast to the callback of the request it belongs to (its `parent`), if any."""
        entry = self._pending.get(msg.parent) if msg.parent else None
        if entry is not None:
            call_safely(entry.on_event, msg)

    def fail(self, request_id: str, error: str) -> None:
        """Answer a pending request with an error reply made here (its callback runs once, now)."""
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        reply = p.error_reply(entry.msg, error)
        if isinstance(reply, p.Reply):
            call_safely(entry.on_reply, reply)

    def fail_all(self, error: str) -> None:
        self._queue.clear()
        for request_id in list(self._pending):
            self.fail(request_id, error)
