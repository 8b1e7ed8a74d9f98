"""The shapes of the workspace's rows, as engine.store returns them and as they travel to the studio.

A row is a plain JSON-safe dict (it goes over the wire inside replies and the workspace summary); these
TypedDicts name its keys and their types, so a reader of the store, the worker or a panel can see what a row holds
without opening SQLite. The JSON columns arrive decoded (a dataset's "sources", "options", "stats", a tokenizer's
"spec", a run's "config"). Standard library only, like engine.protocol, so either side may import it.
"""

from __future__ import annotations

from typing import Any, TypedDict


class DatasetRow(TypedDict):
    """An imported dataset (engine.store.Workspace.dataset): its text is datasets/<id>/train.txt and val.txt."""

    id: int
    name: str
    created: str  # ISO 8601, UTC
    sources: list[str]  # the files it was imported from
    val_fraction: float
    n_docs: int
    n_chars: int
    n_lines: int
    n_bytes: int  # UTF-8 size of train.txt and val.txt together
    train_chars: int
    val_chars: int
    format: str  # "txt", "csv", "tsv", "jsonl", "parquet" or "mixed"
    split: str  # "tail" or "documents"
    seed: int | None
    n_train_docs: int | None
    n_val_docs: int | None
    has_labels: bool
    cleaning: dict[str, Any]  # the CleaningConfig it was imported with
    options: dict[str, Any]  # the ImportOptions it was imported with
    stats: dict[str, Any]  # what the import found: docs_read, empty and bad records, warnings, ...


class TokenizerRow(TypedDict):
    """A trained tokenizer (Workspace.tokenizer): tokenizers/<id>/tokenizer.json and its token files."""

    id: int
    name: str
    dataset_id: int
    kind: str  # one of engine.tokenizer.KINDS
    vocab_size: int  # what training gave (a char vocabulary may be smaller than asked for)
    requested_vocab_size: int | None
    created: str
    train_tokens: int | None
    val_tokens: int | None
    dtype: str | None  # of the token files: "uint16" or "uint32"
    spec: dict[str, Any]  # the TokenizerSpec, as a dict
    unk_share: float | None  # the share of the dataset's characters read as the unknown token (None: not measured)
    unk_examples: list[str]  # the most common such characters
    copied_from: int | None  # the tokenizer whose vocabulary this one reuses on its dataset (None: learned here)


class RunRow(TypedDict):
    """A training run (Workspace.run); its checkpoints are kept in runs/<id>/."""

    id: int
    name: str
    created: str
    updated: str
    status: str  # "created", then the training's state ("training", "finished", "stopped", "interrupted", ...)
    config: dict[str, Any]  # the RunConfig, as a dict
    dataset_id: int | None
    tokenizer_id: int | None
    step: int | None
    max_iters: int | None
    best_val_loss: float | None
    device: str | None
    message: str | None
    trainer: str | None  # who trains it now, in words ("process 4711 on this computer, since 11:02 UTC"), or None
    trained_here: bool  # by the process that read the row (the engine a studio talks to)


class CheckpointRow(TypedDict):
    """A checkpoint a run wrote (Workspace.checkpoints); the file at `path` is checked against `sha256`."""

    id: int
    run_id: int
    step: int
    path: str
    sha256: str
    val_loss: float | None
    created: str


class MetricRow(TypedDict):
    """One point of a run's curves (Workspace.metrics); the fields a split does not measure are None."""

    step: int
    split: str  # "train" or "val"
    loss: float | None  # None where the loss was not finite
    lr: float | None
    grad_norm: float | None
    tokens_per_sec: float | None
    elapsed_s: float | None
    # The objective's metrics an evaluation measured ("<split>_<engine.objectives.catalog METRIC_LABELS key>":
    # {"train_perplexity": 11.2, "val_perplexity": 11.5, "val_masked_accuracy": 0.41}, accuracies as fractions);
    # {} on training rows and on rows logged before schema 5.
    metrics: dict[str, float | None]


class TrashEntry(TypedDict):
    """Something deleted and kept in the trash until restored or emptied (Workspace.trash)."""

    id: int
    kind: str  # "dataset", "tokenizer" or "run"
    item_id: int  # its id, given back on restore
    name: str
    deleted: str


class WorkspaceSummary(TypedDict):
    """Everything the studio lists (Workspace.summary), sent with the hello reply."""

    path: str
    datasets: list[DatasetRow]
    tokenizers: list[TokenizerRow]
    runs: list[RunRow]
