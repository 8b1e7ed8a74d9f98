"""The optimizer and the learning-rate schedule of a run (train.optimizer, train.lr_schedule).

Optimizers (every one decays matrices and embeddings only; biases and norm weights are left alone):
    adamw   AdamW, weight decay decoupled from the gradient (Loshchilov & Hutter): what GPT-2 and nanoGPT use,
            and what BERT's "Adam with the weight decay fix" is. Built exactly as GPT.configure_optimizer does.
    adam    Adam as Kingma & Ba wrote it: weight decay, if any, is an L2 penalty added to the gradient, so it
            is scaled by the adaptive step like the gradient is. The original Transformer used it with no decay
            (set train.weight_decay 0); for BERT's recipe choose adamw.
    sgd     SGD with train.momentum (0: plain SGD) and optionally Nesterov momentum; weight decay is L2.

Schedules (step = optimizer steps done, 0-based; warm-up is the same linear ramp for all but inverse_sqrt):
    cosine        warm-up, cosine decay to min_lr at lr_decay_iters, then min_lr (nanoGPT)
    linear        warm-up, linear decay to min_lr at lr_decay_iters, then min_lr (BERT)
    constant      warm-up, then learning_rate
    inverse_sqrt  the original Transformer's: learning_rate * min((s+1)/w, sqrt(w/(s+1))), w = max(1, warmup):
                  a linear ramp to learning_rate at step w, then 1/sqrt(step); min_lr is not used
"""

from __future__ import annotations

import math

import torch

from engine.config import TrainConfig


def make_optimizer(model: torch.nn.Module, tc: TrainConfig, device_type: str) -> torch.optim.Optimizer:
    """The optimizer train.optimizer names, over `model`'s parameters in two groups (decayed, not decayed)."""
    params = [p for p in model.parameters() if p.requires_grad]  # shared tensors appear once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": tc.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    betas = (tc.beta1, tc.beta2)
    # The fused CUDA kernels update all parameters in one launch (AdamW and Adam have had them since torch 2.0).
    fused = True if device_type == "cuda" else None
    if tc.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=tc.learning_rate, betas=betas, fused=fused)
    if tc.optimizer == "adam":
        return torch.optim.Adam(groups, lr=tc.learning_rate, betas=betas, fused=fused)
    if tc.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=tc.learning_rate, momentum=tc.momentum, nesterov=tc.nesterov)
    raise ValueError(f"unknown optimizer {tc.optimizer!r}")  # RunConfig.validate names the choices first


def lr_at(step: int, tc: TrainConfig) -> float:
    """The learning rate of optimizer step `step` (0-based) under train.lr_schedule."""
    if tc.lr_schedule == "inverse_sqrt":
        return inverse_sqrt_lr(step, tc)
    if step < tc.warmup_iters:
        return tc.learning_rate * (step + 1) / (tc.warmup_iters + 1)  # starts small, never at 0
    if tc.lr_schedule == "constant":
        return tc.learning_rate
    if step > tc.lr_decay_iters or tc.lr_decay_iters <= tc.warmup_iters:
        return tc.min_lr
    ratio = (step - tc.warmup_iters) / (tc.lr_decay_iters - tc.warmup_iters)  # 0 after warm-up, 1 at the end
    if tc.lr_schedule == "linear":
        coeff = 1.0 - ratio
    else:
        coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return tc.min_lr + coeff * (tc.learning_rate - tc.min_lr)


def inverse_sqrt_lr(step: int, tc: TrainConfig) -> float:
    """Vaswani et al. 2017, eq. 3, with the peak d_model^-0.5 * warmup^-0.5 given as train.learning_rate."""
    warmup = max(1, tc.warmup_iters)
    s = step + 1
    return tc.learning_rate * min(s / warmup, math.sqrt(warmup / s))
