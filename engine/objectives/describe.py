"""A batch as text for people: the default Objective.describe (the sample-batch view, `studio-engine sample-batch`).

Each sequence becomes {"input": [span], "target": [span] | None, "label": str | None}, a span {"text", "mark",
"loss", "order"}. How the targets line up with the input is the batch's `extra["layout"]`:
- "next": targets[i] is the token after input i (causal and prefix LM): the input row shows the whole window
  (the inputs and the last target) and a token carries loss where the position before it predicts it; no target
  row, the text is its own target;
- "same": targets[i] is what input i was before the corruption (masked LM): the target row is the original text
  position by position, with loss where a token is predicted;
- "separate" (the default when the shapes differ, encoder-decoders): the target row is the target sequence;
- "input": no token carries loss and there is no target row (a pair task alone: its label is the target).
Padding (key_padding False) is left out; marks default to "kept".
"""

from __future__ import annotations

from typing import Callable

import torch

from engine.objectives.base import IGNORE


def _span(text: str, mark: str, loss: bool, order: int | None = None) -> dict:
    return {"text": text, "mark": mark, "loss": bool(loss), "order": order}


def describe_batch(objective, batch, source, decode: Callable[[int], str]) -> list[dict]:
    idx = batch.inputs["idx"].detach().cpu()
    targets = batch.targets.detach().cpu()
    layout = batch.extra.get("layout") or ("same" if targets.shape == idx.shape else "separate")
    padding = batch.inputs.get("key_padding")
    real = padding.detach().cpu() if padding is not None else torch.ones_like(idx, dtype=torch.bool)
    orders = batch.extra.get("order")  # (B, T) prediction order per position, or None
    rows = []
    for b in range(idx.shape[0]):
        ids, tgt = idx[b].tolist(), targets[b].tolist()
        marks = list(batch.marks[b]) if b < len(batch.marks) else []
        marks += ["kept"] * (len(ids) - len(marks))
        keep = real[b].tolist()
        order = orders[b].tolist() if orders is not None else [None] * len(ids)
        if layout == "next":
            row = _next_token_row(ids, tgt, marks, keep, decode)
        else:
            loss = [t != IGNORE for t in tgt] if layout == "same" else [False] * len(ids)
            row = {
                "input": [
                    _span(decode(i), marks[p], loss[p], _order(order[p], loss[p])) for p, i in enumerate(ids) if keep[p]
                ],
                "target": _target(layout, ids, tgt, marks, keep, decode),
            }
        row["label"] = _label(batch, b)
        rows.append(row)
    return rows


def _order(order, loss: bool) -> int | None:
    return int(order) if order is not None and order >= 0 and loss else None


def _next_token_row(ids, tgt, marks, keep, decode) -> dict:
    """The window as one row: token p carries loss where position p - 1 predicts it."""
    spans = [_span(decode(i), marks[p], p > 0 and tgt[p - 1] != IGNORE) for p, i in enumerate(ids) if keep[p]]
    if tgt and tgt[-1] != IGNORE:
        spans.append(_span(decode(tgt[-1]), "kept", True))
    return {"input": spans, "target": None}


def _target(layout, ids, tgt, marks, keep, decode) -> list[dict] | None:
    if layout == "same":
        return _target_row(ids, tgt, marks, keep, decode)
    return _separate(tgt, decode) if layout == "separate" else None


def _target_row(ids, tgt, marks, keep, decode) -> list[dict]:
    """The original text under the input, position by position."""
    return [
        _span(decode(t if t != IGNORE else i), marks[p], t != IGNORE)
        for p, (i, t) in enumerate(zip(ids, tgt))
        if keep[p]
    ]


def _separate(tgt, decode) -> list[dict]:
    return [_span(decode(t), "kept", True) for t in tgt if t != IGNORE]


def _label(batch, b: int) -> str | None:
    if batch.labels is None:
        return None
    names = batch.extra.get("label_names")
    value = int(batch.labels[b])
    return names[value] if names else str(value)
