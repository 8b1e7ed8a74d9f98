"""Attention snapshots on the wire and on disk: encode / decode, save / load / list / delete, and the CLI's .npz.

A snapshot is a list of probes (engine/attention_probes.py), each one text's attention of one part of the model:
    part "self"     the self-attention of a decoder (causal) or an encoder (bidirectional)
    part "encoder"  an encoder-decoder's encoder self-attention (bidirectional), [L, H, S, S]
    part "decoder"  its decoder self-attention (causal), [L_dec, H, Tt, Tt]
    part "cross"    its cross-attention, decoder tokens (queries) by encoder tokens (keys), [L_dec, H, Tt, S]
Probes travel and are stored as float16 with a JSON-safe meta (encode_snapshot). A causal array is zero above
its diagonal, so only the lower triangle is kept ("tril" layout), which halves the bytes; bidirectional and
cross-attention arrays are kept whole ("full"). The meta says everything a reader needs, so a process without
torch (the studio) decodes a blob with numpy alone:
    flat = np.frombuffer(blob, "<f2").reshape(L, H, -1)            # layout "tril": T * (T + 1) / 2 per head
    attn = np.zeros((L, H, T, T), np.float16); attn[..., r, c] = flat   where r, c = np.tril_indices(T)
    attn = np.frombuffer(blob, "<f2").reshape(L, H, Tq, Tk)         # layout "full"
A probe's "tokens" label the keys (and the queries when they are the same); a cross probe adds "query_tokens"
and "query_ids" for its queries (the decoder's tokens). Numpy and the standard library only.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import UserError

SNAPSHOT_FORMAT = 1  # parts and cross shapes were added without changing how version-1 snapshots read
PARTS = ("self", "encoder", "decoder", "cross")
CAUSAL_PARTS = ("decoder",)  # always causal; "self" is causal for a decoder only (the probe says)


class InspectError(UserError, ValueError):
    """Attention cannot be shown for this input; the message says why in one line."""


def _is_causal(attn: np.ndarray) -> bool:
    return attn.shape[-1] == attn.shape[-2] and not np.triu(attn, k=1).any()


def _layout(probe: dict, half: np.ndarray) -> str:
    """'tril' for causal self-attention, else 'full'. A probe says whether it is causal; a hand-made one that
    does not say is judged by its zeros."""
    causal = probe.get("causal")
    if causal is None:
        causal = probe.get("part") in CAUSAL_PARTS or (probe.get("part", "self") == "self" and _is_causal(half))
    return "tril" if causal and half.shape[-1] == half.shape[-2] else "full"


def heads_json(heads: dict) -> dict:
    """A head report (attention_probes.head_report) as plain JSON: rounded scores, the labels, and per part the
    same when the snapshot has several parts."""
    out: dict[str, Any] = {
        "scores": {name: np.round(np.asarray(v, dtype=np.float64), 4).tolist() for name, v in heads["scores"].items()},
        "labels": heads["labels"],
    }
    if heads.get("parts"):
        out["parts"] = {part: heads_json(report) for part, report in heads["parts"].items()}
    return out


def _probe_meta(probe: dict, attn: np.ndarray, layout: str, nbytes: int) -> dict:
    meta = {
        "kind": probe.get("kind", "text"),
        "part": probe.get("part", "self"),
        "text": probe.get("text", ""),
        "tokens": list(probe["tokens"]),
        "ids": [int(t) for t in probe["ids"]],
        "n_dropped": int(probe.get("n_dropped", 0)),
        "chars_cut": int(probe.get("chars_cut", 0)),
        "shape": list(attn.shape),
        "layout": layout,
        "nbytes": nbytes,
    }
    if "query_tokens" in probe:
        meta["query_tokens"] = list(probe["query_tokens"])
        meta["query_ids"] = [int(t) for t in probe.get("query_ids") or []]
    return meta


def encode_snapshot(
    snapshot: list[dict], heads: dict | None = None, *, step: int | None = None
) -> tuple[dict, list[bytes]]:
    """(meta, blobs): little-endian float16 bytes, one blob per probe, and a JSON-safe meta describing them.

    meta = {"format", "step", "dtype": "<f2", "probes": [{"kind", "part", "text", "tokens", "ids", "n_dropped",
    "chars_cut", "shape": [L, H, Tq, Tk], "layout": "tril" | "full", "nbytes"} (+ "query_tokens", "query_ids" for
    cross-attention)], "heads": {"scores", "labels"[, "parts": {part: {"scores", "labels"}}]} (when given)}.
    """
    probes, blobs = [], []
    for probe in snapshot:
        attn = np.asarray(probe["attn"])
        square = attn.ndim == 4 and attn.shape[-1] == attn.shape[-2]
        if attn.ndim != 4 or not (square or "query_tokens" in probe):
            raise InspectError(f"probe attention must be [layer, head, query, key], not shape {attn.shape}")
        half = attn.astype("<f2")
        layout = _layout(probe, half)
        if layout == "tril":
            r, c = np.tril_indices(attn.shape[-1])
            half = half[..., r, c]  # (L, H, T * (T + 1) / 2)
        blob = np.ascontiguousarray(half).tobytes()
        blobs.append(blob)
        probes.append(_probe_meta(probe, attn, layout, len(blob)))
    meta: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "step": step, "dtype": "<f2", "probes": probes}
    if heads is not None:
        meta["heads"] = heads_json(heads)
    return meta, blobs


def decode_snapshot(meta: dict, blobs: list[bytes]) -> list[dict]:
    """The probes of encode_snapshot's output, each with "attn" float16 [L, H, Tq, Tk] (heads stay in meta)."""
    version = meta.get("format") if isinstance(meta, dict) else None
    if version != SNAPSHOT_FORMAT:
        raise InspectError(f"unknown attention snapshot format {version!r} (this version reads {SNAPSHOT_FORMAT})")
    probes = meta.get("probes") or []
    if len(probes) != len(blobs):
        raise InspectError(f"the attention snapshot is damaged: {len(probes)} probes but {len(blobs)} arrays")
    out = []
    for probe, blob in zip(probes, blobs):
        L, H, T, T2 = (int(n) for n in probe["shape"])
        tril = probe["layout"] == "tril"
        per_head = T * (T + 1) // 2 if tril else T * T2
        if (tril and T != T2) or len(blob) != 2 * L * H * per_head:
            raise InspectError(f"the attention snapshot is damaged: {len(blob)} bytes for shape {probe['shape']}")
        flat = np.frombuffer(blob, dtype="<f2")
        if tril:
            attn = np.zeros((L, H, T, T), dtype=np.float16)
            r, c = np.tril_indices(T)
            attn[..., r, c] = flat.reshape(L, H, per_head)
        else:
            attn = flat.reshape(L, H, T, T2).astype(np.float16)  # a writable copy
        kept = {k: v for k, v in probe.items() if k not in ("shape", "layout", "nbytes")}
        out.append({**kept, "part": probe.get("part", "self"), "attn": attn})
    return out


# ------------------------------------------------------------------------------------------------- storage


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


MAX_SNAPSHOTS = 60  # about 8 MiB for the baby; a day of evaluations would be thousands


def snapshots_to_thin(steps: list[int], keep: int = MAX_SNAPSHOTS) -> list[int]:
    """Which of `steps` (sorted) to delete so that at most `keep` remain, log-spaced: the first and the newest,
    and between them the one nearest to each of keep - 2 geometrically spaced steps, so early training, where
    attention changes fastest, keeps more of its snapshots than the long flat end."""
    if len(steps) <= keep:
        return []
    first, newest = steps[0], steps[-1]
    low = next((s for s in steps if s > 0), newest)
    chosen = {first, newest}
    for target in np.geomspace(low, newest, max(keep - 2, 1)):
        chosen.add(min(steps, key=lambda s: abs(math.log(max(s, 1)) - math.log(target))))
    return [s for s in steps if s not in chosen]


def thin_snapshots(directory, keep: int = MAX_SNAPSHOTS) -> int:
    """Delete snapshots so that at most about `keep` remain (snapshots_to_thin); return how many went."""
    found = dict(list_snapshots(directory))
    gone = snapshots_to_thin(sorted(found), keep)
    for step in gone:
        found[step].unlink(missing_ok=True)
    return len(gone)


def save_npz(path, attn: np.ndarray, tokens: list[str], *, ids: list[int] | None = None, extra: dict | None = None):
    """Write attn (float32 [layer, head, query, key]) and tokens (strings) to an .npz file, atomically; `extra`
    adds arrays by name (an encoder-decoder's decoder_attn, cross_attn and target_tokens).

    Read it back with np.load(path) - no pickle needed: z["attn"], list(z["tokens"]) (and z["ids"] if given).
    """
    attn = np.asarray(attn, dtype=np.float32)
    if attn.ndim != 4 or attn.shape[-1] != len(tokens) or attn.shape[-2] != len(tokens):
        raise InspectError(f"attention of shape {attn.shape} does not match {len(tokens)} tokens")
    arrays = {"attn": attn, "tokens": np.array(list(tokens), dtype=str)}
    if ids is not None:
        arrays["ids"] = np.asarray(ids, dtype=np.int64)
    for name, value in (extra or {}).items():
        arrays[name] = np.asarray(value)
    path = Path(path)
    _atomic_write(path, lambda f: np.savez(f, **arrays))
    return path
