"""What the Train panel says, without Qt: the numbers on its cards (the objective's metrics among them), the summary
of a run's settings (and how your current settings differ from them), and the line that says how a run stands.

The panel (studio/panels/training.py) shows these; they are plain functions of a RunConfig and rows.
"""

from __future__ import annotations

import math
from html import escape

from engine.config import ConfigError, RunConfig, field_label, param_count
from engine.format import human_count, lower_first, plural
from engine.objectives.catalog import METRIC_LABELS, OBJECTIVE_CATALOG

# The words for a run's Status.state on the panel's state line.
STATE_WORDS = {
    "starting": "Starting…",
    "training": "Training",
    "paused": "Paused",
    "stopping": "Stopping and saving a checkpoint…",
    "finished": "Finished",
    "stopped": "Stopped",
    "failed": "Failed",
}


def status_text(state: str, message: str = "") -> str:
    """How a run stands, in words: the engine's own sentence for an ended run, when it gave one."""
    text = STATE_WORDS.get(state, state)
    if message and state in ("failed", "stopped", "finished"):
        text = message[:1].upper() + message[1:]
    if state == "stopped":
        text += " — checkpoint saved; Resume run continues it"
    return text


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """The settings (as the panels label them) in which Train would start something other than run config `a`;
    the seed and the device aside."""
    da, db = a.to_dict(), b.to_dict()
    # With the same tokenizer, its kind and size are its own, whatever an older run stored beside them.
    same_tokenizer = a.tokenizer.tokenizer is not None and a.tokenizer.tokenizer == b.tokenizer.tokenizer
    out = []
    for section, part in db.items():
        for key, value in (part or {}).items() if isinstance(part, dict) else ():
            if (section, key) in (("train", "seed"), ("train", "device")) or (
                same_tokenizer and (section, key) in (("tokenizer", "kind"), ("tokenizer", "vocab_size"))
            ):
                continue
            if (da.get(section) or {}).get(key) != value:
                out.append(field_label(f"{section}.{key}"))
    return out


def differs_text(names: list[str]) -> str:
    shown = ", ".join(names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def objective_label(cfg: RunConfig) -> str:
    info = OBJECTIVE_CATALOG.get(cfg.objective.name)
    return info.label if info is not None else cfg.objective.name


def config_html(
    cfg: RunConfig, dataset: dict | None, tokenizer: dict | None, fallback_vocab: int, short: bool = False
) -> str:
    """A run's settings in a few lines of rich text; `fallback_vocab` sizes the model when no tokenizer says."""
    m, t = cfg.model, cfg.train
    vocab = int(tokenizer["vocab_size"]) if tokenizer and tokenizer.get("vocab_size") else fallback_vocab
    try:
        params = human_count(param_count(m, vocab))
    except (ConfigError, ValueError, ZeroDivisionError):
        params = "?"
    data = escape(dataset["name"]) if dataset else "none chosen (Data panel)"
    if tokenizer:
        tok = (
            f"{escape(tokenizer.get('name', ''))} ({escape(str(tokenizer.get('kind', '')))}, "
            f"{int(tokenizer.get('vocab_size') or 0):,} tokens)"
        )
    else:
        tok = f"a new {escape(cfg.tokenizer.kind)} vocabulary, trained first"
    # A decoder is what every run was before architectures were a choice: only the others are named.
    arch = "" if m.arch == "decoder" else f"{escape(m.arch[:1].upper() + m.arch[1:])}, "
    model = (
        f"{arch}{plural(m.n_layer, 'layer')} × {plural(m.n_head, 'head')} × {m.n_embd} wide, "
        f"context {m.block_size} · "
        f"<b>{params} parameters</b>"
    )
    if short:
        return f"{model} · {data} · {tok} · {plural(t.max_iters, 'step')}"
    tokens_step = t.batch_size * m.block_size * t.gradient_accumulation_steps
    return (
        f"<b>Model</b> {model}<br>"
        f"<b>Data</b> {data} · <b>Vocabulary</b> {tok} · <b>Objective</b> {escape(objective_label(cfg))}<br>"
        f"<b>Training</b> {plural(t.max_iters, 'step')} × {tokens_step:,} tokens/step "
        f"(batch {t.batch_size}) = {human_count(t.max_iters * tokens_step)} tokens · "
        f"learning rate {t.learning_rate:g} · eval every "
        f"{'step' if t.eval_interval == 1 else plural(t.eval_interval, 'step')}"
        f"{start_html(cfg)}"
    )


def start_html(cfg: RunConfig) -> str:
    """' · <b>from run 3</b> at step 400, LoRA rank 8 on attention' (the training line's end), or '' from random
    weights."""
    init, t = cfg.train.init_from, cfg.train
    if init.run in (None, ""):
        return ""
    at = f"step {init.step:,}" if isinstance(init.step, int) else escape(str(init.checkpoint))
    how = {
        "lora": f"LoRA rank {t.lora_rank} on {escape(t.lora_targets)}",
        "prompt_tuning": f"prompt tuning, {t.prompt_tokens} soft-prompt vectors",
    }.get(t.finetune, "every weight trains")
    return f" · <b>from run {escape(str(init.run))}</b> at {at}, {how}"


# --------------------------------------------------------------------------------------- the objective's metrics

ACCURACIES = ("accuracy", "masked_accuracy", "pair_accuracy", "class_accuracy")
METRIC_TIPS = {
    "perplexity": "e to the power of the loss: the model is as unsure as a pick among this many equally likely "
    "tokens. Lower is better; 1 is a perfect guess every time.",
    "accuracy": "The share of predicted tokens whose most likely guess was the right one.",
    "masked_accuracy": "The share of masked tokens the model guessed right (its most likely guess).",
    "pair_accuracy": "The share of pairs the model judged right; 50 % is chance.",
    "kl": "How far the student's guesses are from the teacher's, in nats per token (KL divergence). Lower is "
    "closer; 0 guesses exactly as the teacher does.",
    "class_accuracy": "The share of validation texts whose class the model named right (every labelled text once).",
    "macro_f1": "The F1 score of each class (how well its texts are found without taking others for them), "
    "averaged so a rare class counts as much as a common one. 1 is perfect.",
    "reward": "The mean reward of the texts the model wrote for the evaluation's prompts (the same prompts every "
    "time). Higher is what you asked for.",
    "ref_kl": "How far the model's guesses have moved from the run it started from, in nats per written token (KL "
    "divergence). A large value means it may be gaming the reward instead of writing as before.",
    "entropy": "How unsure the model is of each next token it writes, in nats. Falling towards 0 means it writes "
    "the same thing every time.",
}


def run_metrics(objective: str, seen: list[str]) -> list[str]:
    """The metrics the Train panel shows for a run: those its objective reports, then any others it has values
    for (an objective this studio does not know)."""
    info = OBJECTIVE_CATALOG.get(objective)
    names = list(info.metrics) if info is not None else []
    return names + [m for m in seen if m not in names]


def metric_caption(name: str, split: str = "val") -> str:
    """'Val masked-token accuracy' (the card's caption)."""
    label = METRIC_LABELS.get(name, name.replace("_", " ").capitalize())
    return f"{split.capitalize()} {lower_first(label)}"


def metric_text(name: str, value: float | None) -> str:
    """A metric as the cards show it: accuracies as '41.2 %', perplexity as '5.12'."""
    if value is None or not math.isfinite(value):
        return "—"
    if name in ACCURACIES or name.endswith("accuracy"):
        return f"{100 * value:.1f} %"
    if name in ("kl", "ref_kl", "entropy"):
        return f"{value:.3f} nats"
    if name == "macro_f1":
        return f"{value:.3f}"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"


def metric_tooltip(name: str, train: float | None) -> str:
    """What the metric means, and its value on the training text (the card shows the validation text's)."""
    tip = METRIC_TIPS.get(name, "")
    on_train = f"On training text: {metric_text(name, train)}." if train is not None else ""
    return " ".join(t for t in (f"Measured on held-out text at the latest evaluation. {tip}", on_train) if t)


def loss_over_text(objective: str) -> str:
    """'This run's loss averages over the masked tokens.' (the loss plot's tooltip adds it; '' for every token,
    which is what the plot's own words say)."""
    info = OBJECTIVE_CATALOG.get(objective)
    if info is None or info.loss_over == "every token":
        return ""
    return f"This run's loss averages over {info.loss_over}, not over every token."
