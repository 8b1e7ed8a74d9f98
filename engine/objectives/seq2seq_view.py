"""An encoder-decoder batch as text for people: the encoder's input and the decoder's target side by side.

Objectives that build such batches (span corruption, denoising) keep the marks of the input in Batch.marks and
those of the target in Batch.extra["target_marks"]; every target position carries loss.
"""

from __future__ import annotations

from typing import Callable

from engine.objectives.base import IGNORE, Batch


def token_span(text: str, mark: str, loss: bool, order: int | None = None) -> dict:
    return {"text": text, "mark": mark, "loss": loss, "order": order}


def describe_seq2seq(batch: Batch, decode: Callable[[int], str]) -> list[dict]:
    """Per sequence {"input": [span], "target": [span], "label": None}, padding left out."""
    idx = batch.inputs["idx"].cpu()
    real = batch.inputs.get("src_padding")
    targets = batch.targets.cpu()
    target_marks = batch.extra.get("target_marks") or [[] for _ in range(len(idx))]
    rows = []
    for i in range(len(idx)):
        width = int(real[i].sum()) if real is not None else idx.size(1)
        inp = [token_span(decode(int(t)), m, False) for t, m in zip(idx[i, :width].tolist(), batch.marks[i])]
        tgt = [token_span(decode(t), m, True) for t, m in zip(targets[i].tolist(), target_marks[i]) if t != IGNORE]
        rows.append({"input": inp, "target": tgt, "label": None})
    return rows
