"""Causal language modelling (GPT): predict each token from the ones before it.

The batch is today's exactly: random windows of block_size + 1 tokens drawn as engine.training_data.get_batch
draws them (the same generator calls), inputs the first block_size tokens and targets the next ones, and the
loss the same cross-entropy GPT.forward computes, so runs, resumes and benchmarks keep their numbers.
"""

from __future__ import annotations

import torch

from engine.objectives.base import Batch, LossOut, Objective
from engine.objectives.catalog import objective_info
from engine.objectives.losses import to_device, token_loss


def next_token_windows(source, block_size: int, batch_size: int, generator: torch.Generator):
    """(x, y): windows of block_size + 1 tokens split into inputs and next-token targets, each (B, T), CPU."""
    w = source.windows(block_size + 1, batch_size, generator)
    return w[:, :-1].clone(), w[:, 1:].clone()  # copies: a view of one row would share w with the other


class CausalLM(Objective):
    info = objective_info("causal_lm")

    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        T = self.cfg.model.block_size
        x, y = next_token_windows(source, T, batch_size, generator)
        return Batch(
            inputs={"idx": to_device(x, device)},
            targets=to_device(y, device),
            marks=[["kept"] * T for _ in range(batch_size)],
            extra={"layout": "next"},
            n_tokens=batch_size * T,
        )

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        logits = model(**batch.inputs)[0]
        loss, stats = token_loss(logits, batch.targets, label_smoothing)
        return LossOut(loss, stats)
