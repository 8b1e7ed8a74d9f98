"""The Model panel's form fields, without Qt: for each config key the panel edits, its control kind, range and
tooltip, and the words for each value a choice offers (the values themselves are engine.config's, the labels
engine.config.FIELD_LABELS).

studio/state/model_form.py re-exports them; studio/widgets/model_fields.py turns them into widgets.
"""

from __future__ import annotations

from typing import NamedTuple

from engine.config import (
    DIVERGENCE_POLICIES,
    ARCHITECTURES,
    DEVICES,
    DTYPES,
    LR_SCHEDULES,
    MLPS,
    NORM_POSITIONS,
    NORMS,
    OPTIMIZERS,
    POS_ENCODINGS,
    field_label,
)

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


ARCH_LABELS = {"decoder": "Decoder (GPT)", "encoder": "Encoder (BERT)", "encoder-decoder": "Encoder-decoder (T5)"}
# One line per architecture, shown under the Architecture field.
ARCH_EXPLAINED = {
    "decoder": "Each token sees only the tokens before it, so the model can write text left to right.",
    "encoder": "Every token sees the whole text in both directions: for filling blanks and judging sentences, "
    "not for writing.",
    "encoder-decoder": "An encoder reads the input both ways; a decoder writes the output token by token, looking "
    "back at the encoder through cross-attention.",
}
POS_LABELS = {"learned": "Learned", "sinusoidal": "Sinusoidal", "rope": "RoPE", "alibi": "ALiBi"}
NORM_LABELS = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm"}
NORM_POSITION_LABELS = {"pre": "Pre-norm (GPT-2, LLaMA)", "post": "Post-norm (Transformer, BERT)"}
MLP_LABELS = {"gelu": "GELU", "swiglu": "SwiGLU"}
OPTIMIZER_LABELS = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
SCHEDULE_LABELS = {
    "cosine": "Cosine",
    "linear": "Linear",
    "constant": "Constant",
    "inverse_sqrt": "Inverse square root",
}
DEVICE_LABELS = {"auto": "Automatic", "cpu": "CPU", "cuda": "GPU (CUDA)"}
DTYPE_LABELS = {"auto": "Automatic", "float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
DIVERGENCE_LABELS = {
    "rollback": "Go back and suggest a fix",
    "stop": "Stop at the last checkpoint",
    "ignore": "Keep going",
}

MODEL_FIELDS = (
    _field(
        "model",
        "arch",
        "choice",
        _choices(ARCHITECTURES, ARCH_LABELS),
        "Which transformer to build. Decoder: causal attention, writes text (GPT). Encoder: attention in both "
        "directions, fills blanks and judges sentences (BERT). Encoder-decoder: reads an input, writes an output "
        "(T5, BART). The objective decides which ones can train.",
    ),
    _field(
        "model",
        "n_layer",
        "int",
        (1, 256, 1),
        "How many transformer blocks are stacked, usually 2–12 here. More layers learn more complex patterns "
        "but train slower; each adds the same number of parameters. In an encoder-decoder: the encoder's layers.",
    ),
    _field(
        "model",
        "n_decoder_layer",
        "int",
        (0, 256, 1),
        "Blocks in the decoder stack of an encoder-decoder; 0 gives it as many as Layers, as T5 and BART do. "
        "Each decoder block also has cross-attention, so it is larger than an encoder block.",
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
        "fixed waves (original Transformer). RoPE: rotates queries and keys (LLaMA); needs an even head size. "
        "ALiBi: no position vectors, attention fades with distance (Press et al. 2022).",
    ),
    _field(
        "model",
        "n_segments",
        "int",
        (0, 16, 1),
        "Segment (token-type) embeddings of an encoder: 0 for none, 2 to tell the two texts of a pair apart. "
        "Next-sentence and sentence-order prediction need 2.",
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
        "norm_position",
        "choice",
        _choices(NORM_POSITIONS, NORM_POSITION_LABELS),
        "Where each block normalises. Pre-norm: before attention and the MLP, the residual stream untouched "
        "(GPT-2, LLaMA; trains stably). Post-norm: after adding each result to the stream (the original "
        "Transformer, BERT; often needs a warm-up).",
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
        "optimizer",
        "choice",
        _choices(OPTIMIZERS, OPTIMIZER_LABELS),
        "How each step turns gradients into updates. AdamW (GPT-2 onwards): Adam with weight decay kept apart. "
        "Adam: as BERT and the original Transformer trained. SGD: plain steps, with Momentum and Nesterov as "
        "options; needs a much higher learning rate.",
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
        "lr_schedule",
        "choice",
        _choices(LR_SCHEDULES, SCHEDULE_LABELS),
        "How the learning rate changes after the warm-up. Cosine (nanoGPT) and Linear fall to the final "
        "learning rate over the decay steps; Constant stays; Inverse square root falls as 1/√step, as the "
        "original Transformer did.",
    ),
    _field(
        "train",
        "min_lr",
        "sci",
        (0.0, 1.0),
        "The learning rate at the end of the cosine or linear decay, usually a tenth of the learning rate. Must "
        "not be above the learning rate.",
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
        "label_smoothing",
        "float",
        (0.0, 0.95, 0.05, 2),
        "Teach the model to give this share of its belief to the other tokens instead of all to the right one, "
        "0.1 in the original Transformer. A little helps against overconfidence; 0 turns it off.",
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
        "momentum",
        "float",
        (0.0, 1.0, 0.05, 2),
        "SGD's momentum: the share of the last update carried into the next, usually 0.9. 0 is plain SGD.",
    ),
    _field(
        "train",
        "nesterov",
        "bool",
        None,
        "Nesterov momentum: SGD looks ahead along its momentum before taking the gradient (needs a Momentum above 0).",
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
    _field(
        "train",
        "on_divergence",
        "choice",
        _choices(DIVERGENCE_POLICIES, DIVERGENCE_LABELS),
        "When the loss stops being a number or jumps far above its recent level: go back to the last good "
        "checkpoint, pause and suggest what to change (one click applies it); stop there; or keep going (a loss "
        "that is not a number still ends the run).",
    ),
)
ALL_FIELDS = MODEL_FIELDS + TRAIN_FIELDS + ADVANCED_FIELDS
