"""Before a run trains: its config checked against this machine and its data, its vocabulary found or trained
(with the special tokens its objective needs), its row created (prepare_run). engine/train.py then trains it.

Everything here that can go wrong is the user's to fix, so it fails early, before anything is written, with a
ConfigError naming the field (or a WorkspaceError / TokenizerError for a dataset or vocabulary that is not there).
"""

from __future__ import annotations

from engine import tokenizer as tk
from engine import training_events as ev
from engine.preflight import preflight
from engine.config import ConfigError, RunConfig, unknown_share_warning
from engine.device import autocast_dtype, pick_device
from engine.reward_model import check_classifiers
from engine.rewards import parse_reward
from engine.finetune import find_parent, find_teacher, inherit_from_parent, use_teacher_vocabulary
from engine.objectives.catalog import ObjectiveInfo, objective_info
from engine.objectives.classification import dataset_classes
from engine.objectives.sft import require_pairs
from engine.objectives.text_source import missing_specials_error
from engine.training_data import TokenData


def check_device(cfg: RunConfig) -> None:
    """ConfigError when train.device / train.dtype cannot be had on this machine (cuda without a GPU, ...)."""
    try:
        autocast_dtype(pick_device(cfg.train.device), cfg.train.dtype)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"Device / Precision: {e}", "train.device", also=("train.dtype",)) from None


def prepare_run(
    ws, cfg: RunConfig, name: str | None = None, *, on_event: ev.EventFn | None = None, control=None
) -> dict:
    """Check the config, find its dataset, find or train its tokenizer, and create the run row (returned).

    Raises ConfigError (before anything is written) for an impossible config, a chosen tokenizer that lacks
    the special tokens the objective needs or a context too short for it, and WorkspaceError / TokenizerError for
    a missing dataset or tokenizer. A vocabulary trained for the run gets the objective's special tokens. The
    stored config names the dataset and tokenizer by id. A stop asked of `control` (an engine.train.Control)
    cancels a vocabulary being trained for the run.
    """
    emit = ev.as_handler(on_event)
    cfg = cfg.copy().validate()
    check_device(cfg)
    ds = ws.dataset(cfg.data.dataset)
    parent = find_parent(ws, cfg.train)
    if parent is not None:
        cfg = inherit_from_parent(cfg, parent, _chosen_tokenizer(ws, cfg))
    teacher = find_teacher(ws, cfg)
    if teacher is not None:
        cfg = use_teacher_vocabulary(cfg, teacher, _chosen_tokenizer(ws, cfg))
    if cfg.objective.name == "classification":
        cfg = with_classes(cfg, dataset_classes(ws, ds["id"]))
    elif objective_info(cfg.objective.name).needs_labels:
        require_pairs(ws, ds["id"])
    elif cfg.objective.name == "reinforce":
        check_classifiers(ws, parse_reward(cfg.objective.reward))
    tcfg = cfg.tokenizer
    need = cfg.model.block_size + 1
    # A character is at most one char token or four byte-level tokens, so a text this short is too short
    # whichever tokenizer comes; saying so now spares training a tokenizer for nothing.
    if (ds.get("train_chars") or 0) * 4 < need:
        raise ConfigError(_too_short(cfg, ds, f"{ds.get('train_chars') or 0:,} characters"), "model.block_size")
    # Before a vocabulary is trained for it: a model that cannot fit is refused now, in words.
    for warning in preflight(cfg, int(tcfg.vocab_size), pick_device(cfg.train.device)):
        emit(ev.Notice("warning", warning))
    info = objective_info(cfg.objective.name)
    chosen = tcfg.tokenizer not in (None, "")

    def progress(fraction: float, message: str = "") -> None:
        emit(ev.Progress(fraction=float(fraction), message=message))

    cancelled = (lambda: control.stop_requested) if control is not None else (lambda: False)
    if parent is not None or teacher is not None:  # their vocabulary, reading this run's dataset
        tok = ws.tokenizer_for_dataset(tcfg.tokenizer, ds["id"], progress=progress, cancelled=cancelled)
        require_specials(info, tok)
    elif chosen:
        tok = ws.tokenizer(tcfg.tokenizer)
        check_tokenizer_dataset(tok, ds)
        require_specials(info, tok)
    else:
        options = run_vocabulary_options(cfg)
        tok = ws.find_or_train_tokenizer(
            ds["id"], tcfg.kind, tcfg.vocab_size, progress=progress, cancelled=cancelled, **options
        )
    files = ws.token_files(tok["id"])
    n_train = TokenData(files["train"], files["dtype"]).n_tokens
    if n_train < need:
        raise ConfigError(_too_short(cfg, ds, f"{n_train:,} tokens"), "model.block_size")
    check_objective(ws, cfg, tok["id"])
    _report_vocabulary(emit, tok, ds, trained_here=not chosen and parent is None and teacher is None)
    if parent is not None:
        emit(ev.Notice("info", f"starts from the weights of {parent.words}, with its model and vocabulary"))
    cfg.data.dataset = ds["id"]
    # The stored config describes the vocabulary the run really uses (not the size asked of a new one).
    cfg.tokenizer.tokenizer = tok["id"]
    cfg.tokenizer.kind = tok.get("kind", cfg.tokenizer.kind)
    cfg.tokenizer.vocab_size = int(tok.get("vocab_size") or cfg.tokenizer.vocab_size)
    m = cfg.model
    name = name or f"{ds['name']} {m.n_layer}L-{m.n_head}H-{m.n_embd}"
    return ws.create_run(name, cfg.to_dict(), ds["id"], tok["id"])


def with_classes(cfg: RunConfig, classes: list[str]) -> RunConfig:
    """cfg with the dataset's class names and a head of that many outputs (written before the run exists, so the
    run's checkpoints know their head)."""
    out = cfg.copy()
    out.objective.classes = list(classes)
    out.model.n_classes = len(classes)
    return out.validate()


def _chosen_tokenizer(ws, cfg: RunConfig) -> dict | None:
    ref = cfg.tokenizer.tokenizer
    return ws.tokenizer(ref) if ref not in (None, "") else None


def check_tokenizer_dataset(tok: dict, ds: dict) -> None:
    """ConfigError (Tokenizer) for a chosen vocabulary of another dataset than the run's."""
    if tok["dataset_id"] != ds["id"]:
        raise ConfigError(
            f"the vocabulary {tok['name']!r} was trained on another dataset than "
            f"{ds['name']!r}; choose a vocabulary of this dataset or let one be trained",
            "tokenizer.tokenizer",
            also=("data.dataset",),
        )


def run_vocabulary_options(cfg: RunConfig) -> dict:
    """The TokenizerSpec options of the vocabulary a run trains for itself: the special tokens its objective
    needs that the kind lacks, and the sentinels; {} for causal LM, so its runs find the vocabularies they did.
    ConfigError (Vocabulary size) when the size leaves no room for them."""
    options = tk.spec_options_for(cfg.tokenizer.kind, objective_info(cfg.objective.name).needs)
    try:
        tk.make_spec(cfg.tokenizer.kind, cfg.tokenizer.vocab_size, **options)
    except tk.TokenizerError as e:
        raise ConfigError(f"Vocabulary size: {e}", "tokenizer.vocab_size") from None
    return options


def require_specials(info: ObjectiveInfo, tok: dict) -> None:
    """ConfigError (Tokenizer) when the chosen vocabulary lacks a special token the objective needs, naming the
    tokens and the two ways out."""
    missing = tk.missing_specials(tok["spec"], info.needs)
    if missing:
        raise missing_specials_error(info, missing, tok["name"])


def check_objective(ws, cfg: RunConfig, tokenizer_id: int) -> None:
    """The objective's own checks on the run's training tokens (its special tokens, a context long enough for
    its spans or sentence pairs), before the run row exists."""
    from engine.objectives.registry import get_objective
    from engine.objectives.text_source import TokenSource

    get_objective(cfg).check(TokenSource.from_workspace(ws, tokenizer_id, "train"))


def _report_vocabulary(emit: ev.EventFn, tok: dict, ds: dict, trained_here: bool) -> None:
    """Warn (a warning Notice: the studio's status bar, the CLI's stderr) when the run's vocabulary reads much
    of the text as [UNK]: the model would learn to write [UNK], with a validation loss that looks good."""
    warning = unknown_share_warning(tok.get("unk_share"), ds["name"], tok.get("unk_examples"))
    if warning:
        emit(ev.Notice("warning", f"vocabulary {tok['name']!r}: {warning}"))
    elif trained_here:
        emit(ev.Notice("info", f"trained the vocabulary {tok['name']!r} ({tok['vocab_size']:,} tokens) for this run"))


def _too_short(cfg: RunConfig, ds: dict, size: str) -> str:
    return (
        f"Context length ({cfg.model.block_size:,}) is too long for dataset {ds['name']!r}: its training text "
        f"has {size}, fewer than the context length + 1; choose a shorter context length or import more text"
    )
