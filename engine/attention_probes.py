"""Looking inside a GPT: attention weights for probe texts, and a plain-language label for every head.

Training runs the fused attention kernel, which never materialises the weights (docs/DESIGN.md rule 7). Here we run
a few short probe texts through the model's explicit-softmax path (GPT.forward(..., return_attn=True)), so
watching the heads costs a few small forward passes per evaluation and nothing per training step.

Head patterns are measured on the captured weights (rows are queries, columns keys; row i sums to 1):
    previous-token  mean weight on key i-1, over queries 1..T-1
    first-token     mean weight on key 0, over queries 2..T-1 (for query 1, key 0 is also the previous token)
    self            mean weight on key i, over queries 1..T-1 (query 0 can only look at itself)
    local           mean weight on keys 2 to 4 back (never key 0), over queries that have such a key
    induction       mean weight on the token after each earlier occurrence of the current token, over queries
                    whose token occurred before; measured on a random sequence repeated twice (induction_probe)
The five never count the same weight twice, so a head's strongest pattern is well defined.

Snapshots travel and are stored as float16 with a JSON-safe meta (encode_snapshot). A causal attention array
is zero above its diagonal, so only the lower triangle is kept ("tril" layout), which halves the bytes. The meta
says everything a reader needs, so a process without torch (the studio) decodes a blob with numpy alone:
    flat = np.frombuffer(blob, "<f2").reshape(L, H, -1)            # layout "tril": T * (T + 1) / 2 per head
    attn = np.zeros((L, H, T, T), np.float16); attn[..., r, c] = flat   where r, c = np.tril_indices(T)
    attn = np.frombuffer(blob, "<f2").reshape(L, H, T, T)           # layout "full"
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.errors import UserError
from engine.tokenizer import display_token

SNAPSHOT_FORMAT = 1
LOCAL_WINDOW = (2, 4)  # "local" covers keys this many positions back (inclusive); 1 back is previous-token
# Long pasted text is cut to its end before tokenizing: to the larger of these many characters per shown token
# (no tokenizer here spends more on one token) and _CUT_TEXT_ABOVE characters.
_CHARS_PER_TOKEN_CAP = 64
_CUT_TEXT_ABOVE = 20_000

HEAD_PATTERNS = {
    "previous-token": "Looks at the token just before the current one, so later layers know what came right before.",
    "first-token": "Rests its attention on the very first token, a resting place (a 'sink') for a head that "
    "has nothing useful to look at here.",
    "self": "Looks at the current token itself.",
    "local": "Spreads its attention over the few tokens shortly before the current one (2 to 4 back), "
    "picking up nearby context.",
    "induction": "Finds where the current token appeared earlier and looks at the token that followed it there, "
    "which lets the model continue a pattern it has seen before.",
    "mixed": "No single pattern stands out: where it looks depends on what the text says.",
}
# Ties go to the first: the rarer, more telling pattern wins.
_LABEL_ORDER = ("induction", "previous-token", "first-token", "self", "local")


class InspectError(UserError, ValueError):
    """Attention cannot be shown for this input; the message says why in one line."""


# ----------------------------------------------------------------------------------------------- capturing


def _unwrap(model):
    # torch.compile and DDP wrap the GPT; the inspect path lives on the GPT itself.
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


@torch.no_grad()
def capture_attention(model, ids: list[int], *, max_tokens: int = 256) -> np.ndarray:
    """Attention weights of every head for one token sequence: float32 [layer, head, query, key].

    Keeps the last T = min(len(ids), max_tokens, block_size) tokens. Runs in eval mode (no dropout) and puts
    the model back in the mode it was in.
    """
    model = _unwrap(model)
    ids = [int(t) for t in ids]
    if not ids:
        raise InspectError("there are no tokens to look at: give a text of at least one token")
    if max_tokens < 1:
        raise InspectError(f"max_tokens must be at least 1, not {max_tokens}")
    bad = [t for t in ids if not 0 <= t < model.vocab_size]
    if bad:
        raise InspectError(f"token id {bad[0]} is outside the model's vocabulary (0 to {model.vocab_size - 1})")
    T = min(len(ids), max_tokens, model.cfg.block_size)
    device = model.lm_head.weight.device
    idx = torch.tensor([ids[-T:]], dtype=torch.long, device=device)  # (1, T)
    was_training = model.training
    model.eval()
    try:
        # Called from inside a mixed-precision region, the weights would come out in bfloat16 (rows off by 1e-2).
        with torch.autocast(device.type, enabled=False):
            _, _, attn = model(idx, return_attn=True)  # L x (1, H, T, T)
    finally:
        model.train(was_training)
    return torch.stack([a[0] for a in attn]).float().cpu().numpy()  # (L, H, T, T)


def token_attention(model, ids: list[int], position: int) -> tuple[np.ndarray, list[int]]:
    """Where the token at `position` of `ids` looks, in every layer and head: (float32 [layer, head, key], the
    keys' ids).

    The model reads the sequence whole, as in training, up to its context: the keys are the last
    block_size tokens up to and including `position` (all of ids[:position + 1] when they fit). Each row sums
    to 1; it equals row `position` of capture_attention(model, ids) when the sequence fits in the context.
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
    keys = [int(t) for t in ids[max(0, position + 1 - model.cfg.block_size) : position + 1]]
    attn = capture_attention(model, keys, max_tokens=len(keys))  # (L, H, K, K)
    return attn[:, :, -1, :], keys


def _display(tokenizer, token_id: int) -> str:
    return str(token_id) if tokenizer is None else display_token(tokenizer, token_id)


def token_strings(tokenizer, ids: list[int]) -> list[str]:
    """The readable form of each token (spaces ␣, newlines ⏎), as the attention views label them."""
    return [_display(tokenizer, int(t)) for t in ids]


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
        "text": text,
        "tokens": [_display(tokenizer, t) for t in kept],
        "ids": kept,
        "n_dropped": len(ids) - T,
        "chars_cut": chars_cut,
        "attn": attn.astype(np.float16),
    }


def attention_snapshot(model, tokenizer, texts: list[str], *, max_tokens: int = 128) -> list[dict]:
    """One probe per text: {"kind": "text", "text", "tokens" (display strings), "ids", "n_dropped", "chars_cut",
    "attn": float16 [L, H, T, T]}.

    Only the last T = min(max_tokens, block_size) tokens of a long text are kept: n_dropped counts the tokens
    left out, chars_cut the characters of a very long text cut before tokenizing (their tokens are not counted);
    "text" is then the text of the kept tokens.
    """
    probes = []
    for text in texts:
        ids, chars_cut = _encode_text(tokenizer, text, max_tokens)
        if not ids:
            raise InspectError(f"the probe text {text[:40]!r} gives no tokens: use a text with some characters")
        probes.append(_probe(model, tokenizer, "text", text, ids, max_tokens, chars_cut))
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
    (or max_tokens) is too short for a repeat of at least 3 tokens."""
    model = _unwrap(model)
    length = min(length, model.cfg.block_size // 2, max_tokens // 2)
    if length < 3:  # with 2 the induction target would be the previous token
        return None
    vocab = model.vocab_size if tokenizer is None else min(model.vocab_size, tokenizer.get_vocab_size())
    ids = induction_probe(vocab, length, seed, exclude=_special_ids(tokenizer))
    text = f"a random sequence of {length} tokens, repeated"
    return _probe(model, tokenizer, "induction", text, ids, max_tokens)


# ----------------------------------------------------------------------------------------------- head scores


def _mean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis; 0 where there is nothing to average."""
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1], dtype=np.float32)
    return values.mean(-1).astype(np.float32)


def _masked_mass(attn: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per head, the attention mass inside mask [T, T], averaged over the queries (rows) the mask touches."""
    rows = mask.any(-1)
    mass = (attn[:, :, rows, :] * mask[rows]).sum(-1)  # (L, H, n_rows)
    return _mean_rows(mass)


def score_heads(attn: np.ndarray, ids: list[int] | None = None) -> dict[str, np.ndarray]:
    """Pattern scores in 0..1, each [L, H], for attention [L, H, T, T] (see the module docstring).

    "induction" is scored only when the token ids of the sequence are given (0 if no token repeats).
    """
    attn = np.asarray(attn, dtype=np.float32)
    if attn.ndim != 4 or attn.shape[-1] != attn.shape[-2]:
        raise InspectError(
            f"attention must be [layer, head, query, key] with as many keys as queries, not shape {attn.shape}"
        )
    T = attn.shape[-1]
    q = np.arange(T)
    back = q[:, None] - q[None, :]  # (T, T): how far key j lies before query i
    lo, hi = LOCAL_WINDOW
    scores = {
        "previous-token": _mean_rows(attn[:, :, q[1:], q[1:] - 1]),
        "first-token": _mean_rows(attn[:, :, 2:, 0]),
        "self": _mean_rows(attn[:, :, q[1:], q[1:]]),
        "local": _masked_mass(attn, (back >= lo) & (back <= hi) & (q[None, :] >= 1)),
    }
    if ids is not None:
        ids = np.asarray(ids)
        if ids.shape != (T,):
            raise InspectError(f"induction scoring needs one token id per position ({T}), got {ids.size}")
        same = (ids[:, None] == ids[None, :]) & (back >= 1)  # (T, T): key j holds the query's token, earlier
        target = np.zeros((T, T), dtype=bool)
        target[:, 1:] = same[:, :-1]  # the key after an earlier occurrence...
        target &= back >= 1  # ...but not the query itself (the token right before repeated the current one)
        scores["induction"] = _masked_mass(attn, target)
    return scores


def label_heads(scores: dict[str, np.ndarray], threshold: float = 0.4) -> list[list[dict]]:
    """Per layer, per head: {"label", "score", "explanation", "scores": {pattern: score}}.

    The label is the strongest pattern when its score reaches `threshold`, else "mixed" (its score is then the
    strongest pattern's, so a reader can see how close it came).
    """
    names = [n for n in _LABEL_ORDER if n in scores]
    if not names:
        raise InspectError("no head scores to label")
    # A diverged model gives NaN weights; it then has no pattern rather than a crash.
    stacked = np.nan_to_num(np.stack([np.asarray(scores[n], dtype=np.float64) for n in names]), nan=0.0)
    best = stacked.argmax(0)  # (L, H); argmax takes the first of equals, hence _LABEL_ORDER
    labels = []
    for layer in range(stacked.shape[1]):
        row = []
        for head in range(stacked.shape[2]):
            name = names[best[layer, head]]
            score = float(stacked[best[layer, head], layer, head])
            label = name if score >= threshold else "mixed"
            row.append(
                {
                    "label": label,
                    "score": round(score, 4),
                    "explanation": HEAD_PATTERNS[label],
                    "scores": {n: round(float(stacked[k, layer, head]), 4) for k, n in enumerate(names)},
                }
            )
        labels.append(row)
    return labels


def head_report(snapshot: list[dict], threshold: float = 0.4) -> dict:
    """{"scores": {pattern: float32 [L, H]}, "labels": label_heads(...)} for a snapshot.

    The positional patterns are averaged over every probe; induction comes from the induction probe only,
    since ordinary text repeats tokens (letters, "the") without a pattern worth continuing.
    """
    if not snapshot:
        raise InspectError("the snapshot holds no probes")
    positional: dict[str, list[np.ndarray]] = {}
    induction = []
    for probe in snapshot:
        induct = probe.get("kind") == "induction"
        s = score_heads(probe["attn"], probe["ids"] if induct else None)
        for name, value in s.items():
            (induction if name == "induction" else positional.setdefault(name, [])).append(value)
    scores = {name: np.mean(values, axis=0).astype(np.float32) for name, values in positional.items()}
    if induction:
        scores["induction"] = np.mean(induction, axis=0).astype(np.float32)
    return {"scores": scores, "labels": label_heads(scores, threshold)}


def probe_model(
    model, tokenizer, texts: list[str], *, max_tokens: int = 128, induction_length: int = 32, seed: int = 0
) -> tuple[list[dict], dict]:
    """Everything an evaluation shows about attention: (snapshot, head_report(snapshot)).

    The snapshot holds one probe per text and then, when the context allows, the induction probe.
    """
    snapshot = attention_snapshot(model, tokenizer, texts, max_tokens=max_tokens)
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


# ------------------------------------------------------------------------------------------- wire & storage


def _is_causal(attn: np.ndarray) -> bool:
    return not np.triu(attn, k=1).any()


def _heads_json(heads: dict) -> dict:
    return {
        "scores": {name: np.round(np.asarray(v, dtype=np.float64), 4).tolist() for name, v in heads["scores"].items()},
        "labels": heads["labels"],
    }


def encode_snapshot(
    snapshot: list[dict], heads: dict | None = None, *, step: int | None = None
) -> tuple[dict, list[bytes]]:
    """(meta, blobs): little-endian float16 bytes, one blob per probe, and a JSON-safe meta describing them.

    meta = {"format", "step", "dtype": "<f2", "probes": [{"kind", "text", "tokens", "ids", "n_dropped",
    "chars_cut", "shape": [L, H, T, T], "layout": "tril" | "full", "nbytes"}], "heads": {"scores", "labels"}
    (when given)}.
    """
    probes, blobs = [], []
    for probe in snapshot:
        attn = np.asarray(probe["attn"])
        if attn.ndim != 4 or attn.shape[-1] != attn.shape[-2]:
            raise InspectError(f"probe attention must be [layer, head, query, key], not shape {attn.shape}")
        T = attn.shape[-1]
        half = attn.astype("<f2")
        layout = "tril" if _is_causal(half) else "full"
        if layout == "tril":
            r, c = np.tril_indices(T)
            half = half[..., r, c]  # (L, H, T * (T + 1) / 2)
        blob = np.ascontiguousarray(half).tobytes()
        blobs.append(blob)
        probes.append(
            {
                "kind": probe.get("kind", "text"),
                "text": probe.get("text", ""),
                "tokens": list(probe["tokens"]),
                "ids": [int(t) for t in probe["ids"]],
                "n_dropped": int(probe.get("n_dropped", 0)),
                "chars_cut": int(probe.get("chars_cut", 0)),
                "shape": list(attn.shape),
                "layout": layout,
                "nbytes": len(blob),
            }
        )
    meta: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "step": step, "dtype": "<f2", "probes": probes}
    if heads is not None:
        meta["heads"] = _heads_json(heads)
    return meta, blobs


def decode_snapshot(meta: dict, blobs: list[bytes]) -> list[dict]:
    """The probes of encode_snapshot's output, each with "attn" float16 [L, H, T, T] (heads stay in meta)."""
    version = meta.get("format") if isinstance(meta, dict) else None
    if version != SNAPSHOT_FORMAT:
        raise InspectError(f"unknown attention snapshot format {version!r} (this version reads {SNAPSHOT_FORMAT})")
    probes = meta.get("probes") or []
    if len(probes) != len(blobs):
        raise InspectError(f"the attention snapshot is damaged: {len(probes)} probes but {len(blobs)} arrays")
    out = []
    for probe, blob in zip(probes, blobs):
        L, H, T, T2 = (int(n) for n in probe["shape"])
        per_head = T * (T + 1) // 2 if probe["layout"] == "tril" else T * T2
        if T != T2 or len(blob) != 2 * L * H * per_head:
            raise InspectError(f"the attention snapshot is damaged: {len(blob)} bytes for shape {probe['shape']}")
        flat = np.frombuffer(blob, dtype="<f2")
        if probe["layout"] == "tril":
            attn = np.zeros((L, H, T, T), dtype=np.float16)
            r, c = np.tril_indices(T)
            attn[..., r, c] = flat.reshape(L, H, per_head)
        else:
            attn = flat.reshape(L, H, T, T).astype(np.float16)  # a writable copy
        out.append({**{k: v for k, v in probe.items() if k not in ("shape", "layout", "nbytes")}, "attn": attn})
    return out


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise InspectError(f"cannot write {path}: {e.strerror or e}") from None
        raise


def _snapshot_name(step: int) -> str:
    return f"step-{int(step):08d}.npz"


def save_snapshot(directory, step: int, meta: dict, blobs: list[bytes]) -> Path:
    """Store an encoded snapshot as DIRECTORY/step-NNNNNNNN.npz (atomically; a re-run step replaces its file).

    The npz holds "meta" (the JSON text) and "blob0", "blob1", ... (the float16 bytes as 1-D float16 arrays),
    so load_snapshot gives back exactly what was sent, ready to send again.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InspectError(f"cannot create {directory}: {e.strerror or e}") from None
    arrays = {"meta": np.array(json.dumps(meta))}
    arrays.update({f"blob{i}": np.frombuffer(b, dtype="<f2") for i, b in enumerate(blobs)})
    path = directory / _snapshot_name(step)
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    return path


def load_snapshot(path) -> tuple[dict, list[bytes]]:
    """(meta, blobs) of a file written by save_snapshot."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            blobs = [z[f"blob{i}"].astype("<f2").tobytes() for i in range(len(meta.get("probes") or []))]
    except (OSError, KeyError, ValueError) as e:
        raise InspectError(f"cannot read the attention snapshot {path}: {e}") from None
    return meta, blobs


def list_snapshots(directory) -> list[tuple[int, Path]]:
    """(step, path) of the stored snapshots in DIRECTORY, by step."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        m = re.fullmatch(r"step-(\d+)\.npz", path.name)
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def delete_snapshots_after(directory, step: int) -> int:
    """Remove the snapshots of steps after `step` (a resumed run redoes them); return how many went."""
    gone = 0
    for s, path in list_snapshots(directory):
        if s > step:
            path.unlink(missing_ok=True)
            gone += 1
    return gone


# --------------------------------------------------------------------------------------------------- the CLI


def attention_for_text(model, tokenizer, text: str, *, max_tokens: int = 256) -> tuple[np.ndarray, list[str]]:
    """(float32 [layer, head, query, key], display tokens) for the last max_tokens tokens of `text`."""
    ids, _ = _encode_text(tokenizer, text, max_tokens)
    if not ids:
        raise InspectError("the text is empty (or gives no tokens): type something to look at")
    attn = capture_attention(model, ids, max_tokens=max_tokens)
    return attn, [_display(tokenizer, t) for t in ids[-attn.shape[-1] :]]


def save_npz(path, attn: np.ndarray, tokens: list[str], *, ids: list[int] | None = None) -> Path:
    """Write attn (float32 [layer, head, query, key]) and tokens (strings) to an .npz file, atomically.

    Read it back with np.load(path) - no pickle needed: z["attn"], list(z["tokens"]) (and z["ids"] if given).
    """
    attn = np.asarray(attn, dtype=np.float32)
    if attn.ndim != 4 or attn.shape[-1] != len(tokens) or attn.shape[-2] != len(tokens):
        raise InspectError(f"attention of shape {attn.shape} does not match {len(tokens)} tokens")
    arrays = {"attn": attn, "tokens": np.array(list(tokens), dtype=str)}
    if ids is not None:
        arrays["ids"] = np.asarray(ids, dtype=np.int64)
    path = Path(path)
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    return path
