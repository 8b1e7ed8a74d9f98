"""BART's noise functions (Lewis et al. 2020, section 2.2), each on one sequence.

A sequence is a list of (token id, origin) pairs: origin is the token's index in the original text, or -1 for a
[MASK] that text infilling inserted. `fate` (one entry per original token) records what happened to each:
"kept", "moved" (its position changed), "masked" (shown as, or hidden behind, a [MASK]) or "deleted". The noises
work on tokens, not on whole words as BART's code does, so a character vocabulary gets the same treatment.
"""

from __future__ import annotations

import math

import torch

Item = tuple[int, int]  # (token id, origin index or -1)


def sentence_permutation(items: list[Item], sentence_end, generator: torch.Generator) -> list[Item]:
    """The sentences (runs ending with a token that ends a sentence; the window's last run may be cut short)
    shuffled into a random order."""
    sentences: list[list[Item]] = [[]]
    for item in items:
        sentences[-1].append(item)
        if sentence_end[item[0]]:
            sentences.append([])
    sentences = [s for s in sentences if s]
    order = torch.randperm(len(sentences), generator=generator).tolist()
    return [item for k in order for item in sentences[k]]


def document_rotation(items: list[Item], generator: torch.Generator) -> list[Item]:
    """The sequence rotated to begin at a token chosen uniformly at random (never the one it began with)."""
    if len(items) < 2:
        return list(items)
    start = int(torch.randint(1, len(items), (1,), generator=generator))
    return items[start:] + items[:start]


def _eligible(items: list[Item], fate: list[str]) -> list[int]:
    """Positions of original tokens that no token-level noise has touched yet."""
    return [i for i, (_, o) in enumerate(items) if o >= 0 and fate[o] in ("kept", "moved")]


def _choose(positions: list[int], n: int, generator: torch.Generator) -> set[int]:
    pick = torch.randperm(len(positions), generator=generator)[: min(n, len(positions))].tolist()
    return {positions[k] for k in pick}


def token_masking(items: list[Item], n: int, mask_id: int, fate: list[str], generator: torch.Generator) -> list[Item]:
    """n untouched tokens chosen at random shown as [MASK]."""
    chosen = _choose(_eligible(items, fate), n, generator)
    for i in chosen:
        fate[items[i][1]] = "masked"
    return [(mask_id, o) if i in chosen else (t, o) for i, (t, o) in enumerate(items)]


def token_deletion(items: list[Item], n: int, fate: list[str], generator: torch.Generator) -> list[Item]:
    """n untouched tokens chosen at random removed (the model must find where something is missing)."""
    chosen = _choose(_eligible(items, fate), n, generator)
    for i in chosen:
        fate[items[i][1]] = "deleted"
    return [item for i, item in enumerate(items) if i not in chosen]


def poisson_spans(n_tokens: int, lam: float, generator: torch.Generator) -> list[int]:
    """Span lengths drawn from Poisson(lam) until they cover n_tokens, the last one cut to fit (BART). Spans of
    length 0 are kept: each inserts a [MASK] where nothing is missing."""
    spans: list[int] = []
    while sum(spans) < n_tokens:
        draw = torch.poisson(torch.full((max(4, math.ceil(2 * n_tokens / lam)),), float(lam)), generator=generator)
        for length in draw.long().tolist():
            spans.append(min(length, n_tokens - sum(spans)))
            if sum(spans) >= n_tokens:
                break
    return spans


def text_infilling(
    items: list[Item], n: int, lam: float, mask_id: int, fate: list[str], generator: torch.Generator
) -> tuple[list[Item], int]:
    """Spans of Poisson(lam) length covering n tokens, each replaced by ONE [MASK] (a span of length 0 inserts a
    [MASK]), so the model must also tell how many tokens are missing. Spans go into distinct gaps between the
    tokens that stay, so no two masks touch. Runs before the other token-level noises (its spans need
    untouched runs of text). Returns the sequence and the number of spans (= the [MASK]s it put in)."""
    spans = poisson_spans(min(n, len(items)), lam, generator)
    n_kept = len(items) - sum(spans)
    spans = spans[: n_kept + 1]  # one span per gap at most (only a tiny sequence has more spans than gaps)
    gaps = torch.randperm(n_kept + 1, generator=generator)[: len(spans)].sort().values.tolist()
    at_gap = dict(zip(gaps, spans))
    out: list[Item] = []
    p = 0
    for gap in range(n_kept + 1):
        if gap in at_gap:
            for _, o in items[p : p + at_gap[gap]]:
                fate[o] = "masked"
            p += at_gap[gap]
            out.append((mask_id, -1))
        if p < len(items) and gap < n_kept:
            out.append(items[p])
            p += 1
    out += items[p:]  # tokens left over when spans were dropped for want of gaps
    return out, len(spans)
