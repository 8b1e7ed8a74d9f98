"""Knowledge distillation (Hinton et al. 2015): a student decoder learns each next token from a frozen teacher's
distribution as well as from the text.

The batch is causal LM's. The loss is alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy,
both distributions softened by the temperature T (T^2 keeps the soft loss's gradients at the scale of the hard
one's as T changes, as the paper notes). The "kl" metric is the KL at temperature 1, per token: how far the
student's real guesses are from the teacher's. The teacher is the run objective.teacher_run names, loaded with
its merged weights (engine.run_generation.load_run) when training starts; prepare_run has already checked that
it reads text with the student's vocabulary and a context at least as long.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from engine.objectives.base import IGNORE, Batch, LossOut
from engine.objectives.catalog import objective_info
from engine.objectives.causal_lm import CausalLM
from engine.objectives.losses import token_loss


class Distillation(CausalLM):
    info = objective_info("distillation")
    teacher = None

    def attach(self, ws, device) -> None:
        """Load the teacher (frozen, in eval mode) on the training device."""
        from engine.run_generation import load_run

        self.teacher = load_run(ws, self.options.teacher_run, device).model
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        if self.teacher is None:
            raise RuntimeError("the teacher is not loaded: call attach(ws, device) first")
        logits = model(**batch.inputs)[0]
        hard, stats = token_loss(logits, batch.targets, label_smoothing)
        with torch.no_grad():
            teacher_logits = self.teacher(**batch.inputs)[0].float()
        valid = batch.targets != IGNORE
        student, teacher = logits.float()[valid], teacher_logits[valid]
        t, alpha = self.options.distill_temperature, self.options.distill_alpha
        soft = F.kl_div(
            F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), log_target=True, reduction="batchmean"
        )
        with torch.no_grad():
            kl_sum = F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="sum")
        stats["kl"] = (kl_sum, valid.sum())
        return LossOut(alpha * t * t * soft + (1 - alpha) * hard, stats)
