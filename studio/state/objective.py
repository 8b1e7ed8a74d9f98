"""What the Objective panel means, without Qt: the objectives grouped by what they ask of the model, the form
fields of their options, what choosing one does to the model (and its undo), and how the sample batch is asked
for and read.

Everything about an objective in words is engine/objectives/catalog.py's; the option values and defaults are
engine.config.ObjectiveConfig's; only the words for the option fields are here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.config import DENOISING_NOISES, ObjectiveConfig, RunConfig, field_label
from engine.objectives.catalog import GROUPS, OBJECTIVE_CATALOG, ObjectiveInfo, objective_info
from studio.state.config_fields import FieldSpec

ARCH_WORDS = {"decoder": "a decoder", "encoder": "an encoder", "encoder-decoder": "an encoder-decoder"}


def grouped() -> list[tuple[str, list[ObjectiveInfo]]]:
    """(group label, its objectives) in the catalog's order of groups and objectives."""
    return [(label, [o for o in OBJECTIVE_CATALOG.values() if o.group == key]) for key, label in GROUPS.items()]


def trains_words(info: ObjectiveInfo) -> str:
    """'trains an encoder' / 'trains an encoder-decoder or a decoder' (with segments for pair tasks)."""
    archs = " or ".join(ARCH_WORDS.get(a, a) for a in info.archs)
    return f"trains {archs}" + (" with segments" if info.needs_segments else "")


# ------------------------------------------------------------------------------------------------ options

NOISE_LABELS = {
    "token_masking": "Token masking",
    "token_deletion": "Token deletion",
    "text_infilling": "Text infilling",
    "sentence_permutation": "Sentence permutation",
    "document_rotation": "Document rotation",
}


def _option(name: str, kind: str, options: tuple | None, tooltip: str) -> FieldSpec:
    return FieldSpec("objective", name, field_label(f"objective.{name}"), kind, options, tooltip)


# kind "noises": a check box per engine.config.DENOISING_NOISES, the value their names comma-separated
OPTION_FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in (
        _option(
            "mask_prob",
            "float",
            (0.01, 1.0, 0.01, 2),
            "The share of tokens the model must predict. More to learn from per batch, but less context left to "
            "learn it from.",
        ),
        _option(
            "mask_token_share",
            "float",
            (0.0, 1.0, 0.05, 2),
            "Of the chosen tokens, the share shown as [MASK]. The others become a random token or stay as they "
            "were, so the model cannot count on seeing [MASK] where it must predict.",
        ),
        _option(
            "random_token_share",
            "float",
            (0.0, 1.0, 0.05, 2),
            "Of the chosen tokens, the share replaced by a random token; the rest of them stay unchanged.",
        ),
        _option(
            "whole_word",
            "bool",
            None,
            "Choose whole words, every piece of a word together, so a word cannot be guessed from its own other "
            "half (BERT's later whole-word masking).",
        ),
        _option(
            "prefix_fraction",
            "float",
            (0.0, 0.95, 0.05, 2),
            "The share of each text read in both directions before the rest is predicted; 0 draws it at random "
            "for each text.",
        ),
        _option(
            "noise_density",
            "float",
            (0.01, 1.0, 0.01, 2),
            "The share of tokens cut out in spans.",
        ),
        _option(
            "mean_span_length",
            "float",
            (1.0, 64.0, 0.5, 1),
            "How long a cut-out span is on average, in tokens.",
        ),
        _option(
            "fim_rate",
            "float",
            (0.0, 1.0, 0.05, 2),
            "On a decoder: the share of texts turned into fill-in-the-middle (the text before the gap, after it, "
            "then its middle); the others train as plain next-token prediction.",
        ),
        _option(
            "noises",
            "noises",
            tuple(NOISE_LABELS.get(n, n) for n in DENOISING_NOISES),
            "How the text is damaged: masking tokens, deleting them, replacing spans by one [MASK] (infilling), "
            "shuffling the sentences, rotating the text to start elsewhere. BART's best: infilling with "
            "sentence shuffling.",
        ),
        _option(
            "denoise_mask_prob",
            "float",
            (0.01, 1.0, 0.01, 2),
            "The share of tokens masked, deleted or infilled.",
        ),
        _option(
            "poisson_lambda",
            "float",
            (1.0, 64.0, 0.5, 1),
            "The mean length of an infilled span, in tokens (spans are drawn from a Poisson distribution).",
        ),
        _option(
            "predict_fraction",
            "float",
            (0.01, 1.0, 0.01, 3),
            "The share of each random order that is predicted: its last part, each token from the ones before it "
            "in the order. The rest is context only.",
        ),
        _option(
            "teacher_run",
            "choice",
            (),
            "The trained run whose guesses the new, usually smaller model learns from: a decoder run that reads "
            "text with the same vocabulary, with a context at least as long. Its model is left as it is.",
        ),
        _option(
            "distill_alpha",
            "float",
            (0.0, 1.0, 0.05, 2),
            "How much of the loss comes from matching the teacher's guesses; the rest comes from the real next "
            "token. 1 learns from the teacher alone.",
        ),
        _option(
            "pooling",
            "choice",
            (
                ("auto", "Automatic"),
                ("first", "The first token ([CLS])"),
                ("last", "The last token"),
                ("mean", "The mean of all tokens"),
            ),
            "Which output the class is read from. Automatic: [CLS] on an encoder whose vocabulary has it (BERT), "
            "the last token on a decoder (the only one that has seen the whole text, GPT), else the mean.",
        ),
        _option(
            "template",
            "text",
            None,
            "How each prompt is shown to the model: {prompt} is replaced by it and the response follows (\\n is a "
            "line break). The Playground wraps what you type in the same template.",
        ),
        _option(
            "reward",
            "text",
            None,
            "What a written text earns, in one line: contains:love,joy (the share of those words it holds), "
            "avoids:war (1 less that share), length:12 (close to 12 words), regex:[0-9]+ (1 when the pattern "
            "matches), classifier:RUN:LABEL (the probability a classification run of this workspace gives LABEL). "
            "Join several with ; to add them up. Nothing you write here is ever run as code.",
        ),
        _option(
            "kl_coef",
            "float",
            (0.0, 100.0, 0.01, 3),
            "How strongly the model is held near the run it started from. Too little and it games the reward with "
            "gibberish that scores; too much and it cannot change.",
        ),
        _option(
            "baseline",
            "choice",
            (
                ("mean", "The prompt's other samples"),
                ("moving_average", "A moving average"),
                ("none", "None"),
            ),
            "What a sample's reward is compared with: a sample better than that becomes likelier, a worse one less "
            "likely. Comparing the samples of one prompt with each other learns fastest.",
        ),
        _option(
            "samples_per_prompt",
            "int",
            (1, 256, 1),
            "How many texts the model writes after each prompt at every step; they are compared with each other.",
        ),
        _option(
            "max_new_tokens",
            "int",
            (1, 4096, 1),
            "How many tokens each written text has at most (it ends sooner at the end-of-text token).",
        ),
        _option(
            "sample_temperature",
            "float",
            (0.1, 10.0, 0.1, 1),
            "How adventurous the writing is while it learns: above 1 tries more unusual text, below 1 less.",
        ),
        _option(
            "distill_temperature",
            "float",
            (0.1, 100.0, 0.5, 1),
            "Softens both models' guesses before they are compared, so the teacher's second and third choices "
            "count too. 1 compares them as they are.",
        ),
    )
}
DEFAULTS = ObjectiveConfig()
# Options the user picks for the run, not the paper: "Paper's defaults" leaves them as they are.
USER_CHOICES = ("teacher_run", "reward")


def teacher_choices(runs: list[dict]) -> list[tuple[int, str]]:
    """The runs a student can learn from, as the Teacher run list offers them: decoder runs that trained at
    least one step, newest first ('7 · shakespeare-baby (600 steps)')."""
    out = []
    for run in reversed(runs):
        model = (run.get("config") or {}).get("model") or {}
        if (model.get("arch") or "decoder") == "decoder" and int(run.get("step") or 0) > 0:
            out.append((int(run["id"]), f"{run['id']} · {run.get('name') or ''} ({int(run['step']):,} steps)"))
    return out


def option_fields(name: str) -> list[FieldSpec]:
    """The form fields of objective `name`'s options, in the catalog's order."""
    info = OBJECTIVE_CATALOG.get(name)
    return [OPTION_FIELDS[o] for o in info.options if o in OPTION_FIELDS] if info else []


def default_text(key: str) -> str:
    """The paper's default of an option in words ('0.15', 'on', 'Text infilling, Sentence permutation')."""
    if key in USER_CHOICES:
        return "none: choose one"
    value = getattr(DEFAULTS, key)
    if isinstance(value, bool):
        return "on" if value else "off"
    if key == "noises":
        return ", ".join(NOISE_LABELS.get(n, n) for n in DEFAULTS.noise_list())
    if isinstance(value, str):  # a choice's label, or a text as it would be typed
        labels = dict(OPTION_FIELDS[key].options or ()) if OPTION_FIELDS[key].kind == "choice" else {}
        return labels.get(value, value.replace("\n", "\\n"))
    return f"{value:.3g}"


def option_not_applying(key: str, cfg: RunConfig) -> str:
    """Why an option of the chosen objective does nothing with this model ("" when it does)."""
    if key == "fim_rate" and cfg.model.arch != "decoder":
        return "on a decoder only"
    return ""


def with_defaults(cfg: RunConfig, name: str) -> RunConfig:
    """cfg with objective `name`'s options back at the paper's defaults."""
    new = cfg.copy()
    for key in objective_info(name).options:
        if key not in USER_CHOICES:
            setattr(new.objective, key, getattr(DEFAULTS, key))
    return new


def noises_value(chosen: list[str]) -> str:
    """The objective.noises text for the checked noise functions, in the config's order."""
    return ",".join(n for n in DENOISING_NOISES if n in chosen)


# ------------------------------------------------------------------------------------ choosing an objective


def choose(cfg: RunConfig, name: str) -> tuple[RunConfig, str]:
    """The config once objective `name` is chosen, and what that changed in the model, in words ("" when
    nothing): an architecture the objective cannot train becomes its natural one, and pair tasks get the
    segments they need."""
    new = cfg.copy()
    new.objective.name = name
    info = OBJECTIVE_CATALOG.get(name)
    if info is None:
        return new, ""
    changes = []
    arch_changed = new.model.arch not in info.archs
    if arch_changed:
        new.model.arch = info.archs[0]
        changes.append(f"the architecture is now {info.archs[0]}")
    if info.needs_segments and new.model.n_segments < 2:
        new.model.n_segments = 2
        changes.append("Segments is now 2")
    if not changes:
        return new, ""
    why = f"trains {ARCH_WORDS.get(info.archs[0], info.archs[0])}" if arch_changed else "judges sentence pairs"
    return new, f"{info.label} {why}: {' and '.join(changes)}"


@dataclass(frozen=True)
class Before:
    """What a choice that changed the model replaced: the objective, the architecture and the segments."""

    objective: str
    arch: str
    n_segments: int

    @classmethod
    def of(cls, cfg: RunConfig) -> "Before":
        return cls(cfg.objective.name, cfg.model.arch, cfg.model.n_segments)

    def restore(self, cfg: RunConfig) -> RunConfig:
        """cfg with the objective and model as they were (everything else as it is now)."""
        new = cfg.copy()
        new.objective.name, new.model.arch, new.model.n_segments = self.objective, self.arch, self.n_segments
        return new


# -------------------------------------------------------------------------------------------- sample batch

MARK_WORDS = {
    "masked": "hidden as [MASK]",
    "random": "replaced by a random token",
    "unchanged": "chosen, left as it was",
    "sentinel": "placeholder for a cut-out span",
    "deleted": "deleted",
    "moved": "moved",
    "prefix": "prefix, read both ways",
    "prompt": "the prompt in its template (no loss)",
    "special": "special token",
    "pad": "padding",
    "kept": "kept",
}
SAMPLE_ROWS = 4
SAMPLE_TOKENS = 48


def sample_key(cfg: RunConfig) -> str:
    """What the sample batch depends on, as text: a config edit that leaves it equal asks for no new batch."""
    d = cfg.to_dict()
    model = {k: d["model"][k] for k in ("arch", "block_size", "n_segments")}
    return json.dumps([d["data"], d["tokenizer"], model, d["objective"]], sort_keys=True)


def why_no_sample(engine_ready: bool, cfg: RunConfig) -> str:
    """Why no batch can be drawn now, in words ("" when one can)."""
    if cfg.data.dataset in (None, ""):
        return "Choose a dataset on the Data panel (or import a text there) to see a batch of it here."
    if not engine_ready:
        return "The engine is not running, so no batch can be drawn; it starts with the studio (Engine menu)."
    return ""


def marks_in(rows: list[dict]) -> list[str]:
    """The marks a batch shows, in MARK_WORDS' order (the legend lists these)."""
    seen = {span.get("mark") for row in rows for side in ("input", "target") for span in row.get(side) or []}
    return [m for m in MARK_WORDS if m in seen] + sorted(m for m in seen if m and m not in MARK_WORDS)


def has_target(rows: list[dict]) -> bool:
    """Whether the batch has a target side (encoder-decoder objectives): the view shows it beside the input."""
    return any(row.get("target") for row in rows)


def has_loss(rows: list[dict]) -> bool:
    return any(span.get("loss") for row in rows for side in ("input", "target") for span in row.get(side) or [])
