"""Masked language modelling (BERT): hide some tokens and predict them from both sides.

Of each sequence's ordinary tokens (never a special one, never padding) a share objective.mask_prob is chosen:
the count is mask_prob times the candidates, rounded at random (so the expected share is exactly mask_prob, at
least one token). With objective.whole_word, whole words are chosen (TokenSource.word_begins) until the count
is reached, as BERT's whole-word masking does. Of the chosen tokens, mask_token_share become [MASK],
random_token_share a random ordinary token and the rest stay as they were, decided per token; the loss and the
masked accuracy are over the chosen positions only. The model is an Encoder: encode, then the tied masked-LM head
on the chosen positions alone (the vocabulary projection of every other position would be wasted work).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.objectives.base import IGNORE, Batch, LossOut, Objective
from engine.objectives.catalog import objective_info
from engine.objectives.losses import to_device, token_loss

# Fates of a position, as Batch.marks names them.
KEPT, MASKED, RANDOM, UNCHANGED, SPECIAL, PAD = range(6)
MARK_NAMES = ("kept", "masked", "random", "unchanged", "special", "pad")


def _chosen_count(n: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """p * n rounded down or up at random so its mean is p * n; at least 1 where n > 0."""
    k = torch.floor(n.double() * p + torch.rand(n.shape, generator=generator, dtype=torch.float64)).long()
    return torch.minimum(k.clamp(min=1), n)


def choose_tokens(candidates: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """bool (B, T): a random p share of each row's candidate positions."""
    k = _chosen_count(candidates.sum(1), p, generator)
    scores = torch.rand(candidates.shape, generator=generator)
    scores[~candidates] = 2.0  # after every candidate
    rank = scores.argsort(dim=1).argsort(dim=1)
    return rank < k[:, None]


def choose_words(idx: torch.Tensor, candidates: torch.Tensor, p: float, source, generator) -> torch.Tensor:
    """bool (B, T): whole words of candidate tokens, added in a random order while they fit in the count."""
    k = _chosen_count(candidates.sum(1), p, generator).tolist()
    chosen = torch.zeros_like(candidates)
    for b in range(idx.shape[0]):
        cand = candidates[b].numpy()
        if not cand.any():
            continue
        word = np.cumsum(source.word_begins(idx[b].numpy())) - 1
        sizes = np.bincount(word)
        # A word counts only when all of it may be masked (a special token is a word of its own).
        whole = np.bincount(word, weights=cand, minlength=len(sizes)) == sizes
        words = np.flatnonzero(whole & (sizes > 0)) if whole.any() else np.unique(word[cand])
        order = words[torch.randperm(len(words), generator=generator).numpy()]
        picked, total = [], 0
        for w in order.tolist():
            if total + sizes[w] <= k[b]:
                picked.append(w)
                total += int(sizes[w])
                if total == k[b]:
                    break
        chosen[b] = torch.from_numpy(np.isin(word, picked or order[:1]) & cand)
    return chosen


def mask_tokens(idx: torch.Tensor, real: torch.Tensor | None, source, options, generator: torch.Generator):
    """Corrupt idx (B, T) as BERT does; returns (inputs, targets, fates): targets hold the original token at the
    chosen positions and IGNORE elsewhere, fates (B, T) one of the fate codes above."""
    special = source.special_mask(idx)
    candidates = ~special if real is None else ~special & real
    if options.whole_word:
        chosen = choose_words(idx, candidates, options.mask_prob, source, generator)
    else:
        chosen = choose_tokens(candidates, options.mask_prob, generator)
    u = torch.rand(idx.shape, generator=generator)
    to_mask = chosen & (u < options.mask_token_share)
    to_random = chosen & ~to_mask & (u < options.mask_token_share + options.random_token_share)
    draws = source.ordinary[torch.randint(len(source.ordinary), idx.shape, generator=generator)]
    inputs = torch.where(to_mask, torch.full_like(idx, source.specials["mask"]), idx)
    inputs = torch.where(to_random, draws, inputs)
    targets = torch.where(chosen, idx, torch.full_like(idx, IGNORE))
    fates = torch.full(idx.shape, KEPT, dtype=torch.int8)
    fates[special] = SPECIAL
    if real is not None:
        fates[~real] = PAD
    fates[chosen] = UNCHANGED
    fates[to_mask] = MASKED
    fates[to_random] = RANDOM
    return inputs, targets, fates


def fate_marks(fates: torch.Tensor) -> list[list[str]]:
    return [[MARK_NAMES[c] for c in row] for row in fates.tolist()]


def masked_lm_loss(model, hidden: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0):
    """Cross-entropy of the masked-LM head at the chosen positions only (and the stats behind perplexity and
    masked accuracy)."""
    chosen = targets != IGNORE
    logits = model.lm_logits(hidden[chosen].unsqueeze(0))  # (1, N, V)
    return token_loss(logits, targets[chosen].unsqueeze(0), label_smoothing, accuracy="masked_accuracy")


class MaskedLM(Objective):
    info = objective_info("masked_lm")

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        T = self.cfg.model.block_size
        idx = source.windows(T, batch_size, generator)
        inputs, targets, fates = mask_tokens(idx, None, source, self.options, generator)
        return Batch(
            inputs={"idx": to_device(inputs, device)},
            targets=to_device(targets, device),
            marks=fate_marks(fates),
            extra={"layout": "same"},
            n_tokens=batch_size * T,
        )

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        hidden = model.encode(**batch.inputs)
        loss, stats = masked_lm_loss(model, hidden, batch.targets, label_smoothing)
        return LossOut(loss, stats)
