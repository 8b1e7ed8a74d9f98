"""A classification head on any architecture (model.n_classes > 0): the model reads a whole text, one vector is
pooled from its output, and a linear layer turns it into one logit per class.

Where the vector comes from (objective.pooling, resolved by `resolve_pooling`):
- "first": the first token; on an encoder through BERT's pooler (tanh of a dense layer), which NSP / SOP
  pre-training has already trained, so [CLS] at the front is the natural choice there;
- "last": the last real token, the only one a decoder's causal attention lets see the whole text (GPT's choice);
- "mean": the mean over the real tokens (any architecture; the encoder side of an encoder-decoder).

The head is made after the rest of the model, so a seed gives the other weights it always gave, and a parent run
without a head loads into a child that has one (engine/finetune.py leaves the head new).
"""

from __future__ import annotations

import torch
from torch import nn

HEAD = "classifier"  # the head's name in the state dict (classifier.weight, classifier.bias)


def add_classifier(model: nn.Module, n_classes: int) -> None:
    """Give `model` a fresh head of n_classes outputs (normal 0.02, zero bias, as the other linear layers)."""
    head = nn.Linear(model.cfg.n_embd, n_classes)
    nn.init.normal_(head.weight, mean=0.0, std=0.02)
    nn.init.zeros_(head.bias)
    model.add_module(HEAD, head)


def resolve_pooling(pooling: str, arch: str, has_cls: bool) -> str:
    """objective.pooling with "auto" decided: [CLS] (first) on an encoder whose vocabulary has it, the last token on
    a decoder, else the mean."""
    if pooling != "auto":
        return pooling
    if arch == "encoder" and has_cls:
        return "first"
    return "last" if arch == "decoder" else "mean"


def hidden_states(model: nn.Module, idx: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
    """(B, T, E): the model's output before any LM head (an encoder-decoder's encoder output)."""
    arch = model.cfg.arch
    if arch == "encoder":
        return model.encode(idx, key_padding=key_padding)
    if arch == "encoder-decoder":
        return model.encode(idx, src_padding=key_padding)
    return model.hidden_states(idx, key_padding=key_padding)


def pooled(model: nn.Module, hidden: torch.Tensor, real: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, E) from hidden (B, T, E); real (B, T) bool marks the tokens that are not padding (right-padded)."""
    if pooling == "first":
        return model.pool(hidden) if model.cfg.arch == "encoder" else hidden[:, 0]
    if pooling == "last":
        last = real.long().sum(1).clamp(min=1) - 1  # (B,)
        return hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    weights = real.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def class_logits(model: nn.Module, idx: torch.Tensor, real: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, n_classes) logits of right-padded texts idx (B, T); pooling already resolved."""
    if not hasattr(model, HEAD):
        raise ValueError("this model has no classification head (model.n_classes is 0)")
    hidden = hidden_states(model, idx, real)
    return getattr(model, HEAD)(pooled(model, hidden, real, pooling))
