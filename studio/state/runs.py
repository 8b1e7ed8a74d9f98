"""What the Runs panel shows, without Qt: when a run was made, its configuration as rows of labelled settings (or
only the settings in which two runs differ), the cells that follow a run while it trains, each run's objective and
architecture, and the note the overlaid curves get when the runs' losses are not comparable.

The panel (studio/panels/runs.py) puts these in its tables; labels are the ones the other panels use (the shared
list in engine.config, else the Model panel's form in studio/state/model_form.py).
"""

from __future__ import annotations

from engine import config as _config
from engine.objectives.catalog import OBJECTIVE_CATALOG, losses_comparable
from studio.run_names import status_word
from studio.state.model_form import ALL_FIELDS

# Config sections in the order of the sidebar, named as the panels are.
SECTION_NAMES = {
    "data": "Data",
    "tokenizer": "Vocabulary",
    "model": "Model",
    "objective": "Objective",
    "train": "Training",
}
# Settings that no panel form shows under a label of its own (the Model panel's forms name the rest).
OTHER_LABELS = {
    ("data", "dataset"): "Dataset",
    ("tokenizer", "tokenizer"): "Tokenizer",
    ("tokenizer", "kind"): "Tokenizer kind",
    ("tokenizer", "vocab_size"): "Vocabulary size",
    ("objective", "name"): "Objective",
    ("train", "probe_attention"): "Record attention",
    ("train", "keep_checkpoints"): "Checkpoints kept",
}


# ------------------------------------------------------------------------------------------- config as a table


def _field_specs() -> dict:
    """(section, key) -> the Model panel's (section, key, label, kind, options, tooltip), so labels match it."""
    return {(f[0], f[1]): f for f in ALL_FIELDS}


def setting_label(section: str, key: str, specs: dict | None = None) -> str:
    """The label the panels show for a setting: the shared list in engine.config, else the Model panel's form."""
    shared = getattr(_config, "FIELD_LABELS", {}).get(f"{section}.{key}")
    if shared:
        return shared
    spec = (specs if specs is not None else _field_specs()).get((section, key))
    if spec is not None:
        return spec[2]
    return OTHER_LABELS.get((section, key)) or key.replace("_", " ").capitalize()


def setting_value(section: str, key: str, value, specs: dict | None = None, names: dict | None = None) -> str:
    """A config value as the panels show it: choices by their label, Yes/No, 12,000, names instead of ids."""
    spec = (specs if specs is not None else _field_specs()).get((section, key))
    if value is None:
        return "—"
    if isinstance(value, dict) and (section, key) == ("train", "init_from"):
        if value.get("run") in (None, ""):
            return "— (random weights)"
        at = f"step {value['step']:,}" if isinstance(value.get("step"), int) else value.get("checkpoint") or "latest"
        return f"run {value['run']} at {at}"
    if names and (section, key) in names and value in names[(section, key)]:
        return names[(section, key)][value]
    if spec is not None and spec[3] == "choice":
        return dict(spec[4]).get(value, str(value))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def config_rows(config: dict, names: dict | None = None) -> list[tuple[str, str, str, str]]:
    """(section label, setting label, value text, "section.key") for every setting, sections in sidebar order."""
    specs = _field_specs()
    order = list(SECTION_NAMES) + [s for s in config if s not in SECTION_NAMES]
    rows = []
    for section in order:
        part = config.get(section)
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            rows.append(
                (
                    SECTION_NAMES.get(section, section.capitalize()),
                    setting_label(section, key, specs),
                    setting_value(section, key, value, specs, names),
                    f"{section}.{key}",
                )
            )
    return rows


def config_diff(a: dict, b: dict, names: dict | None = None) -> list[tuple[str, str, str, str, str]]:
    """(section label, setting label, value in a, value in b, "section.key") for the settings that differ."""
    specs = _field_specs()
    order = list(SECTION_NAMES) + [s for s in (*a, *b) if s not in SECTION_NAMES]
    rows, seen = [], set()
    for section in order:
        if section in seen:
            continue
        seen.add(section)
        pa, pb = a.get(section) or {}, b.get(section) or {}
        for key in [*pa, *(k for k in pb if k not in pa)]:
            va, vb = pa.get(key), pb.get(key)
            if va == vb:
                continue
            rows.append(
                (
                    SECTION_NAMES.get(section, section.capitalize()),
                    setting_label(section, key, specs),
                    setting_value(section, key, va, specs, names),
                    setting_value(section, key, vb, specs, names),
                    f"{section}.{key}",
                )
            )
    return rows


def run_heading(run: dict) -> str:
    """'Run 2 “name”': the config view's headings and the runs offered for comparison."""
    return f"Run {run.get('id')} “{run.get('name') or ''}”"


def value_names(workspace: dict) -> dict:
    """Ids in a config that people know by name: the dataset and tokenizer."""
    return {
        ("data", "dataset"): {d.get("id"): d.get("name") for d in workspace.get("datasets", [])},
        ("tokenizer", "tokenizer"): {t.get("id"): t.get("name") for t in workspace.get("tokenizers", [])},
    }


def progress_cells(run: dict) -> list[tuple[int, str, object]]:
    """(column, text, sort key) of the cells that change while a run trains: status, steps, best validation loss."""
    step, max_iters = int(run.get("step") or 0), int(run.get("max_iters") or 0)
    best = run.get("best_val_loss")
    has_best = isinstance(best, (int, float))
    return [
        (2, status_word(run), None),
        (3, f"{step:,} / {max_iters:,}" if max_iters else f"{step:,}", step),
        (4, f"{best:.3f}" if has_best else "—", best if has_best else float("inf")),
    ]


# ------------------------------------------------------------------------------------ objectives and curves

ARCH_LABELS = {"decoder": "Decoder", "encoder": "Encoder", "encoder-decoder": "Encoder-decoder"}


def run_objective(run: dict) -> str:
    """objective.name of a run row (a config from before objectives were a choice trained causal LM)."""
    return str(((run.get("config") or {}).get("objective") or {}).get("name") or "causal_lm")


def run_arch(run: dict) -> str:
    return str(((run.get("config") or {}).get("model") or {}).get("arch") or "decoder")


def objective_label(name: str) -> str:
    info = OBJECTIVE_CATALOG.get(name)
    return info.label if info is not None else name


def kind_cells(run: dict) -> tuple[str, str]:
    """(objective, architecture) as the runs table shows them."""
    arch = run_arch(run)
    return objective_label(run_objective(run)), ARCH_LABELS.get(arch, arch)


def _run_list(ids: list) -> str:
    """'run 3', 'runs 1 and 2', 'runs 1, 2 and 4'."""
    if len(ids) == 1:
        return f"run {ids[0]}"
    return "runs " + ", ".join(str(i) for i in ids[:-1]) + f" and {ids[-1]}"


def overlay_note(runs: list[dict]) -> str:
    """What the overlay plot says when the runs' losses average over different things (catalog.loss_over), so a
    lower curve is not a better model: '' when they are comparable."""
    names = [run_objective(r) for r in runs]
    if losses_comparable(names):
        return ""
    groups: dict[str, list] = {}
    for run, name in zip(runs, names):
        info = OBJECTIVE_CATALOG.get(name)
        groups.setdefault(info.loss_over if info is not None else name, []).append(run)
    parts = []
    for loss_over, members in groups.items():
        labels = sorted({objective_label(run_objective(r)) for r in members})
        who = _run_list([r.get("id") for r in members])
        parts.append(f"{who} ({', '.join(labels)}) over {loss_over}")
    return (
        "These losses are not comparable: they average over different things — "
        + "; ".join(parts)
        + ". A lower curve here is not a better model; compare runs of one objective, or their own metrics."
    )
