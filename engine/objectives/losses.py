"""What the objectives share about losses and tensors: token cross-entropy with the statistics behind perplexity
and accuracy, a two-way (pair) loss, and the last step of every batch builder (the CPU tensors to the device)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.objectives.base import IGNORE


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """`t` on `device`; through pinned memory on CUDA, so the copy overlaps the GPU's work (as get_batch)."""
    device = torch.device(device)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def token_loss(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0, accuracy: str = "accuracy"
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The mean cross-entropy over the positions whose target is not IGNORE (the same call GPT.forward makes,
    so causal LM keeps today's numbers), and the stats "lm_loss" (summed, without label smoothing: perplexity
    is exp(sum / count)) and `accuracy` (correct, total)."""
    flat = logits.reshape(-1, logits.size(-1)).float()
    tgt = targets.reshape(-1)
    valid = tgt != IGNORE
    count = valid.sum()
    loss = F.cross_entropy(flat, tgt, ignore_index=IGNORE, label_smoothing=label_smoothing)
    if label_smoothing:
        lm_sum = F.cross_entropy(flat.detach(), tgt, ignore_index=IGNORE, reduction="sum")
    else:
        lm_sum = loss.detach() * count
    correct = ((flat.detach().argmax(-1) == tgt) & valid).sum()
    return loss, {"lm_loss": (lm_sum, count), accuracy: (correct, count)}


def pair_loss(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Cross-entropy of the (B, 2) pair logits against the (B,) labels, and "pair_accuracy" (correct, total)."""
    logits = logits.float()
    loss = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    correct = (logits.detach().argmax(-1) == labels).sum()
    return loss, {"pair_accuracy": (correct, torch.tensor(labels.numel(), device=labels.device))}
