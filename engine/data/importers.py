"""Turn a user's files into a dataset: train.txt and val.txt (UTF-8, a blank line between documents), the byte
offset where each document starts (train.idx, val.idx), and labels when a label column was chosen.

Formats: plain text files and folders (searched recursively, with include/exclude patterns), CSV/TSV (a text
column, an optional label column), JSONL (a field, dotted paths allowed) and Parquet (a string column).
Everything streams: memory stays bounded whatever the corpus size, and a failed or cancelled import leaves
nothing behind. Input is read and checked here, in bounded chunks, before anything reaches `tokenizers`: that
library rejects a non-UTF-8 file whole without saying where, and takes gigabytes of memory on one huge line
(see docs/DESIGN.md).

This module reads each file into the corpus and splits it (the _Importer), and is the door callers import
from. The rest lives beside it: import_options.py (ImportOptions, ImportStats), sources.py (finding the files),
documents.py (lines and paragraphs as documents), preview.py (preview_records), errors.py.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.data import formats as fm
from engine.data.cleaning import Cleaner, CleaningConfig
from engine.data.corpus import CorpusWriter, read_idx, split_documents, split_tail
from engine.data.errors import (
    BadRecordError,
    BinaryFileError,
    DataError,
    DecodeError,
    FileChangedError,
    ImportCancelled,
)
from engine.data.documents import _lines_as_docs, _paragraphs
from engine.data.import_options import ImportOptions, ImportStats
from engine.data.preview import PREVIEW_CHARS, preview_records
from engine.data.sources import Source, _collect, collect_files
from engine.data.textio import LATIN1, TextReader, line_batches
from engine.format import human_bytes, human_duration

__all__ = [
    "DataError",
    "ImportCancelled",
    "DecodeError",
    "BinaryFileError",
    "BadRecordError",
    "FileChangedError",
    "ImportStats",
    "ImportOptions",
    "CleaningConfig",
    "collect_files",
    "read_document",
    "import_text",
    "preview_records",
    "PREVIEW_CHARS",
]

CHUNK_BYTES = 1 << 20  # read here when a file is read, so a test can make it small
MAX_WARNINGS = 100
BAD_LINES_SHOWN = 10

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


# ------------------------------------------------------------------------------------------------ reading text


def read_document(path: Path) -> str:
    """The text of one file with newlines as \\n; DataError if it is not a non-empty UTF-8/16/32 text."""
    path = Path(path)
    text = "".join(TextReader(path, chunk_bytes=CHUNK_BYTES).chunks())
    if not text:
        raise DataError(f"{path} is empty")
    if text.isspace():
        raise DataError(f"{path} has only whitespace")
    return text


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    return st.st_size, st.st_mtime_ns


# ------------------------------------------------------------------------------------------------ importing


class _Progress:
    """Fraction and a message with the bytes done and the time left, from bytes read over bytes to read."""

    def __init__(self, progress: Progress | None, cancelled: Cancelled | None, total: int):
        self.report = progress or (lambda fraction, message: None)
        self.is_cancelled = cancelled or (lambda: False)
        self.total = max(1, total)
        self.done = 0
        self.start = time.monotonic()
        self.what = "reading"
        self.last = 0.0

    def check(self) -> None:
        if self.is_cancelled():
            raise ImportCancelled()

    def tick(self, n: int) -> None:
        self.done += n
        self.check()
        fraction = min(1.0, self.done / self.total)
        elapsed = time.monotonic() - self.start
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 and elapsed > 1 else None
        left = f", {human_duration(eta)} left" if eta is not None else ""
        self.last = max(self.last, 0.9 * fraction)
        self.report(
            self.last, f"{self.what} — {human_bytes(min(self.done, self.total))} of {human_bytes(self.total)}{left}"
        )


class _Importer:
    """One import: every document of every file, cleaned, into out_dir/.all.txt (with its offsets and labels),
    then cut into train and validation text by finish()."""

    def __init__(self, options: ImportOptions, out_dir: Path, progress: _Progress):
        self.options = options
        self.out_dir = out_dir
        self.progress = progress
        self.cleaner = Cleaner(options.cleaning)
        self.stats = ImportStats(0, 0, 0, 0, 0, 0, has_labels=options.label_column is not None)
        self.labels_path = out_dir / ".all.labels.jsonl" if options.label_column is not None else None
        self.writer = CorpusWriter(out_dir / ".all.txt", out_dir / ".all.idx", self.labels_path)
        self.n_warnings = 0

    def warn(self, message: str) -> None:
        self.n_warnings += 1
        if len(self.stats.warnings) < MAX_WARNINGS:
            self.stats.warnings.append(message)

    # ----------------------------------------------------------------------------------------- one document

    def add_doc(self, batches: Iterator[list[str]], label: Any = None) -> bool | None:
        """Clean and write one document given as line batches: True kept, False dropped, None no visible text."""
        c, w = self.cleaner, self.writer
        c.start_doc()
        w.begin_doc()
        try:
            for lines in batches:
                out = c.feed(lines)
                if out:
                    w.write_lines(out)
        except BaseException:
            w.rollback()
            raise
        self.stats.docs_read += 1
        if c.finish_doc():
            return w.commit(label)
        w.rollback()
        return None if c.raw_empty else False

    # ----------------------------------------------------------------------------------------- one file

    def import_file(self, src: Source, index: int, n_files: int) -> None:
        path = src.path
        self.progress.check()
        before = _stat(path)
        self.progress.what = f"reading {path.name} ({index + 1} of {n_files})"
        encoding = "auto"
        if self.options.on_decode_error != "error" and src.fmt != "parquet":
            encoding = self._prescan(path)
            if encoding is None:
                self.stats.skipped_files.append(str(path))
                return
        if src.fmt == "parquet":
            self._parquet(path)
        elif src.fmt == "txt":
            self._text(path, encoding)
        else:
            self._tabular(path, src.fmt, encoding)
        after = _stat(path)
        if after != before:
            raise FileChangedError(
                f"{path} changed while it was being imported; import it again when nothing is writing to it"
            )
        self.stats.files.append(str(path.resolve()))

    def _prescan(self, path: Path) -> str | None:
        """Decode once to choose: "auto" (fine), "latin-1", or None (skip the file)."""
        try:
            for _ in TextReader(path, chunk_bytes=CHUNK_BYTES, on_bytes=self.progress.tick).chunks():
                pass
            return "auto"
        except DecodeError as e:
            if self.options.on_decode_error == "latin-1" and e.encoding == "utf-8":
                self.warn(f"{e}; decoded as Latin-1")
                return LATIN1
            self.warn(f"skipped {path}: {str(e).removeprefix(str(path) + ' ')}")
            return None
        except BinaryFileError as e:
            if self.options.on_decode_error == "skip":
                self.warn(f"skipped {path}: {str(e).removeprefix(str(path) + ' ')}")
                return None
            raise

    def _reader(self, path: Path, encoding: str) -> TextReader:
        return TextReader(path, chunk_bytes=CHUNK_BYTES, encoding=encoding, on_bytes=self.progress.tick)

    def _empty_file(self, path: Path, message: str) -> None:
        if self.options.on_bad_record == "skip":
            self.warn(f"skipped {message}")
            self.stats.skipped_files.append(str(path))
            return
        raise DataError(message)

    def _text(self, path: Path, encoding: str) -> None:
        reader = self._reader(path, encoding)
        batches = line_batches(reader.chunks(), path, self.options.max_line_chars)
        got_text = False

        def seen(b: Iterator[list[str]]) -> Iterator[list[str]]:
            nonlocal got_text
            for lines in b:
                got_text = True
                yield lines

        if self.options.doc_unit == "file":
            kept = self.add_doc(seen(batches))
            if kept is None:
                self._empty_file(path, f"{path} has only whitespace" if got_text else f"{path} is empty")
            return
        n_before = self.stats.docs_read
        for doc in _lines_as_docs(seen(batches)) if self.options.doc_unit == "line" else _paragraphs(seen(batches)):
            self.add_doc(doc)
            if self.cleaner.raw_empty:  # only whitespace: not a document
                self.stats.docs_read -= 1
        if self.stats.docs_read == n_before:
            self._empty_file(path, f"{path} has only whitespace" if got_text else f"{path} is empty")

    def _tabular(self, path: Path, fmt: str, encoding: str) -> None:
        got_text = False

        def batches() -> Iterator[list[str]]:
            nonlocal got_text
            for lines in line_batches(self._reader(path, encoding).chunks(), path, self.options.max_line_chars):
                if not got_text and any(ln.strip() for ln in lines):
                    got_text = True
                yield lines

        if fmt == "jsonl":
            records = fm.jsonl_records(batches(), path, self.options.column, self.options.label_column)
        else:
            delimiter = self.options.delimiter or ("\t" if fmt == "tsv" else ",")
            records = fm.csv_records(
                batches(), path, delimiter, self.options.column, self.options.label_column, self.options.max_line_chars
            )
        self._records(path, records)
        if not got_text:
            self._empty_file(path, f"{path} is empty" if _stat(path)[0] == 0 else f"{path} has only whitespace")

    def _parquet(self, path: Path) -> None:
        size = _stat(path)[0]
        if size == 0:
            self._empty_file(path, f"{path} is empty")
            return
        done = 0

        def on_rows(rows: int, total: int) -> None:
            nonlocal done
            now = size * rows // max(1, total)
            self.progress.tick(now - done)
            done = now

        self._records(path, fm.parquet_records(path, self.options.column, self.options.label_column, on_rows))
        self.progress.tick(size - done)

    def _records(self, path: Path, records: Iterator[fm.Rec | fm.Bad]) -> None:
        bad: list[fm.Bad] = []
        n_bad = 0
        limit = self.options.max_line_chars
        for r in records:
            if isinstance(r, fm.Rec) and r.text is not None:
                lines = (
                    r.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
                    if "\r" in r.text
                    else r.text.split("\n")
                )
                if max(map(len, lines)) > limit:
                    r = fm.Bad(r.line, f"a line of the text is longer than {limit:,} characters")
            if isinstance(r, fm.Bad):
                n_bad += 1
                if len(bad) < BAD_LINES_SHOWN:
                    bad.append(r)
                if self.options.on_bad_record == "error" and len(bad) >= BAD_LINES_SHOWN:
                    break
                continue
            if n_bad and self.options.on_bad_record == "error":
                continue  # only looking for more bad lines to name them all at once
            if r.text is None or not r.text.strip():
                self.stats.empty_records += 1
                continue
            try:
                if self.add_doc(iter([lines]), r.label) is None:
                    self.stats.empty_records += 1
            except UnicodeEncodeError:
                n_bad += 1
                bad.append(fm.Bad(r.line, "the text holds a lone surrogate (not valid Unicode)"))
        if not n_bad:
            return
        where = "row" if path.suffix.lower() in (".parquet", ".pq") else "line"
        lines = ", ".join(str(b.line) for b in bad) + (", ..." if n_bad > len(bad) else "")
        first = f"{where} {bad[0].line}: {bad[0].reason}"
        if self.options.on_bad_record == "error":
            many = (
                f"{n_bad}+ bad records" if n_bad >= BAD_LINES_SHOWN else f"{n_bad} bad record{'s' if n_bad > 1 else ''}"
            )
            raise BadRecordError(
                f"{path}: {many} ({where}s {lines}); {first}; skip bad records to import the rest",
                path,
                [b.line for b in bad],
            )
        self.stats.bad_records += n_bad
        self.warn(f"{path}: skipped {n_bad} bad record{'s' if n_bad > 1 else ''} ({where}s {lines}); {first}")

    # ----------------------------------------------------------------------------------------- the end

    def finish(self, val_fraction: float, sources: list[Source]) -> ImportStats:
        w = self.writer
        w.finish()
        s = self.stats
        if self.n_warnings > len(s.warnings):
            s.warnings.append(f"... and {self.n_warnings - len(s.warnings)} more warnings")
        s.cleaning = self.cleaner.report()
        if w.n_docs == 0:
            raise DataError(self._nothing_left())
        self.progress.what = "splitting train and validation text"
        self.progress.report(0.9, self.progress.what)
        idx = read_idx(w.idx_path)
        all_path = w.text_path

        def tick(n: int) -> None:
            self.progress.check()

        if self.options.split == "tail":
            parts = split_tail(all_path, idx, w.n_chars, val_fraction, self.out_dir, self.labels_path, tick)
        else:
            parts = split_documents(
                all_path, idx, val_fraction, self.options.seed, self.out_dir, self.labels_path, tick
            )
            if val_fraction > 0 and w.n_docs < 2:
                s.warnings.append(
                    "only one document, so the validation text is empty: split by characters (split='tail') to have one"
                )
        del idx  # the offsets are memory-mapped: let go of the file before it is deleted
        for p in (w.idx_path, self.labels_path):
            if p is not None:
                p.unlink(missing_ok=True)
        s.n_docs, s.n_chars, s.n_lines, s.n_bytes = w.n_docs, w.n_chars, w.n_newlines, w.n_bytes
        s.train_chars, s.val_chars = parts["train_chars"], parts["val_chars"]
        s.n_train_docs, s.n_val_docs = parts["n_train_docs"], parts["n_val_docs"]
        formats = {src.fmt for src in sources if str(src.path.resolve()) in set(s.files)}
        s.format = formats.pop() if len(formats) == 1 else ("mixed" if formats else self.options.fmt or "txt")
        return s

    def _nothing_left(self) -> str:
        s = self.stats
        if s.docs_read:
            removed = {k: v["removed_docs"] for k, v in s.cleaning.items() if v["removed_docs"]}
            if removed:
                return "cleaning removed every document (" + ", ".join(f"{k}: {v:,}" for k, v in removed.items()) + ")"
        if s.skipped_files and not s.files:
            return "every file was skipped: " + "; ".join(s.warnings[:3])
        return "there is no text to import" + (f" ({s.empty_records:,} empty records)" if s.empty_records else "")


def import_text(
    paths: list[Path],
    out_dir: Path,
    *,
    val_fraction: float = 0.1,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    **options: Any,
) -> ImportStats:
    """Read every document and write out_dir/train.txt, val.txt, train.idx, val.idx (and *.labels.jsonl).

    Documents are joined with one blank line so they stay apart. With split="tail", val is the last
    `val_fraction` of the joined text by characters, as nanoGPT splits (a contiguous tail keeps validation text
    unseen in training); with split="documents", whole documents are chosen at random (seeded).
    `options` are ImportOptions fields. On any error or a cancel, nothing is left in out_dir (and out_dir
    itself is removed if this call created it).
    """
    if not 0.0 <= float(val_fraction) <= 0.5:
        raise DataError(f"the validation fraction must be between 0 and 0.5, not {val_fraction}")
    opts = ImportOptions.from_kwargs(**options)
    warnings: list[str] = []
    sources = _collect([Path(p) for p in paths], opts, warnings)
    total = 0
    for s in sources:
        size = _stat(s.path)[0]
        total += size * (2 if opts.on_decode_error != "error" and s.fmt != "parquet" else 1)
    prog = _Progress(progress, cancelled, total)
    prog.check()
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = (
        "train.txt",
        "val.txt",
        "train.idx",
        "val.idx",
        "train.labels.jsonl",
        "val.labels.jsonl",
        ".all.txt",
        ".all.idx",
        ".all.labels.jsonl",
    )
    importer = None
    try:
        importer = _Importer(opts, out_dir, prog)
        for w in warnings:
            importer.warn(w)
        for i, src in enumerate(sources):
            importer.import_file(src, i, len(sources))
        stats = importer.finish(float(val_fraction), sources)
    except OSError as e:
        _discard(out_dir, created, names, importer)
        raise DataError(f"cannot write the dataset in {out_dir}: {e.strerror or e}") from None
    except BaseException:
        _discard(out_dir, created, names, importer)
        raise
    prog.report(1.0, f"imported {stats.n_docs:,} document(s) from {len(stats.files)} file(s)")
    return stats


def _discard(out_dir: Path, created: bool, names: tuple[str, ...], importer: _Importer | None) -> None:
    if importer is not None:
        importer.writer.close()
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    for n in names:
        (out_dir / n).unlink(missing_ok=True)
