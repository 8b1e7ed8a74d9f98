"""Turn a user's files into a dataset: train.txt and val.txt (UTF-8, a blank line between documents), the byte
offset where each document starts (train.idx, val.idx), and labels when a label column was chosen.

Formats: plain text files and folders (searched recursively, with include/exclude patterns), CSV/TSV (a text
column, an optional label column), JSONL (a field, dotted paths allowed) and Parquet (a string column).
Everything streams: memory stays bounded whatever the corpus size, and a failed or cancelled import leaves
nothing behind. Input is read and checked here, in bounded chunks, before anything reaches `tokenizers`: that
library rejects a non-UTF-8 file whole without saying where, and takes gigabytes of memory on one huge line
(see docs/DESIGN.md).
"""
from __future__ import annotations

import csv
import fnmatch
import itertools
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.config import human_bytes, human_duration
from engine.data import formats as fm
from engine.data.cleaning import Cleaner, CleaningConfig
from engine.data.corpus import CorpusWriter, read_idx, split_documents, split_tail
from engine.data.errors import (BadRecordError, BinaryFileError, DataError, DecodeError, FileChangedError,
                                ImportCancelled)
from engine.data.textio import LATIN1, TextReader, line_batches

__all__ = ["DataError", "ImportCancelled", "DecodeError", "BinaryFileError", "BadRecordError", "FileChangedError",
           "ImportStats", "ImportOptions", "CleaningConfig", "collect_files", "read_document", "import_text",
           "preview_records"]

CHUNK_BYTES = 1 << 20
# Longer lines are refused: `tokenizers` needs about 75 bytes of memory per character of one line (docs/DESIGN.md).
MAX_LINE_CHARS = 1 << 23
DECODE_CHOICES = ("error", "latin-1", "skip")
BAD_RECORD_CHOICES = ("error", "skip")
SPLITS = ("tail", "documents")
DOC_UNITS = ("file", "line", "paragraph")
MAX_WARNINGS = 100
BAD_LINES_SHOWN = 10

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


@dataclass
class ImportStats:
    n_docs: int
    n_chars: int
    n_lines: int
    n_bytes: int  # UTF-8 size of the imported text (train.txt + val.txt)
    train_chars: int
    val_chars: int
    files: list[str] = field(default_factory=list)
    format: str = "txt"  # the format of the files, "mixed" when they differ
    n_train_docs: int = 0
    n_val_docs: int = 0
    docs_read: int = 0  # documents (files, records, lines or paragraphs) read, before cleaning
    empty_records: int = 0  # records with no text (an empty cell, a null), left out
    bad_records: int = 0  # records skipped as unreadable (on_bad_record="skip")
    skipped_files: list[str] = field(default_factory=list)
    cleaning: dict = field(default_factory=dict)  # per step: removed_docs, changed_docs, removed_lines, examples
    warnings: list[str] = field(default_factory=list)
    has_labels: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImportOptions:
    """Everything about an import except the paths and the validation fraction; JSON-safe (stored with the row).

    fmt: "txt" | "csv" | "tsv" | "jsonl" | "parquet", or None to go by each file's extension (folders: *.txt).
    column / label_column: CSV/TSV/Parquet column (name or 0-based number) or JSONL field (dotted path) holding
        the text / a label kept for fine-tuning. None: a column named "text", or the only (string) column.
    include / exclude: glob patterns for files found in folders, matched against the file name and the path
        below the folder ("*.md", "drafts/*"); files named explicitly are always taken.
    doc_unit: what one document is in a plain text file: the whole "file", each non-blank "line", or each
        "paragraph" (separated by blank lines).
    on_decode_error: a file that is not UTF-8 (nor UTF-16/32 with a byte-order mark): "error" stops, "latin-1"
        decodes it as Latin-1, "skip" leaves it out (binary files too). Either way it is named in the warnings.
    on_bad_record: a malformed JSONL line, a ragged CSV row, a non-text field, or an empty text file: "error"
        stops with their line numbers, "skip" leaves them out and counts them.
    split: "tail" (the last val_fraction of the characters, as nanoGPT) or "documents" (whole documents chosen
        at random with `seed`).
    max_line_chars: longest line accepted (a one-line 100 MB file is an error, not a memory blow-up).
    """
    fmt: str | None = None
    column: str | int | None = None
    label_column: str | int | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    doc_unit: str = "file"
    delimiter: str | None = None
    on_decode_error: str = "error"
    on_bad_record: str = "error"
    cleaning: dict | None = None
    split: str = "tail"
    seed: int = 0
    max_line_chars: int = MAX_LINE_CHARS

    def __post_init__(self) -> None:
        self.fmt = fm.check_format(self.fmt)
        if isinstance(self.include, str):
            self.include = [self.include]
        if isinstance(self.exclude, str):
            self.exclude = [self.exclude]
        self.include = [str(p) for p in self.include] if self.include else None
        self.exclude = [str(p) for p in self.exclude] if self.exclude else None
        for name, value, choices in (("doc_unit", self.doc_unit, DOC_UNITS),
                                     ("on_decode_error", self.on_decode_error, DECODE_CHOICES),
                                     ("on_bad_record", self.on_bad_record, BAD_RECORD_CHOICES),
                                     ("split", self.split, SPLITS)):
            if value not in choices:
                raise DataError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise DataError(f"the CSV delimiter must be one character, not {self.delimiter!r}")
        try:
            self.seed = int(self.seed)
            self.max_line_chars = int(self.max_line_chars)
        except (TypeError, ValueError):
            raise DataError("seed and max_line_chars must be whole numbers") from None
        if self.max_line_chars < 1:
            raise DataError(f"max_line_chars must be at least 1, not {self.max_line_chars}")
        self.cleaning = CleaningConfig.from_dict(self.cleaning).to_dict()

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "ImportOptions":
        unknown = set(kwargs) - {f.name for f in fields(cls)}
        if unknown:
            raise DataError(f"unknown import option(s): {', '.join(sorted(unknown))}")
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------ finding files

@dataclass
class Source:
    path: Path
    fmt: str


def _matches(name: str, rel: str, patterns: list[str]) -> bool:
    name, rel = name.lower(), rel.lower()
    for p in patterns:
        p = p.lower().removeprefix("**/")
        if fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p):
            return True
    return False


def _walk(folder: Path, include: list[str], exclude: list[str], warnings: list[str]) -> list[Path]:
    """Files under folder matching the patterns; symlinked folders are followed, loops are skipped and named."""
    out: list[tuple[tuple[str, ...], Path]] = []
    try:
        top = folder.stat()
    except OSError as e:
        raise DataError(f"cannot read folder {folder}: {e.strerror or e}") from None
    visited = {(top.st_dev, top.st_ino)}

    def visit(d: Path, rel: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            raise DataError(f"cannot read folder {d}: {e.strerror or e}") from None
        for e in entries:
            if e.name.startswith("."):  # .git, editor backups, our own temp folders
                continue
            r = (*rel, e.name)
            try:
                is_dir = e.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                try:
                    st = os.stat(e.path)
                except OSError as err:
                    warnings.append(f"skipped folder {e.path}: {err.strerror or err}")
                    continue
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    if e.is_symlink():
                        warnings.append(f"skipped {e.path}: a symlink loop or a second link to a folder already "
                                        f"searched ({os.path.realpath(e.path)})")
                    continue
                visited.add(key)
                visit(Path(e.path), r)
            elif _matches(e.name, "/".join(r), include) and not (exclude and _matches(e.name, "/".join(r), exclude)):
                out.append((r, Path(e.path)))

    visit(folder, ())
    return [p for _, p in sorted(out, key=lambda t: t[0])]


def _collect(paths: list[Path], opts: ImportOptions, warnings: list[str]) -> list[Source]:
    if not paths:
        raise DataError("no files or folders to import")
    include = opts.include or fm.DEFAULT_GLOBS[opts.fmt or "txt"]
    found: list[Source] = []
    seen: set[str] = set()
    for p in map(Path, paths):
        if p.is_dir():
            in_dir = _walk(p, include, opts.exclude or [], warnings)
            if not in_dir:
                what = ".txt files" if include == ["*.txt"] else f"files matching {', '.join(include)}"
                raise DataError(f"folder {p} has no {what}")
        elif p.exists() or p.is_symlink():
            in_dir = [p]  # named explicitly: taken whatever its extension (its content is checked later)
        else:
            raise DataError(f"{p} does not exist")
        for f in in_dir:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                found.append(Source(f, opts.fmt or fm.detect_format(f)))
    return found


def collect_files(paths: list[Path], fmt: str | None = None, include: list[str] | None = None,
                  exclude: list[str] | None = None) -> list[Path]:
    """The files to import, in a stable order: files as given, folders searched recursively (sorted).

    A file named explicitly is taken whatever its extension (the user chose it; its content is checked later).
    Hidden files and folders inside a searched folder are skipped (.git, editor backups).
    """
    return [s.path for s in _collect(paths, ImportOptions(fmt=fmt, include=include, exclude=exclude), [])]


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
        self.report(self.last, f"{self.what} — {human_bytes(min(self.done, self.total))} of "
                               f"{human_bytes(self.total)}{left}")


class _Importer:
    def __init__(self, opts: ImportOptions, out_dir: Path, progress: _Progress):
        self.o = opts
        self.out = out_dir
        self.p = progress
        self.cleaner = Cleaner(opts.cleaning)
        self.stats = ImportStats(0, 0, 0, 0, 0, 0, has_labels=opts.label_column is not None)
        self.labels_path = out_dir / ".all.labels.jsonl" if opts.label_column is not None else None
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
        self.p.check()
        before = _stat(path)
        self.p.what = f"reading {path.name} ({index + 1} of {n_files})"
        encoding = "auto"
        if self.o.on_decode_error != "error" and src.fmt != "parquet":
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
            raise FileChangedError(f"{path} changed while it was being imported; import it again when nothing "
                                   f"is writing to it")
        self.stats.files.append(str(path.resolve()))

    def _prescan(self, path: Path) -> str | None:
        """Decode once to choose: "auto" (fine), "latin-1", or None (skip the file)."""
        try:
            for _ in TextReader(path, chunk_bytes=CHUNK_BYTES, on_bytes=self.p.tick).chunks():
                pass
            return "auto"
        except DecodeError as e:
            if self.o.on_decode_error == "latin-1" and e.encoding == "utf-8":
                self.warn(f"{e}; decoded as Latin-1")
                return LATIN1
            self.warn(f"skipped {path}: {str(e).removeprefix(str(path) + ' ')}")
            return None
        except BinaryFileError as e:
            if self.o.on_decode_error == "skip":
                self.warn(f"skipped {path}: {str(e).removeprefix(str(path) + ' ')}")
                return None
            raise

    def _reader(self, path: Path, encoding: str) -> TextReader:
        return TextReader(path, chunk_bytes=CHUNK_BYTES, encoding=encoding, on_bytes=self.p.tick)

    def _empty_file(self, path: Path, message: str) -> None:
        if self.o.on_bad_record == "skip":
            self.warn(f"skipped {message}")
            self.stats.skipped_files.append(str(path))
            return
        raise DataError(message)

    def _text(self, path: Path, encoding: str) -> None:
        reader = self._reader(path, encoding)
        batches = line_batches(reader.chunks(), path, self.o.max_line_chars)
        got_text = False

        def seen(b: Iterator[list[str]]) -> Iterator[list[str]]:
            nonlocal got_text
            for lines in b:
                got_text = True
                yield lines

        if self.o.doc_unit == "file":
            kept = self.add_doc(seen(batches))
            if kept is None:
                self._empty_file(path, f"{path} has only whitespace" if got_text else f"{path} is empty")
            return
        n_before = self.stats.docs_read
        for doc in (_lines_as_docs(seen(batches)) if self.o.doc_unit == "line" else
                    _paragraphs(seen(batches))):
            self.add_doc(doc)
            if self.cleaner.raw_empty:  # only whitespace: not a document
                self.stats.docs_read -= 1
        if self.stats.docs_read == n_before:
            self._empty_file(path, f"{path} has only whitespace" if got_text else f"{path} is empty")

    def _tabular(self, path: Path, fmt: str, encoding: str) -> None:
        got_text = False

        def batches() -> Iterator[list[str]]:
            nonlocal got_text
            for lines in line_batches(self._reader(path, encoding).chunks(), path, self.o.max_line_chars):
                if not got_text and any(ln.strip() for ln in lines):
                    got_text = True
                yield lines

        if fmt == "jsonl":
            records = fm.jsonl_records(batches(), path, self.o.column, self.o.label_column)
        else:
            delimiter = self.o.delimiter or ("\t" if fmt == "tsv" else ",")
            records = fm.csv_records(batches(), path, delimiter, self.o.column, self.o.label_column,
                                     self.o.max_line_chars)
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
            self.p.tick(now - done)
            done = now

        self._records(path, fm.parquet_records(path, self.o.column, self.o.label_column, on_rows))
        self.p.tick(size - done)

    def _records(self, path: Path, records: Iterator[fm.Rec | fm.Bad]) -> None:
        bad: list[fm.Bad] = []
        n_bad = 0
        limit = self.o.max_line_chars
        for r in records:
            if isinstance(r, fm.Rec) and r.text is not None:
                lines = r.text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if "\r" in r.text \
                    else r.text.split("\n")
                if max(map(len, lines)) > limit:
                    r = fm.Bad(r.line, f"a line of the text is longer than {limit:,} characters")
            if isinstance(r, fm.Bad):
                n_bad += 1
                if len(bad) < BAD_LINES_SHOWN:
                    bad.append(r)
                if self.o.on_bad_record == "error" and len(bad) >= BAD_LINES_SHOWN:
                    break
                continue
            if n_bad and self.o.on_bad_record == "error":
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
        if self.o.on_bad_record == "error":
            many = f"{n_bad}+ bad records" if n_bad >= BAD_LINES_SHOWN else \
                f"{n_bad} bad record{'s' if n_bad > 1 else ''}"
            raise BadRecordError(f"{path}: {many} ({where}s {lines}); {first}; skip bad records to import the "
                                 f"rest", path, [b.line for b in bad])
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
        self.p.what = "splitting train and validation text"
        self.p.report(0.9, self.p.what)
        idx = read_idx(w.idx_path)
        all_path = w.text_path

        def tick(n: int) -> None:
            self.p.check()

        if self.o.split == "tail":
            parts = split_tail(all_path, idx, w.n_chars, val_fraction, self.out, self.labels_path, tick)
        else:
            parts = split_documents(all_path, idx, val_fraction, self.o.seed, self.out, self.labels_path, tick)
            if val_fraction > 0 and w.n_docs < 2:
                s.warnings.append("only one document, so the validation text is empty: split by characters "
                                  "(split='tail') to have one")
        del idx  # the offsets are memory-mapped: let go of the file before it is deleted
        for p in (w.idx_path, self.labels_path):
            if p is not None:
                p.unlink(missing_ok=True)
        s.n_docs, s.n_chars, s.n_lines, s.n_bytes = w.n_docs, w.n_chars, w.n_newlines, w.n_bytes
        s.train_chars, s.val_chars = parts["train_chars"], parts["val_chars"]
        s.n_train_docs, s.n_val_docs = parts["n_train_docs"], parts["n_val_docs"]
        formats = {src.fmt for src in sources if str(src.path.resolve()) in set(s.files)}
        s.format = formats.pop() if len(formats) == 1 else ("mixed" if formats else self.o.fmt or "txt")
        return s

    def _nothing_left(self) -> str:
        s = self.stats
        if s.docs_read:
            removed = {k: v["removed_docs"] for k, v in s.cleaning.items() if v["removed_docs"]}
            if removed:
                return ("cleaning removed every document (" +
                        ", ".join(f"{k}: {v:,}" for k, v in removed.items()) + ")")
        if s.skipped_files and not s.files:
            return "every file was skipped: " + "; ".join(s.warnings[:3])
        return "there is no text to import" + (f" ({s.empty_records:,} empty records)" if s.empty_records else "")


def _lines_as_docs(batches: Iterator[list[str]]) -> Iterator[Iterator[list[str]]]:
    for lines in batches:
        for ln in lines:
            if ln.strip():
                yield iter([[ln]])


def _paragraphs(batches: Iterator[list[str]]) -> Iterator[Iterator[list[str]]]:
    """Blank-line separated blocks, each streamed as line batches (a paragraph can be as long as the file)."""
    it = iter(batches)
    pending: list[str] = []  # lines of the current batch not yet handed out
    done = False

    def next_batch() -> bool:
        nonlocal pending, done
        for lines in it:
            pending = lines
            return True
        done = True
        return False

    def paragraph() -> Iterator[list[str]]:
        nonlocal pending
        while True:
            end = next((i for i, ln in enumerate(pending) if not ln.strip()), None)
            if end is not None:
                part, pending = pending[:end], pending[end:]
                if part:
                    yield part
                return
            if pending:
                part, pending = pending, []
                yield part
            if not next_batch():
                return

    while True:
        while pending and not pending[0].strip():
            pending = pending[1:]
        if not pending and (done or not next_batch()):
            return
        if not pending or not pending[0].strip():
            continue
        doc = paragraph()
        yield doc
        for _ in doc:  # a consumer that stopped early must not leave lines behind
            pass


def import_text(paths: list[Path], out_dir: Path, *, val_fraction: float = 0.1,
                progress: Progress | None = None, cancelled: Cancelled | None = None, **options: Any) -> ImportStats:
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
    names = ("train.txt", "val.txt", "train.idx", "val.idx", "train.labels.jsonl", "val.labels.jsonl",
             ".all.txt", ".all.idx", ".all.labels.jsonl")
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


# ------------------------------------------------------------------------------------------------ preview

PREVIEW_CHARS = 2000


def preview_records(paths: list[Path], fmt: str | None = None, column: str | int | None = None, n: int = 20,
                    **opts: Any) -> dict:
    """The first n records as the import would read them, before committing to it.

    Returns {"format", "columns", "column_types", "records", "warnings", "files"}: columns are the CSV header,
    the JSONL field paths seen (dotted), or the Parquet columns; each record is {"text", "label", "source",
    "line", "fields"} with text cut to PREVIEW_CHARS characters (None when the text column is not chosen yet)
    and fields holding the raw values of a tabular record. Problems with the input come back as warnings (a
    preview is where the user sees and fixes them); only invalid options raise DataError.
    """
    options = ImportOptions.from_kwargs(fmt=fmt, column=column, **opts)
    out: dict[str, Any] = {"format": options.fmt, "columns": [], "column_types": {}, "records": [],
                           "warnings": [], "files": []}
    warnings: list[str] = out["warnings"]
    try:
        sources = _collect([Path(p) for p in paths], options, warnings)
    except DataError as e:
        warnings.append(str(e))
        return out
    out["files"] = [str(s.path) for s in sources]
    if sources and out["format"] is None:
        kinds = {s.fmt for s in sources}
        out["format"] = kinds.pop() if len(kinds) == 1 else "mixed"
    for src in sources:
        if len(out["records"]) >= n:
            break
        try:
            _preview_file(src, options, n - len(out["records"]), out)
        except DataError as e:
            warnings.append(str(e))
    return out


def _clip(text: Any) -> Any:
    if isinstance(text, str) and len(text) > PREVIEW_CHARS:
        return text[:PREVIEW_CHARS] + "…"
    return text


def _preview_reader(path: Path, o: ImportOptions, warnings: list[str]) -> Iterator[list[str]]:
    """Line batches of the start of a file, decoded as the import would (falling back as the options say)."""
    try:
        reader = TextReader(path, chunk_bytes=min(CHUNK_BYTES, 1 << 16))
        yield from line_batches(reader.chunks(), path, o.max_line_chars)
    except DecodeError as e:
        if o.on_decode_error != "latin-1":
            raise
        warnings.append(f"{e}; decoded as Latin-1")
        reader = TextReader(path, chunk_bytes=min(CHUNK_BYTES, 1 << 16), encoding=LATIN1)
        yield from line_batches(reader.chunks(), path, o.max_line_chars)


def _preview_file(src: Source, o: ImportOptions, n: int, out: dict) -> None:
    path, records = src.path, out["records"]

    def add(text: Any, label: Any = None, line: int | None = None, fields: dict | None = None) -> None:
        records.append({"text": _clip(text), "label": label, "source": str(path), "line": line,
                        "fields": {k: _clip(v) for k, v in (fields or {}).items()}})

    if src.fmt == "txt":
        batches = _preview_reader(path, o, out["warnings"])
        if o.doc_unit == "file":
            text, size = [], 0
            for lines in batches:
                text.append("\n".join(lines))
                size += sum(map(len, lines))
                if size > PREVIEW_CHARS:
                    break
            add("\n".join(text).rstrip("\n"), line=1)
            return
        docs = _lines_as_docs(batches) if o.doc_unit == "line" else _paragraphs(batches)
        for doc in docs:
            add("\n".join(ln for lines in doc for ln in lines))
            if len(records) >= n:
                return
        return
    if src.fmt == "parquet":
        names, types, _ = fm.parquet_schema(path)
        out["columns"] = out["columns"] or names
        out["column_types"] = out["column_types"] or types
        pf = fm._open_parquet(path)
        rows = next(pf.iter_batches(batch_size=n), None)
        raw = rows.to_pylist() if rows is not None else []
        texts = _chosen(lambda: list(itertools.islice(
            fm.parquet_records(path, o.column, o.label_column, batch_rows=n), n)), out)
        for i, row in enumerate(raw):
            t = texts[i] if i < len(texts) else None
            add(t.text if t else None, t.label if t else None, i + 1, row)
        return
    batches = list(_take_lines(_preview_reader(path, o, out["warnings"]), n))
    raw: dict[int, dict | None] = {}  # line -> the record's raw fields
    if src.fmt == "jsonl":
        columns = list(out["columns"])
        for i, ln in enumerate(ln for lines in batches for ln in lines):
            if not ln.strip():
                continue
            try:
                obj = json.loads(ln)
            except ValueError:
                raw[i + 1] = None
                continue
            flat = {p: fm.get_field(obj, p) for p in fm.field_paths(obj)} if isinstance(obj, dict) else {}
            columns += [c for c in flat if c not in columns]
            raw[i + 1] = flat
        out["columns"] = columns
        recs = _chosen(lambda: list(fm.jsonl_records(iter(batches), path, o.column, o.label_column)), out)
    else:
        delimiter = o.delimiter or ("\t" if src.fmt == "tsv" else ",")
        reader = csv.reader((ln + "\n" for lines in batches for ln in lines), delimiter=delimiter)
        header = next(reader, [])
        end = reader.line_num
        for row in reader:
            start, end = end + 1, reader.line_num
            if row:
                raw[start] = dict(zip(header, row))
        out["columns"] = out["columns"] or header
        recs = _chosen(lambda: list(fm.csv_records(iter(batches), path, delimiter, o.column, o.label_column,
                                                   o.max_line_chars)), out)
    if not recs:
        for line, values in list(raw.items())[:n]:
            add(None, None, line, values)
    for r in recs[:n]:
        if isinstance(r, fm.Bad):
            out["warnings"].append(f"{path} line {r.line}: {r.reason}")
            add(None, None, r.line, raw.get(r.line))
        else:
            add(r.text, r.label, r.line, raw.get(r.line))


def _take_lines(batches: Iterator[list[str]], n: int) -> Iterator[list[str]]:
    # Enough physical lines for n records, with room for multi-line CSV fields and blank lines.
    got = 0
    for lines in batches:
        yield lines
        got += len(lines)
        if got > 4 * n + 16:
            return


def _chosen(read: Callable[[], list], out: dict) -> list:
    """The records as the import reads them, or [] with a warning when the text column is not chosen yet."""
    try:
        return read()
    except DataError as e:
        out["warnings"].append(str(e))
        return []
