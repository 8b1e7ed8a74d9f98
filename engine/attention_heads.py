"""A plain-language label for every attention head, from the weights of the probe texts (numpy only).

Head patterns are measured on the captured weights (rows are queries, columns keys; row i sums to 1):
    previous-token  mean weight on key i-1, over queries 1..T-1
    next-token      (bidirectional only) mean weight on key i+1, over queries 0..T-2
    first-token     mean weight on key 0, over queries 2..T-1 (for query 1, key 0 is also the previous token)
    self            mean weight on key i, over queries 1..T-1 (query 0 of a decoder can only look at itself)
    local           mean weight on keys 2 to 4 back (bidirectional: 2 to 4 away on either side; never key 0),
                    over queries that have such a key
    induction       (decoders) mean weight on the token after each earlier occurrence of the current token, over
                    queries whose token occurred before; measured on a random sequence repeated twice
                    (engine.attention_probes.induction_probe)
    aligned         (cross-attention) mean weight on the encoder tokens within one place of the diagonal, the
                    key at the query's relative place in the source (round(i * (S - 1) / (Tt - 1)))
The self-attention patterns never count the same weight twice, so a head's strongest pattern is well defined.
A decoder's heads are scored exactly as before encoders existed (no next-token, local looks back).
"""

from __future__ import annotations

import numpy as np

from engine.attention_snapshots import InspectError

LOCAL_WINDOW = (2, 4)  # "local" covers keys this many positions back (inclusive); 1 back is previous-token
HEAD_PATTERNS = {
    "previous-token": "Looks at the token just before the current one, so later layers know what came right before.",
    "next-token": "Looks at the token just after the current one (an encoder reads both ways), so later layers "
    "know what comes next.",
    "first-token": "Rests its attention on the very first token, a resting place (a 'sink') for a head that "
    "has nothing useful to look at here.",
    "self": "Looks at the current token itself.",
    "local": "Spreads its attention over the few tokens shortly before the current one (2 to 4 back), "
    "picking up nearby context.",
    "induction": "Finds where the current token appeared earlier and looks at the token that followed it there, "
    "which lets the model continue a pattern it has seen before.",
    "aligned": "Each token of the output looks at the input token in the same place (the diagonal), as when "
    "copying or repairing a text word by word.",
    "mixed": "No single pattern stands out: where it looks depends on what the text says.",
}
# An encoder's "local" looks both ways.
BIDIRECTIONAL_PATTERNS = {
    **HEAD_PATTERNS,
    "local": "Spreads its attention over the few tokens around the current one (2 to 4 away, before or after), "
    "picking up nearby context.",
}
# Ties go to the first: the rarer, more telling pattern wins.
_LABEL_ORDER = ("induction", "aligned", "previous-token", "next-token", "first-token", "self", "local")


# ----------------------------------------------------------------------------------------------- head scores


def _mean_rows(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis; 0 where there is nothing to average."""
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1], dtype=np.float32)
    return values.mean(-1).astype(np.float32)


def _masked_mass(attn: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per head, the attention mass inside mask [Tq, Tk], averaged over the queries (rows) the mask touches."""
    rows = mask.any(-1)
    mass = (attn[:, :, rows, :] * mask[rows]).sum(-1)  # (L, H, n_rows)
    return _mean_rows(mass)


def score_heads(
    attn: np.ndarray, ids: list[int] | None = None, *, bidirectional: bool = False
) -> dict[str, np.ndarray]:
    """Pattern scores in 0..1, each [L, H], for self-attention [L, H, T, T] (see the module docstring).

    "induction" is scored only when the token ids of the sequence are given (0 if no token repeats);
    `bidirectional` (an encoder) adds "next-token" and lets "local" look both ways.
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
    away = np.abs(back) if bidirectional else back
    scores = {
        "previous-token": _mean_rows(attn[:, :, q[1:], q[1:] - 1]),
        "first-token": _mean_rows(attn[:, :, 2:, 0]),
        "self": _mean_rows(attn[:, :, q[1:], q[1:]]),
        "local": _masked_mass(attn, (away >= lo) & (away <= hi) & (q[None, :] >= 1)),
    }
    if bidirectional:
        scores["next-token"] = _mean_rows(attn[:, :, q[:-1], q[:-1] + 1])
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


def score_cross(attn: np.ndarray) -> dict[str, np.ndarray]:
    """{"aligned": [L, H]} for cross-attention [L, H, Tt, S]: the weight within one key of the diagonal."""
    attn = np.asarray(attn, dtype=np.float32)
    if attn.ndim != 4:
        raise InspectError(f"cross-attention must be [layer, head, query, key], not shape {attn.shape}")
    Tt, S = attn.shape[-2:]
    diagonal = np.rint(np.arange(Tt) * (S - 1) / max(Tt - 1, 1))
    near = np.abs(np.arange(S)[None, :] - diagonal[:, None]) <= 1  # (Tt, S)
    return {"aligned": _masked_mass(attn, near)}


def label_heads(
    scores: dict[str, np.ndarray], threshold: float = 0.4, explanations: dict[str, str] | None = None
) -> list[list[dict]]:
    """Per layer, per head: {"label", "score", "explanation", "scores": {pattern: score}}.

    The label is the strongest pattern when its score reaches `threshold`, else "mixed" (its score is then the
    strongest pattern's, so a reader can see how close it came). `explanations` replaces HEAD_PATTERNS' words.
    """
    words = explanations or HEAD_PATTERNS
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
                    "explanation": words[label],
                    "scores": {n: round(float(stacked[k, layer, head]), 4) for k, n in enumerate(names)},
                }
            )
        labels.append(row)
    return labels


def _is_bidirectional(probe: dict) -> bool:
    if "causal" in probe:
        return not probe["causal"]
    attn = np.asarray(probe["attn"])
    return probe.get("part", "self") == "encoder" or bool(np.triu(attn, k=1).any())


def _part_report(probes: list[dict], threshold: float) -> dict:
    """The head report of the probes of one part."""
    positional: dict[str, list[np.ndarray]] = {}
    induction = []
    bidirectional = False
    for probe in probes:
        if probe.get("part") == "cross":
            s = score_cross(probe["attn"])
        else:
            induct = probe.get("kind") == "induction"
            bidirectional = _is_bidirectional(probe)
            s = score_heads(probe["attn"], probe["ids"] if induct else None, bidirectional=bidirectional)
        for name, value in s.items():
            (induction if name == "induction" else positional.setdefault(name, [])).append(value)
    scores = {name: np.mean(values, axis=0).astype(np.float32) for name, values in positional.items()}
    if induction:
        scores["induction"] = np.mean(induction, axis=0).astype(np.float32)
    words = BIDIRECTIONAL_PATTERNS if bidirectional else HEAD_PATTERNS
    return {"scores": scores, "labels": label_heads(scores, threshold, words)}


def head_report(snapshot: list[dict], threshold: float = 0.4) -> dict:
    """{"scores": {pattern: float32 [L, H]}, "labels": label_heads(...)} for a snapshot.

    The positional patterns are averaged over every probe; induction comes from the induction probe only,
    since ordinary text repeats tokens (letters, "the") without a pattern worth continuing. A snapshot of
    several parts (an encoder-decoder) is reported per part under "parts" ({part: {"scores", "labels"}}; the
    parts' layers differ), with the first part's report at the top as well.
    """
    if not snapshot:
        raise InspectError("the snapshot holds no probes")
    by_part: dict[str, list[dict]] = {}
    for probe in snapshot:
        by_part.setdefault(probe.get("part", "self"), []).append(probe)
    reports = {part: _part_report(probes, threshold) for part, probes in by_part.items()}
    first = next(iter(reports.values()))
    if list(reports) == ["self"]:
        return first
    return {**first, "parts": reports}
