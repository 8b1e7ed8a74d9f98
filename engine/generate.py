"""Sampling from a GPT, one token at a time, with a KV cache.

The cache makes each new token cost one position's work instead of the whole sequence's. A model only knows
block_size positions, so when the cache is full we start it again from the last block_size // 2 tokens
("re-priming"): one full forward pass over half a context, then cheap steps again for the other half. Without
a cache (use_cache=False) every step recomputes the last block_size tokens, a sliding window; the two give the
same tokens for the same seed as long as the sequence fits in block_size, and differ after that because they
see different amounts of context.
"""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch.nn import functional as F

from engine.model import GPT


def _check_args(model: GPT, prompt_ids: list[int], max_new_tokens: int, temperature: float,
                top_k: int | None, top_p: float | None) -> None:
    if len(prompt_ids) == 0:
        raise ValueError("the prompt is empty: give at least one token to start from")
    bad = [t for t in prompt_ids if not 0 <= int(t) < model.vocab_size]
    if bad:
        raise ValueError(f"token id {bad[0]} is outside the model's vocabulary (0 to {model.vocab_size - 1})")
    if max_new_tokens < 0:
        raise ValueError("max_new_tokens cannot be negative")
    if temperature < 0:
        raise ValueError("temperature cannot be negative (0 picks the most likely token)")
    if top_k is not None and top_k < 1:
        raise ValueError("top_k must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError("top_p must be above 0 and at most 1")


def _pick(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None,
          generator: torch.Generator) -> int:
    """Choose the next token from the last position's logits (V,)."""
    logits = logits.float()
    if temperature == 0:
        return int(torch.argmax(logits))
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Drop a token when the tokens before it already reach top_p; the most likely token is never dropped.
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
        sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return int(torch.multinomial(probs, num_samples=1, generator=generator))


def sample_stream(model: GPT, prompt_ids: list[int], *, max_new_tokens: int, temperature: float = 1.0,
                  top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                  should_stop: Callable[[], bool] | None = None, use_cache: bool = True) -> Iterator[int]:
    """Yield new token ids one at a time.

    temperature 0 is greedy. top_k keeps the k most likely tokens; top_p keeps the smallest set of most likely
    tokens whose probability reaches top_p (always at least one). Sampling uses a private torch.Generator on
    the model's device, seeded with `seed` (random when None), so the global RNG is never touched.
    should_stop() is checked before each token. The model is in eval mode while the stream runs; its previous
    mode comes back when the stream ends or is closed. Bad arguments raise ValueError at the call, not at
    the first token.
    """
    _check_args(model, prompt_ids, max_new_tokens, temperature, top_k, top_p)
    return _stream(model, [int(t) for t in prompt_ids], max_new_tokens, temperature, top_k, top_p, seed,
                   should_stop, use_cache)


@torch.no_grad()
def _stream(model: GPT, tokens: list[int], max_new_tokens: int, temperature: float, top_k: int | None,
            top_p: float | None, seed: int | None, should_stop: Callable[[], bool] | None,
            use_cache: bool) -> Iterator[int]:
    device = model.lm_head.weight.device
    block_size = model.cfg.block_size
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)

    def forward(ids: list[int], cache=None) -> torch.Tensor:
        idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
        logits, _ = model(idx, kv_cache=cache)  # (1, T, V)
        return logits[0, -1]  # (V,)

    cache = model.new_kv_cache(1, device) if use_cache else None
    was_training = model.training
    model.eval()
    try:
        for i in range(max_new_tokens):
            if should_stop is not None and should_stop():
                return
            if cache is None:
                logits = forward(tokens[-block_size:])
            elif i == 0:
                logits = forward(tokens[-block_size:], cache)
            elif cache.length < block_size:
                logits = forward(tokens[-1:], cache)
            else:
                cache.reset()
                logits = forward(tokens[-max(1, block_size // 2):], cache)
            token = _pick(logits, temperature, top_k, top_p, generator)
            tokens.append(token)
            yield token
    finally:
        model.train(was_training)


def generate(model: GPT, prompt_ids: list[int], **kw) -> list[int]:
    """All new tokens of sample_stream(model, prompt_ids, **kw) as a list."""
    return list(sample_stream(model, prompt_ids, **kw))
