"""What the Model panel's form means, without Qt: its fields, the preset it matches, the estimates and the
diagram it shows, the fields an error is about, and the undo of a preset change.

The panel (studio/panels/architecture.py) turns these into widgets; everything here is tested without a window.
The values each field offers are engine.config's; only the words for them are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from engine.config import (
    DEVICES,
    DTYPES,
    MLPS,
    NORMS,
    POS_ENCODINGS,
    PRESETS,
    ConfigError,
    ModelConfig,
    RunConfig,
    field_label,
    flops_per_token,
    memory_estimate,
    param_count,
    preset,
)

ASSUMED_CHAR_VOCAB = 65  # tinyshakespeare's character count: a fair guess before a tokenizer exists
CUSTOM = "custom"
INT_MAX = 2_000_000_000

FieldKey = tuple[str, str]  # (section, name), e.g. ("model", "n_head")


class FieldSpec(NamedTuple):
    """One field of the form. kind: "int" (options lo, hi, step) | "float" (lo, hi, step, decimals) |
    "sci" (lo, hi) | "bool" | "choice" ((value, label), ...)."""

    section: str
    name: str
    label: str
    kind: str
    options: tuple | None
    tooltip: str

    @property
    def key(self) -> FieldKey:
        return self.section, self.name


def _field(section: str, name: str, kind: str, options: tuple | None, tooltip: str) -> FieldSpec:
    # The label is the one every message names the field by (engine.config.FIELD_LABELS).
    return FieldSpec(section, name, field_label(f"{section}.{name}"), kind, options, tooltip)


def _choices(values: tuple[str, ...], labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((v, labels.get(v, v)) for v in values)


POS_LABELS = {"learned": "Learned", "sinusoidal": "Sinusoidal", "rope": "RoPE"}
NORM_LABELS = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm"}
MLP_LABELS = {"gelu": "GELU", "swiglu": "SwiGLU"}
DEVICE_LABELS = {"auto": "Automatic", "cpu": "CPU", "cuda": "GPU (CUDA)"}
DTYPE_LABELS = {"auto": "Automatic", "float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
# How the diagram's embedding box says where positions come from.
POS_IN_DIAGRAM = {
    "learned": "+ learned positions",
    "sinusoidal": "+ sinusoidal positions",
    "rope": "(RoPE in attention)",
}

MODEL_FIELDS = (
    _field(
        "model",
        "n_layer",
        "int",
        (1, 256, 1),
        "How many transformer blocks are stacked, usually 2–12 here. More layers learn more complex patterns "
        "but train slower; each adds the same number of parameters.",
    ),
    _field(
        "model",
        "n_head",
        "int",
        (1, 256, 1),
        "How many attention heads each layer has, usually 2–16. Each head looks at the text in its own way; "
        "the width must be a multiple of the number of heads, so that each head gets an equal share.",
    ),
    _field(
        "model",
        "n_embd",
        "int",
        (1, 65536, 32),
        "The size of each token's vector, usually 64–768 here. Wider models learn more but the cost grows with "
        "the square of the width; too wide for a small text mostly memorises it.",
    ),
    _field(
        "model",
        "block_size",
        "int",
        (2, 1 << 20, 32),
        "How many tokens the model can look back at, usually 64–1024. Longer context sees more but memory and "
        "time grow with it (attention with its square).",
    ),
    _field(
        "model",
        "dropout",
        "float",
        (0.0, 0.9, 0.05, 2),
        "Randomly silences this fraction of activations while training, 0–0.2 is usual. Helps against "
        "memorising a small text; too high and the model learns slowly. 0 for tiny runs.",
    ),
    _field(
        "model",
        "bias",
        "bool",
        None,
        "Add bias vectors to the linear layers and norms. GPT-2 had them; modern models leave them out "
        "(slightly faster, about as good).",
    ),
    _field(
        "model",
        "pos_encoding",
        "choice",
        _choices(POS_ENCODINGS, POS_LABELS),
        "How the model knows where each token is. Learned: a trained vector per position (GPT-2). Sinusoidal: "
        "fixed waves (original Transformer). RoPE: rotates queries and keys (LLaMA); needs an even head size.",
    ),
    _field(
        "model",
        "norm",
        "choice",
        _choices(NORMS, NORM_LABELS),
        "How activations are kept at a steady scale. LayerNorm (GPT-2) or RMSNorm (LLaMA; a little simpler).",
    ),
    _field(
        "model",
        "mlp",
        "choice",
        _choices(MLPS, MLP_LABELS),
        "The feed-forward part of each block. GELU: two matrices (GPT-2). SwiGLU: three smaller gated ones "
        "(LLaMA), the same parameter count.",
    ),
    _field(
        "model",
        "tie_embeddings",
        "bool",
        None,
        "Use the same matrix to read tokens in and to score the next token. Saves vocab × width parameters; "
        "usual for small models.",
    ),
)
TRAIN_FIELDS = (
    _field(
        "train",
        "batch_size",
        "int",
        (1, 65536, 1),
        "Sequences per step, usually 8–64. Bigger gives smoother learning but needs more memory; too big runs "
        "out of memory.",
    ),
    _field(
        "train",
        "max_iters",
        "int",
        (1, INT_MAX, 100),
        "How many optimisation steps to train for. A few hundred show something on the sample text; thousands "
        "for a real corpus. Longer than needed starts to memorise (watch the validation loss).",
    ),
    _field(
        "train",
        "learning_rate",
        "sci",
        (1e-7, 1.0),
        "How big each update step is, around 1e-4 to 3e-3 for small models. Too high and the loss jumps or "
        "explodes; too low and learning is slow.",
    ),
    _field(
        "train",
        "min_lr",
        "sci",
        (0.0, 1.0),
        "The learning rate at the end of the cosine decay, usually a tenth of the learning rate. Must not be "
        "above the learning rate.",
    ),
    _field(
        "train",
        "warmup_iters",
        "int",
        (0, INT_MAX, 10),
        "Steps over which the learning rate rises from 0 at the start, usually 1–5 % of the steps. Keeps the "
        "first updates from wrecking the fresh model.",
    ),
    _field(
        "train",
        "gradient_accumulation_steps",
        "int",
        (1, 4096, 1),
        "Add up gradients over this many batches before one update: a bigger effective batch without the "
        "memory. 1 means off; it makes each step this many times slower.",
    ),
    _field(
        "train",
        "eval_interval",
        "int",
        (1, INT_MAX, 50),
        "Measure training and validation loss every this many steps. Often enough to see the curves; each "
        "evaluation costs a little time.",
    ),
    _field(
        "train",
        "grad_clip",
        "float",
        (0.0, 1000.0, 0.1, 2),
        "Limit the gradient's size to this value, usually 1.0, so one bad batch cannot derail training. 0 "
        "turns clipping off.",
    ),
    _field(
        "train",
        "weight_decay",
        "float",
        (0.0, 10.0, 0.01, 3),
        "Pulls weights gently towards zero, usually 0.1. Helps against memorising; too high and the model "
        "cannot learn.",
    ),
    _field(
        "train",
        "seed",
        "int",
        (0, 2**31 - 1, 1),
        "Fixes the random start and data order, so a run can be repeated exactly. Change it to see how much "
        "results vary by chance.",
    ),
)
ADVANCED_FIELDS = (
    _field(
        "train",
        "lr_decay_iters",
        "int",
        (1, INT_MAX, 100),
        "Steps over which the learning rate decays to its final value, usually the same as training steps "
        "(it follows them when they were equal).",
    ),
    _field(
        "train",
        "beta1",
        "float",
        (0.0, 0.999, 0.01, 3),
        "AdamW's momentum for the gradient, usually 0.9. Must be below 1.",
    ),
    _field(
        "train",
        "beta2",
        "float",
        (0.0, 0.9999, 0.01, 4),
        "AdamW's momentum for the gradient's square, 0.95–0.999. Lower reacts faster to changes; below 1.",
    ),
    _field(
        "train",
        "eval_iters",
        "int",
        (1, 1 << 20, 10),
        "Batches averaged for each loss evaluation, usually 10–200. More gives a steadier number but takes longer.",
    ),
    _field(
        "train", "log_interval", "int", (1, INT_MAX, 10), "Send the training loss to the plot every this many steps."
    ),
    _field(
        "train",
        "checkpoint_interval",
        "int",
        (1, INT_MAX, 100),
        "Save the model every this many steps, so a run can be resumed after a stop or crash. Saving takes a "
        "moment for big models.",
    ),
    _field(
        "train",
        "device",
        "choice",
        _choices(DEVICES, DEVICE_LABELS),
        "Where to train. Automatic uses the GPU when there is one.",
    ),
    _field(
        "train",
        "dtype",
        "choice",
        _choices(DTYPES, DTYPE_LABELS),
        "Number format for training. Automatic picks bfloat16 on GPUs that support it, else float32. Lower "
        "precision is faster and smaller but can be less stable.",
    ),
)
ALL_FIELDS = MODEL_FIELDS + TRAIN_FIELDS + ADVANCED_FIELDS


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

    def __bool__(self) -> bool:
        return bool(self._before)

    def apply(self, name: str, current: RunConfig) -> RunConfig:
        """The config preset `name` gives, keeping `current`'s dataset, objective and a chosen tokenizer."""
        before = current.copy()
        cfg = preset(name)
        cfg.data = before.data
        cfg.objective = before.objective
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


def diagram_boxes(m: ModelConfig, vocab_size: int) -> list[tuple[str, str]]:
    """The block diagram's boxes as (role, text), top to bottom: embedding, one block (norm, attention, norm,
    MLP), the final norm and the LM head."""
    norm = NORM_LABELS.get(m.norm, m.norm)
    pos = POS_IN_DIAGRAM.get(m.pos_encoding, m.pos_encoding)
    mlp = MLP_LABELS.get(m.mlp, m.mlp)
    head_dim = m.n_embd // m.n_head if m.n_head else 0
    return [
        ("io", "tokens (ids)"),
        ("embed", f"Token embedding {vocab_size:,} × {m.n_embd} {pos}"),
        ("norm", norm),
        ("attn", f"Causal self-attention: {m.n_head} heads × {head_dim}"),
        ("norm", norm),
        ("mlp", f"MLP ({mlp}, {m.n_embd} → {m.mlp_hidden} → {m.n_embd})"),
        ("norm", f"Final {norm}"),
        ("head", f"LM head {m.n_embd} → {vocab_size:,}" + (" (tied)" if m.tie_embeddings else "")),
        ("io", "next-token probabilities"),
    ]
