"""Looking inside a model: attention weights for probe texts, and a plain-language label for every head.

Training runs the fused attention kernel, which never materialises the weights (docs/DESIGN.md rule 7). Here we run
a few short probe texts through the model's explicit-softmax path (forward(..., return_attn=True)), so watching
the heads costs a few small forward passes per evaluation and nothing per training step. Every architecture:
    decoder          one probe per text, part "self", causal
    encoder          one probe per text, part "self", bidirectional (no causal triangle)
    encoder-decoder  three probes per text: "encoder" (the text as the source), "decoder" (the decoder reading a
                     target: the text itself unless one is given, behind the decoder start token) and "cross"
                     (decoder tokens by encoder tokens)

Head scores and labels live in engine/attention_heads.py, the snapshots' wire and storage format in
engine/attention_snapshots.py; their names are importable from here too, as before the split.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.attention_snapshots import (  # noqa: F401  (this module's public names since before the split)
    PARTS,
    SNAPSHOT_FORMAT,
    InspectError,
    decode_snapshot,
    delete_snapshots_after,
    encode_snapshot,
    list_snapshots,
    load_snapshot,
    save_npz,
    save_snapshot,
)
from engine.attention_heads import (  # noqa: F401  (as above)
    BIDIRECTIONAL_PATTERNS,
    HEAD_PATTERNS,
    LOCAL_WINDOW,
    head_report,
    label_heads,
    score_cross,
    score_heads,
)
from engine.tokenizer import display_token

# Long pasted text is cut to its end before tokenizing: to the larger of these many characters per shown token
# (no tokenizer here spends more on one token) and _CUT_TEXT_ABOVE characters.
_CHARS_PER_TOKEN_CAP = 64
_CUT_TEXT_ABOVE = 20_000

# The tokens an encoder-decoder's decoder may start from, by role as engine.objectives.base.decoder_start_id
# takes them (bos, pad, eos), under the names the tokenizer kinds give them (engine/choices.py).
_START_TOKENS = ("<s>", "[BOS]", "[PAD]", "<pad>", "<|endoftext|>", "</s>")


# ----------------------------------------------------------------------------------------------- capturing


def context_of(model) -> int:
    """How many tokens the model reads at a time (a prompt-tuned decoder: its soft prompt's fewer)."""
    return int(getattr(model, "context_size", model.cfg.block_size))


def _unwrap(model):
    # torch.compile and DDP wrap the model; the inspect path lives on the model itself.
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def arch_of(model) -> str:
    """ "decoder", "encoder" or "encoder-decoder"."""
    return getattr(_unwrap(model).cfg, "arch", "decoder")


def _check_ids(model, ids, what: str = "text") -> list[int]:
    ids = [int(t) for t in ids]
    if not ids:
        raise InspectError(f"there are no tokens to look at: give a {what} of at least one token")
    bad = [t for t in ids if not 0 <= t < model.vocab_size]
    if bad:
        raise InspectError(f"token id {bad[0]} is outside the model's vocabulary (0 to {model.vocab_size - 1})")
    return ids


@torch.no_grad()
def _run_inspect(model, *inputs: list[int]):
    """The model's attention output for one sequence per input, in eval mode; the mode is put back after."""
    device = next(model.parameters()).device
    tensors = [torch.tensor([ids], dtype=torch.long, device=device) for ids in inputs]
    was_training = model.training
    model.eval()
    try:
        # Called from inside a mixed-precision region, the weights would come out in bfloat16 (rows off by 1e-2).
        with torch.autocast(device.type, enabled=False):
            return model(*tensors, return_attn=True)[2]
    finally:
        model.train(was_training)


def _stack(attn: list) -> np.ndarray:
    return torch.stack([a[0] for a in attn]).float().cpu().numpy()  # (L, H, Tq, Tk)


def decoder_input(target_ids: list[int], start_id: int, length: int) -> list[int]:
    """What an encoder-decoder's decoder reads for a target: the start token, then the target, cut to `length`."""
    return [int(start_id), *(int(t) for t in target_ids)][: max(1, length)]


def capture_attention(
    model, ids: list[int], *, max_tokens: int = 256, target: list[int] | None = None, start_id: int = 0
) -> np.ndarray | dict[str, np.ndarray]:
    """Attention weights of every head for one token sequence: float32 [layer, head, query, key].

    Keeps the last T = min(len(ids), max_tokens, block_size) tokens. Runs in eval mode (no dropout) and puts
    the model back in the mode it was in. An encoder's rows spread over every key (no causal triangle). For an
    encoder-decoder, `ids` is the source and the decoder reads decoder_input(target or the kept source,
    start_id, T); the result is {"encoder": [L, H, S, S], "decoder": [Ld, H, Tt, Tt], "cross": [Ld, H, Tt, S]}.
    """
    model = _unwrap(model)
    ids = _check_ids(model, ids)
    if max_tokens < 1:
        raise InspectError(f"max_tokens must be at least 1, not {max_tokens}")
    T = min(len(ids), max_tokens, context_of(model))
    src = ids[-T:]
    if arch_of(model) != "encoder-decoder":
        return _stack(_run_inspect(model, src))  # (L, H, T, T)
    tgt_ids = src if target is None else _check_ids(model, target, "target")
    tgt = decoder_input(tgt_ids, start_id, min(max_tokens, context_of(model)))
    attn = _run_inspect(model, src, tgt)
    return {part: _stack(attn[part]) for part in ("encoder", "decoder", "cross")}


def token_attention(model, ids: list[int], position: int) -> tuple[np.ndarray, list[int]]:
    """Where the token at `position` of `ids` looks, in every layer and head: (float32 [layer, head, key], the
    keys' ids).

    A decoder reads the sequence whole, as in training, up to its context: the keys are the last block_size
    tokens up to and including `position` (all of ids[:position + 1] when they fit); the row equals row
    `position` of capture_attention(model, ids) when the sequence fits in the context. An encoder looks both
    ways: the keys are the block_size tokens around `position` (all of ids when they fit). Each row sums to 1.
    An encoder-decoder's attention has two texts: the Attention panel shows it.
    """
    model = _unwrap(model)
    if isinstance(position, bool) or not isinstance(position, int):
        raise InspectError(f"the position must be a whole number, not {position!r}")
    if any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) for t in ids):
        raise InspectError("token ids must be whole numbers")
    if not 0 <= position < len(ids):
        raise InspectError(
            f"position {position} is outside the sequence of {len(ids)} tokens"
            + (f" (0 to {len(ids) - 1})" if ids else "")
        )
    arch, block = arch_of(model), context_of(model)
    if arch == "encoder-decoder":
        raise InspectError(
            "an encoder-decoder reads two texts: its encoder, decoder and cross-attention are in the Attention panel"
        )
    if arch == "encoder":
        start = min(max(0, position - block // 2), max(0, len(ids) - block))
        keys = [int(t) for t in ids[start : start + block]]
        attn = capture_attention(model, keys, max_tokens=len(keys))
        return attn[:, :, position - start, :], keys
    keys = [int(t) for t in ids[max(0, position + 1 - block) : position + 1]]
    attn = capture_attention(model, keys, max_tokens=len(keys))  # (L, H, K, K)
    return attn[:, :, -1, :], keys


def _display(tokenizer, token_id: int) -> str:
    return str(token_id) if tokenizer is None else display_token(tokenizer, token_id)


def token_strings(tokenizer, ids: list[int]) -> list[str]:
    """The readable form of each token (spaces ␣, newlines ⏎), as the attention views label them."""
    return [_display(tokenizer, int(t)) for t in ids]


def guess_start_id(tokenizer) -> int:
    """The decoder start token of an encoder-decoder when only the tokenizer is known: the first of bos, pad,
    eos under their usual names (engine.objectives.base.decoder_start_id's order), else 0."""
    for token in _START_TOKENS if tokenizer is not None else ():
        i = tokenizer.token_to_id(token)
        if i is not None:
            return int(i)
    return 0


def _encode_text(tokenizer, text: str, max_tokens: int) -> tuple[list[int], int]:
    """(token ids, characters cut from the start). Very long text is cut to its end before tokenizing, so a
    pasted book costs no more than a page; otherwise the whole text is tokenized and nothing is cut."""
    cut = max(max(1, max_tokens) * _CHARS_PER_TOKEN_CAP, _CUT_TEXT_ABOVE)
    if len(text) <= cut:
        return tokenizer.encode(text, add_special_tokens=False).ids, 0
    ids = tokenizer.encode(text[-cut:], add_special_tokens=False).ids
    # Cutting the text may have split its first token; that token is dropped rather than shown half.
    return (ids[1:] if len(ids) > 1 else ids), len(text) - cut


def _probe(model, tokenizer, kind: str, text: str, ids: list[int], max_tokens: int, chars_cut: int = 0) -> dict:
    attn = capture_attention(model, ids, max_tokens=max_tokens)
    T = attn.shape[-1]
    kept = [int(t) for t in ids[-T:]]
    if (len(kept) < len(ids) or chars_cut) and tokenizer is not None:
        text = tokenizer.decode(kept)  # the text shown, not the (possibly huge) text given
    return {
        "kind": kind,
        "part": "self",
        "causal": arch_of(model) == "decoder",
        "text": text,
        "tokens": [_display(tokenizer, t) for t in kept],
        "ids": kept,
        "n_dropped": len(ids) - T,
        "chars_cut": chars_cut,
        "attn": attn.astype(np.float16),
    }


def _encoder_decoder_probes(model, tokenizer, text, ids, chars_cut, max_tokens, target, start_id) -> tuple:
    """The three probes of one text on an encoder-decoder (encoder, decoder, cross-attention), without their
    arrays, and the arrays by part."""
    model = _unwrap(model)
    T = min(len(ids), max_tokens, context_of(model))
    src = [int(t) for t in ids[-T:]]
    if (T < len(ids) or chars_cut) and tokenizer is not None:
        text = tokenizer.decode(src)
    target_ids = src if target is None else tokenizer.encode(target, add_special_tokens=False).ids
    if not target_ids:
        raise InspectError("the decoder's text gives no tokens: use a text with some characters, or none")
    attn = capture_attention(model, src, max_tokens=max_tokens, target=target_ids, start_id=start_id)
    tgt = decoder_input(target_ids, start_id, min(max_tokens, context_of(model)))
    src_tokens, tgt_tokens = token_strings(tokenizer, src), token_strings(tokenizer, tgt)
    common = {"kind": "text", "text": text, "chars_cut": chars_cut}
    dropped = {"n_dropped": len(ids) - T}
    # n_dropped counts tokens before the shown ones; a target cut at its end (to the context) is not counted.
    tgt_dropped = dropped if target is None else {"n_dropped": 0}
    return [
        {**common, **dropped, "part": "encoder", "causal": False, "tokens": src_tokens, "ids": src},
        {**common, **tgt_dropped, "part": "decoder", "causal": True, "tokens": tgt_tokens, "ids": tgt},
        {**common, **dropped, "part": "cross", "causal": False, "tokens": src_tokens, "ids": src}
        | {"query_tokens": tgt_tokens, "query_ids": tgt},
    ], attn


def attention_snapshot(
    model,
    tokenizer,
    texts: list[str],
    *,
    max_tokens: int = 128,
    targets: list[str | None] | None = None,
    start_id: int | None = None,
) -> list[dict]:
    """One probe per text (three on an encoder-decoder): {"kind": "text", "part", "causal", "text", "tokens"
    (display strings), "ids", "n_dropped", "chars_cut", "attn": float16 [L, H, Tq, Tk]} (+ "query_tokens",
    "query_ids" for cross-attention).

    Only the last T = min(max_tokens, block_size) tokens of a long text are kept: n_dropped counts the tokens
    left out, chars_cut the characters of a very long text cut before tokenizing (their tokens are not counted);
    "text" is then the text of the kept tokens. An encoder-decoder's decoder reads targets[i] when given (else
    the kept text itself) behind start_id (None: guess_start_id(tokenizer)).
    """
    probes = []
    encdec = arch_of(model) == "encoder-decoder"
    start = guess_start_id(tokenizer) if start_id is None else int(start_id)
    for i, text in enumerate(texts):
        ids, chars_cut = _encode_text(tokenizer, text, max_tokens)
        if not ids:
            raise InspectError(f"the probe text {text[:40]!r} gives no tokens: use a text with some characters")
        if not encdec:
            probes.append(_probe(model, tokenizer, "text", text, ids, max_tokens, chars_cut))
            continue
        target = targets[i] if targets and i < len(targets) else None
        parts, attn = _encoder_decoder_probes(model, tokenizer, text, ids, chars_cut, max_tokens, target, start)
        for probe in parts:
            probe["attn"] = attn[probe["part"]].astype(np.float16)
        probes.extend(parts)
    return probes


def induction_probe(vocab_size: int, length: int = 32, seed: int = 0, exclude=()) -> list[int]:
    """A random sequence of `length` token ids, then the same sequence again (2 * length ids).

    The first half has no repeats when the vocabulary allows, so an induction head's target is unambiguous.
    Ids in `exclude` (special tokens, [UNK]) are never drawn.
    """
    allowed = np.setdiff1d(np.arange(vocab_size), np.fromiter((int(t) for t in exclude), dtype=np.int64))
    if length < 1:
        raise InspectError(f"the induction probe needs a length of at least 1, not {length}")
    if allowed.size == 0:
        raise InspectError("the vocabulary has no ordinary tokens to build an induction probe from")
    rng = np.random.default_rng(seed)
    half = rng.choice(allowed, size=length, replace=allowed.size < length)
    return [int(t) for t in np.concatenate([half, half])]


def _special_ids(tokenizer) -> set[int]:
    if tokenizer is None:
        return set()
    special = set(tokenizer.get_added_tokens_decoder())
    unk = tokenizer.token_to_id("[UNK]")
    if unk is not None:
        special.add(unk)
    return special


def induction_snapshot(model, tokenizer=None, *, length: int = 32, seed: int = 0, max_tokens: int = 128) -> dict | None:
    """The induction probe as a snapshot entry ({"kind": "induction", ...}), or None when the model's context
    (or max_tokens) is too short for a repeat of at least 3 tokens, or the model is not a decoder (induction
    heads continue a text left to right)."""
    model = _unwrap(model)
    length = min(length, context_of(model) // 2, max_tokens // 2)
    if length < 3 or arch_of(model) != "decoder":  # with 2 the induction target would be the previous token
        return None
    vocab = model.vocab_size if tokenizer is None else min(model.vocab_size, tokenizer.get_vocab_size())
    ids = induction_probe(vocab, length, seed, exclude=_special_ids(tokenizer))
    text = f"a random sequence of {length} tokens, repeated"
    return _probe(model, tokenizer, "induction", text, ids, max_tokens)


def probe_model(
    model,
    tokenizer,
    texts: list[str],
    *,
    max_tokens: int = 128,
    induction_length: int = 32,
    seed: int = 0,
    targets: list[str | None] | None = None,
    start_id: int | None = None,
) -> tuple[list[dict], dict]:
    """Everything an evaluation shows about attention, for any architecture: (snapshot, head_report(snapshot)).

    The snapshot holds the probes of each text (attention_snapshot) and then, for a decoder whose context allows,
    the induction probe.
    """
    snapshot = attention_snapshot(model, tokenizer, texts, max_tokens=max_tokens, targets=targets, start_id=start_id)
    if induction_length:
        probe = induction_snapshot(model, tokenizer, length=induction_length, seed=seed, max_tokens=max_tokens)
        if probe is not None:
            snapshot.append(probe)
    return snapshot, head_report(snapshot)


def default_probe_texts(tokenizer, token_ids, *, n: int = 2, n_tokens: int = 48) -> list[str]:
    """n texts of about n_tokens tokens from evenly spaced, fixed places of a token array (a validation split),
    so every evaluation of a run looks at the same texts.

    A fixed window starts and ends mid-word ("? GREMIO: … BAP"): a person shown it reads a cut-off sentence, and
    the combo that lists the texts looks clipped. So each window is a little wider and keeps whole lines when it
    holds two line breaks, else whole words (see _whole_lines)."""
    token_ids = np.asarray(token_ids)
    if token_ids.size == 0 or n < 1:
        return []
    wide = min(n_tokens + n_tokens // 2, token_ids.size)
    starts = np.linspace(0, token_ids.size - wide, n).astype(np.int64)
    texts = [
        _whole_lines(tokenizer.decode([int(t) for t in token_ids[s : s + wide]]), n_tokens, wide)
        for s in dict.fromkeys(starts)
    ]
    return [t for t in texts if t]


def _whole_lines(text: str, n_tokens: int, wide: int) -> str:
    """`text` cut to whole lines (between its first and last line break) when that keeps at least half of the
    wanted length, else to whole words; a text with neither comes back as it is."""
    want = max(1, len(text) * n_tokens // max(wide, 1))  # characters in about n_tokens tokens
    first, last = text.find("\n"), text.rfind("\n")
    if 0 <= first < last:
        lines = text[first + 1 : last].strip("\n")
        if len(lines) >= want // 2:
            return lines
    first, last = text.find(" "), text.rfind(" ")
    if 0 <= first < last and last - first - 1 >= want // 2:
        return text[first + 1 : last]
    return text


# --------------------------------------------------------------------------------------------------- the CLI


def attention_for_text(model, tokenizer, text: str, *, max_tokens: int = 256) -> tuple[np.ndarray, list[str]]:
    """(float32 [layer, head, query, key], display tokens) for the last max_tokens tokens of `text`: the
    self-attention of a decoder or an encoder, the encoder's of an encoder-decoder (attention_extra_for_text
    gives its decoder and cross-attention)."""
    ids, _ = _encode_text(tokenizer, text, max_tokens)
    if not ids:
        raise InspectError("the text is empty (or gives no tokens): type something to look at")
    attn = capture_attention(model, ids, max_tokens=max_tokens, start_id=guess_start_id(tokenizer))
    if isinstance(attn, dict):
        attn = attn["encoder"]
    return attn, [_display(tokenizer, t) for t in ids[-attn.shape[-1] :]]


def attention_extra_for_text(
    model, tokenizer, text: str, *, max_tokens: int = 256, target: str | None = None
) -> dict[str, np.ndarray]:
    """For an encoder-decoder, the arrays save_npz's `extra` takes beside attention_for_text's: decoder_attn
    float32 [layer, head, Tt, Tt], cross_attn [layer, head, Tt, S] and target_tokens (the decoder's, from its
    start token; it reads `target`, else the text itself). Other architectures: {}."""
    if arch_of(model) != "encoder-decoder":
        return {}
    probes = attention_snapshot(model, tokenizer, [text], max_tokens=max_tokens, targets=[target])
    parts = {p["part"]: p for p in probes}
    return {
        "decoder_attn": parts["decoder"]["attn"].astype(np.float32),
        "cross_attn": parts["cross"]["attn"].astype(np.float32),
        "target_tokens": np.array(parts["decoder"]["tokens"], dtype=str),
    }
