"""What the Attention panel shows, without Qt: decoded snapshots, a run's history of them, summaries, windows.

The engine sends attention as float16 bytes described by a JSON meta (engine.attention_probes.encode_snapshot). The studio
may not import engine.attention_probes (it pulls in torch), so the small decoder lives here and reads the meta alone:
    layout "tril": per head, the T * (T + 1) / 2 lower-triangle values in np.tril_indices(T) order
    layout "full": per head, Tq * Tk values, row by row
Rows are queries, columns keys; each row sums to 1. A probe is one part of the model: "self" (a decoder's causal or
an encoder's bidirectional self-attention), or an encoder-decoder's "encoder", "decoder" and "cross" (decoder
tokens by encoder tokens, Tq != Tk); Snapshot.part_view shows one part as a snapshot of its own.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

SNAPSHOT_FORMAT = 1
# The head patterns the engine can name (engine.attention_probes.HEAD_PATTERNS); their explanations travel in the meta.
PATTERNS = ("previous-token", "next-token", "first-token", "self", "local", "induction", "aligned", "mixed")
# What each part of a model is called where the panel offers the choice (encoder-decoder runs), and what it is.
PART_NAMES = {
    "self": "Self-attention",
    "encoder": "Encoder self-attention",
    "decoder": "Decoder self-attention",
    "cross": "Cross-attention",
}
PART_WORDS = {
    "self": "The tokens of the text looking at each other.",
    "encoder": "The encoder's tokens (the input) looking at each other, before and after them.",
    "decoder": "The decoder's tokens looking back at the decoder's tokens before them.",
    "cross": "Each decoder token (rows) looking at the encoder's tokens, the input (columns).",
}
# Decoded snapshots kept for scrubbing (at least the one on screen); the encoded ones, a quarter of the bytes,
# are kept for the whole run.
DECODED_BUDGET_BYTES = 128 * 1024 * 1024
# Encoded snapshots older than this many bytes in total are dropped (and fetched again when scrubbed to).
HISTORY_BUDGET_BYTES = 512 * 1024 * 1024


class AttentionError(ValueError):
    """A snapshot cannot be read or shown; the message says why in one line."""


# --------------------------------------------------------------------------------------------------- decoding

# float16 bits -> float32 for every one of the 65,536 patterns: a table lookup converts ~2x faster than astype.
_HALF_TO_FLOAT = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32)


def _decode_blob(blob: bytes, shape: tuple[int, int, int, int], layout: str) -> np.ndarray:
    """float32 [L, H, Tq, Tk] from the engine's little-endian float16 bytes."""
    L, H, T, _ = shape
    bits = np.frombuffer(blob, dtype="<u2").reshape(L * H, -1)
    if layout != "tril":
        return np.take(_HALF_TO_FLOAT, bits).reshape(shape)
    # The lower triangle, row by row (np.tril_indices order): one converting copy per row, straight into the
    # result (~15x faster than scattering with the triangle's indices, and no full-size temporary).
    out = np.zeros((L * H, T, T), dtype=np.float32)
    start = 0
    for row in range(T):
        np.take(_HALF_TO_FLOAT, bits[:, start : start + row + 1], out=out[:, row, : row + 1])
        start += row + 1
    return out.reshape(shape)


@dataclass
class Probe:
    """One text the heads were looked at with, in one part of the model. `attn` (float32 [layer, head, query,
    key]) is decoded from the wire's float16 bytes when first used: a snapshot holds several probes and the panel
    shows one at a time. `tokens` label the keys; `query_tokens` the queries (the same but for cross-attention)."""

    kind: str  # "text" | "induction" | "custom"
    text: str
    tokens: list[str]
    ids: list[int]
    shape: tuple[int, int, int, int]
    n_dropped: int = 0  # tokens left out before the first shown one (long text)
    chars_cut: int = 0
    blob: bytes | None = field(default=None, repr=False)
    layout: str = "full"
    part: str = "self"  # "self" | "encoder" | "decoder" | "cross"
    causal: bool = True  # a query sees only the keys up to itself
    query_tokens: list[str] | None = None  # cross-attention's queries (the decoder's tokens)
    _attn: np.ndarray | None = field(default=None, repr=False)

    @property
    def attn(self) -> np.ndarray:
        if self._attn is None:
            # float32, not float16: numpy computes on float16 without SIMD, several times slower.
            self._attn = _decode_blob(self.blob, self.shape, self.layout)
            self.blob = None
        return self._attn

    @property
    def decoded(self) -> bool:
        return self._attn is not None

    @property
    def n_tokens(self) -> int:
        """Tokens along the longer side (keys, or the queries of a longer target)."""
        return int(max(self.shape[-2:]))

    @property
    def square(self) -> bool:
        """Queries and keys are the same tokens (self-attention)."""
        return self.query_tokens is None

    @property
    def row_tokens(self) -> list[str]:
        return self.tokens if self.query_tokens is None else self.query_tokens

    def title(self, max_chars: int = 48) -> str:
        if self.kind == "induction":
            return "Induction test: " + self.text
        text = " ".join(self.text.split())
        return (text[: max_chars - 1] + "…") if len(text) > max_chars else text


@dataclass
class Snapshot:
    """The probes of one evaluation (or of a text computed on demand) and the engine's labels for the heads."""

    step: int
    probes: list[Probe]
    labels: list[list[dict]] = field(default_factory=list)  # [layer][head] {"label", "score", "explanation", ...}
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    run: int | None = None
    part_heads: dict[str, tuple[list, dict]] = field(default_factory=dict)  # part -> (labels, scores), several parts

    @property
    def parts(self) -> list[str]:
        """The parts of the model the probes show, in the engine's order ("self" alone, or encoder, decoder,
        cross)."""
        return list(dict.fromkeys(p.part for p in self.probes))

    def part_view(self, part: str) -> Snapshot:
        """The probes of one part with that part's labels, as a snapshot of its own (itself with one part)."""
        if self.parts == [part] or part not in self.parts:
            return self
        labels, scores = self.part_heads.get(part, ([], {}))
        probes = [p for p in self.probes if p.part == part]
        return Snapshot(step=self.step, probes=probes, labels=labels, scores=scores, run=self.run)

    @property
    def n_layer(self) -> int:
        return int(self.probes[0].shape[0]) if self.probes else 0

    @property
    def n_head(self) -> int:
        return int(self.probes[0].shape[1]) if self.probes else 0

    @property
    def nbytes(self) -> int:
        """Bytes of the probes decoded so far."""
        return sum(p.attn.nbytes for p in self.probes if p.decoded)

    def label(self, layer: int, head: int) -> dict | None:
        try:
            return self.labels[layer][head]
        except (IndexError, TypeError):
            return None

    def explanations(self) -> dict[str, str]:
        """pattern -> its one-sentence explanation, for the patterns the labels mention."""
        out = {}
        for row in self.labels or []:
            for cell in row:
                if cell.get("label") and cell.get("explanation"):
                    out.setdefault(cell["label"], cell["explanation"])
        return out


def decode_probes(meta: dict, blobs) -> list[Probe]:
    """The probes of an encoded snapshot (their attention, float32 [L, H, T, T], decoded when first used);
    the sizes are checked here, so a damaged snapshot is reported at once."""
    if not isinstance(meta, dict) or meta.get("format") != SNAPSHOT_FORMAT:
        version = meta.get("format") if isinstance(meta, dict) else None
        raise AttentionError(
            f"unknown attention snapshot format {version!r} (this studio reads {SNAPSHOT_FORMAT}); update the studio"
        )
    probes = meta.get("probes") or []
    blobs = list(blobs or ())
    if len(probes) != len(blobs):
        raise AttentionError(f"the attention snapshot is damaged: {len(probes)} probes but {len(blobs)} arrays")
    return [_probe(probe, blob) for probe, blob in zip(probes, blobs)]


def _fit_tokens(tokens, n: int) -> list[str]:
    """n labels: the meta's, or #i for any it lacks."""
    tokens = [str(t) for t in tokens or []]
    return tokens if len(tokens) == n else (tokens + [f"#{i}" for i in range(len(tokens), n)])[:n]


def _probe(probe: dict, blob) -> Probe:
    try:
        L, H, T, T2 = (int(n) for n in probe["shape"])
        layout = probe.get("layout", "full")
    except (KeyError, TypeError, ValueError):
        raise AttentionError("the attention snapshot is damaged: a probe has no shape") from None
    part = str(probe.get("part", "self"))
    per_head = T * (T + 1) // 2 if layout == "tril" else T * T2
    square = T == T2 and "query_tokens" not in probe
    if (not square and (part != "cross" or layout == "tril")) or len(blob) != 2 * L * H * per_head:
        raise AttentionError(f"the attention snapshot is damaged: {len(blob)} bytes for shape {[L, H, T, T2]}")
    return Probe(
        kind=str(probe.get("kind", "text")),
        text=str(probe.get("text", "")),
        tokens=_fit_tokens(probe.get("tokens"), T2),
        ids=[int(i) for i in probe.get("ids") or []],
        shape=(L, H, T, T2),
        blob=bytes(blob),
        layout=layout,
        n_dropped=int(probe.get("n_dropped", 0) or 0),
        chars_cut=int(probe.get("chars_cut", 0) or 0),
        part=part,
        causal=bool(probe.get("causal", layout == "tril")),
        query_tokens=None if square else _fit_tokens(probe.get("query_tokens"), T),
    )


def decode_snapshot(meta: dict, blobs, *, step: int | None = None, run: int | None = None) -> Snapshot:
    """A Snapshot from an Attention broadcast / AttentionReply (meta + buffers)."""
    probes = decode_probes(meta, blobs)
    if not probes:
        raise AttentionError("the attention snapshot holds no probe texts")
    for part in dict.fromkeys(p.part for p in probes):
        shapes = {p.shape[:2] for p in probes if p.part == part}
        if len(shapes) != 1:
            raise AttentionError(
                f"the attention snapshot is damaged: probes disagree on layers x heads {sorted(shapes)}"
            )
    heads = meta.get("heads") or {}
    labels, scores = _heads(heads)
    parts = {str(part): _heads(h) for part, h in (heads.get("parts") or {}).items() if isinstance(h, dict)}
    if step is None:
        step = meta.get("step")
    return Snapshot(step=int(step or 0), probes=probes, labels=labels, scores=scores, run=run, part_heads=parts)


def _heads(heads: dict) -> tuple[list, dict[str, np.ndarray]]:
    """(labels, scores) of a head report in the meta."""
    scores = {}
    for name, value in (heads.get("scores") or {}).items():
        try:
            scores[name] = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            continue
    return list(heads.get("labels") or []), scores


# -------------------------------------------------------------------------------------------------- summaries


def mean_over_heads(attn: np.ndarray) -> np.ndarray:
    """float32 [L, T, T]: each layer's heads averaged (rows still sum to 1)."""
    attn = np.asarray(attn)
    if attn.ndim != 4:
        raise AttentionError(f"attention must be [layer, head, query, key], not shape {attn.shape}")
    return np.asarray(attn, dtype=np.float32).mean(axis=1)


def square_up(attn: np.ndarray) -> np.ndarray:
    """[..., Tq, Tk] stretched to [..., N, N] (N the longer side, nearest cell), so cross-attention, whose
    target and source differ in length, fits the square thumbnails of the model view; a square array is
    returned as it is."""
    attn = np.asarray(attn)
    Tq, Tk = attn.shape[-2:]
    if Tq == Tk:
        return attn
    n = max(Tq, Tk)
    rows = np.arange(n) * Tq // n
    cols = np.arange(n) * Tk // n
    return attn[..., rows, :][..., cols]


def rollout(attn: np.ndarray, residual: float = 0.5) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema, 2020): float32 [L, T, T], entry l is how much each query position,
    after layer l, draws on each input token through all layers up to l.

    Each layer's mean over heads is mixed with the identity (the residual connection carries the token itself
    forward), rows are renormalised, and the layers are chained: R_0 = A_0, R_l = A_l @ R_(l-1).
    """
    mean = mean_over_heads(attn)
    L, T, _ = mean.shape
    eye = np.eye(T, dtype=np.float32)
    out = np.empty((L, T, T), dtype=np.float32)
    joint = eye
    for layer in range(L):
        a = (1.0 - residual) * mean[layer] + residual * eye
        a /= np.maximum(a.sum(-1, keepdims=True), 1e-12)
        # einsum, not @: on a busy 2-core machine multi-threaded BLAS took up to 100x longer for these small
        # matrices (threads waiting for a core); einsum's single-threaded loop takes ~0.3 ms at T = 128.
        joint = np.einsum("ij,jk->ik", a, joint)
        out[layer] = joint
    return out


# ---------------------------------------------------------------------------------------------- long inputs


def token_window(n_tokens: int, cap: int, start: int = 0) -> tuple[int, int]:
    """(start, end) of at most `cap` consecutive tokens of `n_tokens`, start clamped so the window is full."""
    n_tokens, cap = max(0, int(n_tokens)), max(1, int(cap))
    if n_tokens <= cap:
        return 0, n_tokens
    start = min(max(0, int(start)), n_tokens - cap)
    return start, start + cap


def downsample_max(attn: np.ndarray, size: int) -> np.ndarray:
    """Shrink the last two axes (T x T) to at most size x size by taking the maximum of each block.

    The maximum, not the mean: a sharp diagonal (a previous-token head) must stay bright in a thumbnail.
    """
    attn = np.asarray(attn)
    T = attn.shape[-1]
    f = max(1, math.ceil(T / max(1, size)))
    if f == 1:
        return attn
    if attn.dtype == np.float16:
        attn = attn.astype(np.float32)  # numpy reduces float16 without SIMD
    # Elementwise maxima of strided slices: ~10x faster than reshaping into blocks and reducing two axes.
    rows = attn[..., 0::f, :].copy()
    for k in range(1, f):
        part = attn[..., k::f, :]
        np.maximum(rows[..., : part.shape[-2], :], part, out=rows[..., : part.shape[-2], :])
    out = rows[..., 0::f].copy()
    for k in range(1, f):
        part = rows[..., k::f]
        np.maximum(out[..., : part.shape[-1]], part, out=out[..., : part.shape[-1]])
    return out


def short_label(label: str) -> str:
    return {"previous-token": "previous", "first-token": "first", "induction": "induction"}.get(label, label)


# ------------------------------------------------------------------------------------------------- history


class AttentionHistory:
    """The stored snapshots of one run, by step: which steps exist, the encoded ones already fetched (bounded
    by HISTORY_BUDGET_BYTES) and the last few decoded ones (DECODED_BUDGET_BYTES) for smooth scrubbing."""

    def __init__(self, run: int | None = None):
        self.run = run
        self.steps: list[int] = []
        self._encoded: OrderedDict[int, tuple[dict, tuple]] = OrderedDict()
        self._decoded: OrderedDict[int, Snapshot] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.steps)

    def set_steps(self, steps) -> None:
        """The steps the engine has stored (AttentionReply.steps); keeps any step already known."""
        self.steps = sorted(set(int(s) for s in steps) | set(self.steps))

    def add(self, step: int, meta: dict, blobs) -> None:
        """An encoded snapshot (a broadcast or a reply); replaces an older one of the same step."""
        step = int(step)
        if step not in self.steps:
            self.steps = sorted([*self.steps, step])
        old = self._encoded.pop(step, None)
        if old is not None:
            self._bytes -= sum(len(b) for b in old[1])
        self._decoded.pop(step, None)
        blobs = tuple(blobs or ())
        self._encoded[step] = (meta, blobs)
        self._bytes += sum(len(b) for b in blobs)
        latest = self.steps[-1]
        while self._bytes > HISTORY_BUDGET_BYTES and len(self._encoded) > 1:
            victim = next(s for s in self._encoded if s != latest)
            self._bytes -= sum(len(b) for b in self._encoded.pop(victim)[1])
            self._decoded.pop(victim, None)

    def has(self, step: int) -> bool:
        return int(step) in self._encoded

    def get(self, step: int) -> Snapshot | None:
        """The decoded snapshot of `step`, or None when it has not been fetched (ask the engine for it)."""
        step = int(step)
        snap = self._decoded.get(step)
        if snap is not None:
            self._decoded.move_to_end(step)
            return snap
        encoded = self._encoded.get(step)
        if encoded is None:
            return None
        self._encoded.move_to_end(step)
        snap = decode_snapshot(encoded[0], encoded[1], step=step, run=self.run)
        self._decoded[step] = snap
        while len(self._decoded) > 1 and sum(s.nbytes for s in self._decoded.values()) > DECODED_BUDGET_BYTES:
            self._decoded.popitem(last=False)
        return snap

    def nearest(self, step: int) -> int | None:
        """The stored step closest to `step` (ties go to the earlier one)."""
        if not self.steps:
            return None
        return min(self.steps, key=lambda s: (abs(s - int(step)), s))

    @property
    def latest(self) -> int | None:
        return self.steps[-1] if self.steps else None

    @property
    def nbytes(self) -> int:
        return self._bytes
