"""The training-health guard: a loss or gradient that is no longer a number, or a loss far above its recent
level, is caught at the step it is logged, with advice fitted to the run's settings.

HealthGuard watches the logged training rows. A spike is a loss above SPIKE_FACTOR times the median of the last
WINDOW logged losses and more than SPIKE_MARGIN nats above it, once MIN_ROWS were seen, or above START_FACTOR
times the first logged loss (a run that diverged from its first steps has a high median too); rewards (REINFORCE's
curve can be negative) get only the non-finite checks. With float16's loss scaling, infinite gradients are the
scaler's business (it skips those steps), so only the loss is checked then.

`advise` says what probably happened and which settings to change, in the order that most often helps: float16
overflowing (use bfloat16 or float32), clipping off (turn it on), an early divergence with a short warm-up
(lengthen it), else a learning rate three times smaller. What train.on_divergence does with it is the loop's
(engine/train.py): rollback (the default) goes back to the last good checkpoint and waits for the user (the CLI
applies the advice itself, at most MAX_ROLLBACKS times), stop ends the run there, ignore warns about spikes and
fails on a non-finite loss as before.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

WINDOW = 50
MIN_ROWS = 10
SPIKE_FACTOR = 3.0
SPIKE_MARGIN = 1.0
START_FACTOR = 2.0  # twice the loss it started from: worse than the untrained model, whatever came before
MAX_ROLLBACKS = 3
POLICIES = ("rollback", "stop", "ignore")


@dataclass(frozen=True)
class Verdict:
    """What went wrong at `step`: "loss" or "gradients" (not finite) or "spike" (loss far above `median`)."""

    what: str
    step: int
    loss: float
    median: float | None = None

    def words(self) -> str:
        if self.what == "gradients":
            return f"the gradients became {_number(math.inf)} at step {self.step:,}"
        if self.what == "loss":
            return f"the loss became {_number(self.loss)} at step {self.step:,}"
        return f"the loss jumped to {_number(self.loss)} at step {self.step:,} (about {self.median:.2f} before)"


@dataclass
class Advice:
    """The plain-words diagnosis and the settings to change ({config key: new value})."""

    text: str
    changes: dict = field(default_factory=dict)
    change_words: str = ""

    def as_dict(self, rolled_back_to: int | None) -> dict:
        return {
            "text": self.text,
            "changes": dict(self.changes),
            "change_words": self.change_words,
            "rolled_back_to": rolled_back_to,
        }


def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN (not a number)"
    if math.isinf(x):
        return "infinite"
    return f"{x:.3g}"


class HealthGuard:
    def __init__(self, *, spikes: bool = True, check_grads: bool = True):
        self.spikes = spikes
        self.check_grads = check_grads
        self.recent: list[tuple[int, float]] = []
        self.start: float | None = None  # the first logged loss: an untrained model's, for training from scratch

    def observe(self, step: int, loss: float, grad_norm: float, logged: bool = True) -> Verdict | None:
        """A verdict on one step's loss and gradient norm; `logged` steps also count towards the median and are
        checked for spikes (a checkpoint step between log lines only for numbers that are not finite)."""
        if not math.isfinite(loss):
            return Verdict("loss", step, loss, self.median())
        if self.check_grads and not math.isfinite(grad_norm):
            return Verdict("gradients", step, loss, self.median())
        if not logged:
            return None
        if self.start is None:
            self.start = loss
        med = self.median()
        if self.spikes:
            for ref, factor in ((med, SPIKE_FACTOR), (self.start, START_FACTOR)):
                if ref is not None and ref > 0 and loss > factor * ref and loss - ref > SPIKE_MARGIN:
                    return Verdict("spike", step, loss, ref)
        self.recent = [*self.recent[-(WINDOW - 1) :], (step, loss)]
        return None

    def median(self) -> float | None:
        if len(self.recent) < MIN_ROWS:
            return None
        return statistics.median(loss for _, loss in self.recent)

    def forget_after(self, step: int) -> None:
        """After a rollback to `step`: the losses logged past it never happened."""
        self.recent = [(s, x) for s, x in self.recent if s <= step]


def advise(tc, verdict: Verdict, attempt: int = 1, cuda_bf16: bool = False) -> Advice:
    """What probably happened and what to change, fitted to the TrainConfig `tc`; `attempt` counts the rollbacks
    so far (a second one also lowers the learning rate)."""
    why, changes = _primary(tc, verdict, cuda_bf16)
    if not changes or attempt > 1:
        lr = _round(tc.learning_rate / 3)
        changes["train.learning_rate"] = lr
        changes["train.min_lr"] = min(tc.min_lr, lr)
        why = why or "the steps are too large for this model and data"
    words = "; ".join(_change_word(tc, key, value) for key, value in changes.items() if key != "train.min_lr")
    text = f"{verdict.words()[0].upper()}{verdict.words()[1:]}. Probably {why}. Suggested: {words}."
    return Advice(text, changes, words)


def _primary(tc, verdict: Verdict, cuda_bf16: bool) -> tuple[str, dict]:
    if tc.dtype == "float16":
        better = "bfloat16" if cuda_bf16 else "float32"
        return "float16 overflowed (its largest number is 65,504)", {"train.dtype": better}
    if tc.grad_clip <= 0:
        return "one unusual batch threw the weights far, since Gradient clipping is off", {"train.grad_clip": 1.0}
    if verdict.step <= max(1000, 5 * tc.warmup_iters) and tc.warmup_iters < 200:
        warmup = min(max(200, 2 * tc.warmup_iters), max(1, tc.max_iters // 5))
        if warmup > tc.warmup_iters:
            return (
                f"the full learning rate came before the weights settled (a warm-up of {tc.warmup_iters:,} steps)",
                {"train.warmup_iters": warmup},
            )
    return "", {}


def _round(x: float) -> float:
    return float(f"{x:.2g}")


def _change_word(tc, key: str, value) -> str:
    from engine.config import field_label

    old = getattr(tc, key.split(".", 1)[1])
    return f"{field_label(key)} {_value(old)} → {_value(value)} ({key})"


def _value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)


def applied(cfg_dict: dict, changes: dict) -> dict:
    """The run's config (a dict) with the advice's changes."""
    out = {**cfg_dict, "train": dict(cfg_dict.get("train") or {})}
    for key, value in changes.items():
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = value
    return out
