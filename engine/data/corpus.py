"""Writing the imported documents to disk, then splitting them into train.txt and val.txt, in bounded memory.

`CorpusWriter` appends documents to one UTF-8 file, a blank line between two documents and one \\n at the end,
and can take back the document being written (a document that cleaning drops, or that turns out to be bad, after
part of it was written). Beside the text it keeps the byte offset where each document starts (`*.idx`, raw
little-endian uint64) and, when asked, one JSON label per document (`*.labels.jsonl`).

`split_tail` cuts the text at a character position, as nanoGPT splits; `split_documents` sends a seeded random
choice of whole documents to validation. Both work by copying byte ranges, never by holding the text.
"""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any, Callable

import numpy as np

SEPARATOR = "\n\n"
BLOCK = 1 << 20
NO_LABEL = object()


def utf8_chars(data: bytes | np.ndarray) -> int:
    """Characters in UTF-8 bytes: every byte that is not a continuation byte (10xxxxxx) starts one."""
    a = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    return int(np.count_nonzero((a & 0xC0) != 0x80))


class CorpusWriter:
    def __init__(self, text_path: Path, idx_path: Path, labels_path: Path | None = None, flush_bytes: int = BLOCK):
        self.text_path, self.idx_path, self.labels_path = Path(text_path), Path(idx_path), labels_path
        self._f = open(self.text_path, "wb")
        self._idx = open(self.idx_path, "wb")
        self._labels = open(labels_path, "w", encoding="utf-8", newline="\n") if labels_path else None
        self._buf = bytearray()
        self._flushed = 0
        self._flush_bytes = flush_bytes
        self._idx_buf = array("Q")
        self.n_docs = self.n_chars = self.n_newlines = 0
        self._mark: tuple[int, int, int] | None = None
        self._start = 0
        self._has_text = False

    @property
    def n_bytes(self) -> int:
        return self._flushed + len(self._buf)

    def begin_doc(self) -> None:
        self._mark = (self.n_bytes, self.n_chars, self.n_newlines)
        self._has_text = False
        self._start = -1

    def write_lines(self, lines: list[str]) -> None:
        """Append lines of the current document (joined with \\n; UnicodeEncodeError for a lone surrogate)."""
        if not lines:
            return
        text = "\n".join(lines)
        if self._has_text:
            text = "\n" + text
        elif self.n_docs:
            self._put(SEPARATOR)
        if self._start < 0:
            self._start = self.n_bytes
        data = text.encode("utf-8")  # before any counter moves, so a failure leaves nothing half-counted
        self._has_text = True
        self._put_bytes(data, len(text), text.count("\n"))

    def _put(self, text: str) -> None:
        self._put_bytes(text.encode("utf-8"), len(text), text.count("\n"))

    def _put_bytes(self, data: bytes, n_chars: int, n_newlines: int) -> None:
        self._buf += data
        self.n_chars += n_chars
        self.n_newlines += n_newlines
        if len(self._buf) >= self._flush_bytes:
            self._f.write(self._buf)
            self._flushed += len(self._buf)
            self._buf.clear()

    def commit(self, label: Any = NO_LABEL) -> bool:
        """Keep the current document; False (and nothing kept) if it got no text."""
        if not self._has_text:
            self.rollback()
            return False
        self._idx_buf.append(self._start)
        if len(self._idx_buf) >= 1 << 16:
            self._idx.write(self._idx_buf.tobytes())
            self._idx_buf = array("Q")
        if self._labels is not None:
            self._labels.write(json.dumps(None if label is NO_LABEL else label, ensure_ascii=False) + "\n")
        self.n_docs += 1
        self._mark = None
        return True

    def rollback(self) -> None:
        """Forget the current document, separator included."""
        if self._mark is None:
            return
        pos, self.n_chars, self.n_newlines = self._mark
        if pos >= self._flushed:
            del self._buf[pos - self._flushed :]
        else:
            self._f.write(self._buf)
            self._buf.clear()
            self._f.flush()
            self._f.truncate(pos)
            self._f.seek(pos)
            self._flushed = pos
        self._mark = None
        self._has_text = False

    def finish(self) -> None:
        if self.n_docs:
            self._put("\n")
        self._f.write(self._buf)
        self._flushed += len(self._buf)
        self._buf.clear()
        self._idx.write(self._idx_buf.tobytes())
        self.close()

    def close(self) -> None:
        for f in (self._f, self._idx, self._labels):
            if f is not None and not f.closed:
                f.close()


def read_idx(path: Path) -> np.ndarray:
    """Document start offsets, memory-mapped (ten million documents would be 80 MB in memory)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint64)
    return np.memmap(path, dtype="<u8", mode="r")


def _write_offsets(f, offsets: np.ndarray, shift: int = 0) -> None:
    """Write offsets + shift as little-endian uint64, a block at a time."""
    step = 1 << 20
    for a in range(0, len(offsets), step):
        (np.asarray(offsets[a : a + step], dtype=np.int64) + shift).astype("<u8").tofile(f)


def byte_offset_of_char(path: Path, n_chars: int) -> int:
    """The byte offset in a UTF-8 file where character number n_chars (from 0) starts; the size if past the end."""
    seen = 0
    offset = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK)
            if not block:
                return offset
            lead = (np.frombuffer(block, dtype=np.uint8) & 0xC0) != 0x80
            c = int(np.count_nonzero(lead))
            if seen + c > n_chars:
                # Narrow down to 64 KiB before listing positions (8 bytes each) to keep memory small.
                for a in range(0, len(lead), 1 << 16):
                    part = lead[a : a + (1 << 16)]
                    k = int(np.count_nonzero(part))
                    if seen + k > n_chars:
                        return offset + a + int(np.flatnonzero(part)[n_chars - seen])
                    seen += k
            seen += c
            offset += len(block)


def _copy(src, dst, start: int, end: int, tick: Callable[[int], None] | None) -> int:
    """Copy bytes [start, end) of src to dst; return how many characters they hold."""
    src.seek(start)
    left = end - start
    chars = 0
    while left > 0:
        block = src.read(min(BLOCK, left))
        if not block:
            raise OSError(f"{getattr(src, 'name', 'file')} ended early")
        dst.write(block)
        chars += utf8_chars(block)
        left -= len(block)
        if tick is not None:
            tick(len(block))
    return chars


def _write_labels(labels_path: Path | None, out: dict[str, Path], which: Callable[[int], list[str]]) -> None:
    """Send label number i to the splits which(i) names (a document cut in two has its label in both)."""
    if labels_path is None:
        return
    files = {k: open(p, "w", encoding="utf-8", newline="\n") for k, p in out.items()}
    try:
        with open(labels_path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                for split in which(i):
                    files[split].write(line)
    finally:
        for g in files.values():
            g.close()


def split_tail(
    all_path: Path,
    idx: np.ndarray,
    n_chars: int,
    val_fraction: float,
    out_dir: Path,
    labels_path: Path | None,
    tick: Callable[[int], None] | None = None,
) -> dict:
    """Last `val_fraction` of the characters to val.txt (a contiguous tail keeps validation text unseen)."""
    size = all_path.stat().st_size
    cut = int(n_chars * (1 - float(val_fraction)))
    byte_cut = byte_offset_of_char(all_path, cut)
    with open(all_path, "rb") as src, open(out_dir / "val.txt", "wb") as dst:
        _copy(src, dst, byte_cut, size, tick)
    with open(all_path, "r+b") as f:
        f.truncate(byte_cut)
    os.replace(all_path, out_dir / "train.txt")

    n = len(idx)
    k = int(np.searchsorted(idx, byte_cut, side="left"))  # documents 0..k-1 start in train
    # The document that straddles the cut continues in val when its text (not only its separator) does.
    partial = False
    if 0 < k and byte_cut < size:
        end_of_text = int(idx[k]) - len(SEPARATOR) if k < n else size - 1
        partial = byte_cut < end_of_text
    with open(out_dir / "train.idx", "wb") as f:
        _write_offsets(f, idx[:k])
    with open(out_dir / "val.idx", "wb") as f:
        if partial:
            _write_offsets(f, np.zeros(1, dtype=np.int64))
        _write_offsets(f, idx[k:], -byte_cut)
    _write_labels(
        labels_path,
        {"train": out_dir / "train.labels.jsonl", "val": out_dir / "val.labels.jsonl"},
        lambda i: (
            ["train"] if i < k - 1 or (i == k - 1 and not partial) else (["train", "val"] if i == k - 1 else ["val"])
        ),
    )
    return {"train_chars": cut, "val_chars": n_chars - cut, "n_train_docs": k, "n_val_docs": n - k + partial}


def val_document_mask(n_docs: int, val_fraction: float, seed: int) -> np.ndarray:
    """Which documents go to validation: round(n * fraction) of them, chosen by a seeded generator, at least
    one each side when there are two or more documents and the fraction is not 0."""
    k = int(round(n_docs * float(val_fraction)))
    if val_fraction > 0 and n_docs >= 2:
        k = min(max(k, 1), n_docs - 1)
    elif n_docs < 2:
        k = 0
    mask = np.zeros(n_docs, dtype=bool)
    if k:
        mask[np.random.default_rng(int(seed)).choice(n_docs, size=k, replace=False)] = True
    return mask


def split_documents(
    all_path: Path,
    idx: np.ndarray,
    val_fraction: float,
    seed: int,
    out_dir: Path,
    labels_path: Path | None,
    tick: Callable[[int], None] | None = None,
) -> dict:
    """Whole documents to train.txt or val.txt (seeded, reproducible), each keeping the order it had."""
    size = all_path.stat().st_size
    n = len(idx)
    mask = val_document_mask(n, val_fraction, seed)
    # Runs of consecutive documents that go to the same side are copied as one byte range.
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    run_starts = np.concatenate([[0], change]).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    run_ends = np.append(run_starts[1:], n)
    chars = {"train": 0, "val": 0}
    pos = {"train": 0, "val": 0}
    with (
        open(all_path, "rb") as src,
        open(out_dir / "train.txt", "wb") as tr,
        open(out_dir / "val.txt", "wb") as va,
        open(out_dir / "train.idx", "wb") as tri,
        open(out_dir / "val.idx", "wb") as vai,
    ):
        dst, dst_idx = {"train": tr, "val": va}, {"train": tri, "val": vai}
        for a, b in zip(run_starts, run_ends):
            side = "val" if mask[a] else "train"
            start, end = int(idx[a]), int(idx[b]) if b < n else size
            _write_offsets(dst_idx[side], idx[a:b], pos[side] - start)
            chars[side] += _copy(src, dst[side], start, end, tick)
            pos[side] += end - start
    del idx
    all_path.unlink()
    _write_labels(
        labels_path,
        {"train": out_dir / "train.labels.jsonl", "val": out_dir / "val.labels.jsonl"},
        lambda i: ["val"] if mask[i] else ["train"],
    )
    return {
        "train_chars": chars["train"],
        "val_chars": chars["val"],
        "n_train_docs": int((~mask).sum()),
        "n_val_docs": int(mask.sum()),
    }
