"""Infilling: the model writes what goes in each gap between the segments a person gave (text, gap, text, ...).

How depends on what the run learned:
- span corruption on an encoder-decoder (T5): the encoder reads the segments with a sentinel for each gap
  (<extra_id_0>, <extra_id_1>, ...), the decoder writes each sentinel followed by what it hides, then the end of
  text; the output is cut at the sentinels, one fill per gap;
- span corruption on a decoder (fill-in-the-middle): one gap at a time, left to right, the prompt the objective
  trained on (engine.objectives.span_corruption.fim_prompt: prefix and suffix behind their markers, then the
  middle marker) and the model writes the middle until its end-of-text token; the prefix of a later gap holds the
  fills before it;
- masked language modelling on an encoder (BERT): `gap_tokens` masks per gap, filled one at a time, the most
  confident position first, each pass reading the tokens filled so far.
Other runs are refused with the modes they support.
"""

from __future__ import annotations

import torch

from engine.generate import check_settings, seeded, stream_steps
from engine.infer_text import (
    MASKED_LM,
    PlaygroundError,
    check_length,
    encode,
    encode_pieces,
    encoder_input,
    fill_text,
    masked_lm_probs,
    refuse,
    tidy_pieces,
)
from engine.run_generation import LoadedRun, generation_inputs, load_run

INFILL_MODES = ("greedy", "sample")


def infill(
    ws,
    run_ref,
    segments: list[str],
    *,
    max_new_tokens: int = 32,
    gap_tokens: int = 3,
    mode: str = "greedy",
    temperature: float = 0.8,
    seed: int | None = None,
    checkpoint: str | None = None,
    device="auto",
) -> dict:
    """Fill the gaps between `segments` (at least two: a gap lies between each two) with a checkpoint of the run
    (the module docstring says how for each kind of run). max_new_tokens bounds each gap's fill (generating
    runs), gap_tokens is how many tokens each gap gets (masked-LM runs). mode "greedy" or "sample" (temperature,
    seed). Returns {"fills" (one text per gap), "text" (the segments joined by their fills), "checkpoint",
    "step"}."""
    texts = [str(s) for s in segments]
    if len(texts) < 2:
        raise PlaygroundError("mark at least one gap in the text for the model to fill")
    if mode not in INFILL_MODES:
        raise PlaygroundError(f"mode must be greedy or sample, not {mode!r}")
    check_settings(temperature=temperature, max_new_tokens=max_new_tokens)
    if max_new_tokens < 1 or gap_tokens < 1:
        raise PlaygroundError("each gap needs room for at least one token (max_new_tokens, gap_tokens)")
    loaded = load_run(ws, run_ref, device, checkpoint)
    pieces = tidy_pieces(loaded.tok, texts)
    settings = {"mode": mode, "temperature": temperature, "seed": seed}
    if loaded.objective == "span_corruption" and loaded.arch == "encoder-decoder":
        fills = _sentinel_fills(loaded, pieces, max_new_tokens, settings)
    elif loaded.objective == "span_corruption" and loaded.arch == "decoder":
        fills = _middle_fills(loaded, pieces, max_new_tokens, settings)
    elif loaded.objective in MASKED_LM and loaded.arch == "encoder":
        fills = _masked_fills(loaded, pieces, gap_tokens, mode, temperature, seed)
    else:
        raise refuse(loaded, "Infill needs a run trained with span corruption, or a masked-LM encoder")
    text = pieces[0] + "".join(fill + piece for fill, piece in zip(fills, pieces[1:]))
    return {"fills": fills, "text": text, "checkpoint": loaded.meta.get("checkpoint"), "step": loaded.meta.get("step")}


def _steps(loaded: LoadedRun, prompt: list[int], max_new_tokens: int, settings: dict):
    """The generated tokens of `prompt` (greedy or sampled), ending at the end-of-text token."""
    return stream_steps(
        loaded.model,
        prompt,
        max_new_tokens=max_new_tokens,
        mode=settings["mode"],
        temperature=settings["temperature"],
        seed=settings["seed"],
        eos_id=loaded.source.doc_end,
        **generation_inputs(loaded),
    )


def _sentinel_fills(loaded: LoadedRun, pieces: list[str], max_new_tokens: int, settings: dict) -> list[str]:
    """T5: the segments with a sentinel per gap in, each sentinel and its span out (the layout of
    engine.objectives.span_corruption: infill_input, fills_of)."""
    from engine.objectives.span_corruption import fills_of, infill_input

    source = loaded.source
    n_gaps = len(pieces) - 1
    if n_gaps > len(source.sentinels):
        raise PlaygroundError(f"this run's vocabulary has {len(source.sentinels)} sentinels, so at most that many gaps")
    tok = loaded.tok
    ids = infill_input([encode(tok, p) for p in pieces], source)
    check_length(loaded, len(ids), "the text with its gaps")
    beyond = set(source.sentinels[n_gaps:])  # T5 ends a target with the sentinel after the last gap
    target: list[int] = []
    for step in _steps(loaded, ids, n_gaps * (max_new_tokens + 1) + 1, settings):
        if step.token == source.doc_end or step.token in beyond:
            break
        target.append(step.token)
    texts: list[str] = []
    for i, fill in enumerate(fills_of(target, source, n_gaps)):
        before = "".join(p + f for p, f in zip(pieces[: i + 1], [*texts, ""]))
        texts.append(fill_text(tok, encode(tok, before), fill[:max_new_tokens]))
    return texts


def _middle_fills(loaded: LoadedRun, pieces: list[str], max_new_tokens: int, settings: dict) -> list[str]:
    """Fill-in-the-middle: prefix and suffix in, the middle out, one gap at a time."""
    from engine.objectives.span_corruption import fim_prompt

    tok = loaded.tok
    block = loaded.cfg.model.block_size
    new = max(1, min(max_new_tokens, block // 2))  # the prompt keeps at least half the context
    stops = set(loaded.source.sentinels) | {loaded.source.doc_end}
    fills: list[str] = []
    for gap in range(len(pieces) - 1):
        before = "".join(p + f for p, f in zip(pieces[: gap + 1], [*fills, ""]))
        prefix, suffix = encode(tok, before), encode(tok, "".join(pieces[gap + 1 :]))
        prompt = _fitted_prompt(prefix, suffix, block - new, lambda p, s: fim_prompt(p, s, loaded.source))
        middle: list[int] = []
        for step in _steps(loaded, prompt, new, settings):
            if step.token in stops:
                break
            middle.append(step.token)
        fills.append(fill_text(tok, prefix, middle))
    return fills


def _fitted_prompt(prefix: list[int], suffix: list[int], room: int, build) -> list[int]:
    """build(prefix, suffix) with as much of the text next to the gap as fits in `room` tokens: the end of the
    prefix and the start of the suffix, half each, the share one side does not need going to the other."""
    prompt = build(prefix, suffix)
    if len(prompt) <= room:
        return prompt
    markers = len(prompt) - len(prefix) - len(suffix)
    text_room = max(2, room - markers)
    keep_suffix = min(len(suffix), max(text_room // 2, text_room - len(prefix)))
    keep_prefix = min(len(prefix), text_room - keep_suffix)
    return build(prefix[len(prefix) - keep_prefix :], suffix[:keep_suffix])


@torch.no_grad()
def _masked_fills(
    loaded: LoadedRun, pieces: list[str], gap_tokens: int, mode: str, temperature: float, seed: int | None
) -> list[str]:
    """BERT: gap_tokens masks per gap, the most confident one filled on each pass."""
    tok = loaded.tok
    mask_id = loaded.specials.get("mask")
    if mask_id is None:
        raise PlaygroundError("this run's vocabulary has no [MASK] token, so it cannot read a gap")
    ids, gaps = encode_pieces(tok, pieces, [mask_id] * gap_tokens)
    idx, segments, offset = encoder_input(loaded, ids, [p for g in gaps for p in g])
    generator = seeded(torch.Generator(), seed)
    open_ = [p for g in gaps for p in g]  # positions in ids still to fill
    while open_:
        probs = masked_lm_probs(loaded, idx, segments)[[p + offset for p in open_]]  # (open, V)
        best = int(probs.max(dim=-1).values.argmax())
        row = probs[best]
        if mode == "sample" and temperature > 0:
            row = torch.softmax(row.clamp_min(1e-30).log() / temperature, dim=-1)
            token = int(torch.multinomial(row, 1, generator=generator))
        else:
            token = int(row.argmax())
        pos = open_.pop(best)
        ids[pos] = token
        idx[0, pos + offset] = token
    return [fill_text(tok, ids[: g[0]], ids[g[0] : g[-1] + 1]) for g in gaps]
