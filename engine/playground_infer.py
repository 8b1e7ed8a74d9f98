"""The playground's answers for runs that do not simply continue a text: fill-mask for masked-LM encoders,
pair scores for runs trained with next-sentence or sentence-order prediction, and infilling (engine/infer_infill.py,
re-exported here). Generation, text to text included, is engine/run_generation.py's.

Fill mask reads the text once and predicts every [MASK] at the same time, each from the text around it (as BERT
does; the masks do not see each other's guesses). The candidates are ordinary tokens only (a blank is never
filled with [SEP] or [MASK]), their probabilities renormalised over those. A pair score is the softmax of the
pair head on [CLS] A [SEP] B [SEP] (engine.objectives.pairs.pair_inputs builds it as training did): label 1 is
"B follows A" for next-sentence prediction, "in order" for sentence-order prediction.
"""

from __future__ import annotations

import re

import torch

from engine.infer_infill import infill
from engine.infer_text import (
    MASK,
    context_of,
    MASKED_LM,
    PAIR_TASKS,
    PlaygroundError,
    encode,
    encode_pieces,
    encoder_input,
    masked_lm_probs,
    percent,
    readable,
    refuse,
    tidy_pieces,
)
from engine.run_generation import LoadedRun, load_run

__all__ = ["PlaygroundError", "fill_mask", "infill", "mask_lines", "pair_words", "score_pair", "split_masks"]

MAX_TOP_K = 50


def _masked_lm_run(loaded: LoadedRun, needs: str) -> int:
    """The run's mask token id; PlaygroundError when the run is not a masked-LM encoder."""
    if loaded.arch != "encoder" or loaded.objective not in MASKED_LM:
        raise refuse(loaded, needs)
    mask_id = loaded.specials.get("mask")
    if mask_id is None:
        raise PlaygroundError("this run's vocabulary has no [MASK] token, so it cannot read a blank")
    return mask_id


def split_masks(text: str, mask_token: str | None) -> list[str]:
    """The pieces of `text` between its masks: "[MASK]" as typed, or the vocabulary's own mask token."""
    marks = sorted({MASK, mask_token or MASK}, key=len, reverse=True)
    return re.split("|".join(re.escape(m) for m in marks), text)


def fill_mask(ws, run_ref, text: str, top_k: int = 5, checkpoint: str | None = None, device="auto") -> dict:
    """The top_k candidates, with their probabilities, for every [MASK] of `text` (a masked-LM encoder run).

    Returns {"masks": [{"position" (token index in "tokens"), "candidates": [[token, prob], ...]}] left to
    right, "text" (the text with each mask replaced by its best candidate), "tokens" (display strings of the
    tokens the model read), "checkpoint", "step"}. A text without a mask, or a run that is not a masked-LM
    encoder, is a PlaygroundError that says what to do.
    """
    if not 1 <= int(top_k) <= MAX_TOP_K:
        raise PlaygroundError(f"top_k must be between 1 and {MAX_TOP_K}, not {top_k}")
    loaded = load_run(ws, run_ref, device, checkpoint)
    mask_id = _masked_lm_run(loaded, "Fill mask needs an encoder trained with masked language modelling")
    tok = loaded.tok
    pieces = split_masks(text, tok.id_to_token(mask_id))
    if len(pieces) < 2:
        raise PlaygroundError(f"the text has no {MASK}: type {MASK} where a word is missing")
    ids, blanks = encode_pieces(tok, tidy_pieces(tok, pieces), [mask_id])
    idx, segments, offset = encoder_input(loaded, ids, [b[0] for b in blanks])
    probs = masked_lm_probs(loaded, idx, segments)  # (T, V)
    k = min(int(top_k), int((probs[0] > 0).sum()))
    filled = list(ids)
    masks = []
    for (pos,) in blanks:
        top_p, top_i = probs[pos + offset].topk(k)
        filled[pos] = int(top_i[0])
        masks.append(
            {
                "position": pos + offset,
                "candidates": [[readable(tok, i), float(p)] for i, p in zip(top_i.tolist(), top_p.tolist())],
            }
        )
    return {
        "masks": masks,
        "text": tok.decode(filled, skip_special_tokens=False),
        "tokens": [readable(tok, i) for i in idx[0].tolist()],
        "checkpoint": loaded.meta.get("checkpoint"),
        "step": loaded.meta.get("step"),
    }


def mask_lines(masks: list[dict]) -> list[str]:
    """One line per mask: '[MASK] 1: be 41.2 %, see 9.1 %, ...' (the CLI's words)."""
    return [
        f"{MASK} {n}: " + ", ".join(f"{text} {percent(p)}" for text, p in m["candidates"])
        for n, m in enumerate(masks, 1)
    ]


def pair_words(task: str, prob: float) -> str:
    """'B follows A: 87 %' (next-sentence prediction) or 'In order: 12 %' (sentence-order prediction)."""
    return f"{'B follows A' if task == 'nsp' else 'In order'}: {percent(prob, 0)}"


@torch.no_grad()
def score_pair(ws, run_ref, a: str, b: str, checkpoint: str | None = None, device="auto") -> dict:
    """How likely B follows A (a run trained with next-sentence prediction) or A and B are in order (sentence-
    order prediction). Returns {"task" ("nsp" | "sop"), "prob", "words", "checkpoint", "step"}."""
    loaded = load_run(ws, run_ref, device, checkpoint)
    task = PAIR_TASKS.get(loaded.objective)
    if loaded.arch != "encoder" or task is None:
        raise refuse(loaded, "Score a pair needs an encoder trained with next-sentence or sentence-order prediction")
    a_ids, b_ids = encode(loaded.tok, a.strip()), encode(loaded.tok, b.strip())
    if not a_ids or not b_ids:
        raise PlaygroundError("write both texts, A and B")
    from engine.objectives.pairs import pair_inputs

    idx, segments = pair_inputs(a_ids, b_ids, loaded.source, context_of(loaded))
    model = loaded.model
    device_ = model.transformer.wte.weight.device
    idx = torch.as_tensor(idx, dtype=torch.long, device=device_).reshape(1, -1)
    segments = torch.as_tensor(segments, dtype=torch.long, device=device_).reshape(1, -1)
    pad = loaded.specials.get("pad")
    key_padding = (idx != pad) if pad is not None else None
    hidden = model.encode(idx, segments=segments, key_padding=key_padding)
    prob = float(torch.softmax(model.pair_logits(hidden).float(), dim=-1)[0, 1])
    return {
        "task": task,
        "prob": prob,
        "words": pair_words(task, prob),
        "checkpoint": loaded.meta.get("checkpoint"),
        "step": loaded.meta.get("step"),
    }
