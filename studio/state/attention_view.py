"""What the Attention panel is looking at, without Qt: the run and its stored snapshots, the step wanted on screen
(following a running training while the slider is at the end), a typed text's snapshot, the part of an
encoder-decoder shown (encoder, decoder or cross-attention), the head opened large, and the words and arrays the
views show for them.

The panel (studio/panels/attention.py) keeps its controls in step with this and asks the engine for what it
lacks; the decoding and the summaries are in studio/state/attention.py.
"""

from __future__ import annotations

import numpy as np

from engine.format import plural
from studio.state.attention import (
    PART_NAMES,
    AttentionHistory,
    Probe,
    Snapshot,
    mean_over_heads,
    rollout,
    token_window,
)

SUMMARIES = ("mean", "rollout")  # the columns after a layer's heads
SUMMARY_NAMES = {"mean": "mean of its heads", "rollout": "rollout up to here"}
# Rollout follows a token through one stack's layers; cross-attention joins two texts, so it has the mean only.
CROSS_SUMMARIES = ("mean",)


def summary_names(probe: Probe | None) -> tuple[str, ...]:
    """The summary columns a probe has."""
    return SUMMARIES if probe is None or probe.square else CROSS_SUMMARIES


class AttentionView:
    """The run shown, the snapshot wanted and the head opened large."""

    def __init__(self) -> None:
        self.history = AttentionHistory()
        self.step: int | None = None  # the stored snapshot wanted on screen
        self.custom: Snapshot | None = None  # attention computed for a typed text
        self.fetch: tuple[str, int | None] | None = None  # (request id, step) of the snapshot being fetched
        self.layer = 0
        self.column = 0  # < n_head: a head; then "mean", "rollout"
        self.part: str | None = None  # the part of an encoder-decoder chosen (None: the first)
        self.probe_titles: list[str] = []  # the texts to choose from: the stored probes, then the typed text
        self._summaries: tuple[object, dict] | None = None

    # ------------------------------------------------------------------------------------------------- the run
    def open(self, run_id) -> None:
        """Another run: nothing of the last one stays."""
        self.history = AttentionHistory(run_id)
        self.step = None
        self.custom = None
        self.fetch = None

    def following(self) -> bool:
        """True when the slider is at the newest snapshot (or there is none): new snapshots are then shown."""
        steps = self.history.steps
        return self.step is None or not steps or self.step == steps[-1]

    def stored(self) -> Snapshot | None:
        """The stored snapshot wanted, once fetched (AttentionError when it cannot be read)."""
        if self.step is None:
            return None
        return self.history.get(self.step)

    def take_reply(self, asked: int | None, reply) -> int | None:
        """A successful AttentionReply to a request for step `asked` (None: the latest). Returns the step still to
        fetch, if the one wanted is not here."""
        follow = self.following()
        self.history.set_steps(reply.steps or [])
        if reply.meta:
            self.history.add(reply.step, reply.meta, reply.buffers)
        if self.step is None or (asked is None and follow):
            self.step = reply.step if reply.meta else self.history.latest
        if self.step is not None and not self.history.has(self.step):
            return self.step
        return None

    def take_broadcast(self, msg) -> None:
        """A new snapshot of the run as it trains (an Attention broadcast): shown if the slider is at the end."""
        follow = self.following()
        self.history.add(msg.step, msg.meta, msg.buffers)
        if follow or self.step is None:
            self.step = msg.step

    def where(self, custom_selected: bool) -> str:
        """The line beside the slider: which snapshot is on screen, and whether it is still coming."""
        steps = self.history.steps
        if custom_selected:
            return "your text (not a stored snapshot)"
        if self.step is None:
            return "fetching…" if self.fetch else "no snapshots yet"
        where = f" ({steps.index(self.step) + 1} of {len(steps)})" if self.step in steps else ""
        fetching = " · fetching…" if not self.history.has(self.step) else ""
        return f"step {self.step:,}{where}{fetching}"

    # ---------------------------------------------------------------------------------------------------- play
    def play_from(self) -> int | None:
        """Where Play starts: from the first snapshot when the slider is at the end (None: from here)."""
        steps = self.history.steps
        return steps[0] if steps and self.step == steps[-1] else None

    def play_tick(self) -> tuple[str, int | None]:
        """What one tick of Play does: ("stop", None) at the end, ("wait", None) while the snapshot on screen is
        still being fetched (rather than skipping it), else ("show", the next step)."""
        steps = self.history.steps
        if self.step is None or not steps:
            return "stop", None
        if not self.history.has(self.step):
            return "wait", None
        i = steps.index(self.step) if self.step in steps else 0
        if i + 1 >= len(steps):
            return "stop", None
        return "show", steps[i + 1]

    # ------------------------------------------------------------------------------------------------ the parts
    def part_of(self, snap: Snapshot | None) -> str:
        """The part shown of `snap`: the one chosen when it has it, else its first."""
        parts = snap.parts if snap is not None else []
        if self.part in parts:
            return str(self.part)
        return parts[0] if parts else "self"

    def in_part(self, snap: Snapshot | None) -> Snapshot | None:
        """`snap` narrowed to the part shown (the whole snapshot when it has one part)."""
        return None if snap is None else snap.part_view(self.part_of(snap))

    # ------------------------------------------------------------------------------------------------ the texts
    def set_custom(self, snap: Snapshot) -> None:
        """Attention computed for a typed text; it is offered after the stored probes."""
        for probe in snap.probes:
            probe.kind = "custom"
        self.custom = snap

    def titles(self, stored: Snapshot | None) -> list[str]:
        stored = self.in_part(stored)
        titles = [pr.title() for pr in stored.probes] if stored else []
        if self.custom is not None:
            titles.append("Your text: " + self.custom.probes[0].title())
        return titles

    def is_custom(self, index: int) -> bool:
        """Whether text `index` of the list is the typed text (always the last one)."""
        return self.custom is not None and index == len(self.probe_titles) - 1

    def current(self, index: int, stored: Snapshot | None) -> tuple[Snapshot | None, Probe | None]:
        """(snapshot, probe) of text `index`, or (None, None)."""
        if self.is_custom(index):
            custom = self.in_part(self.custom)
            return custom, custom.probes[0]
        stored = self.in_part(stored)
        if stored is None:
            return None, None
        i = min(max(index, 0), len(stored.probes) - 1)
        return stored, stored.probes[i]

    # ------------------------------------------------------------------------------------------- the selection
    def select(self, layer: int, column: int) -> None:
        self.layer, self.column = layer, column

    def fit_selection(self, n_layer: int, n_head: int, n_summaries: int = len(SUMMARIES)) -> None:
        """A snapshot of another shape: a head that no longer exists gives way to the first."""
        if self.layer >= n_layer or self.column >= n_head + n_summaries:
            self.layer, self.column = 0, 0

    def summaries(self, probe: Probe) -> dict[str, np.ndarray]:
        """Mean over heads and rollout of a probe (the mean alone for cross-attention), computed once per probe."""
        if self._summaries is None or self._summaries[0] is not probe:
            values = {"mean": mean_over_heads(probe.attn)}
            if probe.square:
                values["rollout"] = rollout(probe.attn)
            self._summaries = (probe, values)
        return self._summaries[1]

    def matrix(self, probe: Probe, layer: int, column: int) -> np.ndarray:
        """The [Tq, Tk] weights of one head, or of a layer's summary (column n_head: mean, n_head + 1: rollout)."""
        H = probe.attn.shape[1]
        if column < H:
            return probe.attn[layer, column]
        return self.summaries(probe)[summary_names(probe)[column - H]][layer]

    def title(self, snap: Snapshot, layer: int, custom_selected: bool) -> str:
        """'Layer 0 · head 1 — previous-token 0.50 · step 300': what the large view shows (an encoder-decoder's
        part first: 'Cross-attention · Layer 0 · …')."""
        when = "your text" if custom_selected else f"step {snap.step:,}"
        part = snap.probes[0].part if snap.probes else "self"
        where = "" if part == "self" else f"{PART_NAMES.get(part, part).split(' (')[0]} · "
        names = summary_names(snap.probes[0] if snap.probes else None)
        if self.column >= snap.n_head:
            return f"{where}Layer {layer} · {SUMMARY_NAMES[names[self.column - snap.n_head]]} · {when}"
        info = snap.label(layer, self.column)
        label = f" — {info.get('label')} {info.get('score', 0):.2f}" if info else ""
        return f"{where}Layer {layer} · head {self.column}{label} · {when}"


def window_text(probe: Probe, cap: int, start: int) -> tuple[tuple[int, int], str]:
    """The window of tokens the large views show, and the line that says which they are."""
    T = probe.n_tokens
    s, e = token_window(T, cap, start)
    dropped = f" (the {plural(probe.n_dropped, 'token')} before them did not fit the model's context)"
    of = f"{T}" if probe.square else f"{probe.shape[-2]} decoder and {probe.shape[-1]} encoder tokens"
    return (s, e), f"tokens {s}–{e - 1} of {of}" + (dropped if probe.n_dropped else "")


def npz_arrays(snap: Snapshot, probe: Probe, run: int | None, summaries: dict[str, np.ndarray]) -> dict:
    """What 'Weights as .npz' saves: attn float32 [layer, head, query, key], tokens (the keys'), ids, text, step,
    run, part, the heads' labels and scores, and the summaries (+ query_tokens for cross-attention). Plain arrays
    only, so it loads without pickle."""
    L, H = probe.attn.shape[:2]
    labels = [[(snap.label(la, h) or {}).get("label", "") for h in range(H)] for la in range(L)]
    scores = [[float((snap.label(la, h) or {}).get("score", np.nan)) for h in range(H)] for la in range(L)]
    out = dict(
        attn=probe.attn.astype(np.float32),
        tokens=np.array(probe.tokens, dtype=str),
        ids=np.array(probe.ids, dtype=np.int64),
        text=np.array(probe.text, dtype=str),
        step=np.int64(snap.step),
        run=np.int64(run or 0),
        part=np.array(probe.part, dtype=str),
        labels=np.array(labels, dtype=str),
        label_scores=np.array(scores, dtype=np.float32),
        **summaries,
    )
    if not probe.square:
        out["query_tokens"] = np.array(probe.row_tokens, dtype=str)
    return out
