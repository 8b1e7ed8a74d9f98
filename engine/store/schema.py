"""The workspace database's tables, their columns, and the upgrade of a workspace made by an older version."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from engine.store.errors import WorkspaceError

# 3: the trash table; 4: the tokenizers' unknown share; 5: the metric rows' objective metrics; 6: copied vocabularies;
# 7: checkpoint paths relative to the workspace folder (engine/store/runs.py stored_path); 8: run leases
# (engine/store/leases.py)
SCHEMA_VERSION = 8
# Columns added in schema 2 (import options and statistics, tokenizer spec); JSON columns hold text.
_DATASET_V2 = {
    "format": str,
    "split": str,
    "seed": int,
    "n_train_docs": int,
    "n_val_docs": int,
    "has_labels": int,
    "cleaning": str,
    "options": str,
    "stats": str,
}
DATASET_JSON_COLUMNS = ("cleaning", "options", "stats")
_TOKENIZER_V2 = {"spec": str}
# Schema 4: the share of the dataset's text (train and validation, in characters) that a tokenizer reads as its
# unknown token, and the most common such characters (a JSON list); NULL for tokenizers trained before.
_TOKENIZER_V4 = {"unk_share": float, "unk_examples": str}
# Schema 5: an evaluation row's objective metrics ({"val_perplexity": ..., "val_masked_accuracy": ...}), a JSON
# object; NULL (read as {}) for the training rows and for rows logged before.
_METRICS_V5 = {"metrics": str}
# Schema 6: the tokenizer whose vocabulary a tokenizer reuses to read another dataset (a fine-tuned run's parent's
# vocabulary on the child's text); NULL for a vocabulary learned from its own dataset.
_TOKENIZER_V6 = {"copied_from": int}

RUN_FIELDS = {"name", "status", "step", "max_iters", "best_val_loss", "device", "message", "config"}
METRIC_FIELDS = ("step", "split", "loss", "lr", "grad_norm", "tokens_per_sec", "elapsed_s")  # the numbers
METRIC_JSON = "metrics"  # and the JSON column of the objective's metrics

TABLE_OF_KIND = {"dataset": "datasets", "tokenizer": "tokenizers", "run": "runs"}
KIND_OF_TABLE = {table: kind for kind, table in TABLE_OF_KIND.items()}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def finite_or_none(x: Any) -> Any:
    # JSON has no NaN or infinity; a diverged loss is stored as null.
    return None if isinstance(x, float) and not math.isfinite(x) else x


class SchemaMethods:
    """Creating and upgrading the tables (a mixin of Workspace)."""

    def _ensure_schema(self) -> None:
        if "meta" in self.db.table_names():
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version == SCHEMA_VERSION:
                return  # the common case: opening an existing workspace does no writes
            if version > SCHEMA_VERSION:
                raise WorkspaceError(
                    f"the workspace {self.path} was made by a newer Transformer Studio "
                    f"(schema {version}; this one reads {SCHEMA_VERSION})"
                )
        with self._write():
            self._create_tables()
            # New nullable columns (schemas 2, 4, 5, 6); rows from before read as the defaults of the time.
            for table, cols in (
                ("datasets", _DATASET_V2),
                ("tokenizers", {**_TOKENIZER_V2, **_TOKENIZER_V4, **_TOKENIZER_V6}),
                ("metrics", _METRICS_V5),
            ):
                have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                for name, kind in cols.items():
                    if name not in have:
                        sql_type = {int: "INTEGER", float: "REAL"}.get(kind, "TEXT")
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
            self._relative_checkpoint_paths()
            self.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )

    def _relative_checkpoint_paths(self) -> None:
        """Schema 7: checkpoint rows of older workspaces held absolute paths, which a copy of the folder still
        pointed at (resuming the copy deleted the original's files)."""
        from engine.store.runs import stored_path

        rows = self.db.execute("SELECT id, path FROM checkpoints").fetchall()
        self.db.conn.executemany(
            "UPDATE checkpoints SET path = ? WHERE id = ?", [(stored_path(self.path, p), i) for i, p in rows]
        )

    def _create_tables(self) -> None:
        """Long function: the schema, one table after another, read best in one place (it is data, not logic)."""
        t = self.db.table
        t("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
        t("datasets").create(
            {
                "id": int,
                "name": str,
                "created": str,
                "sources": str,
                "val_fraction": float,
                "n_docs": int,
                "n_chars": int,
                "n_lines": int,
                "n_bytes": int,
                "train_chars": int,
                "val_chars": int,
            },
            pk="id",
            not_null={"name", "created"},
            if_not_exists=True,
        )
        t("tokenizers").create(
            {
                "id": int,
                "name": str,
                "dataset_id": int,
                "kind": str,
                "vocab_size": int,
                "requested_vocab_size": int,
                "created": str,
                "train_tokens": int,
                "val_tokens": int,
                "dtype": str,
            },
            pk="id",
            not_null={"name", "dataset_id", "kind", "vocab_size", "created"},
            foreign_keys=[("dataset_id", "datasets", "id")],
            if_not_exists=True,
        )
        t("runs").create(
            {
                "id": int,
                "name": str,
                "created": str,
                "updated": str,
                "status": str,
                "config": str,
                "dataset_id": int,
                "tokenizer_id": int,
                "step": int,
                "max_iters": int,
                "best_val_loss": float,
                "device": str,
                "message": str,
            },
            pk="id",
            not_null={"name", "created", "updated", "status", "config"},
            foreign_keys=[("dataset_id", "datasets", "id"), ("tokenizer_id", "tokenizers", "id")],
            if_not_exists=True,
        )
        t("metrics").create(
            {
                "run_id": int,
                "step": int,
                "split": str,
                "loss": float,
                "lr": float,
                "grad_norm": float,
                "tokens_per_sec": float,
                "elapsed_s": float,
                **_METRICS_V5,
            },
            not_null={"run_id", "step", "split"},
            foreign_keys=[("run_id", "runs", "id")],
            if_not_exists=True,
        )
        t("checkpoints").create(
            {"id": int, "run_id": int, "step": int, "path": str, "sha256": str, "val_loss": float, "created": str},
            pk="id",
            not_null={"run_id", "step", "path", "sha256", "created"},
            foreign_keys=[("run_id", "runs", "id")],
            if_not_exists=True,
        )
        t("trash").create(
            {"id": int, "kind": str, "item_id": int, "name": str, "row": str, "folder": str, "deleted": str},
            pk="id",
            not_null={"kind", "item_id", "name", "row", "deleted"},
            if_not_exists=True,
        )
        t("leases").create(
            {"run_id": int, "token": str, "pid": int, "host": str, "started": float, "renewed": float},
            pk="run_id",
            not_null={"token", "pid", "host", "started", "renewed"},
            if_not_exists=True,
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run_id, split, step)")
        self.db.execute("CREATE INDEX IF NOT EXISTS checkpoints_by_run ON checkpoints(run_id, step)")
