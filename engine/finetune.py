"""After pre-training: a run that starts from another run's weights (train.init_from) and trains all of them or
only LoRA's low-rank updates (train.finetune).

The parent fixes what the weights mean, so the child takes its model section and its vocabulary (prepare_run
calls inherit_from_parent before anything is written); the child picks its own dataset, objective and training
settings. A parent that was itself adapted with LoRA hands on its merged weights: the child starts from what the
parent generates. The weights load before the child's own LoRA layers are added, so every base tensor is the
parent's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from engine.checkpoint import CheckpointError, find_checkpoint, load_model_state, read_checkpoint_meta
from engine.config import ConfigError, RunConfig, TrainConfig
from engine.lora import LORA_KEYS, adapt, merged_state
from engine.model_classifier import HEAD
from engine.prompt_tuning import NAME as SOFT_PROMPT
from engine.prompt_tuning import add_soft_prompt
from engine.model_encoders import CrossAttention
from engine.objectives.catalog import objective_info
from engine.model_parts import MLP, SelfAttention, SwiGLU
from engine.store.errors import WorkspaceError

_ATTENTION = (SelfAttention, CrossAttention)
_FEED_FORWARD = (MLP, SwiGLU)


@dataclass
class Parent:
    """The run a new run starts from and the checkpoint it starts at."""

    run: dict
    checkpoint: dict  # the checkpoint row (path, step, ...)
    config: RunConfig  # the parent's config as that checkpoint stored it

    @property
    def words(self) -> str:
        return f"run {self.run['id']} ({self.run['name']}) at step {int(self.checkpoint['step']):,}"


def find_parent(ws, tc: TrainConfig) -> Parent | None:
    """The run and checkpoint train.init_from names, or None when it names none; a ConfigError (Start from
    run) when the run or the checkpoint is not there."""
    ref = tc.init_from.run
    if ref in (None, ""):
        return None
    return _load_run_at(ws, ref, tc.init_from.checkpoint, "Start from run", "train.init_from")


def _load_run_at(ws, ref, checkpoint: str | None, label: str, key: str) -> Parent:
    """Run `ref` at `checkpoint` (None: its newest) with the config that checkpoint stored; a ConfigError
    starting with `label` (the field's name on screen) when the run, the checkpoint or its config is not there."""
    try:
        run = ws.run(ref)
        ck = find_checkpoint(ws, run["id"], checkpoint)
        meta = read_checkpoint_meta(ck["path"]).get("meta") or {}
        config = RunConfig.from_dict(meta["config"])
    except (WorkspaceError, CheckpointError) as e:
        raise ConfigError(f"{label}: {e}", key) from None
    except (KeyError, TypeError, ConfigError) as e:
        raise ConfigError(
            f"{label}: the checkpoint of run {run['id']} does not say how its model was built ({e})", key
        ) from None
    return Parent(run, ck, config)


def _same_vocabulary(tokenizer_id: int, chosen_tokenizer: dict | None) -> bool:
    """Whether a chosen vocabulary (None: none chosen) is that tokenizer or a copy of it on another dataset."""
    return chosen_tokenizer is None or tokenizer_id in (chosen_tokenizer["id"], chosen_tokenizer.get("copied_from"))


def _reading_with(cfg: RunConfig, owner: Parent) -> RunConfig:
    """cfg with the tokenizer section of `owner` (a parent or a teacher), naming its vocabulary by id."""
    out = cfg.copy()
    out.tokenizer = owner.config.tokenizer
    out.tokenizer.tokenizer = owner.run["tokenizer_id"]
    return out


def inherit_from_parent(cfg: RunConfig, parent: Parent, chosen_tokenizer: dict | None) -> RunConfig:
    """cfg with the parent's model and the parent's vocabulary (its id in tokenizer.tokenizer; prepare_run
    encodes another dataset with it). ConfigError when the config chose another vocabulary, or an objective the
    parent's architecture cannot train."""
    if not _same_vocabulary(parent.run["tokenizer_id"], chosen_tokenizer):
        raise ConfigError(
            f"the run starts from {parent.words}, which reads text with its own vocabulary; leave Tokenizer "
            "empty (the parent's vocabulary is used) or start from random weights",
            "tokenizer.tokenizer",
            also=("train.init_from",),
        )
    info = objective_info(cfg.objective.name)
    arch = parent.config.model.arch
    if arch not in info.archs:
        raise ConfigError(
            f"{info.label} trains {' or '.join(info.archs)} models, and {parent.words} is {arch_words(arch)}: "
            "start from a run of that architecture or choose another objective",
            "objective.name",
            also=("train.init_from",),
        )
    out = _reading_with(cfg, parent)
    out.model = parent.config.model
    out.train.init_from.run = parent.run["id"]
    out.train.init_from.step = int(parent.checkpoint["step"])
    try:
        return out.validate()
    except ConfigError as e:  # segments the parent's model lacks, say
        raise ConfigError(f"{e.message} (the model comes from {parent.words})", "train.init_from") from None


def arch_words(arch: str) -> str:
    return {"decoder": "a decoder", "encoder": "an encoder", "encoder-decoder": "an encoder-decoder"}[arch]


def parent_state(parent: Parent, map_location="cpu") -> dict[str, torch.Tensor]:
    """The parent checkpoint's weights as a plain model's state dict (a LoRA parent's updates merged)."""
    state = load_model_state(parent.checkpoint["path"], map_location)
    if any(k.endswith(LORA_KEYS) for k in state):
        ptc = parent.config.train
        state = merged_state(state, ptc.lora_alpha / ptc.lora_rank)
    return state


def load_parent_weights(model: nn.Module, parent: Parent, map_location="cpu") -> None:
    """Load the parent's weights into the child's (not yet adapted) model, strictly but for a classification
    head (a parent without one, or with one of other classes, leaves the child's new); a CheckpointError in the
    user's words when they do not fit."""
    state = parent_state(parent, map_location)
    expected = model.state_dict()
    head = f"{HEAD}."
    # A parent's own soft prompt stays with the parent: a child starts its own, or none.
    state = {k: v for k, v in state.items() if not k.startswith(f"{SOFT_PROMPT}.")}
    state = {
        k: v for k, v in state.items() if not k.startswith(head) or (k in expected and expected[k].shape == v.shape)
    }
    missing = sorted(k for k in set(expected) - set(state) if not k.startswith(head))
    wrong = [k for k, t in expected.items() if k in state and state[k].shape != t.shape]
    if missing or wrong or set(state) - set(expected):
        raise CheckpointError(
            f"the weights of {parent.words} do not fit this run's model "
            f"({', '.join((missing + wrong)[:3]) or 'extra tensors'}); start it from a run of the same model"
        )
    model.load_state_dict(state, strict=not any(k.startswith(head) for k in set(expected) - set(state)))


def _lora_filter(targets: str):
    classes = {"attention": _ATTENTION, "mlp": _FEED_FORWARD, "all": _ATTENTION + _FEED_FORWARD}[targets]
    return lambda parent, name: isinstance(parent, classes)


def prepare_for_finetune(model: nn.Module, tc: TrainConfig) -> list[str]:
    """Make `model` the one train.finetune trains: for "lora", every weight frozen and LoRA layers added to the
    chosen matrices (their names returned); for "prompt_tuning", every weight frozen and a soft prompt added
    (["soft_prompt"]); for "full" nothing changes ([] returned). A classification head trains in every mode."""
    if tc.finetune == "full":
        return []
    for p in model.parameters():
        p.requires_grad_(False)
    if tc.finetune == "prompt_tuning":
        add_soft_prompt(model, tc.prompt_tokens)
        adapted = [SOFT_PROMPT]
    else:
        adapted = adapt(model, _lora_filter(tc.lora_targets), tc.lora_rank, tc.lora_alpha, tc.lora_dropout)
    if hasattr(model, HEAD):  # a new classification head learns whole, as PEFT's modules_to_save
        for p in getattr(model, HEAD).parameters():
            p.requires_grad_(True)
    return adapted


def objective_config(cfg: RunConfig) -> RunConfig:
    """The config the run's objective reads: a prompt-tuned run's windows are its soft prompt shorter."""
    if cfg.train.finetune != "prompt_tuning":
        return cfg
    out = cfg.copy()
    out.model.block_size -= cfg.train.prompt_tokens
    return out


def build_run_model(build, cfg: RunConfig, vocab_size: int) -> nn.Module:
    """build(model config, vocab size) with the run's fine-tuning layers added, so its checkpoints load."""
    model = build(cfg.model, vocab_size)
    prepare_for_finetune(model, cfg.train)
    return model


def trainable_words(model: nn.Module, tc: TrainConfig, human_count) -> str:
    """'12.3 k trainable of 804 k parameters (LoRA rank 8 on attention)', or '804 k parameters' when all train."""
    total = sum(p.numel() for p in model.parameters())  # each shared tensor once
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if trainable == total:
        return f"{human_count(total)} parameters"
    how = {
        "lora": f" (LoRA rank {tc.lora_rank} on {tc.lora_targets})",
        "prompt_tuning": f" (prompt tuning, {tc.prompt_tokens} soft-prompt vectors)",
    }.get(tc.finetune, "")
    return f"{human_count(trainable)} trainable of {human_count(total)} parameters{how}"


# ------------------------------------------------------------------------------------------ distillation's teacher


def find_teacher(ws, cfg: RunConfig) -> Parent | None:
    """The finished run objective.teacher_run names, for an objective that learns from one (None otherwise); a
    ConfigError (Teacher run) when it is not there, is not a decoder, or reads a shorter context than the
    student."""
    if not objective_info(cfg.objective.name).needs_teacher:
        return None
    teacher = _load_run_at(ws, cfg.objective.teacher_run, None, "Teacher run", "objective.teacher_run")
    config = teacher.config
    if config.model.arch != "decoder":
        raise ConfigError(
            f"the teacher, {teacher.words}, is {arch_words(config.model.arch)}: a decoder student learns from a "
            "decoder teacher's next-token guesses",
            "objective.teacher_run",
        )
    if cfg.model.block_size > config.model.block_size:
        raise ConfigError(
            f"Context length ({cfg.model.block_size}) is longer than the teacher's ({config.model.block_size}), "
            "which cannot guess beyond its own: choose at most that",
            "model.block_size",
            also=("objective.teacher_run",),
        )
    return teacher


def use_teacher_vocabulary(cfg: RunConfig, teacher: Parent, chosen_tokenizer: dict | None) -> RunConfig:
    """cfg reading text with the teacher's vocabulary (the student must name the same tokens to learn the
    teacher's guesses); ConfigError when the config chose another vocabulary (or starts from a run with one)."""
    if not _same_vocabulary(teacher.run["tokenizer_id"], chosen_tokenizer):
        raise ConfigError(
            f"the teacher, {teacher.words}, reads text with another vocabulary than this run's: distillation "
            "needs the same tokens on both sides; leave Tokenizer empty to use the teacher's",
            "tokenizer.tokenizer",
            also=("objective.teacher_run",),
        )
    out = _reading_with(cfg, teacher)
    out.objective.teacher_run = teacher.run["id"]
    return out
