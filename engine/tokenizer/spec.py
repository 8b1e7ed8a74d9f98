"""What a tokenizer is made of: the kinds, special token roles, normalizers, pre-tokenizers and TokenizerSpec.

Standard library only: it names the choices and checks them; training.py builds the tokenizer they describe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# The choices are defined once in engine/choices.py (the studio's forms offer the same); re-exported here.
from engine.choices import (
    DEFAULT_PRE_TOKENIZER,
    DEFAULT_SPECIALS,
    EOT,  # noqa: F401 (re-exported)
    FIXED_PRE_TOKENIZER,
    NORMALIZERS,
    PRE_TOKENIZERS,
    UNK,  # noqa: F401 (re-exported)
    sentinel_tokens,
)
from engine.choices import SPECIAL_ROLES as ROLES
from engine.choices import TOKENIZER_KINDS as KINDS
from engine.tokenizer.errors import TokenizerError

METASPACE = "\u2581"  # "▁", SentencePiece's word marker
MAX_SENTINELS = 1000  # T5 has 100; a vocabulary of only placeholders helps nobody


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
    sentinels: how many of T5's <extra_id_0>, <extra_id_1>, ... (span corruption's placeholders) the vocabulary
        has, as special tokens after the others; 0 (the default) for none.
    """

    kind: str = "char"
    vocab_size: int = 512
    min_frequency: int = 0
    special_tokens: dict | None = None
    normalizer: str = "none"
    pre_tokenizer: str | None = None
    sentinels: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TokenizerError(f"unknown tokenizer kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        try:
            self.vocab_size = int(self.vocab_size)
            self.min_frequency = int(self.min_frequency or 0)
            self.sentinels = int(self.sentinels or 0)
        except (TypeError, ValueError):
            raise TokenizerError("vocab_size, min_frequency and sentinels must be whole numbers") from None
        if not 0 <= self.sentinels <= MAX_SENTINELS:
            raise TokenizerError(f"sentinels must be between 0 and {MAX_SENTINELS}, not {self.sentinels}")
        if self.min_frequency < 0:
            raise TokenizerError(f"min_frequency must be 0 or more, not {self.min_frequency}")
        self.normalizer = (self.normalizer or "none").lower()
        if self.normalizer not in NORMALIZERS:
            raise TokenizerError(f"unknown normalizer {self.normalizer!r}; choose one of {', '.join(NORMALIZERS)}")
        pre = (self.pre_tokenizer or DEFAULT_PRE_TOKENIZER[self.kind]).lower()
        fixed = FIXED_PRE_TOKENIZER.get(self.kind)
        if fixed and pre != fixed:
            raise TokenizerError(f"a {self.kind} tokenizer always uses the {fixed!r} pre-tokenizer, not {pre!r}")
        if pre not in PRE_TOKENIZERS or (not fixed and pre in ("bytelevel", "none") and self.kind != "char"):
            allowed = [p for p in PRE_TOKENIZERS if p not in ("bytelevel", "none")]
            raise TokenizerError(
                f"pre-tokenizer {pre!r} does not fit a {self.kind} tokenizer; choose one of {', '.join(allowed)}"
            )
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
        taken = set(tokens) & set(sentinel_tokens(self.sentinels))
        if taken:
            raise TokenizerError(f"{', '.join(sorted(taken))} is a sentinel token; give its role another token")
        self.special_tokens = {r: specials[r] for r in ROLES if r in specials}
        self._check_room(tokens)

    def _check_room(self, role_tokens: list[str]) -> None:
        """TokenizerError when vocab_size leaves no room for the ordinary tokens beside the special ones."""
        n_special = len(role_tokens) + self.sentinels
        if self.vocab_size < 2:
            raise TokenizerError(f"a vocabulary needs at least 2 tokens, not {self.vocab_size}")
        if self.kind == "bytebpe" and self.vocab_size < 256 + n_special:
            listed = ", ".join(role_tokens + ([f"{self.sentinels} sentinels"] if self.sentinels else []))
            raise TokenizerError(
                f"byte-level BPE needs a vocabulary of at least {256 + n_special} tokens "
                f"(256 bytes and {listed}), not {self.vocab_size}"
            )
        if self.kind != "bytebpe" and self.vocab_size < n_special + 1:
            raise TokenizerError(f"a vocabulary of {self.vocab_size} has no room beside the {n_special} special tokens")

    def specials(self) -> list[str]:
        """The special tokens in id order: the roles' tokens, then the sentinels."""
        return [*self.special_tokens.values(), *self.sentinel_tokens()]

    def sentinel_tokens(self) -> list[str]:
        return sentinel_tokens(self.sentinels)

    def to_dict(self) -> dict:
        """JSON-safe; "sentinels" only when there are some, so a spec reads as it did before they existed."""
        d = asdict(self)
        if not self.sentinels:
            del d["sentinels"]
        return d


def make_spec(kind: str, vocab_size: int, **options: Any) -> TokenizerSpec:
    unknown = set(options) - {"min_frequency", "special_tokens", "normalizer", "pre_tokenizer", "sentinels"}
    if unknown:
        raise TokenizerError(f"unknown tokenizer option(s): {', '.join(sorted(unknown))}")
    return TokenizerSpec(kind, vocab_size, **options)
