"""The errors an import can raise; each message is one line naming the file and, where it applies, the place.

They live apart from importers.py so that the reading, format and cleaning modules can raise them too;
importers.py re-exports them, and callers keep catching `engine.data.importers.DataError`.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import UserError


class DataError(UserError):
    """Input a user can fix; the one-line message names the file and, where it applies, the offset and line."""


class ImportCancelled(DataError):
    def __init__(self, message: str = "import cancelled"):
        super().__init__(message)


class DecodeError(DataError):
    """Bytes that are not text in the file's encoding; the studio offers to decode as Latin-1 or skip the file."""

    def __init__(self, message: str, path: Path, offset: int, line: int, encoding: str):
        super().__init__(message)
        self.path, self.offset, self.line, self.encoding = Path(path), offset, line, encoding


class BinaryFileError(DataError):
    """A NUL character: the file is very likely not text at all."""

    def __init__(self, message: str, path: Path, offset: int):
        super().__init__(message)
        self.path, self.offset = Path(path), offset


class BadRecordError(DataError):
    """Records (JSONL lines, CSV rows) that cannot be read; `lines` holds the first line numbers found."""

    def __init__(self, message: str, path: Path, lines: list[int]):
        super().__init__(message)
        self.path, self.lines = Path(path), list(lines)


class FileChangedError(DataError):
    """A file was written to while it was being imported."""
