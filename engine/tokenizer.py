"""Train, save, load and inspect Hugging Face `tokenizers` tokenizers, and encode a text file to a token memmap.

Two kinds, both lossless (decode(encode(text)) == text):
- "char": one token per character, like nanoGPT's shakespeare_char, plus "[UNK]" for characters left out;
- "bytebpe": GPT-2 style byte-level BPE with the special token "<|endoftext|>".

Text is always read here in bounded, line-aligned chunks: `tokenizers` takes gigabytes of memory on one huge line.
"""
from __future__ import annotations

import codecs
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

KINDS = ("char", "bytebpe")
UNK = "[UNK]"
EOT = "<|endoftext|>"
CHUNK_BYTES = 1 << 20
# encode_batch runs pieces in parallel; a few KB each measured fastest (64 KB pieces took twice as long).
PIECE_CHARS = 8192

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


class TokenizerError(Exception):
    """A tokenizer problem a user can act on, in one line."""


class TokenizerCancelled(TokenizerError):
    def __init__(self, message: str = "tokenizer training cancelled"):
        super().__init__(message)


# --------------------------------------------------------------------------------------------- reading text

def _file_chunks(paths: list[Path], on_bytes: Callable[[int], None] | None = None) -> Iterator[str]:
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


def _pieces(chunk: str) -> list[str]:
    """Split a chunk into line-aligned pieces of about PIECE_CHARS for encode_batch."""
    out, start, n = [], 0, len(chunk)
    while start < n:
        end = chunk.find("\n", start + PIECE_CHARS)
        end = n if end < 0 else end + 1
        out.append(chunk[start:end])
        start = end
    return out


def _file_sizes(paths: list[Path]) -> int:
    try:
        return sum(Path(p).stat().st_size for p in paths)
    except OSError as e:
        raise TokenizerError(f"cannot read {e.filename}: {e.strerror}") from None


# --------------------------------------------------------------------------------------------- training

def train_tokenizer(kind: str, vocab_size: int, files: list[Path], *, progress: Progress | None = None,
                    cancelled: Cancelled | None = None) -> Tokenizer:
    """Train a tokenizer of `kind` with at most `vocab_size` tokens on the text files."""
    if kind not in KINDS:
        raise TokenizerError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(KINDS)}")
    if vocab_size < 2:
        raise TokenizerError(f"a vocabulary needs at least 2 tokens, not {vocab_size}")
    if kind == "bytebpe" and vocab_size < 257:
        raise TokenizerError(f"byte-level BPE needs a vocabulary of at least 257 tokens "
                             f"(256 bytes and {EOT}), not {vocab_size}")
    report = progress or (lambda fraction, message: None)
    is_cancelled = cancelled or (lambda: False)
    total = max(1, _file_sizes(files))
    n_chars = 0
    done = 0

    def chunks() -> Iterator[str]:
        nonlocal n_chars
        for chunk in _file_chunks(files, on_bytes):
            n_chars += len(chunk)
            yield chunk

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if is_cancelled():
            raise TokenizerCancelled()
        report(0.9 * done / total, f"reading text for the {kind} tokenizer")

    if kind == "char":
        counts: Counter[str] = Counter()
        for chunk in chunks():
            counts.update(chunk)
        tok = _char_tokenizer(counts, vocab_size)
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(chunks(), trainer=trainer)
    if n_chars == 0:
        raise TokenizerError("there is no text to learn a vocabulary from")
    if tok.get_vocab_size() < 2:
        raise TokenizerError(f"the text gives a vocabulary of {tok.get_vocab_size()} token(s); at least 2 are needed")
    report(1.0, f"trained a {kind} tokenizer with {tok.get_vocab_size():,} tokens")
    return tok


def _char_tokenizer(counts: Counter[str], vocab_size: int) -> Tokenizer:
    # Most frequent first, ties by character, so the choice is deterministic; ids then follow sorted order
    # like nanoGPT's `sorted(set(text))`, with [UNK] last.
    kept = sorted(sorted(counts, key=lambda c: (-counts[c], c))[: vocab_size - 1])
    vocab = {c: i for i, c in enumerate(kept)}
    vocab[UNK] = len(vocab)
    # BPE with no merges and no pre-tokenizer splits text into characters; measured 2-5x faster than
    # WordLevel behind a split-every-character pre-tokenizer, and any HF library loads it.
    # [UNK] is not an added token, so a literal "[UNK]" in the text still encodes as its characters.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    tok.decoder = decoders.Fuse()
    return tok


# --------------------------------------------------------------------------------------------- files

def save_tokenizer(tok: Tokenizer, path: Path) -> None:
    """Write tokenizer.json atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(tok.to_str(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TokenizerError(f"cannot save the tokenizer to {path}: {e.strerror or e}") from None


def load_tokenizer(path: Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"no tokenizer file at {path}")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust side raises a bare Exception with its parser's message
        raise TokenizerError(f"cannot load the tokenizer {path}: {str(e).splitlines()[0] if str(e) else e!r}") from None


def token_dtype(vocab_size: int) -> str:
    # uint16 silently wraps above 65,535 (DESIGN.md), so larger vocabularies take uint32.
    return "uint16" if vocab_size <= 65536 else "uint32"


def encode_to_memmap(tok: Tokenizer, text_path: Path, out_path: Path, *, progress: Progress | None = None,
                     cancelled: Cancelled | None = None) -> tuple[int, str]:
    """Encode a UTF-8 text file to raw token ids (uint16 or uint32) at out_path; return (n_tokens, dtype)."""
    report = progress or (lambda fraction, message: None)
    is_cancelled = cancelled or (lambda: False)
    dtype = token_dtype(tok.get_vocab_size())
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    total = max(1, _file_sizes([text_path]))
    done = 0
    n_tokens = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n
        if is_cancelled():
            raise TokenizerCancelled("encoding cancelled")

    try:
        with open(tmp, "wb") as f:
            for chunk in _file_chunks([text_path], on_bytes):
                encodings = tok.encode_batch(_pieces(chunk), add_special_tokens=False)
                ids = np.concatenate([np.asarray(e.ids, dtype=dtype) for e in encodings])
                f.write(ids.tobytes())
                n_tokens += len(ids)
                report(min(1.0, done / total), f"encoding {Path(text_path).name}")
        os.replace(tmp, out_path)
    except OSError as e:
        raise TokenizerError(f"cannot write {out_path}: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
    report(1.0, f"encoded {Path(text_path).name}: {n_tokens:,} tokens")
    return n_tokens, dtype


def token_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each token id occurs (int64, length vocab_size); works in slices so a memmap stays small."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    step = 1 << 24
    for i in range(0, len(ids), step):
        counts += np.bincount(np.asarray(ids[i:i + step]), minlength=vocab_size)[:vocab_size]
    return counts


# --------------------------------------------------------------------------------------------- inspecting

def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which byte-level BPE uses to spell its tokens."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_BYTE_OF_CHAR = {c: b for b, c in _bytes_to_unicode().items()}
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\x7f": "␡"}


def _visible(text: str) -> str:
    # Control characters become their Unicode "control picture" (U+2400 + code) so nothing prints blank.
    return "".join(_VISIBLE.get(c) or (chr(0x2400 + ord(c)) if ord(c) < 32 else c) for c in text)


def is_byte_level(tok: Tokenizer) -> bool:
    return isinstance(tok.decoder, decoders.ByteLevel)


def display_token(tok: Tokenizer, token_id: int) -> str:
    """A token as a person can read it: spaces ␣, newlines ⏎, tabs ⇥, stray bytes <0xE2>."""
    token = tok.id_to_token(int(token_id))
    if token is None:
        raise TokenizerError(f"token id {token_id} is outside the vocabulary (0 to {tok.get_vocab_size() - 1})")
    special = tok.get_added_tokens_decoder().get(int(token_id))
    if special is not None or not is_byte_level(tok):
        return token if special is not None else _visible(token)
    if any(c not in _BYTE_OF_CHAR for c in token):
        return token
    raw = bytes(_BYTE_OF_CHAR[c] for c in token)
    # surrogateescape keeps the bytes that are not (complete) UTF-8 as \udc80-\udcff, shown as <0xNN>.
    text = raw.decode("utf-8", "surrogateescape")
    return "".join(f"<0x{ord(c) - 0xDC00:02X}>" if 0xDC80 <= ord(c) <= 0xDCFF else _visible(c) for c in text)


def token_spans(tok: Tokenizer, text: str) -> list[dict]:
    """The tokens of `text` with the character span each covers, in order, together covering all of text.

    A character split over several byte tokens is given to the first of them; the rest get an empty span there.
    """
    enc = tok.encode(text, add_special_tokens=False)
    spans, prev_end = [], 0
    for token_id, (_, end) in zip(enc.ids, enc.offsets):
        # Starting where the previous token ended keeps the spans contiguous even where byte tokens overlap.
        start = prev_end
        end = max(end, start)
        spans.append({"id": int(token_id), "token": display_token(tok, token_id), "start": start, "end": end})
        prev_end = end
    if spans and prev_end < len(text):
        spans[-1]["end"] = len(text)
    return spans
