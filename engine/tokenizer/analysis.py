"""How trained tokenizers read their corpus: where a token occurs, how long documents are in tokens, and how
several tokenizers compare on the same text.

Every function takes a Workspace (engine.store) and tokenizer ids or names; memory stays bounded: token files are
read as memmaps in blocks, and corpora through samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from engine.tokenizer import streaming
from engine.tokenizer.display import display_token
from engine.tokenizer.errors import TokenizerCancelled, TokenizerError

BLOCK_TOKENS = 1 << 22
# Below this many occurrences every position is collected and a spread-out choice made; above, one is looked for
# in each of n equal stretches of the token files.
ALL_POSITIONS_UP_TO = 100_000


def _one_line(text: str) -> str:
    return text.replace("\n", "⏎").replace("\t", "⇥").replace("\r", "␍")


def _token_streams(ws, tokenizer_id: int) -> list[np.ndarray]:
    files = ws.token_files(tokenizer_id)
    out = []
    for split in ("train", "val"):
        path = Path(files[split])
        if path.exists() and path.stat().st_size:
            out.append(np.memmap(path, dtype=files["dtype"], mode="r"))
    return out


def _positions(streams: list[np.ndarray], token_id: int, n: int, expected: int) -> list[tuple[int, int]]:
    """Up to n (stream, position) pairs where token_id occurs, spread over the corpus."""
    if expected <= ALL_POSITIONS_UP_TO:
        found = []
        for s, ids in enumerate(streams):
            for a in range(0, len(ids), BLOCK_TOKENS):
                hits = np.flatnonzero(np.asarray(ids[a : a + BLOCK_TOKENS]) == token_id)
                found += [(s, a + int(h)) for h in hits]
        if len(found) <= n:
            return found
        picks = np.unique(np.linspace(0, len(found) - 1, n).round().astype(int))
        return [found[i] for i in picks]
    # Frequent: the first occurrence after each of n evenly spaced starting points.
    total = sum(len(ids) for ids in streams)
    out: list[tuple[int, int]] = []
    for k in range(n):
        start = total * k // n
        s = 0
        while s < len(streams) and start >= len(streams[s]):
            start -= len(streams[s])
            s += 1
        while s < len(streams):
            ids = streams[s]
            hit = None
            for a in range(start, len(ids), 1 << 16):
                h = np.flatnonzero(np.asarray(ids[a : a + (1 << 16)]) == token_id)
                if len(h):
                    hit = a + int(h[0])
                    break
            if hit is not None:
                if (s, hit) not in out:
                    out.append((s, hit))
                break
            s, start = s + 1, 0
    return out


def token_contexts(ws, tokenizer_ref: int | str, token_id: int, n: int = 10, width: int = 40) -> list[str]:
    """Up to n places in the tokenizer's corpus where token_id occurs, each as one line:
    `width` characters of text before (right-aligned), the token between ⟦ and ⟧, `width` after; newlines
    show as ⏎. Spread over the corpus (train, then validation), not only its start."""
    row = ws.tokenizer(tokenizer_ref)
    tok = ws.load_tokenizer(row["id"])
    token_id = int(token_id)
    if not 0 <= token_id < tok.get_vocab_size():
        raise TokenizerError(f"token id {token_id} is outside the vocabulary (0 to {tok.get_vocab_size() - 1})")
    streams = _token_streams(ws, row["id"])
    counts = np.load(ws.token_files(row["id"])["counts"], mmap_mode="r")
    expected = int(counts[token_id]) if token_id < len(counts) else 0
    if expected == 0 or n <= 0:
        return []
    out = []
    for s, p in _positions(streams, token_id, n, expected):
        ids = streams[s]
        # A character can take several byte tokens: take `width` tokens each side, then cut to characters.
        left = tok.decode(np.asarray(ids[max(0, p - width) : p]).tolist(), skip_special_tokens=False)
        right = tok.decode(np.asarray(ids[p + 1 : p + 1 + width]).tolist(), skip_special_tokens=False)
        mid = tok.decode([token_id], skip_special_tokens=False)
        out.append(f"{_one_line(left)[-width:]:>{width}}⟦{_one_line(mid)}⟧{_one_line(right)[:width]}")
    return out


def _read_span(f, a: int, b: int) -> str:
    f.seek(a)
    return f.read(b - a).decode("utf-8", "replace").rstrip("\n")


def _count_tokens(tok, texts: list[str]) -> list[int]:
    out = []
    for text in texts:
        if len(text) <= streaming.PIECE_CHARS * 64:
            out.append(None)
            continue
        # A long document is counted piece by piece (line-aligned), as the token files were made.
        out.append(sum(len(e.ids) for e in tok.encode_batch(streaming.split_pieces(text), add_special_tokens=False)))
    short = [i for i, v in enumerate(out) if v is None]
    for i, e in zip(short, tok.encode_batch([texts[i] for i in short], add_special_tokens=False)):
        out[i] = len(e.ids)
    return out


def doc_length_histogram(
    ws, tokenizer_ref: int | str, split: str = "train", bins: int = 30, max_docs: int = 5000, seed: int = 0
) -> dict:
    """Document lengths in tokens of the tokenizer's dataset split, from a seeded sample of up to max_docs.

    Returns {"split", "n_docs", "sampled", "counts", "edges", "min", "max", "mean", "median", "p95", "lengths"};
    counts[i] documents have edges[i] <= length < edges[i + 1] (the last bin includes its right edge); lengths
    are the sampled documents' lengths, sorted, so "how many are longer than N tokens" has an exact answer.
    """
    row = ws.tokenizer(tokenizer_ref)
    tok = ws.load_tokenizer(row["id"])
    spans = ws.document_spans(row["dataset_id"], split)
    n = len(spans)
    result: dict[str, Any] = {
        "split": split,
        "n_docs": n,
        "sampled": 0,
        "counts": [],
        "edges": [],
        "min": 0,
        "max": 0,
        "mean": 0.0,
        "median": 0.0,
        "p95": 0.0,
        "lengths": [],
    }
    if n == 0:
        return result
    pick = np.arange(n) if n <= max_docs else np.sort(np.random.default_rng(seed).choice(n, max_docs, replace=False))
    path = ws.dataset_files(row["dataset_id"])[0 if split == "train" else 1]
    lengths: list[int] = []
    with open(path, "rb") as f:
        batch, size = [], 0
        for i in pick:
            a, b = int(spans[i][0]), int(spans[i][1])
            batch.append(_read_span(f, a, b))
            size += b - a
            if size > (1 << 22):
                lengths += _count_tokens(tok, batch)
                batch, size = [], 0
        lengths += _count_tokens(tok, batch)
    arr = np.asarray(lengths, dtype=np.int64)
    counts, edges = np.histogram(arr, bins=max(1, int(bins)))
    result.update(
        sampled=len(arr),
        counts=counts.tolist(),
        edges=[float(e) for e in edges],
        min=int(arr.min()),
        max=int(arr.max()),
        mean=float(arr.mean()),
        median=float(np.median(arr)),
        p95=float(np.percentile(arr, 95)),
        lengths=np.sort(arr).tolist(),
    )
    return result


def _corpus_sample(ws, dataset_id: int, sample_chars: int) -> tuple[str, str]:
    """(split used, the first sample_chars characters of the validation text, cut at a line end)."""
    train, val = ws.dataset_files(dataset_id)
    split, path = ("val", val) if val.exists() and val.stat().st_size else ("train", train)
    with open(path, encoding="utf-8") as f:
        text = f.read(sample_chars)
    cut = text.rfind("\n")
    if cut > 0 and len(text) >= sample_chars:
        text = text[: cut + 1]
    return split, text


def compare_tokenizers(
    ws, refs: list[int | str], text: str | None = None, sample_chars: int = 1_000_000, cancelled=None
) -> dict:
    """Tokenizers side by side on the same corpus sample (the first one's dataset, validation split, up to
    sample_chars characters) and the same sample text (default: the sample's first line).

    Returns {"corpus": {"dataset", "split", "n_chars", "n_bytes", "n_words"}, "text", "rows": [{"tokenizer",
    "id", "kind", "vocab_size", "n_tokens", "bytes_per_token", "tokens_per_word", "unk_rate", "vocab_coverage",
    "lossless", "sample_split"}]}: unk_rate is the fraction of tokens that are the unknown token,
    vocab_coverage the fraction of the vocabulary the sample uses, lossless whether decoding gives the sample
    back, sample_split the readable tokens of the sample text. cancelled() is asked before each tokenizer.
    """
    if not refs:
        raise TokenizerError("choose at least one tokenizer to compare")
    rows = [ws.tokenizer(r) for r in refs]
    ds = ws.dataset(rows[0]["dataset_id"])
    split, corpus = _corpus_sample(ws, ds["id"], sample_chars)
    if text is None:
        # The validation text may begin in the middle of a line (a "last 10 %" split cuts anywhere): start the
        # sample at the first whole line.
        lines = corpus.split("\n")
        whole = lines[1:] if len(lines) > 1 and ds.get("split") != "documents" else lines
        text = next((ln for ln in whole if ln.strip()), "")[:200]
    n_bytes = len(corpus.encode("utf-8"))
    n_words = len(corpus.split())
    pieces = streaming.split_pieces(corpus)
    out = []
    for row in rows:
        if cancelled is not None and cancelled():
            raise TokenizerCancelled("comparison cancelled")
        tok = ws.load_tokenizer(row["id"])
        encodings = tok.encode_batch(pieces, add_special_tokens=False) if pieces else []
        ids = (
            np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])
            if encodings
            else np.zeros(0, dtype=np.int64)
        )
        n = len(ids)
        unk = (row.get("spec") or {}).get("special_tokens", {}).get("unk")
        unk_id = tok.token_to_id(unk) if unk else None
        decoded = "".join(tok.decode(e.ids, skip_special_tokens=False) for e in encodings)
        out.append(
            {
                "tokenizer": row["name"],
                "id": row["id"],
                "kind": row["kind"],
                "vocab_size": tok.get_vocab_size(),
                "n_tokens": n,
                "bytes_per_token": n_bytes / n if n else 0.0,
                "tokens_per_word": n / n_words if n_words else 0.0,
                "unk_rate": float(np.count_nonzero(ids == unk_id)) / n if n and unk_id is not None else 0.0,
                "vocab_coverage": len(np.unique(ids)) / tok.get_vocab_size() if n else 0.0,
                "lossless": decoded == corpus,
                "sample_split": [display_token(tok, i) for i in tok.encode(text, add_special_tokens=False).ids],
            }
        )
    return {
        "corpus": {
            "dataset": ds["name"],
            "split": split,
            "n_chars": len(corpus),
            "n_bytes": n_bytes,
            "n_words": n_words,
        },
        "text": text,
        "rows": out,
    }
