"""The special tokens a tokenizer gives a role (the document separator, the unknown token, the mask and the
sentinels an objective needs), adding the ones an objective needs, and the tally of text that reads as the unknown
token."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from engine.choices import DEFAULT_SPECIALS, ROLE_TOKENS, SENTINELS, sentinel_tokens
from engine.tokenizer.spec import TokenizerSpec

SENTINEL = "sentinel"  # the catalog's name for the need of T5's sentinels (engine/objectives/catalog.py)


def _spec_dict(spec: TokenizerSpec | dict | None) -> dict:
    """A spec as stored (a tokenizer row's "spec"); rows from before sentinels existed have none."""
    d = spec.to_dict() if isinstance(spec, TokenizerSpec) else dict(spec or {})
    d["special_tokens"] = dict(d.get("special_tokens") or {})
    d["sentinels"] = int(d.get("sentinels") or 0)
    return d


def role_ids(tok: Tokenizer, spec: TokenizerSpec | dict | None) -> dict[str, int]:
    """{role: id} for the spec's special tokens that the tokenizer has (pad unk bos eos mask cls sep)."""
    found = {role: tok.token_to_id(token) for role, token in _spec_dict(spec)["special_tokens"].items()}
    return {role: i for role, i in found.items() if i is not None}


def sentinel_ids(tok: Tokenizer, spec: TokenizerSpec | dict | None) -> list[int]:
    """The ids of <extra_id_0>, <extra_id_1>, ... in order, as many as the spec has and the tokenizer knows."""
    ids = []
    for token in sentinel_tokens(_spec_dict(spec)["sentinels"]):
        i = tok.token_to_id(token)
        if i is None:
            break
        ids.append(i)
    return ids


def missing_specials(spec: TokenizerSpec | dict, needs: tuple[str, ...] | list[str]) -> list[str]:
    """The tokens a vocabulary of `spec` lacks for an objective's needs (catalog roles; "sentinel" for T5's
    placeholders), named as a run's own vocabulary would add them: [MASK], [CLS], <extra_id_0> … in that order."""
    d = _spec_dict(spec)
    missing = [ROLE_TOKENS[r] for r in needs if r != SENTINEL and r not in d["special_tokens"]]
    if SENTINEL in needs and not d["sentinels"]:
        missing.append(f"<extra_id_0> … <extra_id_{SENTINELS - 1}>")
    return missing


def spec_options_for(kind: str, needs: tuple[str, ...] | list[str]) -> dict:
    """The TokenizerSpec options of a vocabulary trained for an objective: the roles it needs that the kind's
    defaults lack (ROLE_TOKENS), and SENTINELS sentinels when it needs them. {} when the kind's own tokens
    serve, so such runs find the vocabularies they found before."""
    added = {r: ROLE_TOKENS[r] for r in needs if r != SENTINEL and r not in DEFAULT_SPECIALS[kind]}
    options: dict = {"special_tokens": added} if added else {}
    if SENTINEL in needs:
        options["sentinels"] = SENTINELS
    return options


def with_specials(tok: Tokenizer, spec: TokenizerSpec | dict, needs) -> tuple[Tokenizer, dict]:
    """A copy of `tok` in memory (the stored tokenizer is untouched) with the special tokens `needs` asks for that
    it lacks added after its own ids, and the spec dict that describes the copy; `tok` itself when none lack."""
    d = _spec_dict(spec)
    roles = {r: ROLE_TOKENS[r] for r in needs if r != SENTINEL and r not in d["special_tokens"]}
    sentinels = SENTINELS if SENTINEL in needs and not d["sentinels"] else 0
    if not roles and not sentinels:
        return tok, d
    copy = Tokenizer.from_str(tok.to_str())
    copy.add_special_tokens([*roles.values(), *sentinel_tokens(sentinels)])
    d["special_tokens"].update(roles)
    d["sentinels"] = d["sentinels"] or sentinels
    return copy, d


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
