"""REINFORCE's rewards (objective.reward): what a sampled continuation earns, from rules a user writes in a line.

The line is one or more terms joined by ";", their scores added:

    contains:WORDS       the share of the comma-separated words the text holds (0..1)
    avoids:WORDS         1 less the share of them it holds (0..1)
    length:N             1 - |words - N| / N, at least -1: how close the text comes to N words
    regex:PATTERN        1 when the Python regular expression PATTERN matches somewhere in the text, else 0;
                         it takes the rest of the line, ";" included
    classifier:RUN:LABEL the probability a classification run (an id or a name) gives its class LABEL: a
                         reward model trained in this workspace

Words match whole and in any case ("love" counts in "Love me", not in "glove"). A user's line is parsed, never
run: a pattern is compiled by `re` and only ever searched with. This module is the standard library's only, so a
config is checked without torch; engine/reward_model.py loads the classifiers a line names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.config import ConfigError

KEY = "objective.reward"
KINDS = ("contains", "avoids", "length", "regex", "classifier")
_MAX_PATTERN = 500  # a pattern longer than a line is not a reward anybody means


@dataclass
class Term:
    kind: str
    words: tuple[str, ...] = ()
    target: int = 0
    pattern: re.Pattern | None = None
    run: int | str | None = None
    label: str = ""
    # texts -> probabilities of `label`, set by engine.reward_model.bind_classifiers
    _classify: object = field(default=None, repr=False)

    def score(self, texts: list[str]) -> list[float]:
        if self.kind in ("contains", "avoids"):
            found = [sum(1 for w in self.words if _has_word(t, w)) / len(self.words) for t in texts]
            return found if self.kind == "contains" else [1.0 - f for f in found]
        if self.kind == "length":
            return [max(-1.0, 1.0 - abs(len(t.split()) - self.target) / self.target) for t in texts]
        if self.kind == "regex":
            assert self.pattern is not None
            return [1.0 if self.pattern.search(t) else 0.0 for t in texts]
        if self._classify is None:
            raise RuntimeError("the classifier is not loaded: call reward_model.bind_classifiers first")
        return self._classify(texts)  # type: ignore[operator]


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


@dataclass
class Reward:
    terms: list[Term]
    text: str

    def score(self, texts: list[str]) -> list[float]:
        """Each text's reward: the sum of the terms' scores."""
        total = [0.0] * len(texts)
        for term in self.terms:
            total = [a + b for a, b in zip(total, term.score(texts))]
        return total

    @property
    def classifier_runs(self) -> list:
        return [t.run for t in self.terms if t.kind == "classifier"]


def parse_reward(text: str) -> Reward:
    """The Reward a line describes; ConfigError (objective.reward) in words for anything it cannot read."""
    line = (text or "").strip()
    if not line:
        raise ConfigError(
            "REINFORCE needs a Reward: contains:WORDS, avoids:WORDS, length:N, regex:PATTERN or "
            "classifier:RUN:LABEL (several joined by ;)",
            KEY,
        )
    terms, rest = [], line
    while rest:
        head, sep, tail = rest.partition(";")
        kind, colon, value = head.strip().partition(":")
        kind = kind.strip().lower()
        if kind == "regex":  # a pattern keeps its semicolons
            value, tail = (value + sep + tail).strip(), ""
        if kind not in KINDS or not colon:
            raise ConfigError(
                f"Reward: {head.strip()!r} is not a reward; write one of " + ", ".join(f"{k}:…" for k in KINDS),
                KEY,
            )
        terms.append(_term(kind, value.strip()))
        rest = tail.strip()
    return Reward(terms, line)


def _term(kind: str, value: str) -> Term:
    if kind in ("contains", "avoids"):
        words = tuple(w.strip() for w in value.split(",") if w.strip())
        if not words:
            raise ConfigError(f"Reward: {kind}: needs one or more words, comma-separated ({kind}:love,joy)", KEY)
        return Term(kind, words=words)
    if kind == "length":
        if not value.isdigit() or not 1 <= int(value) <= 10_000:
            raise ConfigError(f"Reward: length: needs a number of words from 1 to 10,000, not {value!r}", KEY)
        return Term(kind, target=int(value))
    if kind == "regex":
        return Term(kind, pattern=_compile(value))
    run, colon, label = value.partition(":")
    if not run.strip() or not colon or not label.strip():
        raise ConfigError("Reward: classifier: needs a run and one of its classes (classifier:4:positive)", KEY)
    ref: int | str = int(run) if run.strip().isdigit() else run.strip()
    return Term(kind, run=ref, label=label.strip())


def _compile(pattern: str) -> re.Pattern:
    if not pattern:
        raise ConfigError("Reward: regex: needs a pattern (regex:[0-9]+)", KEY)
    if len(pattern) > _MAX_PATTERN:
        raise ConfigError(f"Reward: the pattern is longer than {_MAX_PATTERN} characters", KEY)
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"Reward: {pattern!r} is not a regular expression ({e})", KEY) from None
