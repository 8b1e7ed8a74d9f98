"""Text files in and token files out, in bounded pieces: reading text in line-aligned chunks, encoding a text
file to a token file (a separator token between documents), and counting the tokens.

The chunk and piece sizes are read from this module when a function runs, so a test can make them small.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tokenizers import Tokenizer

from engine.tokenizer.errors import TokenizerCancelled, TokenizerError
from engine.tokenizer.special_tokens import UnknownTally

CHUNK_BYTES = 1 << 20
# encode_batch runs pieces in parallel; about 1 KB each measured fastest here (8 KB pieces took 1.5-2x as long,
# 64 KB pieces twice as long again).
PIECE_CHARS = 1024

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


def read_chunks(paths: list[Path], on_bytes: Callable[[int], None] | None = None) -> Iterator[str]:
    """UTF-8 text of the files in chunks of about CHUNK_BYTES that end at a line break where one is near.

    Cutting at line breaks keeps chunked tokenization the same as whole-text tokenization (except inside
    lines longer than a chunk, which are cut at a space, so still losslessly).
    """
    for path in map(Path, paths):
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        carry = ""
        offset = 0
        try:
            with open(path, "rb") as f:
                while True:
                    data = f.read(CHUNK_BYTES)
                    try:
                        text = carry + decoder.decode(data, final=not data)
                    except UnicodeDecodeError as e:
                        at = offset - len(decoder.getstate()[0]) + e.start
                        raise TokenizerError(f"{path} is not UTF-8 text: bad byte at offset {at}") from None
                    offset += len(data)
                    if on_bytes is not None and data:
                        on_bytes(len(data))
                    if not data:
                        if text:
                            yield text
                        break
                    cut = text.rfind("\n") + 1
                    if cut == 0 and len(text) >= CHUNK_BYTES:
                        cut = text.rfind(" ", 0, CHUNK_BYTES) + 1 or CHUNK_BYTES
                    if cut:
                        yield text[:cut]
                    carry = text[cut:]
        except OSError as e:
            raise TokenizerError(f"cannot read {path}: {e.strerror or e}") from None


def split_pieces(chunk: str) -> list[str]:
    """Split a chunk into line-aligned pieces of about PIECE_CHARS for encode_batch."""
    out, start, n = [], 0, len(chunk)
    while start < n:
        end = chunk.find("\n", start + PIECE_CHARS)
        end = n if end < 0 else end + 1
        out.append(chunk[start:end])
        start = end
    return out


def total_size(paths: list[Path]) -> int:
    try:
        return sum(Path(p).stat().st_size for p in paths)
    except OSError as e:
        raise TokenizerError(f"cannot read {e.filename}: {e.strerror}") from None


def token_dtype(vocab_size: int) -> str:
    # uint16 silently wraps above 65,535 (docs/DESIGN.md), so larger vocabularies take uint32.
    return "uint16" if vocab_size <= 65536 else "uint32"


def _documents(chunk: str, data: bytes, start: int, doc_starts: np.ndarray) -> Iterator[tuple[str, bool]]:
    """Cut a chunk (`data` its UTF-8 bytes) that starts at byte `start` of its file where documents end:
    (text, ends a document) pairs. doc_starts: sorted byte offsets where documents begin."""
    lo, hi = np.searchsorted(doc_starts, [start + 1, start + len(data) + 1])
    if lo == hi:
        yield chunk, False
        return
    # Byte offsets -> character offsets: every byte that is not a UTF-8 continuation byte starts a character.
    starts = np.flatnonzero((np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80)
    at = 0
    for b in doc_starts[lo:hi]:
        end = int(np.searchsorted(starts, int(b) - start)) if int(b) - start < len(data) else len(chunk)
        yield chunk[at:end], True
        at = end
    if at < len(chunk):
        yield chunk[at:], False


def encode_to_memmap(
    tok: Tokenizer,
    text_path: Path,
    out_path: Path,
    *,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    doc_starts: np.ndarray | None = None,
    sep_id: int | None = None,
    separator: str = "\n\n",
    tally: UnknownTally | None = None,
) -> tuple[int, str]:
    """Encode a UTF-8 text file to raw token ids (uint16 or uint32) at out_path; return (n_tokens, dtype).

    With doc_starts (byte offsets where documents begin, as the dataset's .idx holds) and sep_id, the blank-line
    separator before each document becomes that one token (GPT-2's <|endoftext|>), so the model learns where a
    document ends and generation can stop there. A `tally` counts the characters that read as unknown.
    """
    report = progress or (lambda fraction, message: None)
    is_cancelled = cancelled or (lambda: False)
    dtype = token_dtype(tok.get_vocab_size())
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    total = max(1, total_size([text_path]))
    done = 0
    n_tokens = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if is_cancelled():
            raise TokenizerCancelled("encoding cancelled")

    try:
        with open(tmp, "wb") as f:
            starts = np.asarray(doc_starts if doc_starts is not None and sep_id is not None else [], np.int64)
            at, held = 0, ""
            for chunk in read_chunks([text_path], on_bytes):
                if not len(starts):
                    parts = [(chunk, False)]
                else:
                    data = chunk.encode("utf-8")
                    parts, held = _document_parts(chunk, data, at, starts, held, separator)
                    at += len(data)
                n_tokens += _write_parts(f, tok, parts, dtype, sep_id, tally)
                report(min(1.0, done / total), f"encoding {Path(text_path).name}")
            n_tokens += _write_parts(f, tok, [(held, False)], dtype, sep_id, tally)
        os.replace(tmp, out_path)
    except OSError as e:
        raise TokenizerError(f"cannot write {out_path}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    report(1.0, f"encoded {Path(text_path).name}: {n_tokens:,} tokens")
    return n_tokens, dtype


def _document_parts(
    chunk: str, data: bytes, at: int, starts: np.ndarray, held: str, separator: str
) -> tuple[list[tuple[str, bool]], str]:
    """A chunk cut where documents end, each (text, ends a document) without its separator, and the line breaks
    held back for the next chunk (`held` comes from the chunk before)."""
    parts = []
    for text, ends_doc in _documents(chunk, data, at, starts):
        text, held = held + text, ""
        if ends_doc and text.endswith(separator):
            text = text[: -len(separator)]
        elif not ends_doc:
            # A chunk may end between the separator's two line breaks: hold the trailing ones back, so the next
            # part sees the whole separator.
            keep = len(text.rstrip("\n"))
            text, held = text[:keep], text[keep:]
        parts.append((text, ends_doc))
    return parts, held


def _write_parts(
    f, tok: Tokenizer, parts: list[tuple[str, bool]], dtype: str, sep_id: int | None, tally: UnknownTally | None
) -> int:
    """Encode the parts and write their ids to `f`, sep_id after each that ends a document; returns how many."""
    # One encode_batch per chunk, not per document: a corpus of a million tweets stays parallel.
    pieces, owner = [], []
    for i, (text, _) in enumerate(parts):
        for piece in split_pieces(text):
            pieces.append(piece)
            owner.append(i)
    encodings = tok.encode_batch(pieces, add_special_tokens=False) if pieces else []
    ids, k = [], 0
    for i, (_, ends_doc) in enumerate(parts):
        while k < len(owner) and owner[k] == i:
            ids.append(np.asarray(encodings[k].ids, dtype=dtype))
            if tally is not None:
                tally.add(tok, pieces[k], encodings[k], ids[-1])
            k += 1
        if ends_doc:
            ids.append(np.asarray([sep_id], dtype=dtype))
    if not ids:
        return 0
    arr = np.concatenate(ids)
    f.write(arr.tobytes())
    return len(arr)


def token_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each token id occurs (int64, length vocab_size); works in slices so a memmap stays small."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    step = 1 << 24
    for i in range(0, len(ids), step):
        counts += np.bincount(np.asarray(ids[i : i + step]), minlength=vocab_size)[:vocab_size]
    return counts
