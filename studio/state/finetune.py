"""Fine-tuning a run, as the Fine-tune dialog offers it: the choices with their defaults, the RunConfig they make,
what LoRA trains in words, and a run's lineage (the run it started from, the runs started from it).

Qt-free, so tested without a window. The engine takes the model and vocabulary from the parent
(engine/finetune.py); the config built here says so too, so the Train panel shows what will really train.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import ConfigError, RunConfig, lora_param_count, param_count
from engine.format import human_count
from engine.objectives.catalog import OBJECTIVE_CATALOG, compatible_objectives
from studio.state.curves import RunCurves

# What each mode trains, in the dialog's words.
MODES = (
    ("full", "Full: every weight trains"),
    ("lora", "LoRA: small low-rank updates, the model frozen"),
    ("prompt_tuning", "Prompt tuning: learned vectors before the input, the model frozen (decoders, encoders)"),
)
LORA_MATRICES = (
    ("attention", "Attention (query, key, value, output)"),
    ("mlp", "Feed-forward layers"),
    ("all", "Attention and feed-forward"),
)
FINISHED_ENOUGH = ("finished", "stopped", "interrupted", "failed")  # states whose run has a checkpoint to start from


@dataclass
class FinetuneChoices:
    dataset: int
    objective: str
    checkpoint: str = "latest"
    mode: str = "full"
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = "attention"
    prompt_tokens: int = 16
    steps: int = 500
    learning_rate: float = 1e-4
    # REINFORCE: the reward line (engine/rewards.py), its KL penalty, the samples per prompt, and typed prompts
    # (none: beginnings drawn from the dataset).
    reward: str = "contains:love"
    kl_coef: float = 0.1
    samples_per_prompt: int = 4
    prompts: tuple[str, ...] = ()


def parent_config(run: dict) -> RunConfig:
    """The parent run's stored config (ConfigError when it cannot be read)."""
    try:
        return RunConfig.from_dict(run.get("config") or {})
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"run {run.get('id')} has no readable configuration ({e})") from None


def default_choices(run: dict) -> FinetuneChoices:
    """What the dialog starts with: the parent's dataset and objective, a quarter of its steps (100 to 2,000) and
    a tenth of its learning rate, as fine-tuning usually goes."""
    cfg = parent_config(run)
    steps = max(100, min(2000, cfg.train.max_iters // 4))
    return FinetuneChoices(
        dataset=int(run.get("dataset_id") or cfg.data.dataset or 0),
        objective=cfg.objective.name,
        steps=steps,
        learning_rate=float(f"{cfg.train.learning_rate / 10:.2g}"),
    )


def objective_choices(run: dict) -> list[str]:
    """The objectives the parent's architecture trains (a decoder cannot learn masked LM by fine-tuning), but
    not those that need a teacher (distillation is chosen in the Objective panel, with its teacher)."""
    names = compatible_objectives(parent_config(run).model.arch)
    return [n for n in names if not OBJECTIVE_CATALOG[n].needs_teacher]


def finetune_config(run: dict, choices: FinetuneChoices) -> RunConfig:
    """The config of a run that starts from `run` with `choices`; ConfigError (in the panels' words) when the
    choices cannot train."""
    cfg = parent_config(run)
    cfg.data.dataset = choices.dataset
    cfg.tokenizer.tokenizer = None  # the engine takes the parent's vocabulary, on this dataset's text
    cfg.objective.name = choices.objective
    t = cfg.train
    t.init_from.run, t.init_from.checkpoint = run["id"], choices.checkpoint
    t.finetune = choices.mode
    t.lora_rank, t.lora_alpha, t.lora_targets = choices.lora_rank, choices.lora_alpha, choices.lora_targets
    t.prompt_tokens = choices.prompt_tokens
    t.max_iters = t.lr_decay_iters = choices.steps
    t.warmup_iters = min(t.warmup_iters, choices.steps // 10)
    t.eval_interval = min(t.eval_interval, max(1, choices.steps // 4))
    t.learning_rate = choices.learning_rate
    t.min_lr = min(t.min_lr, choices.learning_rate / 10)
    if choices.objective == "reinforce":
        with_reward(cfg, choices)
    return cfg.validate()


def with_reward(cfg: RunConfig, choices: FinetuneChoices) -> None:
    """REINFORCE's choices in cfg. Its evaluation writes samples_per_prompt texts for every prompt of a batch, so it
    reads fewer batches than a text objective's, and often enough for the samples view to follow the run."""
    o, t = cfg.objective, cfg.train
    o.reward, o.kl_coef, o.samples_per_prompt = choices.reward.strip(), choices.kl_coef, choices.samples_per_prompt
    o.prompts = [line.strip() for line in choices.prompts if line.strip()]
    o.baseline = "mean" if choices.samples_per_prompt >= 2 else "moving_average"
    t.eval_iters = min(t.eval_iters, 4)
    t.eval_interval = max(1, min(t.eval_interval, choices.steps // 10))
    room = cfg.model.block_size // 2  # the sample's half of the context; the prompt has the other
    o.max_new_tokens, o.prompt_length = min(o.max_new_tokens, room), min(o.prompt_length, room)


def labels_problem(objective: str, dataset: dict | None) -> str:
    """Why the chosen dataset cannot train the chosen objective ('' when it can): classification and instruction
    tuning learn from a dataset imported with a label column."""
    info = OBJECTIVE_CATALOG.get(objective)
    if info is None or not info.needs_labels or dataset is None or dataset.get("has_labels"):
        return ""
    what = "a label for each text" if objective == "classification" else "a response for each prompt"
    return (
        f"{info.label} needs {what}, and {dataset.get('name')!r} was imported without a label column: choose a "
        "dataset imported with one (Data panel: Label column)"
    )


def trainable_text(run: dict, choices: FinetuneChoices, vocab_size: int) -> str:
    """'LoRA trains 6.1 k of 812 k parameters (0.75 %)', or 'Every one of the 812 k parameters trains'."""
    m = parent_config(run).model
    total = param_count(m, vocab_size)
    if choices.mode == "prompt_tuning":
        soft = choices.prompt_tokens * m.n_embd
        return (
            f"Prompt tuning trains {human_count(soft)} parameters ({choices.prompt_tokens} vectors of {m.n_embd}) "
            f"before the {human_count(total)} frozen ones; the model reads {choices.prompt_tokens} fewer tokens of "
            "text at a time."
        )
    if choices.mode != "lora":
        return f"Every one of the {human_count(total)} parameters trains."
    lora = lora_param_count(m, choices.lora_rank, choices.lora_targets)
    return (
        f"LoRA trains {human_count(lora)} new parameters beside the {human_count(total)} frozen ones "
        f"({100 * lora / max(1, total):.2g} % as many)."
    )


def parent_of(run: dict) -> int | None:
    """The id of the run `run` started from (train.init_from.run), or None."""
    init = ((run.get("config") or {}).get("train") or {}).get("init_from") or {}
    parent = init.get("run") if isinstance(init, dict) else None
    return int(parent) if isinstance(parent, int) or (isinstance(parent, str) and parent.isdigit()) else None


def lineage_text(run: dict, runs: list[dict]) -> str:
    """'Started from run 3 (hamlet 4L) at latest, with LoRA · run 7 started from it', or ''."""
    parts = []
    parent = parent_of(run)
    if parent is not None:
        row = next((r for r in runs if r.get("id") == parent), None)
        name = f" ({row.get('name')})" if row and row.get("name") else " (deleted)" if row is None else ""
        train = (run.get("config") or {}).get("train") or {}
        how = {"lora": ", with LoRA", "prompt_tuning": ", with prompt tuning"}.get(train.get("finetune"), "")
        at = (train.get("init_from") or {}).get("checkpoint") or "latest"
        parts.append(f"Started from run {parent}{name} at {at}{how}")
    children = [r.get("id") for r in runs if parent_of(r) == run.get("id")]
    if children:
        listed = ", ".join(f"run {c}" for c in children)
        parts.append(f"{listed} started from it")
    text = " · ".join(parts)
    return text[:1].upper() + text[1:]


def from_cell(run: dict) -> str:
    """The runs table's "From" cell: '← 3' (LoRA marked), '' for a run from random weights."""
    parent = parent_of(run)
    if parent is None:
        return ""
    mode = ((run.get("config") or {}).get("train") or {}).get("finetune")
    return f"← {parent}" + {"lora": " LoRA", "prompt_tuning": " prompt"}.get(mode, "")


def start_step(run: dict) -> int | None:
    """The parent's step the run started from (the engine writes it into train.init_from.step)."""
    init = ((run.get("config") or {}).get("train") or {}).get("init_from") or {}
    step = init.get("step") if isinstance(init, dict) else None
    return int(step) if isinstance(step, int) else None


def parent_series(rows: list[dict], start: int) -> tuple[list, list, list, list]:
    """(train steps, train losses, val steps, val losses) of the parent's metric rows up to `start`, shifted so
    the parent ends at step 0 where the child begins: the Train panel draws them faded, leading into the child."""
    curves = RunCurves(None)
    curves.merge_history(rows)
    train = [(s - start, v) for s, v in zip(curves.steps, curves.loss) if s <= start]
    val = [(s - start, v) for s, v in zip(curves.val_steps, curves.val_loss) if s <= start]
    return [s for s, _ in train], [v for _, v in train], [s for s, _ in val], [v for _, v in val]
