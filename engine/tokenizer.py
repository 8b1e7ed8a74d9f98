"""Train, save, load and inspect Hugging Face `tokenizers` tokenizers, and encode a text file to a token memmap.

Kinds (every one saves as a tokenizer.json that `tokenizers.Tokenizer.from_file` and
`transformers.PreTrainedTokenizerFast(tokenizer_file=...)` load unchanged):
- "char": one token per character, like nanoGPT's shakespeare_char, plus "[UNK]" for characters left out;
- "bpe": BPE on characters, words marked by "▁" (Metaspace), unknown characters to "[UNK]";
- "bytebpe": GPT-2 style byte-level BPE with the special token "<|endoftext|>" (never an unknown token);
- "wordpiece": BERT style WordPiece ("##" continues a word), with BERT's special tokens; not lossless (spaces
  are rebuilt on decode);
- "unigram": SentencePiece style Unigram on "▁"-marked words.
char, bpe, bytebpe and unigram are lossless (decode(encode(text)) == text) for text whose characters were seen in
training, with the default normalizer; bytebpe for any text.

Text is always read here in bounded, line-aligned chunks: `tokenizers` takes gigabytes of memory on one huge line.
"""
from __future__ import annotations

import codecs
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

KINDS = ("char", "bpe", "bytebpe", "wordpiece", "unigram")
UNK = "[UNK]"
EOT = "<|endoftext|>"
# Special token roles, in the order their tokens take the first ids.
ROLES = ("pad", "unk", "bos", "eos", "mask", "cls", "sep")
DEFAULT_SPECIALS: dict[str, dict[str, str]] = {
    "char": {"unk": UNK},
    "bpe": {"unk": UNK, "eos": EOT},
    "bytebpe": {"eos": EOT},
    "wordpiece": {"pad": "[PAD]", "unk": UNK, "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"},
    "unigram": {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"},
}
NORMALIZERS = ("none", "nfc", "nfkc", "lowercase", "nfkc_lowercase", "bert")
PRE_TOKENIZERS = ("none", "bytelevel", "metaspace", "whitespace", "whitespace_split", "bert")
DEFAULT_PRE_TOKENIZER = {"char": "none", "bpe": "metaspace", "bytebpe": "bytelevel", "wordpiece": "whitespace",
                         "unigram": "metaspace"}
METASPACE = "\u2581"  # "▁", SentencePiece's word marker
CHUNK_BYTES = 1 << 20
# encode_batch runs pieces in parallel; about 1 KB each measured fastest here (8 KB pieces took 1.5-2x as long,
# 64 KB pieces twice as long again).
PIECE_CHARS = 1024

Progress = Callable[[float, str], None]
Cancelled = Callable[[], bool]


class TokenizerError(Exception):
    """A tokenizer problem a user can act on, in one line."""


class TokenizerCancelled(TokenizerError):
    def __init__(self, message: str = "tokenizer training cancelled"):
        super().__init__(message)


# --------------------------------------------------------------------------------------------- the spec

@dataclass
class TokenizerSpec:
    """What a tokenizer is made of; the defaults reproduce each kind's standard set-up. JSON-safe.

    special_tokens: {role: token} merged over the kind's defaults (DEFAULT_SPECIALS); a role set to None is
        removed. Roles: pad, unk, bos, eos, mask, cls, sep. Kinds other than bytebpe need an unk token.
    min_frequency: a pair (BPE, WordPiece) or a character (char) seen fewer times is not added; Unigram has
        no such setting and ignores it.
    normalizer: "none", "nfc", "nfkc", "lowercase", "nfkc_lowercase", "bert".
    pre_tokenizer: how text is cut into words before the model: "metaspace" (lossless), "whitespace",
        "whitespace_split", "bert", "none"; fixed for char ("none") and bytebpe ("bytelevel"). None: the default.
    """
    kind: str = "char"
    vocab_size: int = 512
    min_frequency: int = 0
    special_tokens: dict | None = None
    normalizer: str = "none"
    pre_tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TokenizerError(f"unknown tokenizer kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        try:
            self.vocab_size = int(self.vocab_size)
            self.min_frequency = int(self.min_frequency or 0)
        except (TypeError, ValueError):
            raise TokenizerError("vocab_size and min_frequency must be whole numbers") from None
        if self.min_frequency < 0:
            raise TokenizerError(f"min_frequency must be 0 or more, not {self.min_frequency}")
        self.normalizer = (self.normalizer or "none").lower()
        if self.normalizer not in NORMALIZERS:
            raise TokenizerError(f"unknown normalizer {self.normalizer!r}; choose one of {', '.join(NORMALIZERS)}")
        pre = (self.pre_tokenizer or DEFAULT_PRE_TOKENIZER[self.kind]).lower()
        fixed = {"char": "none", "bytebpe": "bytelevel"}.get(self.kind)
        if fixed and pre != fixed:
            raise TokenizerError(f"a {self.kind} tokenizer always uses the {fixed!r} pre-tokenizer, not {pre!r}")
        if pre not in PRE_TOKENIZERS or (not fixed and pre in ("bytelevel", "none") and self.kind != "char"):
            allowed = [p for p in PRE_TOKENIZERS if p not in ("bytelevel", "none")]
            raise TokenizerError(f"pre-tokenizer {pre!r} does not fit a {self.kind} tokenizer; choose one of "
                                 f"{', '.join(allowed)}")
        self.pre_tokenizer = pre
        specials = dict(DEFAULT_SPECIALS[self.kind])
        for role, token in (self.special_tokens or {}).items():
            if role not in ROLES:
                raise TokenizerError(f"unknown special token role {role!r}; choose from {', '.join(ROLES)}")
            if token is None or token == "":
                specials.pop(role, None)
            elif not isinstance(token, str):
                raise TokenizerError(f"the {role} token must be text, not {token!r}")
            else:
                specials[role] = token
        if self.kind != "bytebpe" and "unk" not in specials:
            raise TokenizerError(f"a {self.kind} tokenizer needs an unk token for what it has not seen")
        tokens = [specials[r] for r in ROLES if r in specials]
        if len(set(tokens)) != len(tokens):
            raise TokenizerError("two special token roles name the same token")
        self.special_tokens = {r: specials[r] for r in ROLES if r in specials}
        if self.vocab_size < 2:
            raise TokenizerError(f"a vocabulary needs at least 2 tokens, not {self.vocab_size}")
        if self.kind == "bytebpe" and self.vocab_size < 256 + len(tokens):
            raise TokenizerError(f"byte-level BPE needs a vocabulary of at least {256 + len(tokens)} tokens "
                                 f"(256 bytes and {', '.join(tokens)}), not {self.vocab_size}")
        if self.kind != "bytebpe" and self.vocab_size < len(tokens) + 1:
            raise TokenizerError(f"a vocabulary of {self.vocab_size} has no room beside the "
                                 f"{len(tokens)} special tokens")

    def specials(self) -> list[str]:
        """The special tokens in id order."""
        return list(self.special_tokens.values())

    def to_dict(self) -> dict:
        return asdict(self)


def make_spec(kind: str, vocab_size: int, **options: Any) -> TokenizerSpec:
    unknown = set(options) - {"min_frequency", "special_tokens", "normalizer", "pre_tokenizer"}
    if unknown:
        raise TokenizerError(f"unknown tokenizer option(s): {', '.join(sorted(unknown))}")
    return TokenizerSpec(kind, vocab_size, **options)


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
                    cancelled: Cancelled | None = None, min_frequency: int = 0, special_tokens: dict | None = None,
                    normalizer: str = "none", pre_tokenizer: str | None = None) -> Tokenizer:
    """Train a tokenizer of `kind` with at most `vocab_size` tokens on the text files (TokenizerSpec options)."""
    spec = TokenizerSpec(kind, vocab_size, min_frequency, special_tokens, normalizer, pre_tokenizer)
    return train_from_spec(spec, files, progress=progress, cancelled=cancelled)


def train_from_spec(spec: TokenizerSpec, files: list[Path], *, progress: Progress | None = None,
                    cancelled: Cancelled | None = None) -> Tokenizer:
    kind = spec.kind
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
        norm = _normalizer(spec.normalizer)
        counts: Counter[str] = Counter()
        for chunk in chunks():
            counts.update(norm.normalize_str(chunk) if norm is not None else chunk)
        tok = _char_tokenizer(counts, spec)
    else:
        tok, trainer = _untrained(spec)
        try:
            tok.train_from_iterator(chunks(), trainer=trainer)
        except TokenizerError:
            raise
        except Exception as e:  # the Rust trainers raise bare Exceptions with their own message
            if n_chars == 0:
                raise TokenizerError("there is no text to learn a vocabulary from") from None
            first = str(e).splitlines()[0] if str(e) else repr(e)
            raise TokenizerError(f"cannot train the {kind} tokenizer: {first}") from None
    if n_chars == 0:
        raise TokenizerError("there is no text to learn a vocabulary from")
    if tok.get_vocab_size() < 2:
        raise TokenizerError(f"the text gives a vocabulary of {tok.get_vocab_size()} token(s); at least 2 are needed")
    report(1.0, f"trained a {kind} tokenizer with {tok.get_vocab_size():,} tokens")
    return tok


def _normalizer(name: str):
    return {
        "none": lambda: None,
        "nfc": normalizers.NFC,
        "nfkc": normalizers.NFKC,
        "lowercase": normalizers.Lowercase,
        "nfkc_lowercase": lambda: normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()]),
        "bert": lambda: normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                   lowercase=True),
    }[name]()


def _pre_tokenizer(name: str):
    return {
        "none": lambda: None,
        "bytelevel": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False),
        # Newlines stand alone, so no token spans a line break; prepend_scheme="never": no marker is invented
        # before the first word of a line, so decoding gives the text back.
        "metaspace": lambda: pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="never")]),
        "whitespace": pre_tokenizers.Whitespace,
        "whitespace_split": pre_tokenizers.WhitespaceSplit,
        "bert": pre_tokenizers.BertPreTokenizer,
    }[name]()


def _untrained(spec: TokenizerSpec):
    """An empty tokenizer of the spec's kind and its trainer."""
    unk = spec.special_tokens.get("unk")
    specials = spec.specials()
    common = dict(vocab_size=spec.vocab_size, special_tokens=specials, show_progress=False)
    if spec.kind == "bytebpe":
        tok = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(**common, min_frequency=spec.min_frequency,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif spec.kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=unk))
        trainer = trainers.BpeTrainer(**common, min_frequency=spec.min_frequency)
    elif spec.kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk))
        trainer = trainers.WordPieceTrainer(**common, min_frequency=spec.min_frequency)
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(**common, unk_token=unk)
    norm = _normalizer(spec.normalizer)
    if norm is not None:
        tok.normalizer = norm
    pre = _pre_tokenizer(spec.pre_tokenizer)
    if pre is not None:
        tok.pre_tokenizer = pre
    if spec.pre_tokenizer == "bytelevel":
        tok.decoder = decoders.ByteLevel()
    elif spec.kind == "wordpiece":
        tok.decoder = decoders.WordPiece(prefix="##")
    elif spec.pre_tokenizer == "metaspace":
        tok.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="never")
    return tok, trainer


def _char_tokenizer(counts: Counter[str], spec: TokenizerSpec | int) -> Tokenizer:
    if isinstance(spec, int):  # the old call: (counts, vocab_size)
        spec = TokenizerSpec("char", spec)
    unk = spec.special_tokens["unk"]
    extra = [t for r, t in spec.special_tokens.items() if r != "unk"]
    room = max(1, spec.vocab_size - 1 - len(extra))
    frequent = [c for c in counts if counts[c] >= spec.min_frequency and c != unk and c not in extra]
    # Most frequent first, ties by character, so the choice is deterministic; ids then follow sorted order
    # like nanoGPT's `sorted(set(text))`, with [UNK] last.
    kept = sorted(sorted(frequent, key=lambda c: (-counts[c], c))[:room])
    vocab = {c: i for i, c in enumerate(kept)}
    vocab[unk] = len(vocab)
    # BPE with no merges and no pre-tokenizer splits text into characters; measured 2-5x faster than
    # WordLevel behind a split-every-character pre-tokenizer, and any HF library loads it.
    # [UNK] is not an added token, so a literal "[UNK]" in the text still encodes as its characters.
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=unk))
    tok.decoder = decoders.Fuse()
    norm = _normalizer(spec.normalizer)
    if norm is not None:
        tok.normalizer = norm
    if extra:
        tok.add_special_tokens(extra)  # after [UNK], so the character ids stay as nanoGPT's
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
    # uint16 silently wraps above 65,535 (docs/DESIGN.md), so larger vocabularies take uint32.
    return "uint16" if vocab_size <= 65536 else "uint32"


def separator_id(tok: Tokenizer, spec: TokenizerSpec | dict | None) -> int | None:
    """The token that ends a document in the token files: the spec's eos (else sep) token, if it has one."""
    specials = (spec.special_tokens if isinstance(spec, TokenizerSpec) else (spec or {}).get("special_tokens")) or {}
    for role in ("eos", "sep"):
        if specials.get(role) is not None and tok.token_to_id(specials[role]) is not None:
            return tok.token_to_id(specials[role])
    return None


def unknown_id(tok: Tokenizer, spec: TokenizerSpec | dict | None) -> int | None:
    """The id of the token that stands for text the vocabulary lacks ([UNK]); None when there is none
    (byte-level BPE spells everything in bytes)."""
    specials = (spec.special_tokens if isinstance(spec, TokenizerSpec) else (spec or {}).get("special_tokens")) or {}
    unk = specials.get("unk")
    return tok.token_to_id(unk) if unk else None


EXAMPLES_KEPT = 8   # the most common unknown characters a tally keeps, for messages


@dataclass
class UnknownTally:
    """How much of an encoded text reads as the unknown token: `unknown` of `chars` characters, and which
    characters they were (`examples`, with counts). Filled by encode_to_memmap."""
    unk_id: int | None
    chars: int = 0
    unknown: int = 0
    examples: Counter | None = None

    @property
    def share(self) -> float:
        return self.unknown / self.chars if self.chars else 0.0

    def common(self, n: int = EXAMPLES_KEPT) -> list[str]:
        return [c for c, _ in (self.examples or Counter()).most_common(n)]

    def add(self, tok: Tokenizer, piece: str, encoding, ids: np.ndarray) -> None:
        """Count one encoded piece; `ids` are its token ids as an array (made anyway for the token file)."""
        self.chars += len(piece)
        if self.unk_id is None or not (ids == self.unk_id).any():
            return   # the common case: one vectorised scan, no offsets
        if self.examples is None:
            self.examples = Counter()
        for token_id, (start, end) in zip(encoding.ids, encoding.offsets):
            if token_id == self.unk_id:
                self.unknown += end - start
                self.examples.update(_missing_chars(tok, piece[start:end]))


def _missing_chars(tok: Tokenizer, span: str) -> list[str]:
    """The characters of an unknown span the vocabulary has no token for (WordPiece makes a whole word [UNK]
    for one such character; for the other kinds the span is that character)."""
    if len(span) <= 1:
        return [span] if span else []
    return [c for c in span if tok.token_to_id(c) is None and tok.token_to_id("##" + c) is None] or [span]


def unknown_characters(tok: Tokenizer, text: str, unk_id: int | None) -> list[str]:
    """The characters of `text` that read as the unknown token, each once, in the order they come."""
    if unk_id is None or not text:
        return []
    enc = tok.encode(text, add_special_tokens=False)
    if unk_id not in enc.ids:
        return []
    found: dict[str, None] = {}
    for token_id, (start, end) in zip(enc.ids, enc.offsets):
        if token_id == unk_id:
            found.update(dict.fromkeys(_missing_chars(tok, text[start:end])))
    return list(found)


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


def encode_to_memmap(tok: Tokenizer, text_path: Path, out_path: Path, *, progress: Progress | None = None,
                     cancelled: Cancelled | None = None, doc_starts: np.ndarray | None = None,
                     sep_id: int | None = None, separator: str = "\n\n",
                     tally: UnknownTally | None = None) -> tuple[int, str]:
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
            starts = np.asarray(doc_starts if doc_starts is not None and sep_id is not None else [], np.int64)
            at, held = 0, ""

            def write(parts: list[tuple[str, bool]]) -> None:
                # One encode_batch per chunk, not per document: a corpus of a million tweets stays parallel.
                nonlocal n_tokens
                pieces, owner = [], []
                for i, (text, _) in enumerate(parts):
                    for piece in _pieces(text):
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
                if ids:
                    arr = np.concatenate(ids)
                    f.write(arr.tobytes())
                    n_tokens += len(arr)

            for chunk in _file_chunks([text_path], on_bytes):
                if not len(starts):
                    write([(chunk, False)])
                else:
                    parts = []
                    data = chunk.encode("utf-8")
                    for text, ends_doc in _documents(chunk, data, at, starts):
                        text, held = held + text, ""
                        if ends_doc and text.endswith(separator):
                            text = text[:-len(separator)]
                        elif not ends_doc:
                            # A chunk may end between the separator's two line breaks: hold the trailing ones
                            # back, so the next part sees the whole separator.
                            keep = len(text.rstrip("\n"))
                            text, held = text[:keep], text[keep:]
                        parts.append((text, ends_doc))
                    write(parts)
                    at += len(data)
                report(min(1.0, done / total), f"encoding {Path(text_path).name}")
            write([(held, False)])
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


def is_metaspace(tok: Tokenizer) -> bool:
    return isinstance(tok.decoder, decoders.Metaspace)


def merge_ranks(tok: Tokenizer) -> dict[int, int]:
    """{token id: rank of the BPE merge that made it} (0 = the first merge learned); empty for other models."""
    model = json.loads(tok.to_str()).get("model", {})
    if model.get("type") != "BPE":
        return {}
    vocab = tok.get_vocab()
    special = tok.get_added_tokens_decoder()
    ranks: dict[int, int] = {}
    for rank, merge in enumerate(model.get("merges") or []):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        token_id = vocab.get(a + b)
        # A merge can spell a special token's text ("<|endoftext|>" written out in the corpus): not its id.
        if token_id is not None and token_id not in ranks and token_id not in special:
            ranks[token_id] = rank
    return ranks


def display_token(tok: Tokenizer, token_id: int) -> str:
    """A token as a person can read it: spaces ␣, newlines ⏎, tabs ⇥, stray bytes <0xE2>."""
    token = tok.id_to_token(int(token_id))
    if token is None:
        raise TokenizerError(f"token id {token_id} is outside the vocabulary (0 to {tok.get_vocab_size() - 1})")
    special = tok.get_added_tokens_decoder().get(int(token_id))
    if special is not None:
        return token
    if not is_byte_level(tok):
        return _visible(token.replace(METASPACE, " ") if is_metaspace(tok) else token)
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
