"""T5's span layout: which tokens of a window are hidden, in how many spans, and how long a window fits a context.

Raffel et al. 2020 (T5, section 3.1.4 and the `random_spans_noise_mask` of its code) hide round(L * density)
of a window's L tokens in round(hidden / mean_span_length) spans. The hidden tokens and the kept tokens are each
cut at random into that many non-empty runs (a random segmentation: every way of cutting is equally likely), and
the runs alternate, so a span never touches another (T5 puts a kept run first, which always hides a window's
last token; noise_mask lets a coin choose). Every window of the same length therefore has
the same number of hidden tokens and spans, so the encoder input and the target of a batch all have one length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def random_segmentation(n_items: int, n_segments: int, generator: torch.Generator) -> list[int]:
    """n_items cut into n_segments non-empty runs at random: n_segments - 1 distinct cut points among the
    n_items - 1 gaps, each set of cuts equally likely. Returns the run lengths (they add up to n_items)."""
    if not 1 <= n_segments <= n_items:
        raise ValueError(f"cannot cut {n_items} items into {n_segments} non-empty runs")
    cuts = torch.randperm(n_items - 1, generator=generator)[: n_segments - 1].sort().values.tolist()
    bounds = [0] + [c + 1 for c in cuts] + [n_items]
    return [b - a for a, b in zip(bounds, bounds[1:])]


@dataclass(frozen=True)
class SpanLayout:
    """The sizes T5's corruption gives a window of `length` tokens (the same for every window of that length)."""

    length: int  # tokens of the original window
    n_noise: int  # tokens hidden
    n_spans: int  # hidden spans, one sentinel each

    @property
    def input_length(self) -> int:
        """Kept tokens plus one sentinel per span."""
        return self.length - self.n_noise + self.n_spans

    @property
    def target_length(self) -> int:
        """Each sentinel followed by the span it hides, then eos."""
        return self.n_noise + self.n_spans + 1


def span_layout(length: int, noise_density: float, mean_span_length: float) -> SpanLayout:
    """T5's counts for a window: hidden tokens round(length * density), at least 1 and at most length - 1;
    spans round(hidden / mean_span_length), at least 1, and never more than the kept runs that separate them."""
    n_noise = min(max(round(length * noise_density), 1), length - 1)
    n_spans = max(round(n_noise / mean_span_length), 1)
    n_spans = min(n_spans, n_noise, length - n_noise)
    return SpanLayout(length, n_noise, n_spans)


def fit_layout(block_size: int, noise_density: float, mean_span_length: float, n_sentinels: int) -> SpanLayout | None:
    """The layout of the longest window whose input and target each fit `block_size` tokens and whose spans
    each get their own sentinel; None when not even a window of two tokens fits."""
    best = None
    # The input and target lengths add up to length + n_spans + 1 > length, so a window longer than twice the
    # context can never fit both sides.
    for length in range(2, 2 * block_size + 3):
        lay = span_layout(length, noise_density, mean_span_length)
        if lay.input_length <= block_size and lay.target_length <= block_size and lay.n_spans <= n_sentinels:
            best = lay
    return best


def holds_a_span(lay: SpanLayout | None, mean_span_length: float) -> bool:
    """Whether a layout hides at least one span of the mean length (shorter contexts teach a different task)."""
    return lay is not None and lay.n_noise >= mean_span_length


def shortest_context(noise_density: float, mean_span_length: float, n_sentinels: int) -> int:
    """The smallest block_size whose layout holds a span of the mean length (a longer context always does too,
    so a doubling then a bisection finds it)."""

    def fits(block: int) -> bool:
        return holds_a_span(fit_layout(block, noise_density, mean_span_length, max(n_sentinels, 1)), mean_span_length)

    high = 2
    while not fits(high) and high < 1 << 16:
        high *= 2
    low = high // 2  # fits(low) is false (or low < 2)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if fits(mid) else (mid, high)
    return max(high, 2)


def noise_mask(lay: SpanLayout, generator: torch.Generator) -> list[bool]:
    """A (length,) mask, True = hidden: kept and hidden runs alternate. T5 always puts a kept run first (so a
    window's last token is always hidden); here a coin chooses which kind comes first, with the same counts."""
    kept = random_segmentation(lay.length - lay.n_noise, lay.n_spans, generator)
    hidden = random_segmentation(lay.n_noise, lay.n_spans, generator)
    hidden_first = bool(torch.randint(2, (1,), generator=generator))
    mask: list[bool] = []
    for k, h in zip(kept, hidden):
        mask += [True] * h + [False] * k if hidden_first else [False] * k + [True] * h
    return mask


def corrupt_batch(tokens: torch.Tensor, hidden: torch.Tensor, sentinels: list[int]):
    """T5's input and target (without eos) of windows (B, L) and their noise masks (B, L), all at once:
    (input (B, S), its sentinel positions (B, S), target (B, U), its sentinel positions (B, U)).

    Each position p gives two slots, 2p (the sentinel of the span p begins, if it begins one) and 2p + 1 (its
    token); the input keeps the sentinels and the kept tokens, the target the sentinels and the hidden tokens. Every
    window has the same counts, so each row keeps as many slots."""
    B, L = tokens.shape
    starts = hidden.clone()
    starts[:, 1:] &= ~hidden[:, :-1]
    span = (starts.long().cumsum(1) - 1).clamp(min=0)  # the span a start opens
    sentinel = torch.tensor(sentinels, dtype=torch.long)[span]  # (B, L)
    values = torch.stack([sentinel, tokens], dim=2).reshape(B, 2 * L)
    is_sentinel = torch.stack([starts, torch.zeros_like(starts)], dim=2).reshape(B, 2 * L)

    def keep(token_slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        slots = torch.stack([starts, token_slots], dim=2).reshape(B, 2 * L)
        width = int(slots[0].sum())
        return values[slots].view(B, width), is_sentinel[slots].view(B, width)

    return (*keep(~hidden), *keep(hidden))
