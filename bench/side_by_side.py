"""What the benchmarks share: timing two or more models on the same batches, side by side in one run, and the
machine facts written beside the results.

The sides take their steps in alternating blocks, so load that comes and goes on the machine hits every side
alike; the first steps of each side warm up allocators and kernels and are not counted.
"""

from __future__ import annotations

import platform
import time
from typing import Callable

import torch

BLOCK = 10  # steps a side takes before the next side's turn
WARMUP = 5  # first steps not timed


def time_steps(sides: dict[str, tuple[torch.nn.Module, Callable]], optimizers: dict, batches: list) -> dict[str, float]:
    """Seconds each side spent on its optimizer steps over `batches` (the loss of side k on batch b is
    sides[k][1](b)), warm-up steps excluded."""
    seconds = dict.fromkeys(sides, 0.0)
    steps = len(batches)
    for start in range(0, steps, BLOCK):
        for side, (model, loss_of) in sides.items():
            model.train()
            for i in range(start, min(start + BLOCK, steps)):
                t0 = time.perf_counter()
                loss_of(batches[i]).backward()
                optimizers[side].step()
                optimizers[side].zero_grad(set_to_none=True)
                if i >= WARMUP:
                    seconds[side] += time.perf_counter() - t0
    return seconds


def timed_tokens(batches: list) -> int:
    """The tokens of the timed steps (the batches after the warm-up)."""
    return sum(b.n_tokens for b in batches[WARMUP:])


def machine_info(threads: int) -> dict:
    return {"machine": platform.processor() or platform.machine(), "threads": threads, "torch": torch.__version__}
