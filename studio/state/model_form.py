"""What the Model panel's form means, without Qt: its fields (studio/state/config_fields.py), the preset it
matches, the estimates it shows, the fields an error is about or that do not apply, the objective that follows
the architecture, and the undo of a preset change (the diagram is studio/state/architecture_diagram.py).

The panel (studio/panels/architecture.py) turns these into widgets; everything here is tested without a window.
The values each field offers are engine.config's; only the words for them are here.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import PRESETS, ConfigError, RunConfig, flops_per_token, memory_estimate, param_count, preset
from engine.objectives.catalog import OBJECTIVE_CATALOG, compatible_objectives, objective_info

# The form's fields live in studio/state/config_fields.py; panels and tests import them from here too.
from studio.state.config_fields import (  # noqa: F401
    ADVANCED_FIELDS,
    ALL_FIELDS,
    ARCH_EXPLAINED,
    ARCH_LABELS,
    MODEL_FIELDS,
    TRAIN_FIELDS,
    FieldKey,
    FieldSpec,
)

ASSUMED_CHAR_VOCAB = 65  # tinyshakespeare's character count: a fair guess before a tokenizer exists
CUSTOM = "custom"

# -------------------------------------------------------------------------------------------------- presets


def matching_preset(cfg: RunConfig) -> str:
    """The preset whose model and training sections equal cfg's, or CUSTOM."""
    for name in PRESETS:
        ref = preset(name)
        if ref.model == cfg.model and ref.train == cfg.train:
            return name
    return CUSTOM


def preset_description(name: str) -> str:
    return "Your own settings." if name == CUSTOM else PRESETS[name]["description"]


class PresetUndo:
    """The configs before each preset change, newest last: choosing a preset replaces the model and schedule,
    and Undo goes back one change, keeping the dataset and tokenizer chosen since."""

    def __init__(self):
        self._before: list[RunConfig] = []
        self.note = ""  # what the last preset did to the objective, in words ("" when nothing)

    def __bool__(self) -> bool:
        return bool(self._before)

    def apply(self, name: str, current: RunConfig) -> RunConfig:
        """The config preset `name` gives, keeping `current`'s dataset and a chosen tokenizer. A preset that
        names an objective (a recipe: BERT, T5) brings it; otherwise `current`'s objective stays, switched to one
        that trains the preset's model when it cannot."""
        before = current.copy()
        cfg = preset(name)
        cfg.data = before.data
        self.note = ""
        if "objective" in PRESETS[name]:
            if cfg.objective.name != before.objective.name:
                self.note = f"The {name} preset trains {objective_info(cfg.objective.name).label}."
        else:
            cfg.objective = before.objective
            self.note = fit_objective(cfg, before, {})
        if before.tokenizer.tokenizer is not None:
            cfg.tokenizer = before.tokenizer  # a tokenizer the user picked beats the preset's kind
        self._before.append(before)
        return cfg

    def undo(self, current: RunConfig) -> RunConfig | None:
        """The config before the last preset change, with `current`'s dataset and chosen tokenizer; None when
        there is nothing to undo."""
        if not self._before:
            return None
        before = self._before.pop()
        before.data = current.data
        if current.tokenizer.tokenizer is not None:
            before.tokenizer = current.tokenizer
        return before


# -------------------------------------------------------------------------------------------------- editing


def changed_fields(before: dict[FieldKey, object], after: dict[FieldKey, object]) -> list[FieldKey]:
    return [k for k, v in after.items() if before.get(k) != v]


def decay_follows_steps(before: dict[FieldKey, object], changed: list[FieldKey]) -> bool:
    """The decay usually spans the whole run: it follows the training steps when the two were equal."""
    return ("train", "max_iters") in changed and before.get(("train", "lr_decay_iters")) == before.get(
        ("train", "max_iters")
    )


def config_with(base: RunConfig, values: dict[FieldKey, object]) -> RunConfig:
    """A copy of `base` with the form's values."""
    cfg = base.copy()
    for (section, name), value in values.items():
        setattr(getattr(cfg, section), name, value)
    return cfg


def error_keys(error: ConfigError) -> tuple[str, ...]:
    """Every config key an error is about ("model.n_embd", ...): its structured `fields` (engine.errors.UserError),
    never words found in its text."""
    return tuple(error.fields)


def marked_fields(error: ConfigError, changed: list[FieldKey], known) -> list[FieldKey]:
    """The fields to mark for `error`: those it names that the form has; when it names none of them, the
    fields just changed (one of them made the config impossible)."""
    named = [tuple(k.split(".", 1)) for k in error_keys(error) if "." in k]
    return [k for k in named if k in known] or [k for k in changed if k in known]


# ---------------------------------------------------------------------------------------- estimates, diagram


def vocab_for_estimates(tokenizer: dict | None, cfg: RunConfig) -> tuple[int, str]:
    """(vocabulary size, where it comes from, in words): the selected tokenizer's, else a fair guess."""
    if tokenizer and tokenizer.get("vocab_size"):
        n = int(tokenizer["vocab_size"])
        return n, f"Vocabulary: {n:,} tokens, from tokenizer “{tokenizer.get('name', tokenizer.get('id'))}”."
    if cfg.tokenizer.kind == "char":
        return ASSUMED_CHAR_VOCAB, (
            f"Vocabulary assumed: {ASSUMED_CHAR_VOCAB} characters (as in Shakespeare). "
            f"Train a tokenizer for the exact count."
        )
    return int(cfg.tokenizer.vocab_size), (
        f"Vocabulary assumed: {cfg.tokenizer.vocab_size:,} tokens, the byte-level BPE size to be trained."
    )


@dataclass(frozen=True)
class Estimates:
    """What a config costs, or why there is no estimate (`problem`: the model cannot be built)."""

    problem: str = ""
    params: int = 0
    flops_per_token: int = 0
    tokens_per_step: int = 0
    memory: dict | None = None  # engine.config.memory_estimate's parts, in bytes


def estimate(cfg: RunConfig, vocab: int) -> Estimates:
    m, t = cfg.model, cfg.train
    try:
        m.validate()
    except ConfigError as e:
        return Estimates(problem=e.message)
    return Estimates(
        params=param_count(m, vocab),
        flops_per_token=flops_per_token(m, vocab),
        tokens_per_step=t.batch_size * m.block_size * t.gradient_accumulation_steps,
        memory=memory_estimate(m, vocab, t.batch_size),
    )


# ------------------------------------------------------------------------------------ fields that do not apply


CONDITIONAL_FIELDS: frozenset[FieldKey] = frozenset(
    {
        ("model", "n_decoder_layer"),
        ("model", "n_segments"),
        ("train", "beta1"),
        ("train", "beta2"),
        ("train", "momentum"),
        ("train", "nesterov"),
        ("train", "min_lr"),
        ("train", "lr_decay_iters"),
    }
)  # every field inapplicable() may name


def inapplicable(cfg: RunConfig) -> dict[FieldKey, str]:
    """The fields the config makes meaningless, with why in a few words: the panel disables them and says so
    (the values stay, so switching back brings them back)."""
    m, t = cfg.model, cfg.train
    out: dict[FieldKey, str] = {}
    if m.arch != "encoder-decoder":
        out[("model", "n_decoder_layer")] = "encoder-decoder only"
    if m.arch != "encoder":
        out[("model", "n_segments")] = "encoder only"
    if t.optimizer == "sgd":
        out[("train", "beta1")] = out[("train", "beta2")] = "Adam, AdamW only"
    else:
        out[("train", "momentum")] = out[("train", "nesterov")] = "SGD only"
    if t.lr_schedule in ("constant", "inverse_sqrt"):
        why = "not with this schedule"
        out[("train", "min_lr")] = out[("train", "lr_decay_iters")] = why
    return out


# ------------------------------------------------------------------------- the objective follows the model


def fit_objective(cfg: RunConfig, before: RunConfig, remembered: dict[str, str]) -> str:
    """When the form's architecture (or segments) leaves the objective untrainable, switch `cfg`'s objective to
    one that trains it (the one last used on that architecture, else its natural one) and say so; "" when the
    objective still fits. `remembered` (architecture -> objective) learns the objective `before` used."""
    remembered[before.model.arch] = before.objective.name
    name = cfg.objective.name
    if _fits(name, cfg):
        return ""
    wanted = remembered.get(cfg.model.arch)
    choices = [n for n in compatible_objectives(cfg.model.arch) if _fits(n, cfg)]
    if not choices:
        return ""  # nothing trains it: validation says why
    new = wanted if wanted in choices else choices[0]
    cfg.objective.name = new
    old = objective_info(name)
    why = "needs Segments 2" if cfg.model.arch in old.archs else f"does not train {_a(cfg.model.arch)}"
    return (
        f"{old.label} {why}, so the objective is now {objective_info(new).label} (the Objective panel has the others)."
    )


def _a(arch: str) -> str:
    return f"an {arch}" if arch[:1] in "aeiou" else f"a {arch}"


def _fits(name: str, cfg: RunConfig) -> bool:
    info = OBJECTIVE_CATALOG.get(name)
    if info is None:
        return True  # an objective this studio does not know: validation names it
    return cfg.model.arch in info.archs and (not info.needs_segments or cfg.model.n_segments >= 2)
