"""The trash: a deleted dataset, tokenizer or run keeps its rows and folder here until restored or emptied."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone

from engine.rows import DatasetRow, RunRow, TokenizerRow, TrashEntry
from engine.store.errors import WorkspaceError
from engine.store.schema import TABLE_OF_KIND, utc_now
from engine.format import plural

TRASH_KEEP_DAYS = 30  # what was deleted longer ago goes for good when a workspace is opened


def _listed(what: str, rows: list[dict], most: int = 3) -> str:
    names = ", ".join(f"{r['name']!r}" for r in rows[:most]) + (
        f" and {len(rows) - most} more" if len(rows) > most else ""
    )
    return f"{plural(len(rows), what)} ({names})"


class TrashMethods:
    """The trash table and folder (a mixin of Workspace)."""

    def delete(self, kind: str, ref: int | str) -> TrashEntry:
        """Move a dataset, tokenizer or run to the workspace's trash (its rows and its folder); restore() undoes
        it. A run takes its metrics and checkpoints along.

        Refused, with what stands in the way, while something still uses it: a dataset's tokenizers and runs, a
        tokenizer's runs. Returns the trash entry {"id", "kind", "item_id", "name", "deleted"}."""
        table = TABLE_OF_KIND.get(kind)
        if table is None:
            raise WorkspaceError(f"only datasets, tokenizers and runs can be deleted, not {kind!r}")
        item = {"dataset": self.dataset, "tokenizer": self.tokenizer, "run": self.run}[kind](ref)
        if kind == "run":
            self.check_not_leased(item["id"], "delete")
        users = self._users(kind, item["id"])
        if users:
            raise WorkspaceError(f"{kind} {item['name']!r} is still used by {users}; delete those first")
        raw = self._rows(f"SELECT * FROM {table} WHERE id = ?", [item["id"]])[0]
        if kind == "run":  # its curves and checkpoint list go with it, so Undo gives the whole run back
            raw = {
                "run": raw,
                "metrics": self._rows("SELECT * FROM metrics WHERE run_id = ? ORDER BY rowid", [item["id"]]),
                "checkpoints": self._rows("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY id", [item["id"]]),
            }
        folder = self.path / table / str(item["id"])
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        dest = self.path / "trash" / f"{kind}-{item['id']}-{stamp}"
        entry = {
            "kind": kind,
            "item_id": item["id"],
            "name": item["name"],
            "row": json.dumps(raw),
            "folder": str(dest.relative_to(self.path)),
            "deleted": utc_now(),
        }
        with self._write():
            trash_id = self.db["trash"].insert(entry).last_pk
            if kind == "run":
                self.db.execute("DELETE FROM metrics WHERE run_id = ?", [item["id"]])
                self.db.execute("DELETE FROM checkpoints WHERE run_id = ?", [item["id"]])
            self.db.execute(f"DELETE FROM {table} WHERE id = ?", [item["id"]])
        # After the commit: a crash between leaves the folder where it was, and restore() looks there too.
        dest.parent.mkdir(exist_ok=True)
        if folder.exists():
            os.replace(folder, dest)
        if kind == "tokenizer":
            self._tokenizers.pop(item["id"], None)
            self._merge_ranks.pop(item["id"], None)
        return self.trash_entry(trash_id)

    def _users(self, kind: str, item_id: int) -> str:
        """What uses the item, in words ("" when nothing does)."""
        parts = []
        if kind == "run":
            return ""
        if kind == "dataset":
            toks = self._rows("SELECT id, name FROM tokenizers WHERE dataset_id = ? ORDER BY id", [item_id])
            if toks:
                parts.append(_listed("tokenizer", toks))
        col = "dataset_id" if kind == "dataset" else "tokenizer_id"
        runs = self._rows(f"SELECT id, name FROM runs WHERE {col} = ? ORDER BY id", [item_id])
        if runs:
            parts.append(_listed("run", runs))
        return " and ".join(parts)

    def trash(self) -> list[TrashEntry]:
        """What is in the trash, oldest first."""
        return [self._trash_row(r) for r in self._rows("SELECT * FROM trash ORDER BY id")]

    def trash_entry(self, trash_id: int) -> TrashEntry:
        rows = self._rows("SELECT * FROM trash WHERE id = ?", [int(trash_id)])
        if not rows:
            raise WorkspaceError(f"nothing with id {trash_id} in the trash (it may have been restored already)")
        return self._trash_row(rows[0])

    @staticmethod
    def _trash_row(row: dict) -> TrashEntry:
        return {k: row[k] for k in ("id", "kind", "item_id", "name", "deleted")}

    def restore(self, trash_id: int) -> DatasetRow | TokenizerRow | RunRow:
        """Put a deleted dataset, tokenizer or run back, with its id; returns its row as dataset(),
        tokenizer() or run() do."""
        rows = self._rows("SELECT * FROM trash WHERE id = ?", [int(trash_id)])
        if not rows:
            raise WorkspaceError(f"nothing with id {trash_id} in the trash (it may have been restored already)")
        entry = rows[0]
        table = TABLE_OF_KIND[entry["kind"]]
        saved = json.loads(entry["row"])
        raw = saved["run"] if entry["kind"] == "run" else saved
        for col, what in (("dataset_id", "datasets"), ("tokenizer_id", "tokenizers")):
            if raw.get(col) is not None and not self._rows(f"SELECT id FROM {what} WHERE id = ?", [raw[col]]):
                raise WorkspaceError(
                    f"{entry['kind']} {entry['name']!r} was made with {what[:-1]} {raw[col]}, "
                    f"which is gone: restore that {what[:-1]} first"
                )
        src = self.path / (entry["folder"] or "")
        final = self.path / table / str(entry["item_id"])
        if src.exists() and not final.exists():
            os.replace(src, final)
        try:
            with self._write():
                self.db[table].insert(raw)
                if entry["kind"] == "run":
                    for part in ("metrics", "checkpoints"):
                        if saved[part]:
                            self.db[part].insert_all(saved[part])
                self.db.execute("DELETE FROM trash WHERE id = ?", [int(trash_id)])
        except BaseException:
            if final.exists() and not src.exists():
                os.replace(final, src)
            raise
        return {"dataset": self.dataset, "tokenizer": self.tokenizer, "run": self.run}[entry["kind"]](raw["id"])

    def empty_trash(self, older_than_days: float | None = None) -> int:
        """Delete for good what is in the trash (only what was deleted that long ago, if given); returns how many."""
        rows = self.trash()
        if older_than_days is not None:
            cutoff = datetime.now(timezone.utc).timestamp() - older_than_days * 86400
            rows = [r for r in rows if datetime.fromisoformat(r["deleted"]).timestamp() < cutoff]
        for r in rows:
            entry = self._rows("SELECT folder FROM trash WHERE id = ?", [r["id"]])
            with self._write():
                self.db.execute("DELETE FROM trash WHERE id = ?", [r["id"]])
            if entry and entry[0]["folder"]:
                shutil.rmtree(self.path / entry[0]["folder"], ignore_errors=True)
        return len(rows)
