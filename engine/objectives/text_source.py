"""The token stream an objective draws its batches from, with what the objectives need to know about its tokens.

A TokenSource is one split's token ids (a memmap of the tokenizer's train.bin / val.bin, or an array in memory)
plus facts about the vocabulary read once from the tokenizer: which ids are special tokens and which role each
plays, the T5 sentinels, the token that ends documents in the stream, which tokens begin a word (whole-word
masking) and which end a sentence (sentence pairs are cut there).

`windows(block_size + 1, ...)` makes exactly the draw engine.training_data.get_batch makes, so causal LM keeps
its numbers; everything else an objective draws also comes from the generator it is given.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

import numpy as np
import torch

from engine.choices import ROLE_TOKENS, SENTINELS, sentinel_tokens
from engine.config import ConfigError
from engine.errors import UserError
from engine.tokenizer import (
    METASPACE,
    display_token,
    is_byte_level,
    is_metaspace,
    role_ids,
    sentinel_ids,
    separator_id,
)
from engine.training_data import TokenData

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from engine.objectives.catalog import ObjectiveInfo

_SENTENCE_ENDS = frozenset(".!?\n")
# display_token makes whitespace visible; the word and sentence tests read the text itself.
_INVISIBLE = {"␣": " ", "⏎": "\n", "⇥": "\t"}


class TokenSource:
    """One split's token ids and the facts about its vocabulary the objectives read (see the module docstring).

    ids           the token ids (a fresh memmap on each read for a workspace split, as get_batch reads them)
    vocab_size    the model's vocabulary size
    specials      {role: id} for the roles (pad unk bos eos mask cls sep) the tokenizer has
    sentinels     ids of <extra_id_0>, <extra_id_1>, ... in order ([] when there are none)
    doc_end       the id that ends documents in the stream (the eos token, else sep), None if there is none
    is_special    bool (vocab_size,): a special token (a role's token, a sentinel or another added token)
    word_start    bool (vocab_size,): the token begins a word (a space or word marker in front, a WordPiece
                  token without "##", punctuation, a special token); a token that does not continues the word
                  before it
    sentence_end  bool (vocab_size,): the token ends a sentence (. ! ? or a line break in its text)
    ordinary      LongTensor of the ids that are not special (random-token replacement draws from these)
    """

    def __init__(
        self,
        ids: np.ndarray | TokenData,
        vocab_size: int,
        specials: dict[str, int],
        sentinels: list[int],
        doc_end: int | None,
        is_special: np.ndarray,
        word_start: np.ndarray,
        sentence_end: np.ndarray,
        n_real: int | None = None,
    ):
        self._ids = ids
        self.vocab_size = int(vocab_size)
        self.specials = dict(specials)
        self.sentinels = list(sentinels)
        self.doc_end = doc_end
        self.is_special = np.asarray(is_special, dtype=bool)
        self.word_start = np.asarray(word_start, dtype=bool)
        self.sentence_end = np.asarray(sentence_end, dtype=bool)
        # Ids past the tokenizer's own (n_real) never occur in the text, so they are not drawn either.
        real = np.arange(self.vocab_size) < (self.vocab_size if n_real is None else n_real)
        self.ordinary = torch.from_numpy(np.flatnonzero(real & ~self.is_special).astype(np.int64))
        self._special_t = torch.from_numpy(self.is_special.copy())
        self._doc_ends: np.ndarray | None = None
        self.split: str | None = None  # "train" or "val" for a workspace split (classification reads its texts)

    # ----------------------------------------------------------------------------------------- construction
    @classmethod
    def from_tokenizer(cls, tok: "Tokenizer", spec: dict | None, ids: np.ndarray | TokenData, vocab_size=None):
        """A source over `ids` read with `tok` (whose spec, as the workspace keeps it, names the roles)."""
        n_real = tok.get_vocab_size(with_added_tokens=True)
        size = max(int(vocab_size or 0), n_real)
        specials = role_ids(tok, spec)
        sentinels = sentinel_ids(tok, spec)
        is_special = np.zeros(size, dtype=bool)
        added = [i for i, t in tok.get_added_tokens_decoder().items() if t.special]
        is_special[[i for i in (*added, *specials.values(), *sentinels) if i < size]] = True
        texts = [_token_text(tok, i) if i < n_real else "" for i in range(size)]
        word_start = _word_starts(texts, tok, spec) | is_special
        sentence_end = np.array([any(c in _SENTENCE_ENDS for c in t) for t in texts], dtype=bool) & ~is_special
        doc_end = separator_id(tok, spec)
        return cls(ids, size, specials, sentinels, doc_end, is_special, word_start, sentence_end, n_real)

    @classmethod
    def from_workspace(cls, ws, tokenizer_id: int, split: str = "train") -> "TokenSource":
        """The source of a workspace tokenizer's train or val token file."""
        if split not in ("train", "val"):
            raise ValueError(f"split must be train or val, not {split!r}")
        files = ws.token_files(tokenizer_id)
        data = TokenData(files[split], files["dtype"])
        tok = ws.load_tokenizer(tokenizer_id)
        source = cls.from_tokenizer(tok, ws.tokenizer(tokenizer_id)["spec"], data, int(files["vocab_size"]))
        source.split = split
        return source

    def with_ids(self, ids: np.ndarray | TokenData) -> "TokenSource":
        """A source over other ids of the same vocabulary (a sample text, the other split)."""
        n_real = len(self.ordinary) + int(self.is_special.sum())
        return TokenSource(
            ids, self.vocab_size, self.specials, self.sentinels, self.doc_end, self.is_special, self.word_start,
            self.sentence_end, n_real,
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------------ reading
    @property
    def ids(self) -> np.ndarray:
        # A fresh memmap per read, as get_batch does: a long-lived one lets the process's memory grow.
        return self._ids.array() if isinstance(self._ids, TokenData) else self._ids

    def __len__(self) -> int:
        return self._ids.n_tokens if isinstance(self._ids, TokenData) else len(self._ids)

    def starts(self, length: int, batch_size: int, generator: torch.Generator) -> list[int]:
        """batch_size random start positions of windows of `length` tokens (get_batch's draw for block + 1)."""
        n = len(self)
        if n < length:
            raise UserError(f"the text has {n:,} tokens, fewer than the {length:,} one sequence needs")
        return torch.randint(n - length + 1, (batch_size,), generator=generator).tolist()

    def windows(self, length: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        """(batch_size, length) int64 random windows of the stream, on the CPU."""
        arr = self.ids
        ix = self.starts(length, batch_size, generator)
        return torch.from_numpy(np.stack([arr[i : i + length] for i in ix]).astype(np.int64))

    def special_mask(self, idx: torch.Tensor) -> torch.Tensor:
        """bool like idx: the positions that hold a special token."""
        return self._special_t.to(idx.device)[idx]

    def word_begins(self, row: np.ndarray) -> np.ndarray:
        """bool like the 1-D `row`: the positions where a word begins (word_start, the first position, and the
        token after a special token)."""
        row = np.asarray(row, dtype=np.int64)
        begins = self.word_start[row].copy()
        if len(row):
            begins[0] = True
            begins[1:] |= self.is_special[row[:-1]]
        return begins

    # -------------------------------------------------------------------------------------------- documents
    def doc_ends(self) -> np.ndarray:
        """Sorted positions of the document separators in the stream (read once, then kept)."""
        if self._doc_ends is None:
            if self.doc_end is None or not len(self):
                self._doc_ends = np.zeros(0, dtype=np.int64)
            else:
                self._doc_ends = np.flatnonzero(np.asarray(self.ids) == self.doc_end).astype(np.int64)
        return self._doc_ends

    def n_documents(self) -> int:
        ends = self.doc_ends()
        return len(ends) + (0 if len(ends) and ends[-1] == len(self) - 1 else 1)

    def document_of(self, pos: int) -> int:
        """The index of the document position `pos` lies in (a separator belongs to the document it ends)."""
        return int(np.searchsorted(self.doc_ends(), pos, side="left"))

    def document_bounds(self, pos: int) -> tuple[int, int]:
        """[start, end) of the document around `pos`, its separator left out."""
        ends = self.doc_ends()
        k = int(np.searchsorted(ends, pos, side="left"))
        start = int(ends[k - 1]) + 1 if k > 0 else 0
        end = int(ends[k]) if k < len(ends) else len(self)
        return start, end


def _token_text(tok: "Tokenizer", token_id: int) -> str:
    """The text a token stands for (a WordPiece continuation keeps its "##"; a stray byte reads as <0xNN>)."""
    if not is_byte_level(tok):
        raw = tok.id_to_token(token_id) or ""
        return raw.replace(METASPACE, " ") if is_metaspace(tok) else raw
    shown = display_token(tok, token_id)
    return "".join(_INVISIBLE.get(c, c) for c in shown)


def _word_starts(texts: list[str], tok: "Tokenizer", spec: dict | None) -> np.ndarray:
    """A token begins a word unless it continues one: a WordPiece "##" piece, or (other kinds) a token whose
    text begins with a letter, digit or combining mark and no space or word marker."""
    wordpiece = (spec or {}).get("kind") == "wordpiece"
    out = np.ones(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        if wordpiece:
            out[i] = not text.startswith("##")
        elif text:
            first = text[0]
            out[i] = not (first.isalnum() or first == "_" or unicodedata.category(first).startswith("M"))
    return out


def require_specials(info: "ObjectiveInfo", source: TokenSource) -> None:
    """ConfigError (Tokenizer) naming the special tokens `info`'s objective needs that the vocabulary lacks, and
    the two ways out (the words engine/run_setup.py uses for a chosen vocabulary)."""
    missing = [ROLE_TOKENS[r] for r in info.needs if r != "sentinel" and r not in source.specials]
    if "sentinel" in info.needs and not source.sentinels:
        first, last = sentinel_tokens(SENTINELS)[0], sentinel_tokens(SENTINELS)[-1]
        missing.append(f"{first} … {last}")
    if missing:
        raise missing_specials_error(info, missing)


def missing_specials_error(info: "ObjectiveInfo", missing: list[str], vocabulary: str = "") -> ConfigError:
    """The message for a vocabulary (named, when `vocabulary` is given) that lacks the special tokens `missing`
    `info`'s objective needs, with the two ways out; run_setup says the same for a chosen vocabulary."""
    what = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    named = f" {vocabulary!r}" if vocabulary else ""
    return ConfigError(
        f"{info.label} needs the special token{'s' if len(missing) > 1 else ''} {what}, which the vocabulary"
        f"{named} lacks: let the run train its own vocabulary (Tokenizer: new) or train one with {what} on the "
        f"Vocabulary panel",
        "tokenizer.tokenizer",
        also=("objective.name",),
    )
