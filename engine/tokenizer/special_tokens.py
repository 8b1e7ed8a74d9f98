"""The special tokens a tokenizer gives a role (the document separator, the unknown token), and the tally of
text that reads as the unknown token."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from engine.tokenizer.spec import TokenizerSpec


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


EXAMPLES_KEPT = 8  # the most common unknown characters a tally keeps, for messages


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
            return  # the common case: one vectorised scan, no offsets
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
