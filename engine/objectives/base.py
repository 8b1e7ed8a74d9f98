"""How an objective fits the training loop: a TokenSource to draw from, a Batch it builds, a loss it computes.

The loop (engine/train.py) asks the run's objective (registry.get(cfg)) for a Batch per micro-step and for the
loss of the model on it; evaluation averages the loss and the objective's statistics over fixed batches. The
sample-batch view and `studio-engine sample-batch` show a Batch through `describe`.

Rules every objective keeps:
- all randomness comes from the `generator` passed in (a CPU torch.Generator that is part of the checkpoint), so
  a resumed run draws the same batches and the same corruption it would have drawn without the pause;
- positions without a loss carry target -1 (IGNORE); the loss is the mean over the others;
- a position never sees the token it predicts (the no-leakage tests change a target token and check that the
  logits that predict it do not move);
- batch() builds on the CPU and moves the tensors to `device` last, with pinned memory on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import torch

from engine.objectives.catalog import ObjectiveInfo

if TYPE_CHECKING:
    from engine.config import RunConfig
    from engine.objectives.text_source import TokenSource

IGNORE = -1  # the target of a position that carries no loss


@dataclass
class Batch:
    """One batch as the model takes it.

    inputs   keyword arguments of the model's forward (engine/model.py): "idx" always; "segments",
             "attn_mask", "key_padding" for encoders and prefix/permutation LM; "tgt" and "src_padding" for
             encoder-decoders
    targets  (B, T_out) int64, IGNORE where there is no loss
    labels   (B,) int64 for pair tasks (NSP: 1 = B follows A; SOP: 1 = in order), else None
    marks    for describe(): per sequence, per input position, what the corruption did ("kept", "masked",
             "random", "unchanged", "sentinel", "deleted", "moved", "prefix", "prompt", "special", "pad"), CPU
             lists
    n_tokens tokens the model read (input and target side), for tokens/s
    """

    inputs: dict[str, torch.Tensor]
    targets: torch.Tensor
    labels: torch.Tensor | None = None
    marks: list[list[str]] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    n_tokens: int = 0


@dataclass
class LossOut:
    """The loss to minimise and the statistics behind the objective's metrics, as (sum, count) tensors that
    evaluation adds up over its batches: "lm_loss" (summed token losses, so perplexity = exp(sum / count)),
    "accuracy" / "masked_accuracy" / "pair_accuracy" (correct, total). Tensors stay on the device (no .item())."""

    loss: torch.Tensor
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    # What the curves show as this batch's loss when the minimised one means nothing read on its own (REINFORCE's
    # surrogate hovers around 0 whatever the model writes): None shows `loss`.
    shown: torch.Tensor | None = None

    @property
    def reported(self) -> torch.Tensor:
        return self.loss if self.shown is None else self.shown


class Objective:
    """One pre-training objective. Subclasses set `info` (their catalog entry) and implement batch and loss."""

    info: ObjectiveInfo

    def __init__(self, cfg: "RunConfig"):
        self.cfg = cfg
        self.options = cfg.objective

    def check(self, source: "TokenSource") -> None:
        """ConfigError (or TokenizerError) before training when the vocabulary lacks a special token this
        objective needs, or the context is too short for it; the message names the missing tokens and the fix."""
        from engine.objectives.text_source import require_specials

        require_specials(self.info, source)

    def attach(self, ws, device) -> None:
        """Load what the loss needs besides the model before training starts (distillation's teacher)."""

    def read_dataset(self, ws, dataset_id, tok, spec) -> None:
        """Read what the objective draws from the dataset itself rather than from the token stream (the labelled
        texts of classification), with the vocabulary `tok` (its spec dict). attach() does it for a run; the
        sample-batch view calls it with the vocabulary it shows."""

    def batch(self, source: "TokenSource", batch_size: int, generator: torch.Generator, device) -> Batch:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """What the objective itself carries from step to step (REINFORCE's moving-average baseline), as plain
        JSON values for the checkpoint, so a resumed run goes on exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Take back what state_dict gave (an older checkpoint gives {})."""

    def eval_extras(self, split: str) -> dict:
        """Besides the averaged statistics, what an evaluation of `split` records under "<split>_<key>" (REINFORCE:
        the last evaluation batch's samples with their rewards)."""
        return {}

    def eval_batches(
        self, source: "TokenSource", batch_size: int, eval_iters: int, generator: torch.Generator, device
    ) -> Iterator[Batch]:
        """The batches an evaluation averages over: eval_iters drawn from `generator` (fixed by the caller, so
        every evaluation reads the same ones)."""
        for _ in range(eval_iters):
            yield self.batch(source, batch_size, generator, device)

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        raise NotImplementedError

    def describe(self, batch: Batch, source: "TokenSource", decode) -> list[dict]:
        """The batch as text for people (sample-batch view, CLI): per sequence {"input": [span], "target":
        [span] | None, "label": str | None}, a span {"text", "mark", "loss": bool, "order": int | None};
        `decode(id) -> str` reads one token. The default reads inputs["idx"], marks and targets."""
        from engine.objectives.describe import describe_batch

        return describe_batch(self, batch, source, decode)


def decoder_start_id(specials: dict[str, int]) -> int:
    """The token an encoder-decoder's decoder starts from (training shifts targets right behind it; generation
    begins with it): bos, else pad, else eos (T5 starts from pad), else 0."""
    for role in ("bos", "pad", "eos"):
        if role in specials:
            return specials[role]
    return 0
