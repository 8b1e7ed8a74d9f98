"""One RunConfig for a run: the same JSON in the GUI, on the wire, in SQLite, in checkpoints and on the CLI.

Standard library only, so the studio can validate a config and show estimates without importing torch.
Names follow nanoGPT where it has one (n_layer, n_head, n_embd, block_size, ...); variants are strings.
The parameter, FLOP and memory estimates are in engine/estimates.py and the words for text a vocabulary lacks in
engine/unknown_text.py (both re-exported here).

Long file: it is the RunConfig, every section's fields with their labels and their checks in one place, the one
source of truth the GUI, the wire, SQLite, checkpoints and the CLI share (docs/DESIGN.md rule 6).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from engine.errors import UserError
from engine.objectives.catalog import OBJECTIVE_NAMES, objective_info
from engine.resources import read_json, read_text, resource_path

POS_ENCODINGS = ("learned", "sinusoidal", "rope", "alibi")
NORMS = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post")
MLPS = ("gelu", "swiglu")
ARCHITECTURES = ("decoder", "encoder", "encoder-decoder")
TOKENIZER_KINDS = ("char", "bpe", "bytebpe", "wordpiece", "unigram")
OBJECTIVES = OBJECTIVE_NAMES
OPTIMIZERS = ("adamw", "adam", "sgd")
LR_SCHEDULES = ("cosine", "linear", "constant", "inverse_sqrt")
DENOISING_NOISES = ("token_masking", "token_deletion", "text_infilling", "sentence_permutation", "document_rotation")
FINETUNE_MODES = ("full", "lora", "prompt_tuning")
# reinforce: what is subtracted from a sample's reward before it weighs its log-probability ("mean": the mean of
# the prompt's other samples; "moving_average": of recent batches' rewards; "none").
BASELINES = ("mean", "moving_average", "none")
# What a prompt-tuned decoder or encoder can train: the objectives whose batches need no attention mask of their own.
PROMPT_TUNING_OBJECTIVES = (
    "causal_lm",
    "distillation",
    "classification",
    "sft",
    "masked_lm",
    "nsp",
    "sop",
    "masked_lm+nsp",
    "masked_lm+sop",
)
# LoRA's matrices: "attention" adapts the query/key/value and output projections (cross-attention's too),
# "mlp" the feed-forward layers, "all" both.
LORA_TARGETS = ("attention", "mlp", "all")
# classification: which position's output the class is read from; "auto" is [CLS] (the first token) on an encoder
# whose vocabulary has it, the last real token on a decoder, and the mean otherwise.
POOLINGS = ("auto", "first", "last", "mean")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DIVERGENCE_POLICIES = ("rollback", "stop", "ignore")  # engine/health.py


# The labels the Model, Train, Data and Vocabulary panels show for each config key. Messages name a field by its
# label, so a user finds it on screen; the key goes on a second, smaller line for people who use the CLI.
FIELD_LABELS: dict[str, str] = {
    "data.dataset": "Dataset",
    "tokenizer.tokenizer": "Tokenizer",
    "tokenizer.kind": "Tokenizer kind",
    "tokenizer.vocab_size": "Vocabulary size",
    "model.arch": "Architecture",
    "model.n_layer": "Layers",
    "model.n_head": "Attention heads",
    "model.n_embd": "Width",
    "model.block_size": "Context length",
    "model.dropout": "Dropout",
    "model.bias": "Bias terms",
    "model.pos_encoding": "Positions",
    "model.norm": "Normalisation",
    "model.mlp": "MLP",
    "model.tie_embeddings": "Tie embeddings",
    "model.n_decoder_layer": "Decoder layers",
    "model.n_segments": "Segments",
    "model.norm_position": "Norm position",
    "model.n_classes": "Classes",
    "objective.name": "Objective",
    "objective.mask_prob": "Masked share",
    "objective.mask_token_share": "Of those, shown as [MASK]",
    "objective.random_token_share": "Of those, a random token",
    "objective.whole_word": "Mask whole words",
    "objective.prefix_fraction": "Prefix share",
    "objective.noise_density": "Noise density",
    "objective.mean_span_length": "Mean span length",
    "objective.fim_rate": "Fill-in-the-middle share",
    "objective.noises": "Noise functions",
    "objective.denoise_mask_prob": "Damaged share",
    "objective.poisson_lambda": "Mean infilled span",
    "objective.predict_fraction": "Predicted share",
    "objective.teacher_run": "Teacher run",
    "objective.distill_alpha": "Teacher's share of the loss",
    "objective.distill_temperature": "Temperature",
    "objective.pooling": "Read the class from",
    "objective.classes": "Class names",
    "objective.template": "Template",
    "objective.reward": "Reward",
    "objective.kl_coef": "KL penalty",
    "objective.baseline": "Baseline",
    "objective.samples_per_prompt": "Samples per prompt",
    "objective.max_new_tokens": "Sample length",
    "objective.sample_temperature": "Sampling temperature",
    "objective.prompts": "Prompts",
    "objective.prompt_length": "Prompt length",
    "train.optimizer": "Optimizer",
    "train.momentum": "Momentum",
    "train.nesterov": "Nesterov momentum",
    "train.lr_schedule": "Learning-rate schedule",
    "train.label_smoothing": "Label smoothing",
    "train.batch_size": "Batch size",
    "train.max_iters": "Training steps",
    "train.learning_rate": "Learning rate",
    "train.min_lr": "Final learning rate",
    "train.warmup_iters": "Warm-up steps",
    "train.lr_decay_iters": "Decay steps",
    "train.weight_decay": "Weight decay",
    "train.beta1": "Adam β1",
    "train.beta2": "Adam β2",
    "train.grad_clip": "Gradient clipping",
    "train.gradient_accumulation_steps": "Gradient accumulation",
    "train.eval_interval": "Evaluate every",
    "train.eval_iters": "Evaluation batches",
    "train.log_interval": "Log every",
    "train.checkpoint_interval": "Checkpoint every",
    "train.seed": "Random seed",
    "train.device": "Device",
    "train.dtype": "Precision",
    "train.probe_attention": "Record attention",
    "train.on_divergence": "If training diverges",
    "train.keep_checkpoints": "Checkpoints kept",
    "train.init_from": "Start from run",
    "train.finetune": "Fine-tuning",
    "train.lora_rank": "LoRA rank",
    "train.lora_alpha": "LoRA alpha",
    "train.lora_dropout": "LoRA dropout",
    "train.lora_targets": "LoRA matrices",
    "train.prompt_tokens": "Soft-prompt vectors",
}


def field_label(key: str) -> str:
    """The on-screen label of a config key ("model.n_embd" -> "Width"); the key itself when it has none."""
    return FIELD_LABELS.get(key, key)


class ConfigError(UserError, ValueError):
    """A config value a user can fix (an engine.errors.UserError).

    `message` says what is wrong in the panels' words ("Width (128) must be a multiple of Attention heads (3)");
    `field` is the config field it is about ("model.n_embd"), `fields` every field involved (for marking them);
    `key` and `keys` are their older names. str() is "key: message", so the CLI line and the engine's error
    replies still name the key; the studio turns such a line back into plain words with user_message().
    """

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    @property
    def key(self) -> str | None:
        return self.field

    @property
    def keys(self) -> tuple[str, ...]:
        return self.fields

    def __reduce__(self):
        return _config_error, (self.message, self.key, tuple(k for k in self.keys if k != self.key))


def _config_error(message: str, key: str | None, also: tuple[str, ...]) -> ConfigError:
    return ConfigError(message, key, also=also)


_KEY_PREFIX = re.compile(r"^((?:data|tokenizer|model|objective|train)\.\w+)(?: / (?:\w+\.)?\w+)*: ")


def user_message(error: BaseException | str) -> tuple[str, str]:
    """(plain words to show, config key or "") for a ConfigError, or for its text as an engine reply carries it
    ("model.n_embd: Width (128) must be ..."). Any other text comes back as it is, with no key."""
    if isinstance(error, ConfigError):
        return error.message, error.key or ""
    text = str(error)
    m = _KEY_PREFIX.match(text)
    if m and m.group(1) in FIELD_LABELS:
        return text[m.end() :], m.group(1)
    return text, ""


@dataclass
class DataConfig:
    # A dataset id (int) or name (str) in the workspace.
    dataset: int | str | None = None

    def validate(self) -> None:
        if self.dataset in (None, ""):
            raise ConfigError("Choose a dataset on the Data panel (import a text there first)", "data.dataset")


@dataclass
class TokenizerConfig:
    # An existing tokenizer id/name; when None, a tokenizer of `kind` and `vocab_size` is trained on the dataset.
    tokenizer: int | str | None = None
    kind: str = "char"
    vocab_size: int = 512

    def validate(self) -> None:
        _choice("tokenizer.kind", self.kind, TOKENIZER_KINDS)
        if self.kind == "bytebpe" and not 257 <= self.vocab_size <= 1_000_000:
            # 256 byte tokens plus the end-of-text token.
            raise ConfigError(
                f"Vocabulary size for byte-level BPE must be between 257 and 1,000,000, not "
                f"{self.vocab_size:,} (256 bytes and the end-of-text token come first)",
                "tokenizer.vocab_size",
            )
        if self.vocab_size < 2:
            raise ConfigError(f"Vocabulary size must be at least 2, not {self.vocab_size:,}", "tokenizer.vocab_size")


@dataclass
class ModelConfig:
    arch: str = "decoder"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    pos_encoding: str = "learned"
    norm: str = "layernorm"
    mlp: str = "gelu"
    tie_embeddings: bool = True
    # encoder-decoder only: the decoder stack's depth; 0 means as many layers as the encoder (model.n_layer).
    n_decoder_layer: int = 0
    # encoder only: segment (token-type) embeddings; 0 none, 2 for sentence pairs (NSP / SOP).
    n_segments: int = 0
    # "pre": x + f(norm(x)) (GPT-2, LLaMA); "post": norm(x + f(x)) (the original Transformer, BERT).
    norm_position: str = "pre"
    # classification: a head of this many classes on the pooled output; 0 none. Written by the engine from the
    # labelled dataset (objective.classes), so a checkpoint knows the shape of its head.
    n_classes: int = 0

    @property
    def decoder_layers(self) -> int:
        """Layers of the decoder stack of an encoder-decoder (n_decoder_layer, or n_layer when that is 0)."""
        return self.n_decoder_layer or self.n_layer

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_hidden(self) -> int:
        if self.mlp == "swiglu":
            # 2/3 of 4*n_embd keeps SwiGLU's three matrices at the parameter count of GELU's two (LLaMA);
            # rounded up to a multiple of 8 for efficient matmuls.
            h = int(8 * self.n_embd / 3)
            return 8 * ((h + 7) // 8)
        return 4 * self.n_embd

    def validate(self) -> None:
        _choice("model.arch", self.arch, ARCHITECTURES)
        _choice("model.pos_encoding", self.pos_encoding, POS_ENCODINGS)
        _choice("model.norm", self.norm, NORMS)
        _choice("model.mlp", self.mlp, MLPS)
        _choice("model.norm_position", self.norm_position, NORM_POSITIONS)
        _int_range("model.n_layer", self.n_layer, 1, 256)
        _int_range("model.n_decoder_layer", self.n_decoder_layer, 0, 256)
        _int_range("model.n_segments", self.n_segments, 0, 16)
        _int_range("model.n_classes", self.n_classes, 0, 4096)
        _int_range("model.n_head", self.n_head, 1, 256)
        _int_range("model.n_embd", self.n_embd, 1, 65536)
        _int_range("model.block_size", self.block_size, 2, 1 << 20)
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"Width ({self.n_embd}) must be a multiple of Attention heads ({self.n_head}): each head gets an "
                f"equal share of the width ({_nearest_multiples(self.n_embd, self.n_head)} would do)",
                "model.n_embd",
                also=("model.n_head",),
            )
        if self.pos_encoding == "rope" and self.head_dim % 2:
            raise ConfigError(
                f"RoPE positions need an even head size, but Width ÷ Attention heads is "
                f"{self.n_embd} ÷ {self.n_head} = {self.head_dim}",
                "model.pos_encoding",
                also=("model.n_head", "model.n_embd"),
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"Dropout must be at least 0 and below 1, not {self.dropout:g}", "model.dropout")


@dataclass
class ObjectiveConfig:
    """What the model learns (engine/objectives/); each option has the default of the paper it comes from and is
    read only by the objectives that list it in engine/objectives/catalog.py."""

    name: str = "causal_lm"
    # masked_lm (BERT): the share of tokens chosen, and of those the shares shown as [MASK] and as a random
    # token (the rest stay as they were); whole_word chooses whole words of a subword tokenizer.
    mask_prob: float = 0.15
    mask_token_share: float = 0.8
    random_token_share: float = 0.1
    whole_word: bool = False
    # prefix_lm: the share of each sequence read bidirectionally; 0 draws it at random per sequence.
    prefix_fraction: float = 0.0
    # span_corruption (T5): the share of tokens hidden and the mean length of a hidden span; on a decoder,
    # fim_rate is the share of sequences turned into fill-in-the-middle (prefix, suffix, then middle).
    noise_density: float = 0.15
    mean_span_length: float = 3.0
    fim_rate: float = 0.5
    # denoising (BART): the noise functions, comma-separated (DENOISING_NOISES), the share of tokens damaged
    # and the Poisson mean of an infilled span; BART's best combination is text infilling + sentence permutation.
    noises: str = "text_infilling,sentence_permutation"
    denoise_mask_prob: float = 0.3
    poisson_lambda: float = 3.0
    # permutation_lm (XLNet): the share of each factorization order that is predicted (its last part).
    predict_fraction: float = 1 / 6
    # distillation (Hinton et al.): the finished run whose next-token distribution the student learns, the
    # weight alpha of the teacher's (soft) loss against the text's (hard) loss, and the softening temperature.
    teacher_run: int | str | None = None
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0
    # classification: where the class is read from (POOLINGS), and the class names, in the order of the head's
    # outputs (written by the engine from the dataset's labels when the run is made).
    pooling: str = "auto"
    classes: list[str] = field(default_factory=list)
    # sft: how a prompt is shown to the model; {prompt} is replaced by it and the response follows. The
    # Playground wraps what is typed in the same template.
    template: str = "Q: {prompt}\nA: "
    # reinforce (Williams 1992; engine/objectives/reinforce.py): per prompt, samples_per_prompt continuations of
    # max_new_tokens tokens at sample_temperature, each scored by `reward` (engine/rewards.py), less the
    # baseline (BASELINES), weigh their log-probabilities; kl_coef weighs the KL to the frozen starting model.
    # The prompts are `prompts` when given, else prompt_length tokens drawn from the dataset.
    reward: str = ""
    kl_coef: float = 0.1
    baseline: str = "mean"
    samples_per_prompt: int = 4
    max_new_tokens: int = 24
    sample_temperature: float = 1.0
    prompts: list[str] = field(default_factory=list)
    prompt_length: int = 8

    def noise_list(self) -> list[str]:
        return [n.strip() for n in self.noises.split(",") if n.strip()]

    def validate(self) -> None:
        _choice("objective.name", self.name, OBJECTIVES)
        _choice("objective.pooling", self.pooling, POOLINGS)
        if "{prompt}" not in self.template:
            raise ConfigError("Template must hold {prompt} where the prompt goes", "objective.template")
        for key in ("mask_prob", "noise_density", "denoise_mask_prob", "predict_fraction"):
            _fraction(f"objective.{key}", getattr(self, key), open_low=True)
        for key in ("mask_token_share", "random_token_share", "fim_rate"):
            _fraction(f"objective.{key}", getattr(self, key))
        if self.mask_token_share + self.random_token_share > 1 + 1e-9:
            raise ConfigError(
                f"{field_label('objective.mask_token_share')} and {field_label('objective.random_token_share')} "
                f"add up to more than all of the masked tokens ({self.mask_token_share:g} + "
                f"{self.random_token_share:g})",
                "objective.mask_token_share",
                also=("objective.random_token_share",),
            )
        if not 0 <= self.prefix_fraction < 1:
            raise ConfigError(
                f"Prefix share must be at least 0 (0 draws it per sequence) and below 1, not {self.prefix_fraction:g}",
                "objective.prefix_fraction",
            )
        for key in ("mean_span_length", "poisson_lambda"):
            if not 1 <= getattr(self, key) <= 64:
                raise ConfigError(
                    range_message(field_label(f"objective.{key}"), getattr(self, key), 1, 64), f"objective.{key}"
                )
        _fraction("objective.distill_alpha", self.distill_alpha)
        if not 0.1 <= self.distill_temperature <= 100:
            raise ConfigError(
                range_message(field_label("objective.distill_temperature"), self.distill_temperature, 0.1, 100),
                "objective.distill_temperature",
            )
        if self.name == "reinforce":
            self.validate_reinforce()
        unknown = [n for n in self.noise_list() if n not in DENOISING_NOISES]
        if unknown or not self.noise_list():
            raise ConfigError(
                f"Noise functions must be one or more of {', '.join(DENOISING_NOISES)}, not {self.noises!r}",
                "objective.noises",
            )

    def validate_reinforce(self) -> None:
        from engine.rewards import parse_reward

        parse_reward(self.reward)
        _choice("objective.baseline", self.baseline, BASELINES)
        _int_range("objective.samples_per_prompt", self.samples_per_prompt, 1, 256)
        _int_range("objective.max_new_tokens", self.max_new_tokens, 1, 4096)
        _int_range("objective.prompt_length", self.prompt_length, 1, 4096)
        if not 0 <= self.kl_coef <= 100:
            raise ConfigError(range_message("KL penalty", self.kl_coef, 0, 100), "objective.kl_coef")
        if not 0.1 <= self.sample_temperature <= 10:
            raise ConfigError(
                range_message("Sampling temperature", self.sample_temperature, 0.1, 10), "objective.sample_temperature"
            )
        if self.baseline == "mean" and self.samples_per_prompt < 2:
            raise ConfigError(
                "the mean baseline compares a prompt's samples with each other: take 2 or more Samples per prompt, "
                "or the moving-average baseline",
                "objective.baseline",
                also=("objective.samples_per_prompt",),
            )
        if any(not p.strip() for p in self.prompts):
            raise ConfigError("Prompts must not be empty lines", "objective.prompts")


@dataclass
class InitFrom:
    """train.init_from: the run (id or name) whose weights a new run starts from, and which of its checkpoints
    ("latest" or "step-N"); None starts from random weights. The model and vocabulary then come from that run."""

    run: int | str | None = None
    checkpoint: str = "latest"
    step: int | None = None  # written by the engine when the run is made: the step of that checkpoint

    def validate(self) -> None:
        if self.run is not None and not str(self.checkpoint).strip():
            raise ConfigError("Start from run needs a checkpoint: latest or step-N", "train.init_from")


@dataclass
class TrainConfig:
    batch_size: int = 12
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    gradient_accumulation_steps: int = 1
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 500
    seed: int = 1337
    device: str = "auto"
    dtype: str = "auto"
    # Attention snapshots of the probe texts at step 0 and at every evaluation (engine/attention_probes.py).
    probe_attention: bool = True
    # Weights-only checkpoints kept for comparing steps in the playground, one per evaluation (step 0 too),
    # thinned to at most this many (evenly spaced ones, and the newest); 0 keeps none ("latest" always stays).
    keep_checkpoints: int = 10
    # The classic recipes' options: BERT and the original Transformer used Adam, T5 AdaFactor (here adamw or
    # sgd with momentum); inverse_sqrt is the original Transformer's warm-up then 1/sqrt(step).
    optimizer: str = "adamw"
    momentum: float = 0.9
    nesterov: bool = False
    lr_schedule: str = "cosine"
    label_smoothing: float = 0.0
    # After pre-training (engine/finetune.py): start from another run's weights, and train all of them ("full")
    # or only LoRA's low-rank updates of the chosen matrices, scaled by alpha / rank, the base weights frozen.
    init_from: InitFrom = field(default_factory=InitFrom)
    finetune: str = "full"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    lora_targets: str = "attention"
    # prompt_tuning (engine/prompt_tuning.py): this many learned vectors before every input, the model frozen.
    prompt_tokens: int = 16
    # A loss that stops being a number or spikes (engine/health.py): go back to the last good checkpoint and
    # suggest a fix (the CLI applies it), stop there, or go on (a non-finite loss still fails the run).
    on_divergence: str = "rollback"

    def validate(self) -> None:
        self.validate_finetune()
        _int_range("train.batch_size", self.batch_size, 1, 1 << 16)
        _int_range("train.max_iters", self.max_iters, 1, 1 << 40)
        _int_range("train.warmup_iters", self.warmup_iters, 0, 1 << 40)
        _int_range("train.lr_decay_iters", self.lr_decay_iters, 1, 1 << 40)
        _int_range("train.gradient_accumulation_steps", self.gradient_accumulation_steps, 1, 4096)
        _int_range("train.eval_interval", self.eval_interval, 1, 1 << 40)
        _int_range("train.eval_iters", self.eval_iters, 1, 1 << 20)
        _int_range("train.log_interval", self.log_interval, 1, 1 << 40)
        _int_range("train.checkpoint_interval", self.checkpoint_interval, 1, 1 << 40)
        _int_range("train.keep_checkpoints", self.keep_checkpoints, 0, 10_000)
        # torch takes 64-bit seeds; evaluation adds its offsets (engine/train.py) to this one.
        _int_range("train.seed", self.seed, 0, 2**63 - 1)
        if not self.learning_rate > 0:
            raise ConfigError(f"Learning rate must be above 0, not {self.learning_rate:g}", "train.learning_rate")
        if not 0 <= self.min_lr <= self.learning_rate:
            raise ConfigError(
                f"Final learning rate ({self.min_lr:g}) must be between 0 and the Learning rate "
                f"({self.learning_rate:g})",
                "train.min_lr",
                also=("train.learning_rate",),
            )
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(
                    f"{field_label('train.' + name)} must be at least 0 and below 1, not {getattr(self, name):g}",
                    f"train.{name}",
                )
        if self.weight_decay < 0:
            raise ConfigError(f"Weight decay cannot be negative ({self.weight_decay:g})", "train.weight_decay")
        if self.grad_clip < 0:
            raise ConfigError(
                f"Gradient clipping cannot be negative ({self.grad_clip:g}); 0 turns clipping off", "train.grad_clip"
            )
        _choice("train.device", self.device, DEVICES)
        _choice("train.dtype", self.dtype, DTYPES)
        _choice("train.on_divergence", self.on_divergence, DIVERGENCE_POLICIES)
        _choice("train.optimizer", self.optimizer, OPTIMIZERS)
        _choice("train.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _fraction("train.momentum", self.momentum)
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(
                f"Label smoothing must be at least 0 and below 1, not {self.label_smoothing:g}", "train.label_smoothing"
            )
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ConfigError(
                "Nesterov momentum needs the sgd Optimizer with a Momentum above 0",
                "train.nesterov",
                also=("train.optimizer", "train.momentum"),
            )

    def validate_finetune(self) -> None:
        self.init_from.validate()
        _choice("train.finetune", self.finetune, FINETUNE_MODES)
        _choice("train.lora_targets", self.lora_targets, LORA_TARGETS)
        _int_range("train.lora_rank", self.lora_rank, 1, 1024)
        _int_range("train.prompt_tokens", self.prompt_tokens, 1, 1024)
        if not 0 < self.lora_alpha <= 4096:
            raise ConfigError(range_message("LoRA alpha", self.lora_alpha, 0, 4096), "train.lora_alpha")
        if not 0 <= self.lora_dropout < 1:
            raise ConfigError(
                f"LoRA dropout must be at least 0 and below 1, not {self.lora_dropout:g}", "train.lora_dropout"
            )
        if self.finetune != "full" and self.init_from.run is None:
            how = "LoRA" if self.finetune == "lora" else "Prompt tuning"
            raise ConfigError(
                f"{how} adapts a trained model: choose a run to start from (Start from run)",
                "train.finetune",
                also=("train.init_from",),
            )


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    SECTIONS = ("data", "tokenizer", "model", "objective", "train")

    def validate(self, *, need_data: bool = True, need_teacher: bool = True) -> "RunConfig":
        """Raise ConfigError with a readable message for the first impossible value; return self."""
        for name in self.SECTIONS:
            if name == "data" and not need_data:
                continue
            getattr(self, name).validate()
        check_objective_fits(self.objective, self.model, self.train)
        info = objective_info(self.objective.name)
        # Like the dataset, the runs it learns from (a teacher, REINFORCE's start) are the workspace's, chosen last:
        # the panels' edits and the sample-batch view check without them.
        if need_data and need_teacher and info.needs_teacher and self.objective.teacher_run in (None, ""):
            raise ConfigError(
                f"{info.label} learns from a trained teacher: choose a Teacher run", "objective.teacher_run"
            )
        if need_data and need_teacher and info.needs_parent and self.train.init_from.run in (None, ""):
            raise ConfigError(
                f"{info.label} improves a trained model: choose a run to start from (Start from run)",
                "train.init_from",
                also=("objective.name",),
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """Build from a (possibly partial) dict; unknown sections or keys are a ConfigError naming them."""
        if not isinstance(d, dict):
            raise ConfigError("a run config must be a JSON object with sections " + ", ".join(cls.SECTIONS))
        unknown = set(d) - set(cls.SECTIONS)
        if unknown:
            raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
        kwargs = {}
        for f in fields(cls):
            section_cls = type(f.default_factory())  # type: ignore[operator]  # every section has one
            kwargs[f.name] = _section_from_dict(f.name, section_cls, d.get(f.name) or {})
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ConfigError(f"the config is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None

    def with_overrides(self, assignments: list[str]) -> "RunConfig":
        """Apply `section.key=value` strings (CLI --set); values are parsed as JSON, else taken as text."""
        d = self.to_dict()
        for item in assignments:
            if "=" not in item or "." not in item.split("=", 1)[0]:
                raise ConfigError(f"--set expects section.key=value, got {item!r}")
            path, raw = item.split("=", 1)
            *outer, key = path.split(".")
            target: Any = d
            for name in outer:  # train.init_from.run reaches into the nested init_from object
                target = target.get(name) if isinstance(target, dict) else None
            if not isinstance(target, dict) or key not in target:
                raise ConfigError(f"unknown config field {path!r}")
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            if isinstance(target[key], dict) and not isinstance(value, dict):
                target[key]["run"] = value  # --set train.init_from=R is short for train.init_from.run=R
            else:
                target[key] = value
        return RunConfig.from_dict(d)

    def copy(self) -> "RunConfig":
        return copy.deepcopy(self)


def _section_from_dict(section: str, cls: type, d: dict[str, Any]):
    if not isinstance(d, dict):
        raise ConfigError(f"config section {section!r} must be an object")
    known = {f.name: f for f in fields(cls)}
    unknown = set(d) - set(known)
    if unknown:
        raise ConfigError(f"unknown field(s) in {section}: {', '.join(sorted(unknown))}")
    defaults = cls()
    values = {}
    for name, value in d.items():
        default = getattr(defaults, name)
        if dataclasses.is_dataclass(default):  # a nested object (train.init_from)
            values[name] = _section_from_dict(f"{section}.{name}", type(default), value or {})
        else:
            values[name] = _coerce(f"{section}.{name}", value, default)
    return cls(**values)


def _coerce(path: str, value: Any, default: Any) -> Any:
    """Check a JSON value against the default's type, so a config file with "n_layer": "four" fails clearly."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{field_label(path)} must be true or false, not {value!r}", path)
    if isinstance(default, int) and not isinstance(default, bool):
        # NaN and 1e999 (JSON's infinity) are floats that no whole number equals, and int() of them raises.
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{field_label(path)} must be a whole number, not {value!r}", path)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ConfigError(f"{field_label(path)} must be a whole number, not {value!r}", path)
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{field_label(path)} must be a number, not {value!r}", path)
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{field_label(path)} must be text, not {value!r}", path)
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{field_label(path)} must be a list of texts, not {value!r}", path)
        return list(value)
    # Fields whose default is None accept an id (int) or a name (str) or null.
    if value is None or isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{field_label(path)} must be an id or a name, not {value!r}", path)


def check_prompt_tuning(info, m: ModelConfig, train: "TrainConfig") -> None:
    """ConfigError for prompt tuning where it cannot work: not a decoder, an objective with its own attention mask,
    or a soft prompt that leaves less than half the context to the text."""
    if m.arch not in ("decoder", "encoder"):
        raise ConfigError(
            f"Prompt tuning puts learned vectors before a decoder's or an encoder's input, and this model is "
            f"{_a(m.arch)}: use LoRA or full fine-tuning",
            "train.finetune",
            also=("model.arch",),
        )
    if info.name not in PROMPT_TUNING_OBJECTIVES:
        raise ConfigError(
            f"Prompt tuning reads with the causal mask only, and {info.label} needs its own attention pattern: use "
            "LoRA or full fine-tuning",
            "train.finetune",
            also=("objective.name",),
        )
    if train.prompt_tokens * 2 > m.block_size:
        raise ConfigError(
            f"{train.prompt_tokens} soft-prompt vectors would take more than half of the context "
            f"({m.block_size} tokens): choose at most {m.block_size // 2}",
            "train.prompt_tokens",
        )


def check_objective_fits(obj: ObjectiveConfig, m: ModelConfig, train: "TrainConfig | None" = None) -> None:
    """ConfigError, in the panels' words, for an objective the model cannot train (masked LM on a decoder, NSP
    without segments); engine/objectives/catalog.py says what each objective needs."""
    info = objective_info(obj.name)
    if m.arch not in info.archs:
        archs = " or ".join(info.archs)
        raise ConfigError(
            f"{info.label} trains {_a(archs)} model, not {_a(m.arch)}: set Architecture to {info.archs[0]}",
            "objective.name",
            also=("model.arch",),
        )
    if train is not None and train.finetune == "prompt_tuning":
        check_prompt_tuning(info, m, train)
    if obj.name == "reinforce" and obj.prompt_length + obj.max_new_tokens > m.block_size:
        raise ConfigError(
            f"a prompt of {obj.prompt_length} tokens and {obj.max_new_tokens} sampled ones do not fit in the "
            f"context of {m.block_size}: shorten the Prompt length or the Sample length",
            "objective.max_new_tokens",
            also=("objective.prompt_length", "model.block_size"),
        )
    if info.needs_segments and m.n_segments < 2:
        raise ConfigError(
            f"{info.label} judges sentence pairs, so the model needs segment embeddings: set Segments to 2",
            "model.n_segments",
            also=("objective.name",),
        )


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _fraction(path: str, value: float, *, open_low: bool = False) -> None:
    """A share between 0 and 1 (above 0 when open_low)."""
    if not (0 < value <= 1 if open_low else 0 <= value <= 1):
        low = "above 0" if open_low else "at least 0"
        raise ConfigError(f"{field_label(path)} must be {low} and at most 1, not {value:g}", path)


def _choice(path: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{field_label(path)} must be one of {', '.join(options)}, not {value!r}", path)


def _int_range(path: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ConfigError(range_message(field_label(path), value, lo, hi), path)


def range_message(label: str, value: float, lo: float, hi: float) -> str:
    """'Layers must be at least 1, not 0' - the bound the value broke, in words (the form fields say it too)."""
    shown = f"{value:,}" if isinstance(value, int) else f"{value:g}"
    if value < lo:
        return f"{label} must be at least {lo:,}, not {shown}"
    if value > hi:
        return f"{label} must be at most {hi:,}, not {shown}"
    return f"{label} must be between {lo:,} and {hi:,}, not {shown}"


def _nearest_multiples(n: int, k: int) -> str:
    """'120 or 132': the widths nearest n that k heads share evenly."""
    below = n // k * k
    above = below + k
    return f"{below} or {above}" if below > 0 else f"{above}"


# --------------------------------------------------------------------------------------------------- presets


def _load_presets() -> dict[str, dict[str, Any]]:
    """resources/presets/<name>.json: a description and the sections a preset sets (the rest keep their defaults).

    They come in the order resources/presets/order.txt names them (the CLI and the Model panel list them so);
    a preset file it does not name comes after those, by name."""
    folder = resource_path("presets")
    order = [line.strip() for line in read_text("presets", "order.txt").splitlines() if line.strip()]
    names = sorted(path.stem for path in folder.glob("*.json"))
    ranked = [name for name in order if name in names] + [name for name in names if name not in order]
    return {name: read_json("presets", f"{name}.json") for name in ranked}


PRESETS: dict[str, dict[str, Any]] = _load_presets()
DEFAULT_PRESET = "baby"


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    d = {k: v for k, v in PRESETS[name].items() if k != "description"}
    return RunConfig.from_dict(copy.deepcopy(d))


# The estimates follow the config's classes and the words for unknown text are the vocabulary's; they live apart
# and are re-exported for the callers that import them here.
from engine.estimates import flops_per_token, lora_param_count, memory_estimate, param_count  # noqa: E402, F401
from engine.unknown_text import (  # noqa: E402, F401
    UNKNOWN_WARN_SHARE,
    percent,
    unknown_prompt_message,
    unknown_share_warning,
    visible_char,
)
