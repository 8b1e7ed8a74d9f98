"""Tokens as a person reads them (spaces, newlines and stray bytes made visible), the spans a text's tokens
cover, and the order of BPE merges."""

from __future__ import annotations

import json

from tokenizers import Tokenizer, decoders

from engine.tokenizer.errors import TokenizerError
from engine.tokenizer.spec import METASPACE


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, which byte-level BPE uses to spell its tokens."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_BYTE_OF_CHAR = {c: b for b, c in _bytes_to_unicode().items()}
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\x7f": "␡"}


def _visible(text: str) -> str:
    # Control characters become their Unicode "control picture" (U+2400 + code) so nothing prints blank.
    return "".join(_VISIBLE.get(c) or (chr(0x2400 + ord(c)) if ord(c) < 32 else c) for c in text)


def is_byte_level(tok: Tokenizer) -> bool:
    return isinstance(tok.decoder, decoders.ByteLevel)


def is_metaspace(tok: Tokenizer) -> bool:
    return isinstance(tok.decoder, decoders.Metaspace)


def merge_ranks(tok: Tokenizer) -> dict[int, int]:
    """{token id: rank of the BPE merge that made it} (0 = the first merge learned); empty for other models."""
    model = json.loads(tok.to_str()).get("model", {})
    if model.get("type") != "BPE":
        return {}
    vocab = tok.get_vocab()
    special = tok.get_added_tokens_decoder()
    ranks: dict[int, int] = {}
    for rank, merge in enumerate(model.get("merges") or []):
        a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
        token_id = vocab.get(a + b)
        # A merge can spell a special token's text ("<|endoftext|>" written out in the corpus): not its id.
        if token_id is not None and token_id not in ranks and token_id not in special:
            ranks[token_id] = rank
    return ranks


def display_token(tok: Tokenizer, token_id: int) -> str:
    """A token as a person can read it: spaces ␣, newlines ⏎, tabs ⇥, stray bytes <0xE2>."""
    token = tok.id_to_token(int(token_id))
    if token is None:
        raise TokenizerError(f"token id {token_id} is outside the vocabulary (0 to {tok.get_vocab_size() - 1})")
    special = tok.get_added_tokens_decoder().get(int(token_id))
    if special is not None:
        return token
    if not is_byte_level(tok):
        return _visible(token.replace(METASPACE, " ") if is_metaspace(tok) else token)
    if any(c not in _BYTE_OF_CHAR for c in token):
        return token
    raw = bytes(_BYTE_OF_CHAR[c] for c in token)
    # surrogateescape keeps the bytes that are not (complete) UTF-8 as \udc80-\udcff, shown as <0xNN>.
    text = raw.decode("utf-8", "surrogateescape")
    return "".join(f"<0x{ord(c) - 0xDC00:02X}>" if 0xDC80 <= ord(c) <= 0xDCFF else _visible(c) for c in text)


def token_spans(tok: Tokenizer, text: str) -> list[dict]:
    """The tokens of `text` with the character span each covers, in order, together covering all of text.

    A character split over several byte tokens is given to the first of them; the rest get an empty span there.
    """
    enc = tok.encode(text, add_special_tokens=False)
    spans, prev_end = [], 0
    for token_id, (_, end) in zip(enc.ids, enc.offsets):
        # Starting where the previous token ended keeps the spans contiguous even where byte tokens overlap.
        start = prev_end
        end = max(end, start)
        spans.append({"id": int(token_id), "token": display_token(tok, token_id), "start": start, "end": end})
        prev_end = end
    if spans and prev_end < len(text):
        spans[-1]["end"] = len(text)
    return spans
