"""Datasets: importing files into one, the built-in sample, and reading its documents back."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.corpus import read_idx
from engine.data.importers import ImportOptions, import_text
from engine.data.sample import write_sample_scenes
from engine.rows import DatasetRow
from engine.store.errors import WorkspaceError
from engine.store.schema import DATASET_JSON_COLUMNS, utc_now
from engine.tokenizer import Cancelled, Progress


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


class DatasetMethods:
    """The datasets table and folders (a mixin of Workspace)."""

    def import_dataset(
        self,
        paths: list[Path],
        name: str | None = None,
        val_fraction: float = 0.1,
        *,
        progress: Progress | None = None,
        cancelled: Cancelled | None = None,
        **options: Any,
    ) -> DatasetRow:
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

    def _import(self, paths, name, val_fraction, progress, cancelled, sources, options=None) -> DatasetRow:
        options = dict(options or {})
        if hasattr(options.get("cleaning"), "to_dict"):
            options["cleaning"] = options["cleaning"].to_dict()
        with self._temp_dir(self.path / "datasets") as tmp:
            stats = import_text(
                paths, tmp, val_fraction=val_fraction, progress=progress, cancelled=cancelled, **options
            )
            opts = ImportOptions.from_kwargs(**options).to_dict()
            row = {
                "name": name,
                "created": utc_now(),
                "sources": json.dumps(sources or stats.files),
                "val_fraction": float(val_fraction),
                "n_docs": stats.n_docs,
                "n_chars": stats.n_chars,
                "n_lines": stats.n_lines,
                "n_bytes": stats.n_bytes,
                "train_chars": stats.train_chars,
                "val_chars": stats.val_chars,
                "format": stats.format,
                "split": opts["split"],
                "seed": opts["seed"],
                "n_train_docs": stats.n_train_docs,
                "n_val_docs": stats.n_val_docs,
                "has_labels": int(stats.has_labels),
                "cleaning": json.dumps(opts["cleaning"]),
                "options": json.dumps(opts),
                "stats": json.dumps(
                    {
                        k: getattr(stats, k)
                        for k in ("docs_read", "empty_records", "bad_records", "skipped_files", "cleaning", "warnings")
                    }
                ),
            }
            row_id = self._publish(tmp, self.path / "datasets", "datasets", row)
        return self.dataset(row_id)

    def ensure_sample_dataset(self) -> DatasetRow:
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
            return self._import(
                [corpus],
                "sample",
                0.1,
                None,
                None,
                sources=["built-in sample corpus"],
                options={"fmt": "jsonl", "column": "text"},
            )

    def _dataset_row(self, row: dict) -> DatasetRow:
        row = dict(row)
        row["sources"] = json.loads(row["sources"] or "[]")
        for key in DATASET_JSON_COLUMNS:
            row[key] = json.loads(row[key]) if row.get(key) else {}
        # Datasets from before schema 2 were plain text files cut by characters.
        row["format"] = row.get("format") or "txt"
        row["split"] = row.get("split") or "tail"
        row["has_labels"] = bool(row.get("has_labels"))
        return row

    def dataset(self, ref: int | str) -> DatasetRow:
        return self._dataset_row(self._find("datasets", "dataset", ref))

    def datasets(self) -> list[DatasetRow]:
        return [self._dataset_row(r) for r in self._rows("SELECT * FROM datasets ORDER BY id")]

    def dataset_files(self, ref: int | str) -> tuple[Path, Path]:
        folder = self.path / "datasets" / str(self.dataset(ref)["id"])
        return folder / "train.txt", folder / "val.txt"

    def dataset_documents(
        self, ref: int | str, split: str = "train", start: int = 0, limit: int = 20, max_chars: int = 2000
    ) -> list[dict]:
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
                    out.append({"index": i, "text": head[:max_chars], "n_bytes": int(b - a), "label": labels.get(i)})
        except OSError as e:
            raise WorkspaceError(f"cannot read dataset {ref!r}: {e.strerror or e}") from None
        return out

    def labelled_documents(self, ref: int | str, split: str = "train") -> tuple[list[str], list[Any]]:
        """(texts, labels) of every document of a split that carries a label (a classification run reads them
        whole); ([], []) for a dataset imported without a label column."""
        train, val = self.dataset_files(ref)
        path = train if split == "train" else val
        labels_path = path.with_name(f"{split}.labels.jsonl")
        if not labels_path.exists():
            return [], []
        spans = self.document_spans(ref, split)
        texts, labels = [], []
        try:
            with open(labels_path, encoding="utf-8") as lf, open(path, "rb") as f:
                data = f.read()
                for (a, b), line in zip(spans, lf, strict=False):
                    label = json.loads(line)
                    if label is None:
                        continue
                    texts.append(data[a:b].decode("utf-8", "replace").strip("\n"))
                    labels.append(label)
        except (OSError, ValueError) as e:
            raise WorkspaceError(
                f"cannot read the labels of dataset {ref!r}: {getattr(e, 'strerror', None) or e}"
            ) from None
        return texts, labels

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
