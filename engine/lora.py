"""LoRA (Hu et al. 2021): a frozen linear layer W plus a trained low-rank update, y = x W^T + (alpha / r) x A^T B^T.

A (r x in) starts small and random and B (out x r) at zero, so an adapted model starts as exactly the model it
adapts. The adapted layer keeps W and its bias under their own names (a checkpoint's base weights keep their keys)
and adds `lora_A` / `lora_B`; merging folds the update into W for generation, where the extra matmuls would only
cost time. engine/finetune.py decides which layers are adapted and freezes the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

LORA_KEYS = ("lora_A", "lora_B")


class LoRALinear(nn.Linear):
    """An nn.Linear whose weight and bias are frozen and whose output adds the scaled low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight  # the same Parameters: nothing is copied, the base model's tensors stay
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.rank, self.scale = rank, alpha / rank
        dev, dtype = base.weight.device, base.weight.dtype
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, device=dev, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, device=dev, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear initialises its own weight
        self.lora_dropout = nn.Dropout(dropout)
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        if self.merged:
            return out
        return out + F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B) * self.scale

    def effective_weight(self) -> torch.Tensor:
        """W + (alpha / r) B A: the weight this layer applies (for callers that slice the weight themselves)."""
        if self.merged:
            return self.weight
        return self.weight + (self.lora_B @ self.lora_A) * self.scale

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the weight (once); the layer then costs what the plain layer costs."""
        if not self.merged:
            self.weight += (self.lora_B @ self.lora_A) * self.scale
            self.merged = True

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, rank={self.rank}, scale={self.scale:g}"


def linear_weight(layer: nn.Linear) -> torch.Tensor:
    """The weight a linear layer applies, LoRA's update included."""
    return layer.effective_weight() if isinstance(layer, LoRALinear) else layer.weight


def adapt(
    model: nn.Module, wanted: Callable[[nn.Module, str], bool], rank: int, alpha: float, dropout: float
) -> list[str]:
    """Replace each nn.Linear child for which wanted(parent, attribute name) holds with a LoRALinear over it;
    the qualified names of the layers adapted, in model order."""
    adapted = []
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and wanted(parent, name):
                setattr(parent, name, LoRALinear(child, rank, alpha, dropout))
                adapted.append(f"{parent_name}.{name}" if parent_name else name)
    return adapted


def merge_all(model: nn.Module) -> int:
    """Merge every LoRA layer of `model`; how many there were."""
    layers = [m for m in model.modules() if isinstance(m, LoRALinear)]
    for layer in layers:
        layer.merge()
    return len(layers)


def merged_state(state: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """A checkpoint state dict of an adapted model as the plain model's: each layer's update folded into its
    weight, the LoRA tensors dropped (a run that starts from a LoRA run starts from what that run generates)."""
    out = {k: v for k, v in state.items() if not k.endswith(LORA_KEYS)}
    for key in state:
        if key.endswith(".lora_A"):
            prefix = key[: -len("lora_A")]
            a, b = state[key], state[prefix + "lora_B"]
            out[prefix + "weight"] = state[prefix + "weight"] + (b @ a) * scale
    return out
