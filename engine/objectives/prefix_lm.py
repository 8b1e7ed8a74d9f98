"""Prefix language modelling (UniLM, T5's prefix LM): a decoder reads the first part of each window with
attention in both directions, then predicts the rest token by token.

Per sequence a prefix of P tokens (objective.prefix_fraction of the block, or, at 0, uniform from 1 to T - 1)
gets a full attention block; every later position sees the whole prefix and the positions before it. The
positions inside the prefix but its last see the token they would predict, so they carry no loss: the loss is
on the tokens after the prefix, predicted from position P - 1 on. GPT.forward takes the (B, T, T) mask.
"""

from __future__ import annotations

import torch

from engine.config import ConfigError
from engine.objectives.base import IGNORE, Batch, LossOut, Objective
from engine.objectives.catalog import objective_info
from engine.objectives.causal_lm import next_token_windows
from engine.objectives.losses import to_device, token_loss


def prefix_mask(prefix: torch.Tensor, T: int) -> torch.Tensor:
    """(B, T, T) bool, True where query i may see key j: j <= i, or j inside its sequence's prefix."""
    ar = torch.arange(T)
    causal = ar[:, None] >= ar[None, :]  # (T, T)
    return causal[None] | (ar[None, None, :] < prefix[:, None, None])


class PrefixLM(Objective):
    info = objective_info("prefix_lm")

    def check(self, source) -> None:
        super().check(source)
        if self.cfg.model.block_size < 2:
            raise ConfigError("Prefix language modelling needs a context of at least 2 tokens", "model.block_size")

    def prefix_lengths(self, batch_size: int, T: int, generator: torch.Generator) -> torch.Tensor:
        f = self.options.prefix_fraction
        if f > 0:
            return torch.full((batch_size,), min(T - 1, max(1, round(f * T))), dtype=torch.int64)
        return torch.randint(1, T, (batch_size,), generator=generator)

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        T = self.cfg.model.block_size
        x, y = next_token_windows(source, T, batch_size, generator)
        prefix = self.prefix_lengths(batch_size, T, generator)
        y[torch.arange(T)[None, :] < (prefix[:, None] - 1)] = IGNORE
        marks = [["prefix"] * p + ["kept"] * (T - p) for p in prefix.tolist()]
        return Batch(
            inputs={"idx": to_device(x, device), "attn_mask": to_device(prefix_mask(prefix, T), device)},
            targets=to_device(y, device),
            marks=marks,
            extra={"layout": "next", "prefix": prefix},
            n_tokens=batch_size * T,
        )

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        logits = model(**batch.inputs)[0]
        loss, stats = token_loss(logits, batch.targets, label_smoothing)
        return LossOut(loss, stats)
