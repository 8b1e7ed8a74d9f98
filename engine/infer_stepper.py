"""How each kind of model hands generation its next-token logits (engine/generate.py runs the algorithms).

- A decoder (GPT) reads the sequence so far; with a KV cache each step feeds only the newest token.
- An encoder-decoder reads the prompt once with its encoder (the "memory"); the decoder starts from the
  decoder start token and writes the output. Its cache holds the decoder's self-attention keys and values and,
  from the first step on, the cross-attention keys and values of the memory, computed once. The decoder knows
  block_size positions and its first position is the start token, so an output is at most block_size tokens:
  there is no re-priming as a decoder's endless text has.
- A prefix-LM decoder (UniLM, T5's prefix LM) trained on windows whose first part it read both ways, so the
  prompt is read that way too: a window read afresh (the prompt, or the text after re-priming) attends
  bidirectionally over the prompt's tokens in it, and every generated token causally, as the prefix mask of
  training (engine.objectives.prefix_lm.prefix_mask) does; cached steps are causal, as after a prefix.
- A permutation-LM decoder (XLNet) predicts a position from its query stream
  (engine.objectives.permutation_lm.next_token_logits): every step reads the whole sequence again, with no
  cache, and the next position must fit in the context, so it reads the last block_size - 1 tokens.
- An encoder does not write text: asking it to is a GenerationError that points to Fill mask.

A Stepper keeps one row per sequence (beam search keeps a row per beam) and `reorder` makes the cache's rows
follow the beams that survive.
"""

from __future__ import annotations

from typing import Callable

import torch

from engine.errors import UserError
from engine.objectives.prefix_lm import prefix_mask


class GenerationError(UserError, ValueError):
    """Generation settings a user can fix; the message says which and why, in one line."""


ENCODER_REFUSAL = "this run's model is an encoder: an encoder fills in blanks and does not write text; use Fill mask"


class Stepper:
    """Next-token logits for a batch of sequences of a decoder (GPT)."""

    # The tokens every sequence starts from before anything is generated; None: the prompt itself.
    start: list[int] | None = None

    def __init__(self, model):
        self.model = model
        self.device = model.transformer.wte.weight.device
        # A prompt-tuned decoder reads its soft prompt's positions fewer text tokens (engine/prompt_tuning.py).
        self.block_size = int(getattr(model, "context_size", model.cfg.block_size))
        self.vocab_size = int(model.vocab_size)

    @property
    def cached(self) -> bool:
        """Whether a KV cache can carry the work of earlier steps (the re-priming of engine/generate.py)."""
        return True

    def max_new_tokens(self, asked: int) -> int:
        """How many tokens a generation can write: a decoder goes on past its context (re-priming)."""
        return asked

    def new_cache(self, batch_size: int):
        return self.model.new_kv_cache(batch_size, self.device)

    def logits(self, idx: torch.Tensor, cache) -> torch.Tensor:
        """The logits (B, V) that follow the last position of idx (B, T); with a cache idx holds the new
        tokens only."""
        logits, _ = self.model(idx, kv_cache=cache)  # (B, T, V)
        return logits[:, -1]

    def reorder(self, cache, rows: torch.Tensor) -> None:
        """Each cache row follows its beam's parent (rows: the parent of every new row)."""
        if cache is None:
            return
        if hasattr(cache, "reorder"):
            cache.reorder(rows.to(self.device))
            return
        rows = rows.to(self.device)
        for layer in range(len(cache.k)):
            cache.k[layer] = cache.k[layer][rows]
            cache.v[layer] = cache.v[layer][rows]


class EncoderDecoderStepper(Stepper):
    """The decoder of an encoder-decoder over the encoding of `source_ids` (its last block_size tokens)."""

    def __init__(self, model, source_ids: list[int], start_id: int):
        super().__init__(model)
        self.source = [int(t) for t in source_ids][-self.block_size :]
        self.start = [int(start_id)]
        self._memory: torch.Tensor | None = None

    def max_new_tokens(self, asked: int) -> int:
        return min(asked, self.block_size)

    def memory(self, batch_size: int) -> torch.Tensor:
        """The encoder's output (batch_size, S, E): computed once, the same row for every sequence."""
        if self._memory is None:
            src = torch.tensor([self.source], dtype=torch.long, device=self.device)
            self._memory = self.model.encode(src)  # (1, S, E)
        return self._memory.expand(batch_size, -1, -1)

    def logits(self, idx: torch.Tensor, cache) -> torch.Tensor:
        out = self.model.decode(idx, self.memory(idx.size(0)), kv_cache=cache)  # (B, T, V)
        return out[:, -1]


class PrefixStepper(Stepper):
    """A prefix LM's decoder: the prompt is its prefix, read with attention both ways."""

    def __init__(self, model):
        super().__init__(model)
        self.steps = 0  # tokens generated so far: logits is called once per step, for every row at once

    def logits(self, idx: torch.Tensor, cache) -> torch.Tensor:
        mask = None
        if cache is None or cache.length == 0:
            # A fresh window ends in the tokens generated so far; what comes before them is the prompt.
            prefix = idx.size(1) - self.steps
            if prefix > 1:
                prefix_rows = torch.full((idx.size(0),), prefix, dtype=torch.int64)
                mask = prefix_mask(prefix_rows, idx.size(1)).to(self.device)
        logits, _ = self.model(idx, kv_cache=cache, attn_mask=mask)
        self.steps += 1
        return logits[:, -1]


class QueryStreamStepper(Stepper):
    """A decoder that predicts with a function of the whole sequence (a permutation LM's query stream)."""

    def __init__(self, model, next_logits: Callable[[list[int]], torch.Tensor]):
        super().__init__(model)
        self.next_logits = next_logits

    @property
    def cached(self) -> bool:
        return False

    def new_cache(self, batch_size: int):
        return None

    def logits(self, idx: torch.Tensor, cache) -> torch.Tensor:
        keep = max(1, self.block_size - 1)  # the predicted position comes after these and must fit too
        rows = [self.next_logits(row[-keep:].tolist()) for row in idx]
        return torch.stack([r.reshape(-1) for r in rows])  # (B, V)


def stepper_for(
    model,
    prompt_ids: list[int],
    *,
    start_id: int | None = None,
    next_token_logits: Callable[[list[int]], torch.Tensor] | None = None,
    bidirectional_prompt: bool = False,
) -> Stepper:
    """The Stepper of `model` (its cfg.arch): for an encoder-decoder the prompt is the encoder's input and the
    decoder starts from `start_id` (engine.objectives.base.decoder_start_id; 0 when None); a decoder given
    `next_token_logits` (ids -> (V,)) predicts with it; with `bidirectional_prompt` a decoder reads the prompt
    as a prefix LM's prefix. An encoder is refused (GenerationError)."""
    arch = getattr(model.cfg, "arch", "decoder")
    if arch == "encoder":
        raise GenerationError(ENCODER_REFUSAL)
    if arch == "encoder-decoder":
        return EncoderDecoderStepper(model, prompt_ids, 0 if start_id is None else start_id)
    if next_token_logits is not None:
        return QueryStreamStepper(model, next_token_logits)
    if bidirectional_prompt:
        return PrefixStepper(model)
    return Stepper(model)
