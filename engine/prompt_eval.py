"""Prompting without training (`studio-engine prompt-eval`): a causal-LM run classifies the labelled validation texts
of a dataset by filling a template and asking which label word it finds likeliest next.

Each text becomes the template with `{text}` replaced by it ("Review: {text}\\nSentiment:"); before it come K
examples of the training split ("shots", one per class in turn, drawn with the seed), each the filled template
followed by its label word and a blank line. Every class has a word (the verbalizer, "pos=good,neg=bad"); the
class the model picks is the one whose word, after the prompt and a space, has the highest summed log-probability
(a word of several tokens adds its tokens' log-probabilities). A prompt longer than the context keeps its end,
where the text meets the question. The result counts as classification's evaluation does: accuracy, macro-F1 and
the confusion matrix over every labelled validation text.
"""

from __future__ import annotations

import random
import time

import torch
import torch.nn.functional as F

from engine.config import ConfigError
from engine.infer_text import PlaygroundError, refuse
from engine.objectives.classification import class_names, label_name
from engine.run_generation import load_run
from engine.training_records import confusion_metrics

MAX_SHOTS = 32


def parse_verbalizer(text: str) -> dict[str, str]:
    """'pos=good,neg=bad' -> {"pos": "good", "neg": "bad"}; ConfigError for an entry without '=' or a word."""
    out = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        label, sep, word = part.partition("=")
        if not sep or not label.strip() or not word.strip():
            raise ConfigError(f"the verbalizer takes label=word pairs separated by commas, not {part!r}", "verbalizer")
        out[label.strip()] = word.strip()
    if len(out) < 2:
        raise ConfigError("the verbalizer needs a word for at least two labels (pos=good,neg=bad)", "verbalizer")
    return out


def check_template(template: str) -> None:
    if "{text}" not in template:
        raise ConfigError("the template needs {text} where each text goes (Review: {text}\\nSentiment:)", "template")


def fill(template: str, text: str) -> str:
    return template.replace("{text}", text)


def pick_shots(texts: list[str], labels: list[str], classes: list[str], k: int, seed: int) -> list[tuple[str, str]]:
    """K (text, label) examples of the training split, the classes taken in turn, each drawn at random."""
    rng = random.Random(seed)
    by_class = {c: [t for t, lab in zip(texts, labels) if lab == c] for c in classes}
    pools = {c: rng.sample(v, len(v)) for c, v in by_class.items() if v}
    shots, order = [], [c for c in classes if c in pools]
    while len(shots) < k and any(pools.values()):
        for c in order:
            if pools[c] and len(shots) < k:
                shots.append((pools[c].pop(), c))
    rng.shuffle(shots)
    return shots


@torch.no_grad()
def word_scores(model, tok, prompt: str, words: list[str], block: int, device) -> list[float]:
    """The summed log-probability of each word (after a space) following `prompt`."""
    prompt_ids = tok.encode(prompt, add_special_tokens=False).ids
    rows = []
    for word in words:
        full = tok.encode(prompt + " " + word, add_special_tokens=False).ids
        # The word's tokens are what the prompt's encoding does not already hold (a tokenizer may merge the
        # space with the prompt's end), at least one.
        shared = 0
        while shared < min(len(prompt_ids), len(full) - 1) and full[shared] == prompt_ids[shared]:
            shared += 1
        ids = full[-block:]  # a prompt longer than the context keeps its end
        rows.append((ids, min(len(full) - shared, len(ids) - 1)))
    T = max(len(ids) for ids, _ in rows)
    idx = torch.zeros((len(rows), T), dtype=torch.long)
    for i, (ids, _) in enumerate(rows):
        idx[i, : len(ids)] = torch.tensor(ids)
    logp = F.log_softmax(model(idx.to(device))[0].float(), -1)  # (C, T, V)
    scores = []
    for i, (ids, n_word) in enumerate(rows):
        positions = range(len(ids) - n_word, len(ids))
        scores.append(float(sum(logp[i, p - 1, ids[p]] for p in positions)))
    return scores


def prompt_eval(
    ws, run_ref, dataset_ref, template: str, verbalizer: str, shots: int = 0, seed: int = 0, checkpoint=None,
    device="auto", progress=None,
) -> dict:  # fmt: skip
    """Classify every labelled validation text of the dataset by prompting the run (see the module docstring).
    {"class_accuracy", "macro_f1", "confusion", "classes", "n_texts", "shots", "seconds", "prompt"} ("prompt": the
    first text's whole prompt, to show what the model read)."""
    check_template(template)
    words = parse_verbalizer(verbalizer)
    if not 0 <= int(shots) <= MAX_SHOTS:
        raise ConfigError(f"shots must be between 0 and {MAX_SHOTS}, not {shots}", "shots")
    ds = ws.dataset(dataset_ref)
    train_texts, train_raw = ws.labelled_documents(ds["id"], "train")
    val_texts, val_raw = ws.labelled_documents(ds["id"], "val")
    if not ds.get("has_labels") or not (train_raw or val_raw):
        raise ConfigError(
            f"{ds['name']!r} has no labels: import it with a label column to evaluate a prompt", "dataset"
        )
    classes = class_names(train_raw + val_raw)
    missing = [c for c in classes if c not in words]
    unknown = [w for w in words if w not in classes]
    if missing or unknown:
        raise ConfigError(
            f"the verbalizer must give a word to each label of {ds['name']!r} ({', '.join(classes)})"
            + (f"; it lacks {', '.join(missing)}" if missing else "")
            + (f"; it names {', '.join(unknown)}, which the data does not have" if unknown else ""),
            "verbalizer",
        )
    loaded = load_run(ws, run_ref, device, checkpoint)
    if loaded.arch != "decoder":
        raise refuse(loaded, "a prompt is scored by a decoder that predicts the next token")
    if not val_texts:
        val_texts, val_raw = train_texts, train_raw
    examples = pick_shots(train_texts, [label_name(v) for v in train_raw], classes, int(shots), seed)
    head = "".join(f"{fill(template, t)} {words[c]}\n\n" for t, c in examples)
    index = {c: i for i, c in enumerate(classes)}
    confusion = [[0] * len(classes) for _ in classes]
    model_device = loaded.model.transformer.wte.weight.device
    start = time.perf_counter()
    for n, (text, raw) in enumerate(zip(val_texts, val_raw)):
        prompt = head + fill(template, text)
        scores = word_scores(
            loaded.model, loaded.tok, prompt, [words[c] for c in classes], loaded.model.context_size, model_device
        )
        confusion[index[label_name(raw)]][max(range(len(classes)), key=lambda i: scores[i])] += 1
        if progress is not None:
            progress((n + 1) / len(val_texts))
    metrics = confusion_metrics("val", confusion)
    return {
        "class_accuracy": metrics["val_class_accuracy"],
        "macro_f1": metrics["val_macro_f1"],
        "confusion": confusion,
        "classes": classes,
        "n_texts": len(val_texts),
        "shots": len(examples),
        "seconds": time.perf_counter() - start,
        "prompt": head + fill(template, val_texts[0]) if val_texts else "",
    }


__all__ = ["PlaygroundError", "parse_verbalizer", "pick_shots", "prompt_eval", "word_scores"]
