"""What the playground's requests share (engine/playground_infer.py, engine/infer_infill.py): the error a user
gets when a run cannot do what was asked, texts with blanks made token ids, and an encoder's predictions.

A blank (a [MASK], a gap) is a special token put between the text's pieces, each piece encoded on its own.
Byte-level BPE and metaspace tokenizers keep a word's leading space inside the word's token ("Ġbe", "▁be"), so
the space a person types before a blank belongs to the blank: it is taken off the piece, and the model's token
brings it back. Other tokenizers (characters, WordPiece) keep the text as typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.errors import UserError
from engine.objectives.catalog import OBJECTIVE_CATALOG

if TYPE_CHECKING:
    from engine.run_generation import LoadedRun

MASKED_LM = ("masked_lm", "masked_lm+nsp", "masked_lm+sop")
PAIR_TASKS = {"nsp": "nsp", "sop": "sop", "masked_lm+nsp": "nsp", "masked_lm+sop": "sop"}
ARCH_WORDS = {"decoder": "a decoder", "encoder": "an encoder", "encoder-decoder": "an encoder-decoder"}
MASK = "[MASK]"  # what a person types for a blank, whatever the vocabulary's mask token is called


class PlaygroundError(UserError, ValueError):
    """A playground request the run cannot answer, or a text it cannot read; the message says why and what to
    use instead."""


def run_words(loaded: "LoadedRun") -> str:
    """'This run is an encoder trained with next-sentence prediction'."""
    info = OBJECTIVE_CATALOG.get(loaded.objective)
    label = info.label if info else loaded.objective.replace("_", " ")
    arch = ARCH_WORDS.get(loaded.arch, loaded.arch)
    return f"This run is {arch} trained with {label[:1].lower() + label[1:]}"


def run_modes(loaded: "LoadedRun") -> list[str]:
    """The playground modes the run supports, by their button names, the one it is made for first."""
    arch, objective = loaded.arch, loaded.objective
    if objective == "classification":  # a decoder's or encoder-decoder's LM head still writes (its parent's)
        return ["Classify"] + (
            [] if arch == "encoder" else ["Text to text" if arch == "encoder-decoder" else "Continue a text"]
        )
    if arch == "encoder":
        return (["Fill mask"] if objective in MASKED_LM else []) + (["Score a pair"] if objective in PAIR_TASKS else [])
    first = ["Infill"] if objective == "span_corruption" else []
    return first + (["Text to text"] if arch == "encoder-decoder" else ["Continue a text"])


def refuse(loaded: "LoadedRun", needs: str) -> PlaygroundError:
    """The error for a request the run cannot answer: what the run is, what the request needs, what to use."""
    modes = run_modes(loaded)
    use = f"; use {' or '.join(modes)}" if modes else ""
    return PlaygroundError(f"{run_words(loaded)}: {needs}{use}")


def _space_goes_with_the_word(tok) -> bool:
    from engine.tokenizer import is_byte_level, is_metaspace

    return is_byte_level(tok) or is_metaspace(tok)


def tidy_pieces(tok, pieces: list[str]) -> list[str]:
    """The pieces between blanks as they will be read: each piece a blank follows loses its trailing spaces
    when the tokenizer puts a word's space inside the word's token (see the module docstring)."""
    if not _space_goes_with_the_word(tok):
        return list(pieces)
    return [p.rstrip(" ") if i < len(pieces) - 1 else p for i, p in enumerate(pieces)]


def encode(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids if text else []


def encode_pieces(tok, pieces: list[str], blank: list[int]) -> tuple[list[int], list[list[int]]]:
    """(the ids of the pieces with `blank` between every two, the positions of each blank's tokens)."""
    ids: list[int] = []
    blanks: list[list[int]] = []
    for i, piece in enumerate(pieces):
        if i:
            blanks.append(list(range(len(ids), len(ids) + len(blank))))
            ids += blank
        ids += encode(tok, piece)
    return ids, blanks


def context_of(loaded: "LoadedRun") -> int:
    """How many text tokens the run's model reads at once: its context less a soft prompt's positions."""
    return int(getattr(loaded.model, "context_size", loaded.cfg.model.block_size))


def check_length(loaded: "LoadedRun", n: int, what: str = "the text") -> None:
    block = context_of(loaded)
    if n > block:
        raise PlaygroundError(
            f"{what} is {n} tokens, more than the {block} this model reads (its Context length): shorten it"
        )


def _window(n: int, room: int, keep: list[int]) -> int:
    """The start of the `room` tokens of n to read: all of them when they fit, else a window around the
    positions in `keep` (centred on them); PlaygroundError when those alone do not fit."""
    if n <= room:
        return 0
    lo, hi = (min(keep), max(keep) + 1) if keep else (n - room, n)
    if hi - lo > room:
        raise PlaygroundError(
            f"the blanks are {hi - lo} tokens apart, more than the {room} this model reads (its Context length): "
            f"put them closer together"
        )
    return max(0, min(n - room, lo - (room - (hi - lo)) // 2))


def encoder_input(
    loaded: "LoadedRun", ids: list[int], keep: list[int] = ()
) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """(idx (1, T), segments (1, T) or None, offset: ids[i] is idx[0, i + offset]) as the encoder saw its
    training text: a run trained on sentence pairs read [CLS] A [SEP] ..., so a single text comes as
    [CLS] text [SEP]. A text longer than the context is cut to a window around the positions in `keep`."""
    specials = loaded.specials
    wrap = loaded.objective in PAIR_TASKS and "cls" in specials and "sep" in specials
    room = context_of(loaded) - (2 if wrap else 0)
    start = _window(len(ids), room, list(keep))
    ids = ids[start : start + room]
    offset = -start
    if wrap:
        ids = [specials["cls"], *ids, specials["sep"]]
        offset += 1
    device = loaded.model.transformer.wte.weight.device
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    segments = torch.zeros_like(idx) if loaded.cfg.model.n_segments > 0 else None
    return idx, segments, offset


@torch.no_grad()
def masked_lm_probs(loaded: "LoadedRun", idx: torch.Tensor, segments: torch.Tensor | None) -> torch.Tensor:
    """The encoder's masked-LM probabilities (T, V) for idx (1, T), special tokens left out (a blank is
    filled with text, never with [MASK] or [SEP]); CPU float32."""
    model = loaded.model
    hidden = model.encode(idx, segments=segments)
    logits = model.lm_logits(hidden)[0].float().cpu()  # (T, V)
    special = torch.from_numpy(loaded.source.is_special[: logits.size(-1)].copy())
    logits[:, : special.numel()] = logits[:, : special.numel()].masked_fill(special, float("-inf"))
    return torch.softmax(logits, dim=-1)


def fill_text(tok, before: list[int], fill: list[int]) -> str:
    """The text `fill` adds after `before`, as it reads there (a space the token carries included)."""
    if not fill:
        return ""
    head = tok.decode(before, skip_special_tokens=True) if before else ""
    whole = tok.decode(before + fill, skip_special_tokens=True)
    return whole[len(head) :] if whole.startswith(head) else tok.decode(fill, skip_special_tokens=True)


def readable(tok, token_id: int) -> str:
    from engine.tokenizer import display_token

    try:
        return display_token(tok, int(token_id))
    except Exception:  # an id past the tokenizer's own (a model with a larger vocabulary): its number
        return f"<{int(token_id)}>"


def percent(p: float, digits: int = 1) -> str:
    return f"{100 * p:.{digits}f} %"
