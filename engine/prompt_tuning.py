"""Prompt tuning (train.finetune = "prompt_tuning", Lester et al. 2021): N learned vectors put before every input of
a frozen decoder, the only weights that train (with a classification head when the run has one).

The vectors live in the embedding space: they start as the embeddings of N tokens drawn from the vocabulary (the
paper's best initialisation) and go where a token's embedding goes, before the position embedding is added, so
they take positions 0..N-1 and the text N onwards. The model therefore reads N fewer text tokens at a time
(`context_size`); the objectives draw their windows that much shorter (engine/finetune.py objective_config), and
generation keeps its window to that size. The logits and the hidden states of the soft positions are dropped, so
every caller sees one output per text token, as without the prompt.
"""

from __future__ import annotations

import torch
from torch import nn

NAME = "soft_prompt"  # soft_prompt.vectors in the state dict


class SoftPrompt(nn.Module):
    def __init__(self, n: int, n_embd: int):
        super().__init__()
        self.vectors = nn.Parameter(torch.zeros(n, n_embd))

    def __len__(self) -> int:
        return self.vectors.size(0)


def add_soft_prompt(model: nn.Module, n: int) -> None:
    """Give a decoder N soft-prompt vectors, each the embedding of a random token (torch's global generator, which
    the trainer has seeded)."""
    wte = model.transformer.wte.weight
    prompt = SoftPrompt(n, wte.size(1)).to(wte.device)
    with torch.no_grad():
        prompt.vectors.copy_(wte[torch.randint(wte.size(0), (n,))])
    model.add_module(NAME, prompt)


def n_soft(model: nn.Module) -> int:
    prompt = getattr(model, NAME, None)
    return len(prompt) if prompt is not None else 0


def prepend(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The soft prompt (N, E) before every sequence of token embeddings x (B, T, E)."""
    vectors = getattr(model, NAME).vectors.to(x.dtype)
    return torch.cat([vectors.unsqueeze(0).expand(x.size(0), -1, -1), x], dim=1)


def widen_padding(key_padding: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """key_padding (B, T) with the N soft positions in front, always real."""
    if key_padding is None or not n:
        return key_padding
    return torch.cat([key_padding.new_ones((key_padding.size(0), n)), key_padding], dim=1)
