"""The training windows: a split's token ids read through a memmap, and random batches of windows from them.

The generator that picks the windows is part of a run's checkpoint (generator_state / set_generator_state), so
a resumed run draws the same windows it would have drawn without the pause.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import torch


class TokenData:
    """One split's token ids, read from its .bin file through a memmap."""

    def __init__(self, path, dtype: str):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        size = self.path.stat().st_size if self.path.is_file() else 0
        self.n_tokens = size // self.dtype.itemsize

    def array(self) -> np.ndarray:
        if self.n_tokens == 0:
            return np.zeros(0, dtype=self.dtype)  # np.memmap refuses an empty file
        # A fresh memmap per batch, as nanoGPT does: a long-lived one lets the process's memory grow.
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.n_tokens,))


def get_batch(
    data: TokenData, block_size: int, batch_size: int, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_size random windows of block_size + 1 tokens: inputs x and next-token targets y, each (B, T)."""
    arr = data.array()
    ix = torch.randint(len(arr) - block_size, (batch_size,), generator=generator).tolist()
    x = torch.from_numpy(np.stack([arr[i : i + block_size] for i in ix]).astype(np.int64))  # (B, T)
    y = torch.from_numpy(np.stack([arr[i + 1 : i + 1 + block_size] for i in ix]).astype(np.int64))  # (B, T)
    if device.type == "cuda":
        # Pinned memory lets the copy overlap with the GPU's work on the previous batch.
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def generator_state(g: torch.Generator) -> str:
    return base64.b64encode(g.get_state().numpy().tobytes()).decode("ascii")


def set_generator_state(g: torch.Generator, s: str) -> None:
    g.set_state(torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8))
