"""Span corruption (T5, Raffel et al. 2020) on an encoder-decoder; fill-in-the-middle (Bavarian et al. 2022) on
a decoder.

Encoder-decoder. A window of L tokens loses round(L * noise_density) of them in spans of mean_span_length on
average (engine/objectives/spans.py: T5's layout). The encoder reads the window with each hidden span replaced by
one sentinel, <extra_id_0>, <extra_id_1>, ... in order; the decoder writes each sentinel followed by the span it
hides, then eos. For "The cat sat on the mat" hiding "cat" and "on the":

    input   The <extra_id_0> sat <extra_id_1> mat
    target  <extra_id_0> cat <extra_id_1> on the <eos>

The decoder reads the target shifted right behind decoder_start_id (base.py). L is the longest window whose input
and target each fit block_size and whose spans each have a sentinel, so every sequence of a batch has the same
lengths and nothing is padded. Spans never hide a document separator (the mask is drawn again while one does), so
the eos that ends a target is the only one in it. Infilling with a trained model uses the same layout (infill_input, fills_of).

Decoder. For fim_rate of the sequences the window is cut at two points drawn uniformly (Bavarian et al.: the
middle can be anything from empty to the whole text; one that would cross a document's end is cut short
there, so the eos after a middle always means the gap is filled) and rearranged prefix-suffix-middle (PSM):

    <extra_id_0> prefix <extra_id_1> suffix <extra_id_2> middle <eos>

the other sequences stay plain next-token windows. The loss is the causal loss over the whole sequence, as in the
paper, which found that it teaches infilling without costing left-to-right ability ("FIM for free"); a loss on the
middle only would throw away the prefix and suffix tokens as training signal. noise_density and mean_span_length
shape the encoder-decoder's spans only. fim_prompt builds the prompt the model continues with the middle.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.config import ConfigError
from engine.objectives.base import Batch, LossOut, Objective, decoder_start_id
from engine.objectives.catalog import objective_info
from engine.objectives.seq2seq_view import describe_seq2seq
from engine.objectives.spans import corrupt_batch, fit_layout, holds_a_span, noise_mask, shortest_context
from engine.objectives.losses import to_device, token_loss

MASK_TRIES = 20  # draws of a noise mask that leaves document separators visible (a window full of them gives up)
FIM_MARKERS = 3  # <extra_id_0..2>: before the prefix, the suffix and the middle
FIM_MIN_CONTEXT = 6  # the markers, eos, and one token each before, in and after the middle, shifted by one


def fim_prompt(prefix_ids: list[int], suffix_ids: list[int], source) -> list[int]:
    """The decoder prompt that asks for the middle between prefix and suffix; the model continues it with the
    middle and then eos."""
    s = source.sentinels
    return [s[0], *prefix_ids, s[1], *suffix_ids, s[2]]


def infill_input(pieces: list[list[int]], source) -> list[int]:
    """The encoder input for gaps between `pieces` (text before the first gap, between gaps, after the last):
    the pieces joined by <extra_id_0>, <extra_id_1>, ..."""
    out = list(pieces[0])
    for k, piece in enumerate(pieces[1:]):
        out += [source.sentinels[k], *piece]
    return out


def fills_of(target_ids: list[int], source, n_gaps: int) -> list[list[int]]:
    """What a generated target puts in each gap: the tokens after <extra_id_k> up to the next sentinel or eos
    (an empty list for a gap the model skipped)."""
    fills: list[list[int]] = [[] for _ in range(n_gaps)]
    where = {s: k for k, s in enumerate(source.sentinels[:n_gaps])}
    others = set(source.sentinels) - set(where)
    eos = source.specials.get("eos")
    current = None
    for t in target_ids:
        if t == eos:
            break
        if t in where:
            current = where[t]
        elif t in others:
            current = None  # a gap the input does not have: what follows belongs nowhere
        elif current is not None:
            fills[current].append(t)
    return fills


class SpanCorruption(Objective):
    info = objective_info("span_corruption")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.encdec = cfg.model.arch == "encoder-decoder"
        self.block_size = cfg.model.block_size

    def _layout(self, source):
        o = self.options
        return fit_layout(self.block_size, o.noise_density, o.mean_span_length, len(source.sentinels))

    def check(self, source) -> None:
        super().check(source)
        o = self.options
        if self.encdec:
            if not holds_a_span(self._layout(source), o.mean_span_length):
                need = shortest_context(o.noise_density, o.mean_span_length, len(source.sentinels))
                raise ConfigError(
                    f"Context length {self.block_size} is too short for span corruption with noise density "
                    f"{o.noise_density:g} and mean span length {o.mean_span_length:g}: it must hold the text with a "
                    f"placeholder for each span, and the spans; choose at least {need}",
                    "model.block_size",
                )
        elif len(source.sentinels) < FIM_MARKERS:
            raise ConfigError(
                "Span corruption on a decoder (fill-in-the-middle) needs the sentinels <extra_id_0>, <extra_id_1> "
                "and <extra_id_2>, which the vocabulary lacks: let the run train its own vocabulary (Tokenizer: new)",
                "tokenizer.tokenizer",
                also=("objective.name",),
            )
        elif self.block_size < FIM_MIN_CONTEXT:
            raise ConfigError(
                f"Context length {self.block_size} is too short for span corruption on a decoder "
                f"(fill-in-the-middle needs its three placeholders, an end token and text before, in and after the "
                f"middle); choose at least {FIM_MIN_CONTEXT}",
                "model.block_size",
            )

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        b = self._encdec_batch if self.encdec else self._fim_batch
        out = b(source, batch_size, generator)
        out.inputs = {k: to_device(v, device) for k, v in out.inputs.items()}
        out.targets = to_device(out.targets, device)
        return out

    def _encdec_batch(self, source, batch_size: int, generator: torch.Generator) -> Batch:
        lay = self._layout(source)
        windows = source.windows(lay.length, batch_size, generator)  # (B, L)
        masks = [self._mask(lay, w, source.doc_end, generator) for w in windows.tolist()]
        hidden = torch.from_numpy(np.array(masks, dtype=bool))  # (B, L)
        src, src_sentinel, target, target_sentinel = corrupt_batch(windows, hidden, source.sentinels)
        eos = torch.full((batch_size, 1), source.specials["eos"], dtype=torch.long)
        target = torch.cat([target, eos], dim=1)  # (B, target_length)
        start = torch.full((batch_size, 1), decoder_start_id(source.specials), dtype=torch.long)
        tgt_in = torch.cat([start, target[:, :-1]], dim=1)  # the target shifted right behind the start token
        return Batch(
            {"idx": src, "tgt": tgt_in},
            target,
            marks=[["sentinel" if s else "kept" for s in row] for row in src_sentinel.tolist()],
            extra={
                "target_marks": [
                    ["sentinel" if s else "masked" for s in row] + ["special"] for row in target_sentinel.tolist()
                ]
            },
            n_tokens=src.numel() + tgt_in.numel(),
        )

    @staticmethod
    def _mask(lay, window: list[int], doc_end: int | None, generator: torch.Generator) -> list[bool]:
        """A noise mask whose spans leave the window's document separators visible, so the eos that ends a target
        is the only one in it: drawn again (at most MASK_TRIES times) while a span covers one."""
        ends = [k for k, t in enumerate(window) if t == doc_end]
        for _ in range(MASK_TRIES):
            mask = noise_mask(lay, generator)
            if not any(mask[k] for k in ends):
                break
        return mask

    def _fim_batch(self, source, batch_size: int, generator: torch.Generator) -> Batch:
        windows = source.windows(self.block_size + 1, batch_size, generator)  # (B, T + 1), as causal LM draws
        fim = (torch.rand(batch_size, generator=generator) < self.options.fim_rate).tolist()
        seqs, marks = [], []
        for w, is_fim in zip(windows.tolist(), fim):
            if is_fim:
                seq, m = self._psm(w[: len(w) - FIM_MARKERS - 1], source, generator)
            else:
                seq, m = w, ["kept"] * len(w)
            seqs.append(seq)
            marks.append(m[:-1])
        full = torch.tensor(seqs, dtype=torch.long)  # (B, T + 1)
        idx, targets = full[:, :-1], full[:, 1:]
        return Batch({"idx": idx}, targets, marks=marks, extra={"fim": fim, "layout": "next"}, n_tokens=idx.numel())

    @staticmethod
    def _psm(text: list[int], source, generator: torch.Generator) -> tuple[list[int], list[str]]:
        """prefix-suffix-middle of one window's text, with the marks of its tokens."""
        a, b = sorted(torch.randint(0, len(text) + 1, (2,), generator=generator).tolist())
        if source.doc_end is not None and source.doc_end in text[a:b]:
            b = text.index(source.doc_end, a)  # a middle never crosses a document's end: its eos ends the gap
        prefix, middle, suffix = text[:a], text[a:b], text[b:]
        s = source.sentinels
        seq = [s[0], *prefix, s[1], *suffix, s[2], *middle, source.specials["eos"]]
        m = ["sentinel", *["kept"] * len(prefix), "sentinel", *["kept"] * len(suffix), "sentinel"]
        return seq, m + ["moved"] * len(middle) + ["special"]

    fim_prompt = staticmethod(fim_prompt)

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        x = batch.inputs
        if self.encdec:
            logits = model(x["idx"], x["tgt"], src_padding=x.get("src_padding"))[0]
        else:
            logits = model(x["idx"])[0]
        return LossOut(*token_loss(logits, batch.targets, label_smoothing))

    def describe(self, batch: Batch, source, decode) -> list[dict]:
        if self.encdec:
            return describe_seq2seq(batch, decode)
        return super().describe(batch, source, decode)
