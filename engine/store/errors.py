"""The workspace's own error: apart from the rest so that every part of the store can raise it."""

from engine.errors import UserError


class WorkspaceError(UserError):
    """A workspace problem a user can act on, in one line."""
