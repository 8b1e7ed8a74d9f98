"""One RunConfig for a run: the same JSON in the GUI, on the wire, in SQLite, in checkpoints and on the CLI.

Standard library only, so the studio can validate a config and show estimates without importing torch.
Names follow nanoGPT where it has one (n_layer, n_head, n_embd, block_size, ...); variants are strings.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

POS_ENCODINGS = ("learned", "sinusoidal", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "swiglu")
ARCHITECTURES = ("decoder",)
TOKENIZER_KINDS = ("char", "bpe", "bytebpe", "wordpiece", "unigram")
OBJECTIVES = ("causal_lm",)
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class ConfigError(ValueError):
    """A config value a user can fix; the message says which field and why, in plain words."""


@dataclass
class DataConfig:
    # A dataset id (int) or name (str) in the workspace.
    dataset: int | str | None = None

    def validate(self) -> None:
        if self.dataset in (None, ""):
            raise ConfigError("data.dataset: choose a dataset (import a text first)")


@dataclass
class TokenizerConfig:
    # An existing tokenizer id/name; when None, a tokenizer of `kind` and `vocab_size` is trained on the dataset.
    tokenizer: int | str | None = None
    kind: str = "char"
    vocab_size: int = 512

    def validate(self) -> None:
        if self.kind not in TOKENIZER_KINDS:
            raise ConfigError(f"tokenizer.kind must be one of {', '.join(TOKENIZER_KINDS)}, not {self.kind!r}")
        if self.kind == "bytebpe" and not 257 <= self.vocab_size <= 1_000_000:
            # 256 byte tokens plus the end-of-text token.
            raise ConfigError("tokenizer.vocab_size for byte-level BPE must be between 257 and 1,000,000")
        if self.vocab_size < 2:
            raise ConfigError("tokenizer.vocab_size must be at least 2")


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
        _int_range("model.n_layer", self.n_layer, 1, 256)
        _int_range("model.n_head", self.n_head, 1, 256)
        _int_range("model.n_embd", self.n_embd, 1, 65536)
        _int_range("model.block_size", self.block_size, 2, 1 << 20)
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"model.n_embd ({self.n_embd}) must be divisible by model.n_head ({self.n_head}): "
                f"each head gets n_embd / n_head dimensions")
        if self.pos_encoding == "rope" and self.head_dim % 2:
            raise ConfigError(f"RoPE needs an even head size; n_embd / n_head is {self.head_dim}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError("model.dropout must be at least 0 and below 1")


@dataclass
class ObjectiveConfig:
    name: str = "causal_lm"

    def validate(self) -> None:
        _choice("objective.name", self.name, OBJECTIVES)


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
    # Attention snapshots of the probe texts at step 0 and at every evaluation (engine/inspect.py).
    probe_attention: bool = True
    # Weights-only checkpoints kept for comparing steps in the playground, one per evaluation (step 0 too),
    # thinned to at most this many (evenly spaced ones, and the newest); 0 keeps none ("latest" always stays).
    keep_checkpoints: int = 10

    def validate(self) -> None:
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
        if not self.learning_rate > 0:
            raise ConfigError("train.learning_rate must be above 0")
        if not 0 <= self.min_lr <= self.learning_rate:
            raise ConfigError("train.min_lr must be between 0 and train.learning_rate")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 0 and below 1")
        if self.weight_decay < 0:
            raise ConfigError("train.weight_decay cannot be negative")
        if self.grad_clip < 0:
            raise ConfigError("train.grad_clip cannot be negative (0 turns clipping off)")
        _choice("train.device", self.device, DEVICES)
        _choice("train.dtype", self.dtype, DTYPES)


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    SECTIONS = ("data", "tokenizer", "model", "objective", "train")

    def validate(self, *, need_data: bool = True) -> "RunConfig":
        """Raise ConfigError with a readable message for the first impossible value; return self."""
        for name in self.SECTIONS:
            if name == "data" and not need_data:
                continue
            getattr(self, name).validate()
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
            section_cls = type(f.default_factory())
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
            section, key = path.split(".", 1)
            if section not in d or key not in d[section]:
                raise ConfigError(f"unknown config field {path!r}")
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            d[section][key] = value
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
        values[name] = _coerce(f"{section}.{name}", value, default)
    return cls(**values)


def _coerce(path: str, value: Any, default: Any) -> Any:
    """Check a JSON value against the default's type, so a config file with "n_layer": "four" fails clearly."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path} must be true or false, not {value!r}")
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ConfigError(f"{path} must be a whole number, not {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{path} must be a number, not {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be text, not {value!r}")
        return value
    # Fields whose default is None accept an id (int) or a name (str) or null.
    if value is None or isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    raise ConfigError(f"{path} must be an id or a name, not {value!r}")


def _choice(path: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"{path} must be one of {', '.join(options)}, not {value!r}")


def _int_range(path: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ConfigError(f"{path} must be between {lo:,} and {hi:,}, not {value:,}")


# --------------------------------------------------------------------------------------------------- presets

PRESETS: dict[str, dict[str, Any]] = {
    # nanoGPT's shakespeare_char config scaled for a CPU ("baby GPT"): writes recognisable text in minutes.
    "baby": {
        "description": "nanoGPT's CPU 'baby GPT': 4 layers, 4 heads, 128 wide, context 64. Minutes on a CPU.",
        "tokenizer": {"kind": "char"},
        "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0, "bias": False},
        "train": {"batch_size": 12, "max_iters": 2000, "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 100,
                  "lr_decay_iters": 2000, "beta2": 0.99, "weight_decay": 0.1, "grad_clip": 1.0,
                  "eval_interval": 250, "eval_iters": 20},
    },
    "tiny": {
        "description": "A very small model for a quick look: 2 layers, 2 heads, 64 wide. Seconds on a CPU.",
        "tokenizer": {"kind": "char"},
        "model": {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64},
        "train": {"batch_size": 16, "max_iters": 300, "learning_rate": 2e-3, "min_lr": 2e-4, "warmup_iters": 20,
                  "lr_decay_iters": 300, "eval_interval": 50, "eval_iters": 10},
    },
    # nanoGPT's full shakespeare_char config: wants a GPU.
    "shakespeare-char": {
        "description": "nanoGPT's shakespeare_char: 6 layers, 6 heads, 384 wide, context 256. Wants a GPU.",
        "tokenizer": {"kind": "char"},
        "model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2, "bias": False},
        "train": {"batch_size": 64, "max_iters": 5000, "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 100,
                  "lr_decay_iters": 5000, "beta2": 0.99, "eval_interval": 250, "eval_iters": 200},
    },
    "small-bpe": {
        "description": "A small modern model: byte-level BPE, RoPE, RMSNorm, SwiGLU. 6 layers, 256 wide.",
        "tokenizer": {"kind": "bytebpe", "vocab_size": 2048},
        "model": {"n_layer": 6, "n_head": 8, "n_embd": 256, "block_size": 128, "pos_encoding": "rope",
                  "norm": "rmsnorm", "mlp": "swiglu"},
        "train": {"batch_size": 16, "max_iters": 3000, "learning_rate": 6e-4, "min_lr": 6e-5, "warmup_iters": 200,
                  "lr_decay_iters": 3000, "beta2": 0.95, "eval_interval": 250, "eval_iters": 20},
    },
}
DEFAULT_PRESET = "baby"


def preset(name: str) -> RunConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    d = {k: v for k, v in PRESETS[name].items() if k != "description"}
    return RunConfig.from_dict(copy.deepcopy(d))


# ------------------------------------------------------------------------------------------------- estimates

def param_count(m: ModelConfig, vocab_size: int) -> int:
    """Exact number of trainable parameters of engine.model.GPT (a test keeps the two in step)."""
    E, V, L, H = m.n_embd, vocab_size, m.n_layer, m.mlp_hidden
    b = 1 if m.bias else 0
    norm = E * (1 + b) if m.norm == "layernorm" else E
    attn = 3 * E * E + 3 * E * b + E * E + E * b
    if m.mlp == "swiglu":
        mlp = 2 * E * H + 2 * H * b + H * E + E * b
    else:
        mlp = 2 * E * H + H * b + E * b
    total = V * E + L * (2 * norm + attn + mlp) + norm
    if m.pos_encoding == "learned":
        total += m.block_size * E
    if not m.tie_embeddings:
        total += V * E
    return total


def flops_per_token(m: ModelConfig, vocab_size: int) -> int:
    """Training FLOPs per token (forward + backward): 6 per weight use plus attention scores (PaLM appendix B)."""
    E, L, T = m.n_embd, m.n_layer, m.block_size
    matmul_params = param_count(m, vocab_size) - vocab_size * E * (1 if m.tie_embeddings else 2)
    matmul_params -= m.block_size * E if m.pos_encoding == "learned" else 0
    matmul_params += vocab_size * E  # the output projection is a matmul even when tied
    return 6 * matmul_params + 12 * L * E * T


def memory_estimate(m: ModelConfig, vocab_size: int, batch_size: int, bytes_per_act: int = 4) -> dict[str, int]:
    """Rough training memory in bytes: weights, gradients, AdamW moments, and activations kept for backward."""
    n = param_count(m, vocab_size)
    B, T, E, L = batch_size, m.block_size, m.n_embd, m.n_layer
    # Per layer, about 34*B*T*E activation values plus the attention matrices (Korthikanti et al. 2022),
    # halved from their 16-bit byte counts to values; fused attention does not keep the T*T scores.
    act_values = L * (17 * B * T * E) + B * T * vocab_size * 2
    act = act_values * bytes_per_act
    weights = n * 4
    return {"weights": weights, "gradients": n * 4, "optimizer": n * 8, "activations": act,
            "total": weights + n * 12 + act}


# ---------------------------------------------------------------------------------------- human formatting

def human_count(n: float) -> str:
    """1234567 -> '1.2 M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"


def human_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} m"
    if m:
        return f"{m} m {s:02d} s"
    return f"{s} s"
