"""Records from tabular files: CSV/TSV rows, JSONL lines, Parquet rows; each gives one document's text and an
optional label (kept for later fine-tuning).

Readers yield `Rec` for a readable record (text None for an empty cell or a null) and `Bad` for one that cannot
be read (a malformed JSON line, a ragged CSV row, a field that is not text); the importer decides whether a bad
record stops the import or is skipped. Problems with the whole file (no such column, a non-string Parquet
column) are DataErrors at once.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from engine.data.errors import DataError
from engine.choices import DEFAULT_GLOBS, EXTENSIONS  # noqa: F401 (DEFAULT_GLOBS: read from here too)
from engine.choices import IMPORT_FORMATS as FORMATS

# The column or field taken when none is chosen, if the file has it.
DEFAULT_COLUMN = "text"


class Rec(NamedTuple):
    text: str | None
    label: Any
    line: int  # line of the record's start (CSV, JSONL) or row number (Parquet), from 1


class Bad(NamedTuple):
    line: int
    reason: str


def detect_format(path: Path) -> str:
    """The format a file's extension says; anything unknown is read as plain text."""
    return EXTENSIONS.get(Path(path).suffix.lower(), "txt")


def check_format(fmt: str | None) -> str | None:
    if fmt is None:
        return None
    f = str(fmt).lower().lstrip(".")
    f = {"ndjson": "jsonl", "text": "txt", "pq": "parquet"}.get(f, f)
    if f not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return f


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _label(value: Any) -> Any:
    # Labels are stored as JSON: scalars as they are, anything else as its text.
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _names(names: Iterable[str], limit: int = 12) -> str:
    names = list(names)
    shown = ", ".join(map(str, names[:limit]))
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") if names else "none"


# ------------------------------------------------------------------------------------------------ JSONL


def get_field(obj: Any, path: str) -> Any:
    """obj at a dotted path ("meta.title", "turns.0.text"); a key that itself holds dots is found too.

    KeyError when the path is not there.
    """
    if isinstance(obj, dict) and path in obj:
        return obj[path]
    parts, cur, i = path.split("."), obj, 0
    while i < len(parts):
        if isinstance(cur, dict):
            for j in range(len(parts), i, -1):  # longest key first: {"a.b": 1} answers "a.b"
                key = ".".join(parts[i:j])
                if key in cur:
                    cur, i = cur[key], j
                    break
            else:
                raise KeyError(path)
        elif isinstance(cur, list) and parts[i].lstrip("-").isdigit():
            try:
                cur = cur[int(parts[i])]
            except IndexError:
                raise KeyError(path) from None
            i += 1
        else:
            raise KeyError(path)
    return cur


def field_paths(obj: Any, prefix: str = "", limit: int = 200) -> list[str]:
    """The dotted paths of an object's leaves (lists are leaves), in order: what a user can pick."""
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = f"{prefix}{k}"
            if isinstance(v, dict) and v:
                out += field_paths(v, p + ".", limit)
            else:
                out.append(p)
            if len(out) >= limit:
                break
    return out[:limit]


def _default_field(obj: Any, path: Path) -> str:
    if isinstance(obj, dict):
        if DEFAULT_COLUMN in obj:
            return DEFAULT_COLUMN
        strings = [p for p in field_paths(obj) if isinstance(get_field(obj, p), str)]
        if len(strings) == 1:
            return strings[0]
    raise DataError(f"{path}: choose the text field (fields: {_names(field_paths(obj))})")


def jsonl_records(
    batches: Iterable[list[str]], path: Path, column: str | None, label_column: str | None
) -> Iterator[Rec | Bad]:
    line = 0
    checked = False
    for batch in batches:
        for text in batch:
            line += 1
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                yield Bad(line, f"not valid JSON ({e.msg}, column {e.colno})")
                continue
            except RecursionError:
                yield Bad(line, "JSON nested too deeply")
                continue
            if isinstance(obj, str) and column is None:
                yield Rec(obj, None, line)
                continue
            if not checked:
                # The first record decides about the whole file: a field it lacks is a wrong choice, not a
                # bad record.
                checked = True
                if column is None:
                    column = _default_field(obj, path)
                for name in (column, label_column):
                    if name is not None:
                        try:
                            get_field(obj, name)
                        except KeyError:
                            fields = field_paths(obj) if isinstance(obj, dict) else []
                            raise DataError(
                                f"{path} has no field {name!r} (line {line} has: {_names(fields)})"
                            ) from None
            try:
                value = get_field(obj, column)
            except KeyError:
                yield Bad(line, f"no field {column!r}")
                continue
            if value is not None and not isinstance(value, str):
                yield Bad(line, f"field {column!r} is {_kind(value)}, not text")
                continue
            label = None
            if label_column is not None:
                try:
                    label = _label(get_field(obj, label_column))
                except KeyError:
                    yield Bad(line, f"no field {label_column!r}")
                    continue
            yield Rec(value, label, line)


# ------------------------------------------------------------------------------------------------ CSV / TSV


def _column_index(header: list[str], column: str | int | None, path: Path, what: str = "column") -> int:
    if isinstance(column, int) and not isinstance(column, bool):
        if 0 <= column < len(header):
            return column
        raise DataError(f"{path} has no column number {column} (it has {len(header)} columns)")
    if column in header:
        return header.index(column)
    folded = [h.strip().lower() for h in header]
    if column is not None and str(column).strip().lower() in folded:
        return folded.index(str(column).strip().lower())
    if column is None:
        if DEFAULT_COLUMN in folded:
            return folded.index(DEFAULT_COLUMN)
        if len(header) == 1:
            return 0
        raise DataError(f"{path}: choose the text column (columns: {_names(header)})")
    raise DataError(f"{path} has no {what} {column!r} (columns: {_names(header)})")


def _physical_lines(batches: Iterable[list[str]]) -> Iterator[str]:
    for batch in batches:
        for text in batch:
            yield text + "\n"


def csv_records(
    batches: Iterable[list[str]],
    path: Path,
    delimiter: str,
    column: str | int | None,
    label_column: str | int | None,
    max_field_chars: int,
) -> Iterator[Rec | Bad]:
    # The csv module's field limit is one process-wide setting; it is only ever raised here.
    if csv.field_size_limit() < max_field_chars:
        csv.field_size_limit(max_field_chars)
    # strict: a quote in the wrong place is an error, not a guess that can merge or split records.
    reader = csv.reader(_physical_lines(batches), delimiter=delimiter, strict=True)
    end = 0
    try:
        header = next(reader, None)
        if header is None:
            return
        ci = _column_index(header, column, path)
        li = None if label_column is None else _column_index(header, label_column, path, "label column")
        n = len(header)
        end = reader.line_num
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row:
                continue
            if len(row) != n:
                yield Bad(start, f"has {len(row)} field{'s' if len(row) != 1 else ''}, the header has {n}")
                continue
            text = row[ci]
            if len(text) > max_field_chars:
                yield Bad(start, f"the text is longer than {max_field_chars:,} characters")
                continue
            yield Rec(text, None if li is None else row[li], start)
    except csv.Error as e:
        start = end + 1  # where the record that broke began, which is where to look
        if "unexpected end of data" in str(e):
            raise DataError(
                f"{path} line {start}: a quote opened in this record is never closed, so every line after it "
                f"would be read as one field; close the quote, or import as plain text"
            ) from None
        where = f"line {start}" if start == reader.line_num else f"the record starting on line {start}"
        raise DataError(f"{path} {where} is not valid CSV: {e}") from None


# ------------------------------------------------------------------------------------------------ Parquet


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise DataError("reading Parquet needs the pyarrow package (pip install pyarrow)") from None
    return pa, pq


def _open_parquet(path: Path):
    pa, pq = _pyarrow()
    try:
        return pq.ParquetFile(str(path))
    except OSError as e:
        if getattr(e, "strerror", None):
            raise DataError(f"cannot read {path}: {e.strerror}") from None
        raise DataError(f"{path} is not a readable Parquet file: {str(e).splitlines()[0] if str(e) else e!r}") from None
    except Exception as e:  # pyarrow raises ArrowInvalid and friends
        raise DataError(f"{path} is not a readable Parquet file: {str(e).splitlines()[0] if str(e) else e!r}") from None


def _is_text(t) -> bool:
    pa, _ = _pyarrow()
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))
    )


def parquet_schema(path: Path) -> tuple[list[str], dict[str, str], int]:
    """(column names, {name: Arrow type}, number of rows)."""
    pf = _open_parquet(path)
    schema = pf.schema_arrow
    return list(schema.names), {f.name: str(f.type) for f in schema}, pf.metadata.num_rows


def _parquet_column(schema, column: str | int | None, path: Path, what: str = "column") -> str:
    names = list(schema.names)
    if isinstance(column, int) and not isinstance(column, bool):
        if 0 <= column < len(names):
            return names[column]
        raise DataError(f"{path} has no column number {column} (it has {len(names)} columns)")
    if column is None:
        if DEFAULT_COLUMN in names:
            return DEFAULT_COLUMN
        strings = [f.name for f in schema if _is_text(f.type)]
        if len(strings) == 1:
            return strings[0]
        raise DataError(f"{path}: choose the text column (columns: {_names(names)})")
    if column not in names:
        raise DataError(f"{path} has no {what} {column!r} (columns: {_names(names)})")
    return column


def parquet_records(
    path: Path,
    column: str | int | None,
    label_column: str | int | None,
    on_rows: Callable[[int, int], None] | None = None,
    batch_rows: int = 2048,
) -> Iterator[Rec]:
    """Rows in order; on_rows(rows_done, rows_total) after each batch."""
    pf = _open_parquet(path)
    schema = pf.schema_arrow
    col = _parquet_column(schema, column, path)
    t = schema.field(col).type
    if not _is_text(t):
        raise DataError(f"{path}: column {col!r} holds {t}, not text; choose a string column")
    lab = None if label_column is None else _parquet_column(schema, label_column, path, "label column")
    total = pf.metadata.num_rows
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=[col] + ([lab] if lab and lab != col else [])):
            texts = batch.column(col).to_pylist()
            labels = batch.column(lab).to_pylist() if lab else [None] * len(texts)
            for text, label in zip(texts, labels):
                row += 1
                yield Rec(text, _label(label), row)
            if on_rows is not None:
                on_rows(row, total)
    except DataError:
        raise
    except Exception as e:  # a corrupt page shows up only when it is read
        raise DataError(
            f"{path} row {row + 1}: cannot read the Parquet data: {str(e).splitlines()[0] if str(e) else e!r}"
        ) from None
