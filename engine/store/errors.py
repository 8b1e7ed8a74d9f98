"""The workspace's own errors: apart from the rest so that every part of the store can raise them."""

import sqlite3

from engine.errors import UserError


class WorkspaceError(UserError):
    """A workspace problem a user can act on, in one line."""


class WorkspaceFull(WorkspaceError):
    """The workspace cannot take a write: its disk is full (or SQLite's page limit is reached). The write was rolled
    back whole; what it carried is the caller's to keep and write again later."""


def is_full(e: BaseException) -> bool:
    """Whether `e` is SQLite saying the database or its disk is full (SQLITE_FULL)."""
    return isinstance(e, sqlite3.OperationalError) and "full" in str(e).lower()
