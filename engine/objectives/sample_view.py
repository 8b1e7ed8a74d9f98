"""What the model sees: one real batch of a dataset as a config's objective builds it, as text for people (the
Objective panel's sample-batch view, `studio-engine sample-batch`).

It works before any run exists and writes nothing. The vocabulary is, in this order: the config's chosen
tokenizer; the one a run of this config would find (same kind, size and special tokens); the dataset's newest of
tokenizer.kind; else a character vocabulary of the start of the text. Special tokens the objective needs and
that vocabulary lacks are added to an in-memory copy, and the note says what a run does about them.
"""

from __future__ import annotations

import numpy as np
import torch

from engine import tokenizer as tk
from engine.config import ConfigError, RunConfig
from engine.objectives.catalog import ObjectiveInfo, objective_info
from engine.objectives.registry import get_objective
from engine.objectives.text_source import TokenSource
from engine.run_setup import check_tokenizer_dataset, require_specials, run_vocabulary_options
from engine.training_data import TokenData

MAX_SEQUENCES = 32
# A char vocabulary of the text's start reads this much when the dataset has no vocabulary yet: enough windows
# and documents for every objective, quick to count on the reader thread.
SAMPLE_CHARS = 200_000


def sample_batch(ws, cfg: RunConfig, *, n: int = 4, seed: int = 0, max_tokens: int | None = 48) -> dict:
    """{"objective", "rows", "note"}: n sequences of one batch (Objective.describe's rows, each side cut to its
    first max_tokens tokens; None or 0 keeps them whole), drawn with `seed`. ConfigError (in the panels' words)
    for a config the objective cannot train, as a run would say it."""
    cfg = cfg.copy().validate(need_teacher=False)  # distillation's batches are causal LM's: no teacher needed
    info = objective_info(cfg.objective.name)
    ds = ws.dataset(cfg.data.dataset)
    tok, spec, ids, name, notes = _vocabulary(ws, cfg, ds, info)
    added = tk.missing_specials(spec, info.needs)
    tok, spec = tk.with_specials(tok, spec, info.needs)
    source = TokenSource.from_tokenizer(tok, spec, ids)
    objective = get_objective(cfg)
    objective.check(source)
    objective.read_dataset(ws, ds["id"], tok, spec)
    generator = torch.Generator().manual_seed(int(seed))
    batch = objective.batch(source, max(1, min(int(n), MAX_SEQUENCES)), generator, torch.device("cpu"))
    rows = objective.describe(batch, source, lambda i: tk.display_token(tok, int(i)))
    if added and not notes:
        them = "it" if len(added) == 1 else "them"
        notes.append(f"This sample adds {_and(added)} to {name!r} (in memory), as a run's own vocabulary has {them}.")
    if max_tokens and any(len(r["input"]) > max_tokens or len(r.get("target") or ()) > max_tokens for r in rows):
        notes.append(f"Each sequence is cut to its first {max_tokens} tokens.")
        rows = [_cut(r, max_tokens) for r in rows]
    return {"objective": cfg.objective.name, "rows": rows, "note": " ".join(notes)}


def _vocabulary(ws, cfg: RunConfig, ds: dict, info: ObjectiveInfo):
    """(tokenizer, its spec dict, the token ids of the train split, its name, notes) for the sample."""
    tcfg = cfg.tokenizer
    if tcfg.tokenizer not in (None, ""):
        row = ws.tokenizer(tcfg.tokenizer)
        check_tokenizer_dataset(row, ds)
        try:
            require_specials(info, row)
        except ConfigError as e:  # a run will refuse it; the sample still shows what the objective does
            return (*_stored(ws, row), [f"{e.message}."])
        return (*_stored(ws, row), [])
    row = ws.find_tokenizer(ds["id"], tcfg.kind, tcfg.vocab_size, **run_vocabulary_options(cfg))
    if row is None:
        row = next((t for t in reversed(ws.tokenizers(ds["id"])) if t["kind"] == tcfg.kind), None)
    if row is not None:
        return (*_stored(ws, row), [])
    what = (
        "a character vocabulary" if tcfg.kind == "char" else f"a {tcfg.kind} vocabulary of {tcfg.vocab_size:,} tokens"
    )
    note = (
        f"{ds['name']!r} has no {tcfg.kind} vocabulary yet, so this sample reads the start of its text one "
        f"character at a time; a run first trains {what}"
    )
    adds = tk.missing_specials({"special_tokens": tk.DEFAULT_SPECIALS[tcfg.kind]}, info.needs)
    return (*_char_of_text(ws, ds, info), [note + (f" with {_and(adds)}." if adds else ".")])


def _stored(ws, row: dict):
    files = ws.token_files(row["id"])
    return ws.load_tokenizer(row["id"]), row["spec"], TokenData(files["train"], files["dtype"]), row["name"]


def _char_of_text(ws, ds: dict, info: ObjectiveInfo):
    text = ws.dataset_preview(ds["id"], SAMPLE_CHARS)
    spec = tk.make_spec("char", 1_000_000, **tk.spec_options_for("char", info.needs))
    tok = tk.char_tokenizer_of_text(text, spec)
    ids = np.asarray(tok.encode(text, add_special_tokens=False).ids, dtype=np.int64)
    return tok, spec.to_dict(), ids, "characters of the text"


def _cut(row: dict, max_tokens: int) -> dict:
    target = row.get("target")
    return {**row, "input": row["input"][:max_tokens], "target": None if target is None else target[:max_tokens]}


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
