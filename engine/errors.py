"""Errors a user can act on, and the one place that decides whether an exception is one and how to word it.

Every error the engine raises for the user (a bad config, an unreadable file, a missing run) derives from
UserError: its `message` is plain words as the panels say them, `field` the config field it is about
("model.n_head", or None) and `fields` every field involved, so the studio can mark them without reading the
text. A few of Python's own errors are the user's to act on too (a missing file, running out of memory);
anything else that escapes is a bug: the worker logs its traceback, the CLI hides it behind one line.

The worker's error replies, the CLI's `error: ...` line and a failed training's status all come from
`is_user_error` and `user_text` here. Standard library only: engine.config (which the studio imports) derives
ConfigError from UserError.
"""

from __future__ import annotations

import errno
import os
from typing import Iterable

OUT_OF_MEMORY = "out of memory: try a smaller batch size, context or model"
OUT_OF_GPU_MEMORY = "out of GPU memory: try a smaller batch size, context or model"


class UserError(Exception):
    """A problem the user can fix; str() is what to tell them (ConfigError puts its field in front)."""

    def __init__(self, message: str = "", field: str | None = None, *, also: Iterable[str] = ()):
        self.message = message
        self.field = field
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(f for f in (field, *also) if f))  # field first, once
        super().__init__(message)


def is_user_error(e: BaseException) -> bool:
    """Whether `e`'s message is meant for the user as it is (so no traceback goes to the engine's log)."""
    return isinstance(e, (UserError, FileNotFoundError)) or _out_of_memory(e) or _out_of_gpu_memory(e)


def user_text(e: BaseException) -> str:
    """What to tell the user about `e`: a user error's whole text (it may have more lines), Python's own errors
    in plain words, and for a bug "TypeName: its first line"."""
    if isinstance(e, OSError) and (e.strerror or e.filename):
        return _os_error_text(e)
    if _out_of_gpu_memory(e):
        return OUT_OF_GPU_MEMORY
    if _out_of_memory(e):
        return OUT_OF_MEMORY
    text = str(e).strip()
    if is_user_error(e):
        return text or type(e).__name__
    first = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def field_of(e: BaseException) -> tuple[str | None, tuple[str, ...]]:
    """(the field `e` is about, every field involved): (None, ()) for an error that names none."""
    if isinstance(e, UserError):
        return e.field, e.fields
    return None, ()


def _os_error_text(e: OSError) -> str:
    words = e.strerror or ""
    if isinstance(e, FileNotFoundError) and (not words or words == os.strerror(errno.ENOENT)):
        words = "no such file or folder"  # Python's "No such file or directory"; a strerror the engine chose stays
    if not e.filename:
        return words
    return f"{words}: {e.filename}" if words else str(e.filename)


def _out_of_memory(e: BaseException) -> bool:
    # torch's CPU allocator raises a RuntimeError, not a MemoryError.
    return isinstance(e, MemoryError) or "can't allocate memory" in str(e)


def _out_of_gpu_memory(e: BaseException) -> bool:
    # torch.cuda.OutOfMemoryError, recognised without importing torch (this module is standard library only).
    return type(e).__name__ == "OutOfMemoryError" or ("out of memory" in str(e) and "CUDA" in str(e))
