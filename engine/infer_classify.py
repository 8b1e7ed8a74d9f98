"""The playground's Classify mode and `studio-engine classify`: a classification run's probability for each of its
classes on a typed text, read exactly as training read its texts (engine/objectives/classification.py): [CLS] in
front where the vocabulary has it, cut to the context length, the class read from the run's pooling."""

from __future__ import annotations

import torch

from engine.infer_text import PlaygroundError, percent, refuse
from engine.model_classifier import class_logits, resolve_pooling
from engine.objectives.classification import encode_texts
from engine.run_generation import load_run


@torch.no_grad()
def classify(ws, run_ref, text: str, checkpoint: str | None = None, device="auto") -> dict:
    """{"classes": [[name, prob], ...] most likely first, "label" (the likeliest), "n_tokens" (read), "cut" (the
    text was longer than the context), "checkpoint", "step"}; PlaygroundError for an empty text or a run that was
    not trained to classify."""
    loaded = load_run(ws, run_ref, device, checkpoint)
    names = list(loaded.cfg.objective.classes)
    if loaded.objective != "classification" or not names:
        raise refuse(loaded, "Classify needs a run trained with the classification objective")
    if not text.strip():
        raise PlaygroundError("write a text to classify")
    cls_id = loaded.specials.get("cls")
    block = getattr(loaded.model, "context_size", loaded.cfg.model.block_size)  # less a soft prompt's positions
    ids = encode_texts(loaded.tok, [text], cls_id, block)[0]
    full = len(loaded.tok.encode(text, add_special_tokens=False).ids) + (cls_id is not None)
    model = loaded.model
    idx = torch.as_tensor(ids, dtype=torch.long, device=model.transformer.wte.weight.device).reshape(1, -1)
    pooling = resolve_pooling(loaded.cfg.objective.pooling, loaded.arch, cls_id is not None)
    probs = torch.softmax(class_logits(model, idx, torch.ones_like(idx, dtype=torch.bool), pooling).float(), -1)[0]
    ranked = sorted(zip(names, probs.tolist()), key=lambda c: -c[1])
    return {
        "classes": [[n, float(p)] for n, p in ranked],
        "label": ranked[0][0],
        "n_tokens": len(ids),
        "cut": full > block,
        "checkpoint": loaded.meta.get("checkpoint"),
        "step": loaded.meta.get("step"),
    }


def class_lines(out: dict) -> list[str]:
    """'animal 97.1 %' per class, most likely first (the CLI's words)."""
    return [f"{name} {percent(p)}" for name, p in out["classes"]]
