"""What a training tells its caller while it prepares and runs: one frozen dataclass per kind of event.

engine/train.py hands them to `on_event(event)`; the engine worker turns them into protocol messages
(engine/protocol.py) and the CLI into lines of text, each matching on the class, never on a string.

A callback of the older form `on_event(kind, payload)` still works (`as_handler`): it gets the event's `kind`
and `payload()`, the plain dict these events were before they had types. Standard library only.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Literal, Union

from engine.protocol import RunOutcome, RunState


class TrainingEvent:
    """The base of every event: `kind` names it, `payload()` gives its fields as a dict."""

    __slots__ = ()
    kind: ClassVar[str] = ""

    def payload(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Status(TrainingEvent):
    """The run's state changed: starting, training, paused, stopping, then finished, stopped or failed."""

    kind: ClassVar[str] = "status"
    state: RunState | RunOutcome
    step: int
    max_iters: int
    message: str = ""
    device: str = ""
    # A paused divergence's advice (engine/health.py Advice.as_dict): text, changes, change_words, rolled_back_to.
    advice: dict | None = None


@dataclass(frozen=True, slots=True)
class Metrics(TrainingEvent):
    """A logged optimizer step (every train.log_interval steps, the first and the last)."""

    kind: ClassVar[str] = "metrics"
    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_sec: float
    elapsed_s: float
    eta_s: float | None = None


@dataclass(frozen=True, slots=True)
class Evaluation(TrainingEvent):
    """The mean losses on fixed batches of the training and the validation text, and the objective's metrics on
    both: {"train_perplexity", "val_perplexity", "val_masked_accuracy", ...} ("<split>_<METRIC_LABELS key>" of
    engine/objectives/catalog.py; accuracies as fractions 0..1)."""

    kind: ClassVar[str] = "eval"
    step: int
    train_loss: float
    val_loss: float
    elapsed_s: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Progress(TrainingEvent):
    """Preparing (a vocabulary trained for the run): `fraction` from 0 to 1, or -1 when unknown."""

    kind: ClassVar[str] = "progress"
    fraction: float
    message: str = ""


@dataclass(frozen=True, slots=True)
class CheckpointSaved(TrainingEvent):
    """The resumable checkpoint `latest` was written."""

    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str


@dataclass(frozen=True, slots=True)
class AttentionSnapshot(TrainingEvent):
    """The probe texts' attention at `step` (engine/attention_probes.py): `meta` and the float16 `blobs`, as
    stored at `path`; `seconds` it took."""

    kind: ClassVar[str] = "attention"
    step: int
    meta: dict
    blobs: list
    path: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Notice(TrainingEvent):
    """A line for the user: "info", or "warning" (the studio's status bar, the CLI's stderr)."""

    level: Literal["info", "warning"]
    message: str

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self.level

    def payload(self) -> dict[str, Any]:
        return {"message": self.message}


Event = Union[Status, Metrics, Evaluation, Progress, CheckpointSaved, AttentionSnapshot, Notice]
EventFn = Callable[[Event], None]


def as_handler(on_event: Callable | None) -> EventFn:
    """`on_event` as a one-argument handler; None ignores every event.

    A callable that takes two positional arguments is of the older form `(kind, payload dict)` (the tests and
    bench/ still pass such lambdas) and is called that way.
    """
    if on_event is None:
        return _ignore
    if not _takes_two(on_event):
        return on_event
    legacy = on_event
    return lambda event: legacy(event.kind, event.payload())


def _ignore(event: Event) -> None:
    pass


def _takes_two(fn: Callable) -> bool:
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        return False
    except ValueError:  # no signature to read (some builtins): the one-argument form
        return False
    return True
