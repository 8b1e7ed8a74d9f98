"""Runs, their metrics and their checkpoint rows (the checkpoint files are engine.checkpoint's)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from engine.rows import CheckpointRow, MetricRow, RunRow
from engine.store.errors import WorkspaceError
from engine.store.leases import with_trainer
from engine.store.schema import METRIC_FIELDS, METRIC_JSON, RUN_FIELDS, finite_or_none, utc_now

RUN_NAME_MAX = 80  # fits the Runs table and a terminal line


def check_run_name(name: Any) -> str:
    """`name` trimmed, or a WorkspaceError saying in plain words why it cannot name a run."""
    text = " ".join(str(name or "").split())
    if not text:
        raise WorkspaceError("a run needs a name; type at least one letter")
    if len(text) > RUN_NAME_MAX:
        raise WorkspaceError(f"that name is {len(text)} characters long; a run name can have at most {RUN_NAME_MAX}")
    if text.isdigit():
        # The CLI reads a number as a run id, so such a name could never be typed to mean this run.
        raise WorkspaceError(
            f"a run name cannot be only digits ({text}), since the command line reads those as a run id; add a letter"
        )
    return text


class RunMethods:
    """The runs, metrics and checkpoints tables (a mixin of Workspace)."""

    def create_run(self, name: str, config: dict, dataset_id: int, tokenizer_id: int) -> RunRow:
        if hasattr(config, "to_dict"):
            config = config.to_dict()
        dataset_id = self.dataset(dataset_id)["id"]
        tokenizer_id = self.tokenizer(tokenizer_id)["id"]
        now = utc_now()
        row = {
            "name": name,
            "created": now,
            "updated": now,
            "status": "created",
            "config": json.dumps(config),
            "dataset_id": dataset_id,
            "tokenizer_id": tokenizer_id,
            "step": 0,
            "max_iters": (config.get("train") or {}).get("max_iters"),
            "best_val_loss": None,
            "device": None,
            "message": None,
        }
        with self._write():
            row_id = self.db["runs"].insert({"id": self._next_id("runs"), **row}).last_pk
            self.run_dir(row_id).mkdir(parents=True, exist_ok=True)
        return self.run(row_id)

    def _run_row(self, row: dict) -> RunRow:
        row = dict(row)
        row["config"] = json.loads(row["config"])
        return row

    def run(self, ref: int | str) -> RunRow:
        row = self._run_row(self._find("runs", "run", ref))
        return with_trainer(row, self.live_lease(row["id"]))

    def runs(self) -> list[RunRow]:
        leases = self.live_leases()
        return [
            with_trainer(self._run_row(r), leases.get(r["id"])) for r in self._rows("SELECT * FROM runs ORDER BY id")
        ]

    def update_run(self, run_id: int, **fields: Any) -> None:
        unknown = set(fields) - RUN_FIELDS
        if unknown:
            raise WorkspaceError(f"runs have no field(s) {', '.join(sorted(unknown))}")
        if "config" in fields and not isinstance(fields["config"], str):
            fields["config"] = json.dumps(fields["config"])
        fields = {k: finite_or_none(v) for k, v in fields.items()}
        fields["updated"] = utc_now()
        run_id = self.run(run_id)["id"]
        with self._write():
            self.db["runs"].update(run_id, fields)

    def rename_run(self, ref: int | str, name: str) -> RunRow:
        """Give run `ref` a new name (trimmed); the run's row, renamed. Names are what people and the CLI use."""
        name = check_run_name(name)
        run_id = self.run(ref)["id"]
        self.update_run(run_id, name=name)
        return self.run(run_id)

    def run_dir(self, run_id: int) -> Path:
        return self.path / "runs" / str(int(run_id))

    def add_metrics(self, run_id: int, rows: list[dict]) -> None:
        """Metric rows of a run: METRIC_FIELDS, and "metrics", the objective's metrics (a dict, may be absent)."""
        values = [(int(run_id), *(finite_or_none(r.get(k)) for k in METRIC_FIELDS), _metrics_json(r)) for r in rows]
        if not values:
            return
        cols = ", ".join((*METRIC_FIELDS, METRIC_JSON))
        try:
            with self._write():
                self.db.conn.executemany(
                    f"INSERT INTO metrics (run_id, {cols}) VALUES (?{', ?' * (len(METRIC_FIELDS) + 1)})", values
                )
        except sqlite3.IntegrityError:
            raise WorkspaceError(
                f"no run {run_id!r} in workspace {self.path} (or a metrics row lacks step or split)"
            ) from None

    def delete_metrics(self, run_id: int, *, after_step: int) -> None:
        """Forget metrics past a step, so a run resumed from an earlier checkpoint does not plot twice."""
        with self._write():
            self.db.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", [int(run_id), int(after_step)])

    def delete_checkpoints(self, run_id: int, paths: list[str]) -> None:
        """Forget checkpoint rows by path (their files are the caller's to delete, JSON first)."""
        if not paths:
            return
        with self._write():
            self.db.conn.executemany(
                "DELETE FROM checkpoints WHERE run_id = ? AND path IN (?, ?)",
                [(int(run_id), stored_path(self.path, p), str(p)) for p in paths],
            )

    def metrics(self, run_id: int, split: str | None = None) -> list[MetricRow]:
        """A run's metric rows by step; "metrics" is {} where nothing but the loss was measured."""
        cols = ", ".join((*METRIC_FIELDS, METRIC_JSON))
        if split is None:
            rows = self._rows(f"SELECT {cols} FROM metrics WHERE run_id = ? ORDER BY step, rowid", [int(run_id)])
        else:
            rows = self._rows(
                f"SELECT {cols} FROM metrics WHERE run_id = ? AND split = ? ORDER BY step, rowid", [int(run_id), split]
            )
        for row in rows:
            row[METRIC_JSON] = json.loads(row[METRIC_JSON]) if row[METRIC_JSON] else {}
        return rows

    def add_checkpoint(
        self, run_id: int, step: int, path: Path | str, sha256: str, val_loss: float | None = None
    ) -> CheckpointRow:
        run_id = self.run(run_id)["id"]
        row = {
            "run_id": run_id,
            "step": int(step),
            "path": stored_path(self.path, path),
            "sha256": sha256,
            "val_loss": finite_or_none(val_loss),
            "created": utc_now(),
        }
        with self._write():
            row_id = self.db["checkpoints"].insert(row).last_pk
        return self._located({"id": row_id, **row})

    def checkpoints(self, run_id: int) -> list[CheckpointRow]:
        rows = self._rows("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step, id", [int(run_id)])
        return [self._located(r) for r in rows]

    def latest_checkpoint(self, run_id: int) -> CheckpointRow | None:
        rows = self._rows(
            "SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step DESC, id DESC LIMIT 1", [int(run_id)]
        )
        return self._located(rows[0]) if rows else None

    def _located(self, row: dict) -> dict:
        """A checkpoint row with its path in this workspace's folder, wherever the folder is now."""
        return {**row, "path": str(self.path / stored_path(self.path, row["path"]))}


def stored_path(root: Path, path: Path | str) -> str:
    """A checkpoint's path as the database keeps it: relative to the workspace folder, so a copied, moved or
    synced workspace reads its own files and never another's. An absolute path outside the folder (a row written
    before paths were relative, in the folder the workspace was copied from) keeps its runs/<id>/... tail."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        pass
    parts = p.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "runs" and parts[i + 1].isdigit():
            return Path(*parts[i:]).as_posix()
    return str(p)


def _metrics_json(row: dict) -> str | None:
    """A row's objective metrics as JSON text (NaN and infinity as null); NULL when it has none."""
    metrics = row.get(METRIC_JSON) or {}
    if not metrics:
        return None
    return json.dumps({str(k): _metric_json_value(v) for k, v in metrics.items()})


def _metric_json_value(v):
    """A number (finite or None), a classification's confusion matrix (lists of whole counts) as it is, or
    REINFORCE's samples ({"prompt", "text", "reward"} each)."""
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], dict):
        return [{"prompt": str(s["prompt"]), "text": str(s["text"]), "reward": finite_or_none(s["reward"])} for s in v]
    if isinstance(v, (list, tuple)):
        return [[int(c) for c in row] for row in v]
    return finite_or_none(float(v)) if v is not None else None
