"""The workspace: one folder with a SQLite database (datasets, tokenizers, runs, metrics, checkpoints) and files.

    workspace.db                    WAL mode, so the engine writes while the studio reads
    datasets/<id>/train.txt, val.txt                 documents apart by a blank line
    datasets/<id>/train.idx, val.idx                 byte offset where each document starts (uint64 LE)
    datasets/<id>/train.labels.jsonl, val...         one JSON label per document, when a label column was chosen
    tokenizers/<id>/tokenizer.json, train.bin, val.bin, counts.npy
    runs/<id>/                      checkpoints and whatever else a run keeps

Long work (import, tokenizer training) happens in a temporary folder inside the workspace; only when it succeeded
is the folder renamed to its id and the row inserted, so a failure or a cancel leaves the workspace as it was.

Rows are plain JSON-safe dicts. Each thread must use its own Workspace (a sqlite3 connection belongs to the thread
that opened it); opening one is cheap.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import sqlite3
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import platformdirs
import sqlite_utils

from engine import tokenizer as tk
from engine.data.corpus import read_idx
from engine.data.importers import ImportOptions, import_text
from engine.data.sample import write_sample_scenes

SCHEMA_VERSION = 4  # 3: the trash table; 4: the tokenizers' unknown share
# Columns added in schema 2 (import options and statistics, tokenizer spec); JSON columns hold text.
_DATASET_V2 = {"format": str, "split": str, "seed": int, "n_train_docs": int, "n_val_docs": int,
               "has_labels": int, "cleaning": str, "options": str, "stats": str}
_DATASET_JSON = ("cleaning", "options", "stats")
_TOKENIZER_V2 = {"spec": str}
# Schema 4: the share of the dataset's text (train and validation, in characters) that a tokenizer reads as its
# unknown token, and the most common such characters (a JSON list); NULL for tokenizers trained before.
_TOKENIZER_V4 = {"unk_share": float, "unk_examples": str}
Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]

_RUN_FIELDS = {"name", "status", "step", "max_iters", "best_val_loss", "device", "message", "config"}
_METRIC_FIELDS = ("step", "split", "loss", "lr", "grad_norm", "tokens_per_sec", "elapsed_s")


class WorkspaceError(Exception):
    """A workspace problem a user can act on, in one line."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _finite(x: Any) -> Any:
    # JSON has no NaN or infinity; a diverged loss is stored as null.
    return None if isinstance(x, float) and not math.isfinite(x) else x


RUN_NAME_MAX = 80   # fits the Runs table and a terminal line


def check_run_name(name: Any) -> str:
    """`name` trimmed, or a WorkspaceError saying in plain words why it cannot name a run."""
    text = " ".join(str(name or "").split())
    if not text:
        raise WorkspaceError("a run needs a name; type at least one letter")
    if len(text) > RUN_NAME_MAX:
        raise WorkspaceError(f"that name is {len(text)} characters long; a run name can have at most "
                             f"{RUN_NAME_MAX}")
    if text.isdigit():
        # The CLI reads a number as a run id, so such a name could never be typed to mean this run.
        raise WorkspaceError(f"a run name cannot be only digits ({text}), since the command line reads those as "
                             f"a run id; add a letter")
    return text


_TABLE_OF = {"dataset": "datasets", "tokenizer": "tokenizers", "run": "runs"}
_KIND_OF = {table: kind for kind, table in _TABLE_OF.items()}
TRASH_KEEP_DAYS = 30   # what was deleted longer ago goes for good when a workspace is opened


def _listed(what: str, rows: list[dict], most: int = 3) -> str:
    names = ", ".join(f"{r['name']!r}" for r in rows[:most]) + (f" and {len(rows) - most} more"
                                                                 if len(rows) > most else "")
    return f"{len(rows)} {what}{'s' * (len(rows) != 1)} ({names})"


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":   # on Windows os.kill(pid, 0) would send Ctrl-C, not a probe
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True   # someone else's process, or no way to tell: leave its folder alone
    return True


def _paragraph_starts(path: Path) -> np.ndarray:
    """Byte offsets after each blank line (documents of datasets imported before they were indexed)."""
    starts, offset, prev_nl = [0], 0, False
    with open(path, "rb") as f:
        for line in f:
            offset += len(line)
            if line == b"\n" and prev_nl is False:
                starts.append(offset)
            prev_nl = line == b"\n"
    return np.asarray(starts, dtype=np.int64)


class Workspace:
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
        self._tokenizers: dict[int, tuple[int, Any]] = {}   # id -> (file mtime, Tokenizer)
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
                if len(parts) == 3 and parts[1].isdigit() and not _alive(int(parts[1])):
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

    # ----------------------------------------------------------------------------------------- schema

    def _ensure_schema(self) -> None:
        if "meta" in self.db.table_names():
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version == SCHEMA_VERSION:
                return  # the common case: opening an existing workspace does no writes
            if version > SCHEMA_VERSION:
                raise WorkspaceError(f"the workspace {self.path} was made by a newer Transformer Studio "
                                     f"(schema {version}; this one reads {SCHEMA_VERSION})")
        with self._write():
            self._create_tables()
            # Schema 1 -> 2: new nullable columns; rows from before read as the defaults of the time.
            for table, cols in (("datasets", _DATASET_V2), ("tokenizers", {**_TOKENIZER_V2, **_TOKENIZER_V4})):
                have = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                for name, kind in cols.items():
                    if name not in have:
                        sql_type = {int: "INTEGER", float: "REAL"}.get(kind, "TEXT")
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                            [str(SCHEMA_VERSION)])

    def _create_tables(self) -> None:
        t = self.db.table
        t("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
        t("datasets").create(
            {"id": int, "name": str, "created": str, "sources": str, "val_fraction": float, "n_docs": int,
             "n_chars": int, "n_lines": int, "n_bytes": int, "train_chars": int, "val_chars": int},
            pk="id", not_null={"name", "created"}, if_not_exists=True)
        t("tokenizers").create(
            {"id": int, "name": str, "dataset_id": int, "kind": str, "vocab_size": int,
             "requested_vocab_size": int, "created": str, "train_tokens": int, "val_tokens": int,
             "dtype": str},
            pk="id", not_null={"name", "dataset_id", "kind", "vocab_size", "created"},
            foreign_keys=[("dataset_id", "datasets", "id")], if_not_exists=True)
        t("runs").create(
            {"id": int, "name": str, "created": str, "updated": str, "status": str, "config": str,
             "dataset_id": int, "tokenizer_id": int, "step": int, "max_iters": int, "best_val_loss": float,
             "device": str, "message": str},
            pk="id", not_null={"name", "created", "updated", "status", "config"},
            foreign_keys=[("dataset_id", "datasets", "id"), ("tokenizer_id", "tokenizers", "id")],
            if_not_exists=True)
        t("metrics").create(
            {"run_id": int, "step": int, "split": str, "loss": float, "lr": float, "grad_norm": float,
             "tokens_per_sec": float, "elapsed_s": float},
            not_null={"run_id", "step", "split"}, foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
        t("checkpoints").create(
            {"id": int, "run_id": int, "step": int, "path": str, "sha256": str, "val_loss": float,
             "created": str},
            pk="id", not_null={"run_id", "step", "path", "sha256", "created"},
            foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
        t("trash").create(
            {"id": int, "kind": str, "item_id": int, "name": str, "row": str, "folder": str, "deleted": str},
            pk="id", not_null={"kind", "item_id", "name", "row", "deleted"}, if_not_exists=True)
        self.db.execute("CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run_id, split, step)")
        self.db.execute("CREATE INDEX IF NOT EXISTS checkpoints_by_run ON checkpoints(run_id, step)")

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, taking the write lock at once (two writers never deadlock on an upgrade)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.rollback()
            raise
        else:
            self.db.commit()

    def _rows(self, sql: str, params: list | tuple = ()) -> list[dict]:
        return list(self.db.query(sql, params))

    def _next_id(self, table: str) -> int:
        # Ids of deleted items stay taken while they are in the trash, so restoring one gives it its id back.
        live = self.db.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0
        trashed = self.db.execute("SELECT max(item_id) FROM trash WHERE kind = ?", [_KIND_OF[table]]).fetchone()[0]
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

    # ----------------------------------------------------------------------------------------- datasets

    def import_dataset(self, paths: list[Path], name: str | None = None, val_fraction: float = 0.1, *,
                       progress: Progress | None = None, cancelled: Cancelled | None = None, **options: Any) -> dict:
        """Import files/folders as a new dataset; DataError (or ImportCancelled) leaves nothing behind.

        options are engine.data.importers.ImportOptions fields: fmt, column, label_column, include, exclude,
        doc_unit, delimiter, on_decode_error, on_bad_record, cleaning (a CleaningConfig or its dict), split,
        seed, max_line_chars. The row keeps them ("options", "cleaning") and what the import found ("stats":
        per-step cleaning counts and examples, warnings, skipped files, bad and empty records).
        """
        paths = [Path(p) for p in paths]
        if name is None or not name.strip():
            name = paths[0].stem if paths else "dataset"
        return self._import(paths, name.strip(), val_fraction, progress, cancelled, sources=None, options=options)

    def _import(self, paths, name, val_fraction, progress, cancelled, sources, options=None) -> dict:
        options = dict(options or {})
        if hasattr(options.get("cleaning"), "to_dict"):
            options["cleaning"] = options["cleaning"].to_dict()
        with self._temp_dir(self.path / "datasets") as tmp:
            stats = import_text(paths, tmp, val_fraction=val_fraction, progress=progress, cancelled=cancelled,
                                **options)
            opts = ImportOptions.from_kwargs(**options).to_dict()
            row = {"name": name, "created": _now(), "sources": json.dumps(sources or stats.files),
                   "val_fraction": float(val_fraction), "n_docs": stats.n_docs, "n_chars": stats.n_chars,
                   "n_lines": stats.n_lines, "n_bytes": stats.n_bytes, "train_chars": stats.train_chars,
                   "val_chars": stats.val_chars, "format": stats.format, "split": opts["split"],
                   "seed": opts["seed"], "n_train_docs": stats.n_train_docs, "n_val_docs": stats.n_val_docs,
                   "has_labels": int(stats.has_labels), "cleaning": json.dumps(opts["cleaning"]),
                   "options": json.dumps(opts),
                   "stats": json.dumps({k: getattr(stats, k) for k in (
                       "docs_read", "empty_records", "bad_records", "skipped_files", "cleaning", "warnings")})}
            row_id = self._publish(tmp, self.path / "datasets", "datasets", row)
        return self.dataset(row_id)

    def ensure_sample_dataset(self) -> dict:
        """Give a new user something to train on: when the workspace has no datasets, create "sample".

        Returns the newest dataset named "sample"; a workspace that has datasets but no sample gets none added
        (it is not new) and its newest dataset is returned.
        """
        found = self._rows("SELECT * FROM datasets WHERE name = 'sample' ORDER BY id DESC LIMIT 1")
        if found:
            return self._dataset_row(found[0])
        newest = self._rows("SELECT * FROM datasets ORDER BY id DESC LIMIT 1")
        if newest:
            return self._dataset_row(newest[0])
        with tempfile.TemporaryDirectory(prefix=".tmp-sample-", dir=self.path / "datasets") as d:
            corpus = Path(d) / "sample.jsonl"
            write_sample_scenes(corpus)
            return self._import([corpus], "sample", 0.1, None, None, sources=["built-in sample corpus"],
                                options={"fmt": "jsonl", "column": "text"})

    def _dataset_row(self, row: dict) -> dict:
        row = dict(row)
        row["sources"] = json.loads(row["sources"] or "[]")
        for key in _DATASET_JSON:
            row[key] = json.loads(row[key]) if row.get(key) else {}
        # Datasets from before schema 2 were plain text files cut by characters.
        row["format"] = row.get("format") or "txt"
        row["split"] = row.get("split") or "tail"
        row["has_labels"] = bool(row.get("has_labels"))
        return row

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

    def dataset(self, ref: int | str) -> dict:
        return self._dataset_row(self._find("datasets", "dataset", ref))

    def datasets(self) -> list[dict]:
        return [self._dataset_row(r) for r in self._rows("SELECT * FROM datasets ORDER BY id")]

    def dataset_files(self, ref: int | str) -> tuple[Path, Path]:
        folder = self.path / "datasets" / str(self.dataset(ref)["id"])
        return folder / "train.txt", folder / "val.txt"

    def dataset_documents(self, ref: int | str, split: str = "train", start: int = 0, limit: int = 20,
                          max_chars: int = 2000) -> list[dict]:
        """Documents start..start+limit of a split: [{"index", "text" (cut to max_chars), "n_bytes", "label"}].

        Datasets imported before documents were indexed read as one document per blank-line paragraph.
        """
        if split not in ("train", "val"):
            raise WorkspaceError(f"split must be train or val, not {split!r}")
        train, val = self.dataset_files(ref)
        path = train if split == "train" else val
        spans = self.document_spans(ref, split)
        labels = self._labels(path.with_name(f"{split}.labels.jsonl"), start, limit)
        out = []
        try:
            with open(path, "rb") as f:
                for i in range(max(0, start), min(len(spans), max(0, start) + max(0, limit))):
                    a, b = spans[i]
                    f.seek(a)
                    head = f.read(min(b - a, 4 * max_chars + 4)).decode("utf-8", "ignore").rstrip("\n")
                    out.append({"index": i, "text": head[:max_chars], "n_bytes": int(b - a),
                                "label": labels.get(i)})
        except OSError as e:
            raise WorkspaceError(f"cannot read dataset {ref!r}: {e.strerror or e}") from None
        return out

    def document_spans(self, ref: int | str, split: str = "train") -> np.ndarray:
        """[[start, end), ...] byte ranges of a split's documents (separators included at the end)."""
        train, val = self.dataset_files(ref)
        path = train if split == "train" else val
        try:
            size = path.stat().st_size
        except OSError as e:
            raise WorkspaceError(f"cannot read dataset {ref!r}: {e.strerror or e}") from None
        idx_path = path.with_suffix(".idx")
        if idx_path.exists():
            starts = read_idx(idx_path).astype(np.int64)
        else:
            starts = _paragraph_starts(path)
        starts = starts[starts < size]
        if size == 0:
            return np.zeros((0, 2), dtype=np.int64)
        if not len(starts) or starts[0] != 0:
            starts = np.concatenate([[0], starts]).astype(np.int64)
        return np.stack([starts, np.append(starts[1:], size)], axis=1)

    def _labels(self, path: Path, start: int, limit: int) -> dict[int, Any]:
        if not path.exists():
            return {}
        out = {}
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= start + limit:
                    break
                if i >= start:
                    out[i] = json.loads(line)
        return out

    def dataset_preview(self, ref: int | str, n_chars: int = 2000) -> str:
        train, val = self.dataset_files(ref)
        try:
            with open(train if train.stat().st_size else val, encoding="utf-8") as f:
                return f.read(n_chars)
        except OSError as e:
            raise WorkspaceError(f"cannot read dataset {ref!r}: {e.strerror or e}") from None

    # ----------------------------------------------------------------------------------------- tokenizers

    def train_tokenizer(self, dataset_ref: int | str, kind: str, vocab_size: int, name: str | None = None, *,
                        progress: Progress | None = None, cancelled: Cancelled | None = None,
                        **spec_options: Any) -> dict:
        """Train a tokenizer on a dataset's train.txt and encode train/val to token files (TokenizerError).

        spec_options are TokenizerSpec fields: min_frequency, special_tokens ({role: token}), normalizer,
        pre_tokenizer; the row keeps the whole spec ("spec").
        """
        spec = tk.make_spec(kind, vocab_size, **spec_options)
        ds = self.dataset(dataset_ref)
        train_txt, val_txt = self.dataset_files(ds["id"])
        report = progress or (lambda fraction, message: None)
        try:
            sizes = [train_txt.stat().st_size, val_txt.stat().st_size]
        except OSError as e:
            raise WorkspaceError(f"dataset {ds['name']!r} has lost its text files: {e.strerror or e}") from None
        # Progress: training reads train.txt, then encoding reads train.txt and val.txt, at a similar pace.
        total = max(1, 2 * sizes[0] + sizes[1])
        spans = [(0, sizes[0] / total), (sizes[0] / total, 2 * sizes[0] / total), (2 * sizes[0] / total, 1.0)]

        def part(i: int) -> Progress:
            lo, hi = spans[i]
            return lambda f, msg: report(lo + (hi - lo) * f, msg)

        with self._temp_dir(self.path / "tokenizers") as tmp:
            tok = tk.train_from_spec(spec, [train_txt], progress=part(0), cancelled=cancelled)
            tk.save_tokenizer(tok, tmp / "tokenizer.json")
            sep = tk.separator_id(tok, spec)
            tally = tk.UnknownTally(tk.unknown_id(tok, spec))
            n_train, dtype = tk.encode_to_memmap(tok, train_txt, tmp / "train.bin", progress=part(1),
                                                 cancelled=cancelled, sep_id=sep, tally=tally,
                                                 doc_starts=self.document_spans(ds["id"], "train")[1:, 0])
            n_val, _ = tk.encode_to_memmap(tok, val_txt, tmp / "val.bin", progress=part(2), cancelled=cancelled,
                                           sep_id=sep, doc_starts=self.document_spans(ds["id"], "val")[1:, 0],
                                           tally=tally)
            vocab = tok.get_vocab_size()
            counts = sum(tk.token_counts(np.memmap(tmp / f, dtype=dtype, mode="r") if n else np.zeros(0, dtype),
                                         vocab) for f, n in (("train.bin", n_train), ("val.bin", n_val)))
            np.save(tmp / "counts.npy", counts)
            row = {"name": (name or "").strip() or f"{ds['name']}-{kind}-{vocab}", "dataset_id": ds["id"],
                   "kind": kind, "vocab_size": vocab, "requested_vocab_size": int(vocab_size), "created": _now(),
                   "train_tokens": n_train, "val_tokens": n_val, "dtype": dtype,
                   "spec": json.dumps(spec.to_dict()), "unk_share": tally.share,
                   "unk_examples": json.dumps(tally.common(), ensure_ascii=False)}
            row_id = self._publish(tmp, self.path / "tokenizers", "tokenizers", row)
        report(1.0, f"tokenizer ready: {vocab:,} tokens, {n_train + n_val:,} tokens of text")
        return self.tokenizer(row_id)

    def find_or_train_tokenizer(self, dataset_ref: int | str, kind: str, vocab_size: int, *,
                                progress: Progress | None = None, cancelled: Cancelled | None = None,
                                **spec_options: Any) -> dict:
        """The newest tokenizer of this dataset with the same kind, requested size and spec, or a new one.

        A character vocabulary that took every character of the text (it came out smaller than asked for) is the
        same for any size at least as big, so it is reused for those too.
        """
        spec = tk.make_spec(kind, vocab_size, **spec_options).to_dict()
        ds = self.dataset(dataset_ref)
        same = self._rows("SELECT * FROM tokenizers WHERE dataset_id = ? AND kind = ? ORDER BY id DESC",
                          [ds["id"], kind])
        for row in map(self._tokenizer_row, same):
            asked = int(row.get("requested_vocab_size") or row["vocab_size"])
            whole = kind == "char" and row["vocab_size"] < asked and int(vocab_size) >= row["vocab_size"]
            if not (asked == int(vocab_size) or whole) or not self._tokenizer_dir(row["id"]).is_dir():
                continue
            if {**row["spec"], "vocab_size": 0} == {**spec, "vocab_size": 0}:
                return row
        return self.train_tokenizer(ds["id"], kind, vocab_size, progress=progress, cancelled=cancelled,
                                    **spec_options)

    def _tokenizer_row(self, row: dict) -> dict:
        row = dict(row)
        row["unk_examples"] = json.loads(row["unk_examples"]) if row.get("unk_examples") else []
        if row.get("spec"):
            row["spec"] = json.loads(row["spec"])
        else:  # from before schema 2: the kind's defaults, as trained then
            row["spec"] = tk.make_spec(row["kind"], row.get("requested_vocab_size") or row["vocab_size"]).to_dict()
        return row

    def tokenizer(self, ref: int | str) -> dict:
        return self._tokenizer_row(self._find("tokenizers", "tokenizer", ref))

    def tokenizers(self, dataset_ref: int | str | None = None) -> list[dict]:
        if dataset_ref is None:
            rows = self._rows("SELECT * FROM tokenizers ORDER BY id")
        else:
            rows = self._rows("SELECT * FROM tokenizers WHERE dataset_id = ? ORDER BY id",
                              [self.dataset(dataset_ref)["id"]])
        return [self._tokenizer_row(r) for r in rows]

    def _tokenizer_dir(self, tokenizer_id: int) -> Path:
        return self.path / "tokenizers" / str(tokenizer_id)

    def tokenizer_path(self, ref: int | str) -> Path:
        return self._tokenizer_dir(self.tokenizer(ref)["id"]) / "tokenizer.json"

    def load_tokenizer(self, ref: int | str):
        """The tokenizers.Tokenizer itself, cached per workspace instance while its file is unchanged."""
        row = self.tokenizer(ref)
        path = self._tokenizer_dir(row["id"]) / "tokenizer.json"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            self._tokenizers.pop(row["id"], None)
            raise WorkspaceError(f"tokenizer {row['name']!r} (id {row['id']}) has lost its file {path.name}; "
                                 f"train it again") from None
        cached = self._tokenizers.get(row["id"])
        if cached is None or cached[0] != stamp:
            cached = self._tokenizers[row["id"]] = (stamp, tk.load_tokenizer(path))
        return cached[1]

    def token_files(self, ref: int | str) -> dict:
        row = self.tokenizer(ref)
        folder = self._tokenizer_dir(row["id"])
        return {"train": folder / "train.bin", "val": folder / "val.bin", "counts": folder / "counts.npy",
                "dtype": row["dtype"], "vocab_size": row["vocab_size"]}

    def vocab_rows(self, ref: int | str, offset: int = 0, limit: int | None = None) -> list[list]:
        """[[id, readable token, frequency in train+val, merge rank], ...] for ids offset..offset+limit, by id.

        The merge rank is the order in which BPE learned the merge that made the token (0 first); None for
        tokens that no merge made (characters, bytes, special tokens) and for kinds other than BPE.
        """
        row = self.tokenizer(ref)
        tok = self.load_tokenizer(row["id"])
        counts = np.load(self._tokenizer_dir(row["id"]) / "counts.npy", mmap_mode="r")
        ranks = self.merge_ranks(row["id"])
        start = max(0, int(offset))
        stop = row["vocab_size"] if limit is None else min(row["vocab_size"], start + max(0, int(limit)))
        return [[i, tk.display_token(tok, i), int(counts[i]), ranks.get(i)] for i in range(start, stop)]

    def merge_ranks(self, ref: int | str) -> dict[int, int]:
        """{token id: merge rank} of a BPE tokenizer (cached per workspace instance)."""
        tid = self.tokenizer(ref)["id"]
        if tid not in self._merge_ranks:
            self._merge_ranks[tid] = tk.merge_ranks(self.load_tokenizer(tid))
        return self._merge_ranks[tid]

    # ----------------------------------------------------------------------------------------- runs

    def create_run(self, name: str, config: dict, dataset_id: int, tokenizer_id: int) -> dict:
        if hasattr(config, "to_dict"):
            config = config.to_dict()
        dataset_id = self.dataset(dataset_id)["id"]
        tokenizer_id = self.tokenizer(tokenizer_id)["id"]
        now = _now()
        row = {"name": name, "created": now, "updated": now, "status": "created",
               "config": json.dumps(config), "dataset_id": dataset_id, "tokenizer_id": tokenizer_id,
               "step": 0, "max_iters": (config.get("train") or {}).get("max_iters"),
               "best_val_loss": None, "device": None, "message": None}
        with self._write():
            row_id = self.db["runs"].insert({"id": self._next_id("runs"), **row}).last_pk
            self.run_dir(row_id).mkdir(parents=True, exist_ok=True)
        return self.run(row_id)

    def _run_row(self, row: dict) -> dict:
        row = dict(row)
        row["config"] = json.loads(row["config"])
        return row

    def run(self, ref: int | str) -> dict:
        return self._run_row(self._find("runs", "run", ref))

    def runs(self) -> list[dict]:
        return [self._run_row(r) for r in self._rows("SELECT * FROM runs ORDER BY id")]

    def update_run(self, run_id: int, **fields: Any) -> None:
        unknown = set(fields) - _RUN_FIELDS
        if unknown:
            raise WorkspaceError(f"runs have no field(s) {', '.join(sorted(unknown))}")
        if "config" in fields and not isinstance(fields["config"], str):
            fields["config"] = json.dumps(fields["config"])
        fields = {k: _finite(v) for k, v in fields.items()}
        fields["updated"] = _now()
        run_id = self.run(run_id)["id"]
        with self._write():
            self.db["runs"].update(run_id, fields)

    def rename_run(self, ref: int | str, name: str) -> dict:
        """Give run `ref` a new name (trimmed); the run's row, renamed. Names are what people and the CLI use."""
        name = check_run_name(name)
        run_id = self.run(ref)["id"]
        self.update_run(run_id, name=name)
        return self.run(run_id)

    def run_dir(self, run_id: int) -> Path:
        return self.path / "runs" / str(int(run_id))

    def add_metrics(self, run_id: int, rows: list[dict]) -> None:
        values = [(int(run_id), *(_finite(r.get(k)) for k in _METRIC_FIELDS)) for r in rows]
        if not values:
            return
        try:
            with self._write():
                self.db.conn.executemany(
                    f"INSERT INTO metrics (run_id, {', '.join(_METRIC_FIELDS)}) "
                    f"VALUES (?{', ?' * len(_METRIC_FIELDS)})", values)
        except sqlite3.IntegrityError:
            raise WorkspaceError(f"no run {run_id!r} in workspace {self.path} "
                                 f"(or a metrics row lacks step or split)") from None

    def delete_metrics(self, run_id: int, *, after_step: int) -> None:
        """Forget metrics past a step, so a run resumed from an earlier checkpoint does not plot twice."""
        with self._write():
            self.db.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", [int(run_id), int(after_step)])

    def delete_checkpoints(self, run_id: int, paths: list[str]) -> None:
        """Forget checkpoint rows by path (their files are the caller's to delete, JSON first)."""
        if not paths:
            return
        with self._write():
            self.db.conn.executemany("DELETE FROM checkpoints WHERE run_id = ? AND path = ?",
                                     [(int(run_id), str(p)) for p in paths])

    def metrics(self, run_id: int, split: str | None = None) -> list[dict]:
        cols = ", ".join(_METRIC_FIELDS)
        if split is None:
            return self._rows(f"SELECT {cols} FROM metrics WHERE run_id = ? ORDER BY step, rowid", [int(run_id)])
        return self._rows(f"SELECT {cols} FROM metrics WHERE run_id = ? AND split = ? ORDER BY step, rowid",
                          [int(run_id), split])

    def add_checkpoint(self, run_id: int, step: int, path: Path | str, sha256: str,
                       val_loss: float | None = None) -> dict:
        run_id = self.run(run_id)["id"]
        row = {"run_id": run_id, "step": int(step), "path": str(path), "sha256": sha256,
               "val_loss": _finite(val_loss), "created": _now()}
        with self._write():
            row_id = self.db["checkpoints"].insert(row).last_pk
        return {"id": row_id, **row}

    def checkpoints(self, run_id: int) -> list[dict]:
        return self._rows("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step, id", [int(run_id)])

    def latest_checkpoint(self, run_id: int) -> dict | None:
        rows = self._rows("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY step DESC, id DESC LIMIT 1",
                          [int(run_id)])
        return rows[0] if rows else None

    # ----------------------------------------------------------------------------------------- the trash

    def delete(self, kind: str, ref: int | str) -> dict:
        """Move a dataset, tokenizer or run to the workspace's trash (its rows and its folder); restore() undoes
        it. A run takes its metrics and checkpoints along.

        Refused, with what stands in the way, while something still uses it: a dataset's tokenizers and runs, a
        tokenizer's runs. Returns the trash entry {"id", "kind", "item_id", "name", "deleted"}."""
        table = _TABLE_OF.get(kind)
        if table is None:
            raise WorkspaceError(f"only datasets, tokenizers and runs can be deleted, not {kind!r}")
        item = {"dataset": self.dataset, "tokenizer": self.tokenizer, "run": self.run}[kind](ref)
        users = self._users(kind, item["id"])
        if users:
            raise WorkspaceError(f"{kind} {item['name']!r} is still used by {users}; delete those first")
        raw = self._rows(f"SELECT * FROM {table} WHERE id = ?", [item["id"]])[0]
        if kind == "run":   # its curves and checkpoint list go with it, so Undo gives the whole run back
            raw = {"run": raw, "metrics": self._rows("SELECT * FROM metrics WHERE run_id = ? ORDER BY rowid",
                                                     [item["id"]]),
                   "checkpoints": self._rows("SELECT * FROM checkpoints WHERE run_id = ? ORDER BY id",
                                             [item["id"]])}
        folder = self.path / table / str(item["id"])
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        dest = self.path / "trash" / f"{kind}-{item['id']}-{stamp}"
        entry = {"kind": kind, "item_id": item["id"], "name": item["name"], "row": json.dumps(raw),
                 "folder": str(dest.relative_to(self.path)), "deleted": _now()}
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

    def trash(self) -> list[dict]:
        """What is in the trash, oldest first."""
        return [self._trash_row(r) for r in self._rows("SELECT * FROM trash ORDER BY id")]

    def trash_entry(self, trash_id: int) -> dict:
        rows = self._rows("SELECT * FROM trash WHERE id = ?", [int(trash_id)])
        if not rows:
            raise WorkspaceError(f"nothing with id {trash_id} in the trash (it may have been restored already)")
        return self._trash_row(rows[0])

    @staticmethod
    def _trash_row(row: dict) -> dict:
        return {k: row[k] for k in ("id", "kind", "item_id", "name", "deleted")}

    def restore(self, trash_id: int) -> dict:
        """Put a deleted dataset, tokenizer or run back, with its id; returns its row as dataset(),
        tokenizer() or run() do."""
        rows = self._rows("SELECT * FROM trash WHERE id = ?", [int(trash_id)])
        if not rows:
            raise WorkspaceError(f"nothing with id {trash_id} in the trash (it may have been restored already)")
        entry = rows[0]
        table = _TABLE_OF[entry["kind"]]
        saved = json.loads(entry["row"])
        raw = saved["run"] if entry["kind"] == "run" else saved
        for col, what in (("dataset_id", "datasets"), ("tokenizer_id", "tokenizers")):
            if raw.get(col) is not None and not self._rows(f"SELECT id FROM {what} WHERE id = ?", [raw[col]]):
                raise WorkspaceError(f"{entry['kind']} {entry['name']!r} was made with {what[:-1]} {raw[col]}, "
                                     f"which is gone: restore that {what[:-1]} first")
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

    # ----------------------------------------------------------------------------------------- for the GUI

    def summary(self) -> dict:
        return {"path": str(self.path), "datasets": self.datasets(), "tokenizers": self.tokenizers(),
                "runs": self.runs()}
