"""Which Playground modes a run supports, and what each mode shows, without Qt.

A run's architecture and objective (from its config) decide what a person can do with it: a decoder trained to
predict the next token continues a text; an encoder trained with masked language modelling fills in blanks; a
span-corruption run fills gaps; an encoder-decoder writes an output for an input; a run trained on a pair task
scores two texts. The Playground panel shows only the modes of the run, with the line `modes_line` says why.
"""

from __future__ import annotations

from engine.objectives.catalog import OBJECTIVE_CATALOG
from studio.state.playground import html_text, visible

# The modes, in the order their buttons appear: key -> button text.
MODE_LABELS = {
    "generate": "Continue a text",
    "text2text": "Text to text",
    "fill_mask": "Fill mask",
    "infill": "Infill",
    "pair": "Score a pair",
    "classify": "Classify",
}
MODE_TIPS = {
    "generate": "Give the model the start of a text and watch it write the rest, one token at a time.",
    "text2text": "Give the encoder a text to read; the decoder writes its output, token by token.",
    "fill_mask": "Type a text with [MASK] where words are missing (or select characters and press Ctrl+M): the "
    "model lists its best guesses for each blank.",
    "infill": "Mark gaps in a text with the Gap button (Ctrl+G): the model writes what goes in each gap.",
    "pair": "Write two texts, A and B: the model says how likely B follows A (or the two are in order).",
    "classify": "Write a text: the model gives each of its classes a probability.",
}
MASK = "[MASK]"
GAP = "[GAP]"  # the marker the Infill editor and `studio-engine infill --text` use for a gap
ARCH_WORDS = {"decoder": "a decoder", "encoder": "an encoder", "encoder-decoder": "an encoder-decoder"}
PAIR_TASKS = {"nsp": "nsp", "sop": "sop", "masked_lm+nsp": "nsp", "masked_lm+sop": "sop"}
# What a mode does, as the end of the sentence that says why the run has it.
MODE_PHRASES = {
    "generate": "it continues a text, one token at a time",
    "text2text": "it reads an input and writes an output",
    "fill_mask": "it fills in blanks",
    "infill": "it fills gaps from the text on both sides",
    "classify": "it names the class of a text",
}
FILL_BACKGROUND = "rgba(86,180,233,0.35)"  # sky blue (Okabe-Ito), as a sure token in the confidence colours
PAIR_PHRASES = {"nsp": "it judges whether one text follows another", "sop": "it judges whether two texts are in order"}


def run_kind(run: dict | None) -> tuple[str, str]:
    """(model.arch, objective.name) of a run row; a config from before objectives existed is a causal decoder."""
    config = (run or {}).get("config") or {}
    arch = (config.get("model") or {}).get("arch") or "decoder"
    objective = (config.get("objective") or {}).get("name") or "causal_lm"
    return str(arch), str(objective)


def run_modes(run: dict | None) -> list[str]:
    """The Playground modes run `run` supports, the one it is made for first."""
    arch, objective = run_kind(run)
    if objective == "classification":  # a decoder's LM head still writes (its parent's, when it had one)
        return ["classify"] + {"decoder": ["generate"], "encoder-decoder": ["text2text"]}.get(arch, [])
    if arch == "encoder":
        modes = ["fill_mask"] if objective.startswith("masked_lm") else []
        return modes + (["pair"] if objective in PAIR_TASKS else [])
    if arch == "encoder-decoder":
        return ["infill", "text2text"] if objective == "span_corruption" else ["text2text"]
    # A fill-in-the-middle decoder also learned plain next-token prediction on the sequences it left whole.
    return ["infill", "generate"] if objective == "span_corruption" else ["generate"]


def pair_task(run: dict | None) -> str:
    """'nsp' or 'sop': which question Score a pair answers for the run ('nsp' when it has no pair task)."""
    return PAIR_TASKS.get(run_kind(run)[1], "nsp")


def _objective_words(objective: str) -> str:
    info = OBJECTIVE_CATALOG.get(objective)
    if info is None:
        return objective.replace("_", " ")
    label = info.label
    return label[:1].lower() + label[1:]


def _mode_phrase(mode: str, arch: str, objective: str) -> str:
    if mode == "pair":
        return PAIR_PHRASES[PAIR_TASKS.get(objective, "nsp")]
    if mode == "generate" and objective == "sft":
        return "it answers a prompt, which it reads in its template"
    if mode == "text2text" and objective == "denoising":
        return "it reads a damaged text and writes it back repaired"
    return MODE_PHRASES[mode]


def modes_line(run: dict | None) -> str:
    """'This run is an encoder trained with masked language modelling: it fills in blanks.'"""
    if run is None:
        return "Train a model first: the Playground then shows what it can do."
    arch, objective = run_kind(run)
    modes = run_modes(run)
    start = f"This run is {ARCH_WORDS.get(arch, arch)} trained with {_objective_words(objective)}"
    if not modes:
        return f"{start}: the Playground has nothing it can ask of such a model."
    first, *rest = [_mode_phrase(m, arch, objective) for m in modes]
    # "it fills … and it judges …" reads better as "it fills … and judges …"; a comma when a part has its own "and".
    for phrase in rest:
        long = " and " in first + phrase or "," in first + phrase
        first += (", and " if long else " and ") + phrase.removeprefix("it ")
    return f"{start}: {first}."


# ------------------------------------------------------------------------------------------------- fill mask


def mask_selection(text: str, start: int, end: int) -> tuple[str, int]:
    """The text with characters start..end turned into one [MASK] (at the cursor when nothing is selected), and
    where the cursor goes: after the mask."""
    start, end = sorted((max(0, start), max(0, end)))
    return text[:start] + MASK + text[end:], start + len(MASK)


def count_masks(text: str) -> int:
    return text.count(MASK)


def fill_mask_refusal(text: str) -> str:
    """Why Fill cannot ask the model yet ('' when it can)."""
    if not text.strip():
        return "Type a text with [MASK] where a word is missing."
    if MASK not in text:
        return "Put [MASK] where a word is missing (select characters and press Ctrl+M to turn them into one)."
    return ""


def candidate_rows(mask: dict) -> list[tuple[str, float]]:
    """One mask's candidates as (text, probability), best first."""
    return [(str(c[0]), float(c[1])) for c in (mask.get("candidates") or []) if len(c) >= 2]


def fill_mask_html(text: str, masks: list[dict]) -> str:
    """The typed text with each [MASK] replaced by the model's best candidate, highlighted (numbered as the
    candidate lists below it are)."""
    parts = text.split(MASK)
    out = [html_text(parts[0])]
    for n, part in enumerate(parts[1:]):
        rows = candidate_rows(masks[n]) if n < len(masks) else []
        best = rows[0][0].replace("␣", " ") if rows else "?"
        if best.startswith(" ") and parts[n][-1:].isspace():
            best = best[1:]  # a word token that carries its space, after the space typed before the mask
        out.append(
            f'<span style="background-color:{FILL_BACKGROUND}"><b>{html_text(best)}</b><sup>{n + 1}</sup></span>'
        )
        out.append(html_text(part))
    return "<div style='white-space: pre-wrap'>" + "".join(out) + "</div>"


def mask_heading(n: int) -> str:
    """'Blank 1': the heading over one mask's candidate bars (numbered as in the filled text)."""
    return f"Blank {n + 1}"


# -------------------------------------------------------------------------------------------------- classify


def classify_refusal(text: str) -> str:
    return "" if text.strip() else "Write a text for the model to classify."


def class_rows(classes: list) -> list[tuple[str, float]]:
    """A classify reply's classes as (name, probability), the likeliest first."""
    rows = [(str(c[0]), float(c[1])) for c in classes or [] if len(c) >= 2]
    return sorted(rows, key=lambda r: -r[1])


def class_answer(rows: list[tuple[str, float]]) -> str:
    """'animal: 97 %' - the likeliest class, as the answer's title."""
    if not rows:
        return ""
    name, prob = rows[0]
    return f"{name}: {100 * prob:.0f} %"


def classify_status(n_tokens: int, cut: bool) -> str:
    read = f"The model read {n_tokens} tokens"
    return f"{read}: the text was cut to its context." if cut else f"{read}."


# ---------------------------------------------------------------------------------------------------- infill


def split_gaps(text: str) -> list[str]:
    """The texts between the gap markers (an InfillRequest's segments): one more than there are gaps."""
    return text.split(GAP)


def infill_refusal(text: str) -> str:
    if GAP not in text:
        return "Mark at least one gap: put the cursor where text is missing and press Gap (Ctrl+G)."
    return ""


def infill_html(segments: list[str], fills: list[str]) -> str:
    """The text with each gap's fill highlighted."""
    out = [html_text(segments[0]) if segments else ""]
    for n, segment in enumerate(segments[1:]):
        fill = fills[n] if n < len(fills) else ""
        shown = html_text(fill) if fill else "<i>(nothing)</i>"
        out.append(f'<span style="background-color:{FILL_BACKGROUND}"><b>{shown}</b></span>')
        out.append(html_text(segment))
    return "<div style='white-space: pre-wrap'>" + "".join(out) + "</div>"


def fills_text(fills: list[str]) -> str:
    """'Gap 1: ‘ the ’ · Gap 2: ‘cat’' under the filled text."""
    return " · ".join(f"Gap {n + 1}: ‘{visible(f)}’" for n, f in enumerate(fills))


# ------------------------------------------------------------------------------------------------------ pairs


def pair_question(task: str) -> str:
    return "Does B follow A?" if task == "nsp" else "Are A and B in order?"


def pair_answer(task: str, prob: float) -> str:
    """'B follows A: 87 %' (next-sentence prediction) or 'In order: 12 %' (sentence order)."""
    percent = f"{100 * float(prob):.0f} %"
    return f"B follows A: {percent}" if task == "nsp" else f"In order: {percent}"


def pair_refusal(a: str, b: str) -> str:
    if not a.strip() or not b.strip():
        return "Write a text in A and another in B."
    return ""
