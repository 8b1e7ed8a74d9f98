"""Sentence pairs: next-sentence prediction (BERT), sentence-order prediction (ALBERT), and each with masked LM
on the same inputs (BERT's and ALBERT's own recipes, the two losses added).

A pair is [CLS] A [SEP] B [SEP], segment 0 up to the first [SEP] and 1 after, padded to the block (key_padding
False on the padding). A and B come from the user's text: a window of one document from a random place, begun
after a sentence end and ended at one where there is one near (TokenSource.sentence_end), cut in two at a
sentence end inside it (else at a random token boundary). Half the pairs (label 1) keep that order; for NSP the
other half take B from elsewhere (another document when the text has several, else a place far from A), of B's
length and cut the same way, so length and sentence boundaries do not give the label away; for SOP the other
half swap A and B. The label is read from the pooled [CLS] output (Encoder.pair_logits).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.config import ConfigError
from engine.objectives.base import IGNORE, Batch, LossOut, Objective
from engine.objectives.catalog import objective_info
from engine.objectives.losses import pair_loss, to_device
from engine.objectives.masked_lm import KEPT, PAD, SPECIAL, fate_marks, mask_tokens, masked_lm_loss

MIN_BLOCK = 8  # [CLS] A [SEP] B [SEP] with a few tokens each
_TRIES = 10  # draws of a place before one that does not fit is taken anyway


def pair_inputs(a_ids, b_ids, source, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx, segments), 1-D int64, of [CLS] a [SEP] b [SEP]: the longer of a and b loses tokens at its end until
    the pair fits in block_size. Not padded (a batch pads; a lone pair needs none)."""
    a, b = [int(t) for t in a_ids], [int(t) for t in b_ids]
    room = max(0, block_size - 3)
    while len(a) + len(b) > room:
        (a if len(a) >= len(b) else b).pop()
    cls, sep = source.specials["cls"], source.specials["sep"]
    idx = [cls, *a, sep, *b, sep]
    segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    return torch.tensor(idx, dtype=torch.int64), torch.tensor(segments, dtype=torch.int64)


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=generator))


def _sentence_start(source, arr, q: int, doc_start: int, reach: int) -> int:
    """The start of the sentence q lies in: just after the last sentence end before q, or the document's start,
    when either is within `reach` tokens back; else q itself."""
    lo = max(doc_start, q - reach)
    ends = np.flatnonzero(source.sentence_end[np.asarray(arr[lo:q], dtype=np.int64)])
    if len(ends):
        return lo + int(ends[-1]) + 1
    return doc_start if lo == doc_start else q


def _sentence_stop(source, text: np.ndarray) -> np.ndarray:
    """text ended at its last sentence end, where that keeps at least half of it."""
    ends = np.flatnonzero(source.sentence_end[text])
    if len(ends) and ends[-1] + 1 >= max(2, len(text) // 2):
        return text[: ends[-1] + 1]
    return text


def text_at(source, arr, length: int, generator: torch.Generator, elsewhere=None) -> tuple[int, np.ndarray]:
    """(position, up to `length` tokens of one document) from a random place whose position `elsewhere` accepts
    (when given), begun and ended at sentence ends where they are near."""
    for attempt in range(_TRIES):
        last = attempt == _TRIES - 1
        q = _randint(generator, 0, len(arr))
        if elsewhere is not None and not elsewhere(q) and not last:
            continue
        start, end = source.document_bounds(q)
        if end - start < 2 and not last:
            continue
        q = max(start, min(q, end - 2))
        q = _sentence_start(source, arr, q, start, length)
        text = _sentence_stop(source, np.asarray(arr[q : min(end, q + length)], dtype=np.int64))
        if len(text) >= 2 or last:
            return q, text
    raise AssertionError("unreachable: the last attempt returns")


def fit_sentences(source, text: np.ndarray, length: int) -> np.ndarray:
    """The longest head of text that ends at a sentence end and fits in `length`; its first `length` tokens when
    no sentence ends in them."""
    if len(text) <= length:
        return text
    ends = np.flatnonzero(source.sentence_end[text[:length]])
    return text[: ends[-1] + 1] if len(ends) else text[:length]


def cut_point(source, window: np.ndarray, generator: torch.Generator) -> int:
    """Where A ends in the window: after a sentence end inside it, else at a random token boundary."""
    if len(window) < 2:
        return len(window)
    inner = np.flatnonzero(source.sentence_end[window[:-1]]) + 1
    if len(inner):
        return int(inner[_randint(generator, 0, len(inner))])
    return _randint(generator, 1, len(window))


class _Pairs(Objective):
    """A pair task; subclasses say whether the second half is the order (SOP) and whether masked LM joins."""

    swaps = False  # SOP: label 0 swaps A and B; NSP: label 0 takes B from elsewhere
    with_mlm = False
    label_names = ("B is from elsewhere", "B follows A")

    def check(self, source) -> None:
        super().check(source)
        T = self.cfg.model.block_size
        if T < MIN_BLOCK:
            raise ConfigError(
                f"{self.info.label} needs a context of at least {MIN_BLOCK} tokens for [CLS] A [SEP] B [SEP], not {T}",
                "model.block_size",
            )

    def pair(self, source, arr, budget: int, label: int, generator) -> tuple[np.ndarray, np.ndarray]:
        """(A, B) of one example with this label."""
        pos, window = text_at(source, arr, budget, generator)
        c = cut_point(source, window, generator)
        a, b = window[:c], window[c:]
        if label:
            return a, b
        if self.swaps:
            return b, a
        # B is drawn as the whole pair was, then kept to the sentences that fit beside A, so it begins and ends at
        # sentence ends as often as the B that follows A does.
        _, other = text_at(source, arr, budget, generator, self._elsewhere(source, pos, budget))
        return a, fit_sentences(source, other, max(1, budget - len(a)))

    @staticmethod
    def _elsewhere(source, pos: int, budget: int):
        if source.n_documents() > 1:
            doc = source.document_of(pos)
            return lambda q: source.document_of(q) != doc
        return lambda q: abs(q - pos) > 2 * budget

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        T = self.cfg.model.block_size
        arr = source.ids
        labels = (torch.rand(batch_size, generator=generator) < 0.5).long()
        idx = torch.full((batch_size, T), source.specials.get("pad", source.specials["sep"]), dtype=torch.int64)
        segments = torch.zeros((batch_size, T), dtype=torch.int64)
        real = torch.zeros((batch_size, T), dtype=torch.bool)
        for row, label in enumerate(labels.tolist()):
            x, s = pair_inputs(*self.pair(source, arr, T - 3, label, generator), source, T)
            idx[row, : len(x)], segments[row, : len(x)], real[row, : len(x)] = x, s, True
        if self.with_mlm:
            idx, targets, fates = mask_tokens(idx, real, source, self.options, generator)
        else:
            targets = torch.full_like(idx, IGNORE)
            fates = torch.full(idx.shape, KEPT, dtype=torch.int8)
            fates[source.special_mask(idx)] = SPECIAL
            fates[~real] = PAD
        return Batch(
            inputs={
                "idx": to_device(idx, device),
                "segments": to_device(segments, device),
                "key_padding": to_device(real, device),
            },
            targets=to_device(targets, device),
            labels=to_device(labels, device),
            marks=fate_marks(fates),
            extra={"layout": "same" if self.with_mlm else "input", "label_names": self.label_names},
            n_tokens=batch_size * T,
        )

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        hidden = model.encode(**batch.inputs)
        loss, stats = pair_loss(model.pair_logits(hidden), batch.labels, label_smoothing)
        if self.with_mlm:
            mlm, mlm_stats = masked_lm_loss(model, hidden, batch.targets, label_smoothing)
            loss = loss + mlm
            stats.update(mlm_stats)
        return LossOut(loss, stats)


class NextSentence(_Pairs):
    info = objective_info("nsp")


class SentenceOrder(_Pairs):
    info = objective_info("sop")
    swaps = True
    label_names = ("swapped", "in order")


class MaskedLMNextSentence(NextSentence):
    info = objective_info("masked_lm+nsp")
    with_mlm = True


class MaskedLMSentenceOrder(SentenceOrder):
    info = objective_info("masked_lm+sop")
    with_mlm = True
