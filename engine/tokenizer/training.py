"""Training a tokenizer of each kind from a TokenizerSpec on text files (char is counted here, the rest by
the `tokenizers` trainers)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from engine.tokenizer.streaming import Cancelled, Progress, read_chunks, total_size
from engine.tokenizer.errors import TokenizerCancelled, TokenizerError
from engine.tokenizer.spec import METASPACE, TokenizerSpec


def train_tokenizer(
    kind: str,
    vocab_size: int,
    files: list[Path],
    *,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
    min_frequency: int = 0,
    special_tokens: dict | None = None,
    normalizer: str = "none",
    pre_tokenizer: str | None = None,
    sentinels: int = 0,
) -> Tokenizer:
    """Train a tokenizer of `kind` with at most `vocab_size` tokens on the text files (TokenizerSpec options)."""
    spec = TokenizerSpec(kind, vocab_size, min_frequency, special_tokens, normalizer, pre_tokenizer, sentinels)
    return train_from_spec(spec, files, progress=progress, cancelled=cancelled)


def train_from_spec(
    spec: TokenizerSpec, files: list[Path], *, progress: Progress | None = None, cancelled: Cancelled | None = None
) -> Tokenizer:
    kind = spec.kind
    report = progress or (lambda fraction, message: None)
    is_cancelled = cancelled or (lambda: False)
    total = max(1, total_size(files))
    n_chars = 0
    done = 0

    def chunks() -> Iterator[str]:
        nonlocal n_chars
        for chunk in read_chunks(files, on_bytes):
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
        "bert": lambda: normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
        ),
    }[name]()


def _pre_tokenizer(name: str):
    return {
        "none": lambda: None,
        "bytelevel": lambda: pre_tokenizers.ByteLevel(add_prefix_space=False),
        # Newlines stand alone, so no token spans a line break; prepend_scheme="never": no marker is invented
        # before the first word of a line, so decoding gives the text back.
        "metaspace": lambda: pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex("\n"), behavior="isolated"),
                pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="never"),
            ]
        ),
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
        trainer = trainers.BpeTrainer(
            **common, min_frequency=spec.min_frequency, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
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


def char_tokenizer_of_text(text: str, spec: TokenizerSpec) -> Tokenizer:
    """A char tokenizer of `spec` trained on a text in memory (a quick look before any vocabulary exists)."""
    if spec.kind != "char":
        raise TokenizerError(f"char_tokenizer_of_text makes char tokenizers, not {spec.kind}")
    norm = _normalizer(spec.normalizer)
    return _char_tokenizer(Counter(norm.normalize_str(text) if norm is not None else text), spec)


def _char_tokenizer(counts: Counter[str], spec: TokenizerSpec | int) -> Tokenizer:
    if isinstance(spec, int):  # the old call: (counts, vocab_size)
        spec = TokenizerSpec("char", spec)
    unk = spec.special_tokens["unk"]
    extra = [t for r, t in spec.special_tokens.items() if r != "unk"] + spec.sentinel_tokens()
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
        tok.add_special_tokens(extra)  # after [UNK] (sentinels last), so the character ids stay as nanoGPT's
    return tok
