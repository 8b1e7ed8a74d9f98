"""Workspace: opening the folder and its database, write transactions, and publishing a finished temp folder."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import platformdirs
import sqlite_utils

from engine.rows import WorkspaceSummary
from engine.store.datasets import DatasetMethods
from engine.store.errors import WorkspaceError, WorkspaceFull, is_full
from engine.store.leases import LeaseMethods, process_alive
from engine.store.runs import RunMethods
from engine.store.schema import KIND_OF_TABLE, SchemaMethods
from engine.store.tokenizers import TokenizerMethods
from engine.store.trash import TRASH_KEEP_DAYS, TrashMethods


class Workspace(SchemaMethods, DatasetMethods, TokenizerMethods, RunMethods, TrashMethods, LeaseMethods):
    def __init__(self, path: Path):
        self.path = Path(path).expanduser().resolve()
        try:
            for sub in ("", "datasets", "tokenizers", "runs"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path / "workspace.db", timeout=5.0)
        except (OSError, sqlite3.Error) as e:
            reason = getattr(e, "strerror", None) or e
            raise WorkspaceError(f"cannot open the workspace {self.path}: {reason}") from None
        self.db = sqlite_utils.Database(conn, execute_plugins=False)
        self._tokenizers: dict[int, tuple[int, Any]] = {}  # id -> (file mtime, Tokenizer)
        self._merge_ranks: dict[int, dict[int, int]] = {}
        try:
            # Measured here: these three were the only settings with no "database is locked" errors while the
            # engine writes and the studio reads (docs/DESIGN.md).
            self.db.enable_wal()
            self.db.execute("PRAGMA busy_timeout=5000")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._ensure_schema()
            self._remove_debris()
            if self._rows("SELECT id FROM trash LIMIT 1"):
                self.empty_trash(older_than_days=TRASH_KEEP_DAYS)
        except sqlite3.DatabaseError as e:
            conn.close()
            raise WorkspaceError(f"{self.path / 'workspace.db'} is not a usable workspace database: {e}") from None

    def _remove_debris(self) -> None:
        """Delete the temp folders of imports and tokenizer trainings whose process was killed (no row names
        them, so nothing a user made is in them)."""
        for folder in (self.path / "datasets", self.path / "tokenizers"):
            for tmp in folder.glob(".tmp-*"):
                parts = tmp.name.split("-")
                if len(parts) == 3 and parts[1].isdigit() and not process_alive(int(parts[1])):
                    shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def default_path() -> Path:
        env = os.environ.get("STUDIO_WORKSPACE")
        if env:
            return Path(env).expanduser()
        return platformdirs.user_data_path("TransformerStudio", appauthor=False) / "workspace"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, taking the write lock at once (two writers never deadlock on an upgrade). A full
        disk, at a statement or at the commit, rolls it back whole and raises WorkspaceFull."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.commit()
        except BaseException as e:
            if self.db.conn.in_transaction:
                self.db.rollback()
            if is_full(e):
                raise WorkspaceFull(
                    f"the disk is full: the workspace database ({self.path / 'workspace.db'}) cannot grow; "
                    "free some space"
                ) from e
            raise

    def _rows(self, sql: str, params: list | tuple = ()) -> list[dict]:
        return list(self.db.query(sql, params))

    def _next_id(self, table: str) -> int:
        # Ids of deleted items stay taken while they are in the trash, so restoring one gives it its id back.
        live = self.db.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
        trashed = self.db.execute("SELECT max(item_id) FROM trash WHERE kind = ?", [KIND_OF_TABLE[table]]).fetchone()[0]
        return max(live, trashed or 0) + 1

    def _publish(self, tmp: Path, folder: Path, table: str, row: dict) -> int:
        """Rename the finished temp folder to folder/<id>, then insert the row, under one write lock."""
        with self._write():
            # The id is chosen before the insert because the folder must be in place before the row appears.
            row_id = self._next_id(table)
            final = folder / str(row_id)
            if final.exists():
                # No row names this id, so the folder is debris from an interrupted publish.
                shutil.rmtree(final)
            os.replace(tmp, final)
            try:
                self.db[table].insert({"id": row_id, **row})
            except BaseException:
                os.replace(final, tmp)
                raise
        return row_id

    @contextlib.contextmanager
    def _temp_dir(self, folder: Path) -> Iterator[Path]:
        # Not tempfile.mkdtemp: its 0700 mode would stay on the published folder. The pid in the name lets a later
        # Workspace tell the debris of a killed process from another process's import in progress.
        tmp = folder / f".tmp-{os.getpid()}-{secrets.token_hex(6)}"
        tmp.mkdir()
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _find(self, table: str, what: str, ref: int | str) -> dict:
        rows: list[dict] = []
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            rows = self._rows(f"SELECT * FROM {table} WHERE id = ?", [int(ref)])
        elif isinstance(ref, str):
            rows = self._rows(f"SELECT * FROM {table} WHERE name = ? ORDER BY id DESC LIMIT 1", [ref])
            if not rows and ref.strip().isdigit():  # "3" from a command line means id 3 unless a name is "3"
                rows = self._rows(f"SELECT * FROM {table} WHERE id = ?", [int(ref)])
        if not rows:
            raise WorkspaceError(f"no {what} {ref!r} in workspace {self.path}")
        return rows[0]

    # ----------------------------------------------------------------------------------------- for the GUI

    def summary(self) -> WorkspaceSummary:
        return {
            "path": str(self.path),
            "datasets": self.datasets(),
            "tokenizers": self.tokenizers(),
            "runs": self.runs(),
        }
