"""A preview of an import: the first records of the files as the import would read them, with their columns,
before anything is written."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any, Callable, Iterator

from engine.data import formats as fm
from engine.data.documents import _lines_as_docs, _paragraphs
from engine.data.errors import DataError, DecodeError
from engine.data.import_options import ImportOptions
from engine.data.sources import Source, _collect
from engine.data.textio import LATIN1, TextReader, line_batches

PREVIEW_CHARS = 2000
PREVIEW_CHUNK_BYTES = 1 << 16  # a preview reads only the start of a file


def preview_records(
    paths: list[Path], fmt: str | None = None, column: str | int | None = None, n: int = 20, **opts: Any
) -> dict:
    """The first n records as the import would read them, before committing to it.

    Returns {"format", "columns", "column_types", "records", "warnings", "files"}: columns are the CSV header,
    the JSONL field paths seen (dotted), or the Parquet columns; each record is {"text", "label", "source",
    "line", "fields"} with text cut to PREVIEW_CHARS characters (None when the text column is not chosen yet)
    and fields holding the raw values of a tabular record. Problems with the input come back as warnings (a
    preview is where the user sees and fixes them); only invalid options raise DataError.
    """
    options = ImportOptions.from_kwargs(fmt=fmt, column=column, **opts)
    out: dict[str, Any] = {
        "format": options.fmt,
        "columns": [],
        "column_types": {},
        "records": [],
        "warnings": [],
        "files": [],
    }
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


def _preview_reader(path: Path, options: ImportOptions, warnings: list[str]) -> Iterator[list[str]]:
    """Line batches of the start of a file, decoded as the import would (falling back as the options say)."""
    try:
        reader = TextReader(path, chunk_bytes=PREVIEW_CHUNK_BYTES)
        yield from line_batches(reader.chunks(), path, options.max_line_chars)
    except DecodeError as e:
        if options.on_decode_error != "latin-1":
            raise
        warnings.append(f"{e}; decoded as Latin-1")
        reader = TextReader(path, chunk_bytes=PREVIEW_CHUNK_BYTES, encoding=LATIN1)
        yield from line_batches(reader.chunks(), path, options.max_line_chars)


def _add(
    out: dict, path: Path, text: Any, label: Any = None, line: int | None = None, fields: dict | None = None
) -> None:
    out["records"].append(
        {
            "text": _clip(text),
            "label": label,
            "source": str(path),
            "line": line,
            "fields": {k: _clip(v) for k, v in (fields or {}).items()},
        }
    )


def _preview_file(src: Source, options: ImportOptions, n: int, out: dict) -> None:
    if src.fmt == "txt":
        _preview_text(src.path, options, n, out)
    elif src.fmt == "parquet":
        _preview_parquet(src.path, options, n, out)
    else:
        _preview_tabular(src, options, n, out)


def _preview_text(path: Path, options: ImportOptions, n: int, out: dict) -> None:
    batches = _preview_reader(path, options, out["warnings"])
    if options.doc_unit == "file":
        text, size = [], 0
        for lines in batches:
            text.append("\n".join(lines))
            size += sum(map(len, lines))
            if size > PREVIEW_CHARS:
                break
        _add(out, path, "\n".join(text).rstrip("\n"), line=1)
        return
    docs = _lines_as_docs(batches) if options.doc_unit == "line" else _paragraphs(batches)
    for doc in docs:
        _add(out, path, "\n".join(ln for lines in doc for ln in lines))
        if len(out["records"]) >= n:
            return


def _preview_parquet(path: Path, options: ImportOptions, n: int, out: dict) -> None:
    names, types, _ = fm.parquet_schema(path)
    out["columns"] = out["columns"] or names
    out["column_types"] = out["column_types"] or types
    pf = fm._open_parquet(path)
    rows = next(pf.iter_batches(batch_size=n), None)
    raw = rows.to_pylist() if rows is not None else []
    texts = _chosen(
        lambda: list(itertools.islice(fm.parquet_records(path, options.column, options.label_column, batch_rows=n), n)),
        out,
    )
    for i, row in enumerate(raw):
        t = texts[i] if i < len(texts) else None
        _add(out, path, t.text if t else None, t.label if t else None, i + 1, row)


def _preview_tabular(src: Source, options: ImportOptions, n: int, out: dict) -> None:
    """A JSONL, CSV or TSV file: each record with its raw fields, bad records as warnings."""
    path = src.path
    batches = list(_take_lines(_preview_reader(path, options, out["warnings"]), n))
    if src.fmt == "jsonl":
        raw = _jsonl_fields(batches, out)
        recs = _chosen(lambda: list(fm.jsonl_records(iter(batches), path, options.column, options.label_column)), out)
    else:
        delimiter = options.delimiter or ("\t" if src.fmt == "tsv" else ",")
        raw = _csv_fields(batches, delimiter, out)
        recs = _chosen(
            lambda: list(
                fm.csv_records(
                    iter(batches), path, delimiter, options.column, options.label_column, options.max_line_chars
                )
            ),
            out,
        )
    if not recs:
        for line, values in list(raw.items())[:n]:
            _add(out, path, None, None, line, values)
    for r in recs[:n]:
        if isinstance(r, fm.Bad):
            out["warnings"].append(f"{path} line {r.line}: {r.reason}")
            _add(out, path, None, None, r.line, raw.get(r.line))
        else:
            _add(out, path, r.text, r.label, r.line, raw.get(r.line))


def _jsonl_fields(batches: list[list[str]], out: dict) -> dict[int, dict | None]:
    """line -> the record's fields by dotted path (None: not JSON); the paths seen are added to out["columns"]."""
    raw: dict[int, dict | None] = {}
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
    return raw


def _csv_fields(batches: list[list[str]], delimiter: str, out: dict) -> dict[int, dict | None]:
    """line where a row starts -> the row by header name; the header becomes out["columns"] if none is set."""
    raw: dict[int, dict | None] = {}
    reader = csv.reader((ln + "\n" for lines in batches for ln in lines), delimiter=delimiter)
    header = next(reader, [])
    end = reader.line_num
    for row in reader:
        start, end = end + 1, reader.line_num
        if row:
            raw[start] = dict(zip(header, row))
    out["columns"] = out["columns"] or header
    return raw


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
