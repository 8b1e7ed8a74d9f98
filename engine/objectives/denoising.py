"""Denoising (BART, Lewis et al. 2020) on an encoder-decoder: damage a window of text, write the original back.

The noise functions of objective.noises (engine/objectives/bart_noise.py) apply in a fixed order, whatever order
the option lists them in: the ones that reorder first (sentence permutation, then document rotation), then the
token-level ones (text infilling, token masking, token deletion). The token-level ones damage
denoise_mask_prob of the window's tokens between them, in equal shares, each on tokens the others left alone;
infilling's spans have Poisson(poisson_lambda) lengths and each becomes ONE [MASK].

The encoder reads the damaged text (rows padded to the longest, src_padding marks the real tokens; an input that
infilling's inserted masks made longer than the context is cut to it); the decoder writes the original window
and eos, reading it shifted right behind decoder_start_id. The window is block_size - 1 tokens, so the target
with its eos fits the context. Marks: input tokens are "kept", "moved" or "masked"; on the target side every
original token says what happened to it ("deleted" tokens appear there only).
"""

from __future__ import annotations

import torch

from engine.config import ConfigError
from engine.objectives.bart_noise import (
    document_rotation,
    sentence_permutation,
    text_infilling,
    token_deletion,
    token_masking,
)
from engine.objectives.base import Batch, LossOut, Objective, decoder_start_id
from engine.objectives.catalog import objective_info
from engine.objectives.seq2seq_view import describe_seq2seq
from engine.objectives.losses import to_device, token_loss

TOKEN_NOISES = ("text_infilling", "token_masking", "token_deletion")  # in the order they apply


def pad_rows(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of different lengths as one (B, T) int64 tensor padded with `value`, and the (B, T) bool mask of the
    real tokens."""
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    real = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        real[i, : len(r)] = True
    return out, real


def shares(total: int, n: int) -> list[int]:
    """`total` split into n counts as equal as they can be, the larger ones first."""
    return [total // n + (1 if k < total % n else 0) for k in range(n)]


class Denoising(Objective):
    info = objective_info("denoising")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.block_size = cfg.model.block_size
        self.noises = cfg.objective.noise_list()

    def check(self, source) -> None:
        super().check(source)
        o = self.options
        window = 2
        while round(o.denoise_mask_prob * window) < 1:
            window += 1
        need = window + 1  # the shortest window with a damaged token, and the target's eos
        if self.block_size < need:
            raise ConfigError(
                f"Context length {self.block_size} is too short for denoising with a damaged share of "
                f"{o.denoise_mask_prob:g}: not one token of a window would be damaged; choose at least {need}",
                "model.block_size",
            )

    def noise(self, tokens: list[int], source, generator: torch.Generator) -> tuple[list[int], list[str], list[str]]:
        """(damaged ids, their marks, the fate of each original token) for one window."""
        items = [(t, i) for i, t in enumerate(tokens)]
        fate = ["kept"] * len(tokens)
        if "sentence_permutation" in self.noises:
            items = sentence_permutation(items, source.sentence_end, generator)
        if "document_rotation" in self.noises:
            items = document_rotation(items, generator)
        for pos, (_, o) in enumerate(items):
            if o != pos:
                fate[o] = "moved"
        chosen = [n for n in TOKEN_NOISES if n in self.noises]
        mask_id = source.specials["mask"]
        counts = shares(round(self.options.denoise_mask_prob * len(tokens)), max(len(chosen), 1))
        for name, n in zip(chosen, counts):
            if name == "text_infilling":
                items, _ = text_infilling(items, n, self.options.poisson_lambda, mask_id, fate, generator)
            elif name == "token_masking":
                items = token_masking(items, n, mask_id, fate, generator)
            else:
                items = token_deletion(items, n, fate, generator)
        items = items[: self.block_size]
        marks = ["masked" if o < 0 else fate[o] for _, o in items]
        return [t for t, _ in items], marks, fate

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        windows = source.windows(self.block_size - 1, batch_size, generator)  # (B, T - 1)
        eos = source.specials["eos"]
        rows, marks, target_marks = [], [], []
        for w in windows.tolist():
            ids, m, fate = self.noise(w, source, generator)
            rows.append(ids)
            marks.append(m)
            target_marks.append(fate + ["special"])
        src, real = pad_rows(rows, source.specials.get("pad", eos))
        target = torch.cat([windows, torch.full((batch_size, 1), eos, dtype=torch.long)], dim=1)  # (B, T)
        start = torch.full((batch_size, 1), decoder_start_id(source.specials), dtype=torch.long)
        inputs = {"idx": src, "tgt": torch.cat([start, target[:, :-1]], dim=1)}
        if not bool(real.all()):
            inputs["src_padding"] = real
        return Batch(
            {k: to_device(v, device) for k, v in inputs.items()},
            to_device(target, device),
            marks=marks,
            extra={"target_marks": target_marks},
            n_tokens=int(real.sum()) + target.numel(),
        )

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        x = batch.inputs
        logits = model(x["idx"], x["tgt"], src_padding=x.get("src_padding"))[0]
        return LossOut(*token_loss(logits, batch.targets, label_smoothing))

    def describe(self, batch: Batch, source, decode) -> list[dict]:
        return describe_seq2seq(batch, decode)
