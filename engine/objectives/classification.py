"""Classification: each text of a labelled dataset (a label column picked at import) is read whole and its class
named by a head on the pooled output (engine/model_classifier.py).

The texts are read from the dataset's documents, not from the token stream: one document is one example, encoded
with the run's vocabulary, [CLS] put in front where the vocabulary has it, cut to the context length, padded on
the right in a batch (key_padding False on the padding). Documents without a label are left out. The classes are
the distinct labels of both splits, in a stable order (numbers by value, else text), written into the run's
config (objective.classes) when it is made, so the head's outputs keep their names.

Training draws texts at random with the objective's generator. Evaluation reads every labelled validation text
once (so the confusion matrix sums to the split's size) and a fixed sample of the training texts; its statistics
are the confusion matrix (rows: the true class, columns: the predicted one), from which accuracy and macro-F1 are
computed (engine/training_records.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from engine.config import ConfigError
from engine.model_classifier import class_logits, resolve_pooling
from engine.objectives.base import IGNORE, Batch, LossOut, Objective
from engine.objectives.catalog import objective_info
from engine.objectives.losses import to_device

MAX_TRAIN_EVAL_TEXTS = 2048  # the training split's evaluation reads at most this many texts


def class_names(labels: list[Any]) -> list[str]:
    """The distinct labels as class names: numbers in numeric order, anything else in text order."""
    distinct = {label_name(v): v for v in labels}
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in distinct.values()):
        return sorted(distinct, key=lambda k: float(distinct[k]))
    return sorted(distinct)


def label_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def dataset_classes(ws, dataset_id) -> list[str]:
    """The class names of a labelled dataset (both splits); ConfigError when it has no labels or only one."""
    ds = ws.dataset(dataset_id)
    labels = ws.labelled_documents(ds["id"], "train")[1] + ws.labelled_documents(ds["id"], "val")[1]
    if not ds.get("has_labels") or not labels:
        raise ConfigError(
            f"Classification learns from labelled texts, and {ds['name']!r} has no labels: import a CSV, TSV, "
            "JSONL or Parquet file and pick its label column",
            "data.dataset",
            also=("objective.name",),
        )
    names = class_names(labels)
    if len(names) < 2:
        raise ConfigError(
            f"every labelled text of {ds['name']!r} has the label {names[0]!r}: classification needs at least "
            "two classes",
            "data.dataset",
        )
    return names


@dataclass
class LabelledTexts:
    """One split's examples: token ids per text (each at most the context length) and the class index."""

    ids: list[np.ndarray]
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def encode_texts(tok, texts: list[str], cls_id: int | None, block_size: int) -> list[np.ndarray]:
    """Token ids of each text, [CLS] in front when cls_id is given, cut to block_size (never empty)."""
    room = block_size - (cls_id is not None)
    out = []
    for enc in tok.encode_batch(texts, add_special_tokens=False):
        ids = enc.ids[:room]
        row = ([cls_id] if cls_id is not None else []) + ids
        out.append(np.asarray(row or [0], dtype=np.int64))
    return out


def padded(rows: list[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(idx, real) of right-padded rows, as long as the longest."""
    T = max(len(r) for r in rows)
    idx = torch.full((len(rows), T), pad_id, dtype=torch.int64)
    real = torch.zeros((len(rows), T), dtype=torch.bool)
    for i, r in enumerate(rows):
        idx[i, : len(r)] = torch.from_numpy(r)
        real[i, : len(r)] = True
    return idx, real


class Classification(Objective):
    info = objective_info("classification")

    def __init__(self, cfg):
        super().__init__(cfg)
        self.splits: dict[str, LabelledTexts] = {}
        self.classes: list[str] = list(self.options.classes)
        self.pooling = "mean"
        self.pad_id = 0

    # ----------------------------------------------------------------------------------------------- texts
    def attach(self, ws, device) -> None:
        tokenizer = self.cfg.tokenizer.tokenizer
        row = ws.tokenizer(tokenizer)
        self.read_dataset(ws, self.cfg.data.dataset, ws.load_tokenizer(tokenizer), row["spec"])

    def read_dataset(self, ws, dataset_id, tok, spec) -> None:
        """Encode the dataset's labelled texts of both splits with `tok` (a validation split without labelled
        texts is replaced by the training split)."""
        from engine.tokenizer import role_ids

        self.classes = list(self.options.classes) or dataset_classes(ws, dataset_id)
        index = {name: i for i, name in enumerate(self.classes)}
        specials = role_ids(tok, spec)
        cls_id = specials.get("cls")
        self.pad_id = specials.get("pad", specials.get("eos", 0))
        self.pooling = resolve_pooling(self.options.pooling, self.cfg.model.arch, cls_id is not None)
        for split in ("train", "val"):
            texts, labels = ws.labelled_documents(dataset_id, split)
            keep = [i for i, v in enumerate(labels) if label_name(v) in index]
            ids = encode_texts(tok, [texts[i] for i in keep], cls_id, self.cfg.model.block_size)
            self.splits[split] = LabelledTexts(ids, np.array([index[label_name(labels[i])] for i in keep], np.int64))
        if not len(self.splits["train"]):
            raise ConfigError("the training split has no labelled texts to learn from", "data.dataset")
        if not len(self.splits["val"]):
            self.splits["val"] = self.splits["train"]

    def texts(self, source) -> LabelledTexts:
        if not self.splits:
            raise RuntimeError("the labelled texts are not read: call attach(ws, device) or read_dataset first")
        return self.splits["val" if getattr(source, "split", "train") == "val" else "train"]

    # ----------------------------------------------------------------------------------------------- batches
    def batch(self, source, batch_size: int, generator: torch.Generator, device) -> Batch:
        data = self.texts(source)
        rows = torch.randint(len(data), (batch_size,), generator=generator).tolist()
        return self._batch(data, rows, device)

    def _batch(self, data: LabelledTexts, rows: list[int], device) -> Batch:
        idx, real = padded([data.ids[i] for i in rows], self.pad_id)
        labels = torch.from_numpy(data.labels[rows])
        marks = [["kept" if r else "pad" for r in row] for row in real.tolist()]
        return Batch(
            inputs={"idx": to_device(idx, device), "key_padding": to_device(real, device)},
            targets=to_device(torch.full_like(idx, IGNORE), device),
            labels=to_device(labels, device),
            marks=marks,
            extra={"layout": "input", "label_names": self.classes},
            n_tokens=int(real.sum()),
        )

    def eval_batches(self, source, batch_size: int, eval_iters: int, generator, device) -> Iterator[Batch]:
        """Every validation text once, in order; a fixed sample of the training texts."""
        data = self.texts(source)
        if getattr(source, "split", "train") == "val":
            order = list(range(len(data)))
        else:
            n = min(len(data), MAX_TRAIN_EVAL_TEXTS, batch_size * eval_iters)
            order = torch.randperm(len(data), generator=generator)[:n].tolist()
        for start in range(0, len(order), batch_size):
            yield self._batch(data, order[start : start + batch_size], device)

    # ----------------------------------------------------------------------------------------------- loss
    def logits(self, model, batch: Batch) -> torch.Tensor:
        return class_logits(model, batch.inputs["idx"], batch.inputs["key_padding"], self.pooling)

    def loss(self, model, batch: Batch, label_smoothing: float = 0.0) -> LossOut:
        logits = self.logits(model, batch).float()
        loss = F.cross_entropy(logits, batch.labels, label_smoothing=label_smoothing)
        K = logits.size(-1)
        pred = logits.detach().argmax(-1)
        confusion = torch.bincount(batch.labels * K + pred, minlength=K * K).reshape(K, K)
        return LossOut(loss, {"confusion": (confusion, torch.tensor(batch.labels.numel(), device=logits.device))})
