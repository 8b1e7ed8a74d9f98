"""Turn a user's text files into a dataset: one train.txt and one val.txt, both UTF-8.

Input is read and checked here, in bounded chunks, before anything reaches `tokenizers`: that library rejects a
non-UTF-8 file whole without saying where, and takes gigabytes of memory on one huge read (see DESIGN.md).
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CHUNK_BYTES = 1 << 20

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


class DataError(Exception):
    """Input a user can fix; the one-line message names the file and, where it applies, the offset and line."""


class ImportCancelled(DataError):
    def __init__(self, message: str = "import cancelled"):
        super().__init__(message)


@dataclass
class ImportStats:
    n_docs: int
    n_chars: int
    n_lines: int
    n_bytes: int  # UTF-8 size of the imported text (train.txt + val.txt)
    train_chars: int
    val_chars: int
    files: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ finding files

def collect_files(paths: list[Path]) -> list[Path]:
    """The text files to import, in a stable order: files as given, folders searched for *.txt (sorted).

    A file named explicitly is taken whatever its extension (the user chose it; its content is checked later).
    Hidden files and folders inside a searched folder are skipped (.git, editor backups).
    """
    if not paths:
        raise DataError("no files or folders to import")
    found: list[Path] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            in_dir = _txt_files_under(p)
            if not in_dir:
                raise DataError(f"folder {p} has no .txt files")
        elif p.exists() or p.is_symlink():
            in_dir = [p]
        else:
            raise DataError(f"{p} does not exist")
        for f in in_dir:
            key = Path(os.path.abspath(f))
            if key not in seen:
                seen.add(key)
                found.append(f)
    return found


def _txt_files_under(folder: Path) -> list[Path]:
    out = []
    # followlinks=False: a symlink pointing at an ancestor folder would otherwise loop forever.
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        out += [Path(root, f) for f in files if f.lower().endswith(".txt") and not f.startswith(".")]
    return sorted(out, key=lambda f: f.relative_to(folder).parts)


# ------------------------------------------------------------------------------------------------ reading one file

# Checked longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", 4),
    (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (codecs.BOM_UTF8, "utf-8", 1),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
)


def read_document(path: Path) -> str:
    """The text of one file with newlines as \\n; DataError if it is not a non-empty UTF-8/16/32 text."""
    return _read_document(Path(path), None)


def _read_document(path: Path, on_chunk: Callable[[int], None] | None) -> str:
    try:
        with open(path, "rb") as f:
            text = _decode_stream(path, f, on_chunk)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    if not text:
        raise DataError(f"{path} is empty")
    if text.isspace():
        raise DataError(f"{path} has only whitespace")
    return text


def _decode_stream(path: Path, f, on_chunk: Callable[[int], None] | None) -> str:
    head = f.read(4)
    encoding, unit, bom_len = "utf-8", 1, 0
    for bom, enc, size in _BOMS:
        if head.startswith(bom):
            encoding, unit, bom_len = enc, size, len(bom)
            break
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    nul = b"\0" * unit
    parts: list[str] = []
    n_newlines = 0
    pending_cr = False  # a \r at the end of one chunk may pair with a \n at the start of the next
    offset = bom_len  # file offset of `data[0]`
    data = head[bom_len:] + f.read(CHUNK_BYTES)
    while True:
        final = not data
        pos = _find_unit(data, nul, unit, offset - bom_len)
        if pos >= 0:
            raise DataError(f"{path} looks binary (NUL byte at offset {offset + pos})")
        buffered = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final=final)
        except UnicodeDecodeError as e:
            bad = offset - buffered + e.start
            prefix = e.object[:e.start].decode(encoding, "replace")
            line = n_newlines + prefix.count("\n") + 1
            what = encoding.upper().removesuffix("-LE").removesuffix("-BE")
            raise DataError(f"{path} is not {what} text: bad byte at offset {bad} (line {line})") from None
        if pending_cr:
            text = "\r" + text
        pending_cr = text.endswith("\r") and not final
        if pending_cr:
            text = text[:-1]
        # Universal newlines, as Python's text mode: \r\n and a lone \r (old Mac files) both end a line.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        n_newlines += text.count("\n")
        parts.append(text)
        if on_chunk is not None and data:
            on_chunk(len(data))
        if final:
            return "".join(parts)
        offset += len(data)
        data = f.read(CHUNK_BYTES)


def _find_unit(data: bytes, nul: bytes, unit: int, rel: int) -> int:
    """Index of the first all-zero code unit in `data`; `rel` is data's offset from the start of the text."""
    i = data.find(nul)
    while i >= 0 and (rel + i) % unit:
        i = data.find(nul, i + 1)
    return i


# ------------------------------------------------------------------------------------------------ importing

def import_text(paths: list[Path], out_dir: Path, *, val_fraction: float = 0.1,
                progress: Progress | None = None, cancelled: Cancelled | None = None) -> ImportStats:
    """Read every document and write out_dir/train.txt and out_dir/val.txt.

    Documents are joined with one blank line so they stay apart; val is the last `val_fraction` of the joined
    text by characters, as nanoGPT splits (a contiguous tail keeps validation text unseen in training).
    """
    if not 0.0 <= float(val_fraction) <= 0.5:
        raise DataError(f"the validation fraction must be between 0 and 0.5, not {val_fraction}")
    files = collect_files(paths)
    report = progress or (lambda fraction, message: None)
    is_cancelled = cancelled or (lambda: False)

    sizes = []
    for p in files:
        try:
            sizes.append(p.stat().st_size)
        except OSError as e:
            raise DataError(f"cannot read {p}: {e.strerror or e}") from None
    total = max(1, sum(sizes))
    done = 0
    docs: list[str] = []
    for i, p in enumerate(files):
        def on_chunk(n: int, p=p, i=i) -> None:
            nonlocal done
            done += n
            if is_cancelled():
                raise ImportCancelled()
            report(0.9 * min(1.0, done / total), f"reading {p.name} ({i + 1} of {len(files)})")
        if is_cancelled():
            raise ImportCancelled()
        # Trailing newlines are dropped so that every document ends with exactly one before the blank line.
        docs.append(_read_document(p, on_chunk).rstrip("\n"))
    text = "\n\n".join(docs) + "\n"
    del docs

    if is_cancelled():
        raise ImportCancelled()
    report(0.9, "writing train and validation text")
    cut = int(len(text) * (1 - float(val_fraction)))
    train, val = text[:cut], text[cut:]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_bytes = 0
    for name, part in (("train.txt", train), ("val.txt", val)):
        data = part.encode("utf-8")
        n_bytes += len(data)
        try:
            (out_dir / name).write_bytes(data)
        except OSError as e:
            raise DataError(f"cannot write {out_dir / name}: {e.strerror or e}") from None
    report(1.0, f"imported {len(files)} file(s)")
    return ImportStats(n_docs=len(files), n_chars=len(text), n_lines=text.count("\n"), n_bytes=n_bytes,
                       train_chars=len(train), val_chars=len(val), files=[str(Path(p).resolve()) for p in files])
