"""Generating from a model, one token at a time, with a KV cache: greedy, sampling, and beam search.

The cache makes each new token cost one position's work instead of the whole sequence's. A model only knows
block_size positions, so when the cache is full we start it again from the last block_size // 2 tokens
("re-priming"): one full forward pass over half a context, then cheap steps again for the other half. Without
a cache (use_cache=False) every step recomputes the last block_size tokens, a sliding window; the two give the
same tokens for the same seed as long as the sequence fits in block_size, and differ after that because they
see different amounts of context.

Beam search keeps `beam_width` sequences side by side as one batch (one KV cache row each, re-primed the same
way), so beam width 1 is greedy decoding token for token. Its best sequence is only known at the end, so it
returns (and the engine streams) the tokens when the search is over. A beam ends at the end-of-text token when
one is given (eos_id); finished beams compete by total log-probability / length ** length_penalty, so a
length_penalty above 0 favours longer text, 0 compares raw sums (favouring short endings). Without an
end-of-text token every beam has the same length and the length penalty changes nothing.

Every architecture generates through the same code: engine/infer_stepper.py says how each gives its next-token
logits (a decoder continues its prompt; an encoder-decoder reads the prompt with its encoder and its decoder
writes from the decoder start token, at most block_size tokens; a permutation-LM decoder predicts with its query
stream, without a cache; an encoder is refused, it fills in blanks).

Token details (`details=True`): for each chosen token its probability and the entropy (nats) of the model's
next-token distribution at temperature 1 (what the model believes, before any sampling filter), and the
`top_n` most likely alternatives with their probabilities, most likely first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch.nn import functional as F

from engine.infer_stepper import GenerationError, Stepper, stepper_for

MODES = ("greedy", "sample", "beam")
MAX_BEAM_WIDTH = 64
TOP_N = 5  # alternatives shown per token


@dataclass(frozen=True)
class Step:
    """One generated token; prob, entropy and top are filled only when details were asked for."""

    token: int
    prob: float | None = None
    entropy: float | None = None
    top: tuple = ()  # ((token id, probability), ...), most likely first


def _check_args(
    model, prompt_ids: list[int], max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None
) -> None:
    if len(prompt_ids) == 0:
        raise GenerationError("the prompt is empty: give at least one token to start from")
    bad = [t for t in prompt_ids if not 0 <= int(t) < model.vocab_size]
    if bad:
        raise GenerationError(f"token id {bad[0]} is outside the model's vocabulary (0 to {model.vocab_size - 1})")
    check_settings(temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=max_new_tokens)


SEED_MAX = 2**64 - 1  # what torch.Generator.manual_seed takes


def seeded(generator: torch.Generator, seed: int | None) -> torch.Generator:
    """`generator` seeded with `seed` (from the OS when None); a seed torch cannot take is refused in words."""
    if seed is None:
        generator.seed()
        return generator
    if not 0 <= seed <= SEED_MAX:
        raise GenerationError(f"the seed must be a whole number from 0 to {SEED_MAX:,}, not {seed:,}")
    generator.manual_seed(seed)
    return generator


def check_settings(
    *,
    mode: str = "sample",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    beam_width: int = 4,
    length_penalty: float = 1.0,
    max_new_tokens: int = 0,
) -> None:
    """GenerationError for settings no generation can use, before any model is loaded."""
    if mode not in MODES:
        raise GenerationError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if max_new_tokens < 0:
        raise GenerationError("max_new_tokens cannot be negative")
    if not math.isfinite(temperature):
        raise GenerationError(f"temperature must be a number, not {temperature} (0 picks the most likely token)")
    if temperature < 0:
        raise GenerationError("temperature cannot be negative (0 picks the most likely token)")
    if top_k is not None and top_k < 1:
        raise GenerationError("top_k must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise GenerationError("top_p must be above 0 and at most 1")
    if mode == "beam":
        _check_beam(beam_width, length_penalty)


def _check_beam(beam_width: int, length_penalty: float) -> None:
    if not 1 <= beam_width <= MAX_BEAM_WIDTH:
        raise GenerationError(f"beam_width must be between 1 and {MAX_BEAM_WIDTH}, not {beam_width}")
    if not math.isfinite(length_penalty):
        raise GenerationError("length_penalty must be a finite number (1 is neutral per token, 0 none)")


def _pick(
    logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator
) -> int:
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


def token_details(
    logits: torch.Tensor, chosen: torch.Tensor, top_n: int = TOP_N
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For logits (B, V) and chosen ids (B,): the chosen tokens' probabilities (B,), the entropies in nats (B,),
    and the top_n most likely ids and their probabilities (B, top_n) each, most likely first; temperature 1."""
    logp = F.log_softmax(logits.float(), dim=-1)  # (B, V)
    probs = logp.exp()
    # A token of probability 0 adds nothing to the entropy (0 * log 0 would be NaN).
    entropy = -torch.where(probs > 0, probs * logp, torch.zeros_like(probs)).sum(-1)  # (B,)
    top_p, top_i = probs.topk(min(top_n, probs.size(-1)), dim=-1)  # (B, k) each, sorted
    return probs.gather(-1, chosen.view(-1, 1))[:, 0], entropy, top_i, top_p


def _steps(tokens: list[int], details: tuple | None) -> list[Step]:
    if details is None:
        return [Step(int(t)) for t in tokens]
    probs, entropies, top_i, top_p = (x.tolist() for x in details)
    return [
        Step(int(t), float(p), float(h), tuple(zip(ids, ps)))
        for t, p, h, ids, ps in zip(tokens, probs, entropies, top_i, top_p)
    ]


def sample_stream(
    model,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    use_cache: bool = True,
    start_id: int | None = None,
    next_token_logits: Callable[[list[int]], torch.Tensor] | None = None,
    bidirectional_prompt: bool = False,
) -> Iterator[int]:
    """Yield new token ids one at a time.

    temperature 0 is greedy. top_k keeps the k most likely tokens; top_p keeps the smallest set of most likely
    tokens whose probability reaches top_p (always at least one). Sampling uses a private torch.Generator on
    the model's device, seeded with `seed` (random when None), so the global RNG is never touched.
    should_stop() is checked before each token. The model is in eval mode while the stream runs; its previous
    mode comes back when the stream ends or is closed. Bad arguments raise GenerationError (a ValueError) at
    the call, not at the first token. An encoder-decoder reads prompt_ids with its encoder and its decoder
    starts from start_id; next_token_logits (ids -> (V,)) replaces a decoder's own prediction;
    bidirectional_prompt reads the prompt as a prefix LM's prefix (engine/infer_stepper.py).
    """
    _check_args(model, prompt_ids, max_new_tokens, temperature, top_k, top_p)
    stepper = stepper_for(model, prompt_ids, **_how(start_id, next_token_logits, bidirectional_prompt))
    return (
        token
        for token, _ in _stream(
            stepper,
            _start(stepper, prompt_ids),
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            seed,
            should_stop,
            use_cache,
        )
    )


def _how(start_id, next_token_logits, bidirectional_prompt) -> dict:
    """stepper_for's keywords: how the run's kind of model predicts (engine/infer_stepper.py)."""
    return dict(start_id=start_id, next_token_logits=next_token_logits, bidirectional_prompt=bidirectional_prompt)


def _start(stepper: Stepper, prompt_ids: list[int]) -> list[int]:
    """The tokens generation goes on from: the prompt, or the decoder start token of an encoder-decoder."""
    return list(stepper.start) if stepper.start is not None else [int(t) for t in prompt_ids]


def stream_steps(
    model,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    mode: str = "sample",
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    beam_width: int = 4,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
    details: bool = False,
    top_n: int = TOP_N,
    should_stop: Callable[[], bool] | None = None,
    use_cache: bool = True,
    start_id: int | None = None,
    next_token_logits: Callable[[list[int]], torch.Tensor] | None = None,
    bidirectional_prompt: bool = False,
) -> Iterator[Step]:
    """Yield a Step per new token: mode "sample" (temperature, top_k, top_p, seed, as sample_stream),
    "greedy" (the most likely token each time) or "beam" (see the module docstring: its tokens come at the end,
    and eos_id ends a beam). With details, each Step carries prob, entropy and the top_n alternatives.
    start_id, next_token_logits and bidirectional_prompt as for sample_stream.

    Bad arguments raise GenerationError at the call.
    """
    check_settings(mode=mode, beam_width=beam_width, length_penalty=length_penalty)
    _check_args(model, prompt_ids, max_new_tokens, temperature, top_k, top_p)
    if top_n < 1:
        raise GenerationError("top_n must be at least 1")
    stepper = stepper_for(model, prompt_ids, **_how(start_id, next_token_logits, bidirectional_prompt))
    start = _start(stepper, prompt_ids)
    if mode == "beam":
        return _beam_steps(
            stepper, start, max_new_tokens, beam_width, length_penalty, eos_id, details, top_n, should_stop
        )
    if mode == "greedy":
        temperature = 0.0
    return _sample_steps(
        stepper, start, max_new_tokens, temperature, top_k, top_p, seed, should_stop, use_cache, details, top_n
    )


def _sample_steps(
    stepper, prompt, max_new_tokens, temperature, top_k, top_p, seed, should_stop, use_cache, details, top_n
) -> Iterator[Step]:
    for token, logits in _stream(
        stepper, prompt, max_new_tokens, temperature, top_k, top_p, seed, should_stop, use_cache
    ):
        if details:
            yield _steps([token], token_details(logits[None], torch.tensor([token], device=logits.device), top_n))[0]
        else:
            yield Step(token)


def beam_search(
    model,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    beam_width: int = 4,
    length_penalty: float = 1.0,
    eos_id: int | None = None,
    details: bool = False,
    top_n: int = TOP_N,
    should_stop: Callable[[], bool] | None = None,
    start_id: int | None = None,
    next_token_logits: Callable[[list[int]], torch.Tensor] | None = None,
    bidirectional_prompt: bool = False,
) -> list[Step]:
    """The best sequence beam search finds (see the module docstring), as Steps; stopping early (should_stop)
    gives the best sequence found so far. start_id, next_token_logits and bidirectional_prompt as for sample_stream."""
    _check_args(model, prompt_ids, max_new_tokens, 1.0, None, None)
    _check_beam(beam_width, length_penalty)
    stepper = stepper_for(model, prompt_ids, **_how(start_id, next_token_logits, bidirectional_prompt))
    return list(
        _beam_steps(
            stepper,
            _start(stepper, prompt_ids),
            max_new_tokens,
            beam_width,
            length_penalty,
            eos_id,
            details,
            top_n,
            should_stop,
        )
    )


@torch.no_grad()
def _stream(
    stepper: Stepper,
    tokens: list[int],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    should_stop: Callable[[], bool] | None,
    use_cache: bool,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yields (token, the logits (V,) it was chosen from)."""
    device = stepper.device
    block_size = stepper.block_size
    generator = seeded(torch.Generator(device=device), seed)

    def forward(ids: list[int], cache=None) -> torch.Tensor:
        idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
        return stepper.logits(idx, cache)[0]  # (V,)

    cache = stepper.new_cache(1) if use_cache and stepper.cached else None
    model = stepper.model
    was_training = model.training
    model.eval()
    try:
        for i in range(stepper.max_new_tokens(max_new_tokens)):
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
                logits = forward(tokens[-max(1, block_size // 2) :], cache)
            token = _pick(logits, temperature, top_k, top_p, generator)
            tokens.append(token)
            yield token, logits
    finally:
        model.train(was_training)


class _Beams:
    """The live beams as rows of tensors: tokens (W, prompt + n) and, with details, per new token the chosen
    probability, entropy and top alternatives; `keep(rows)` reorders them to follow the chosen parents."""

    def __init__(self, prompt: list[int], width: int, details: bool):
        self.tokens = torch.tensor([prompt] * width, dtype=torch.long)  # (W, T)
        self.n_prompt = len(prompt)
        self.details = [] if details else None  # [(probs (W,), entropies (W,), top ids (W, k), top probs (W, k))]
        self.scores = torch.full((width,), float("-inf"))
        self.scores[0] = 0.0  # at first every row holds the same prompt: only one may grow

    def grow(self, rows: torch.Tensor, new_tokens: torch.Tensor, scores: torch.Tensor, details) -> None:
        self.tokens = torch.cat([self.tokens[rows], new_tokens[:, None]], dim=1)
        self.scores = scores
        if self.details is not None:
            self.details = [tuple(x[rows] for x in d) for d in self.details] + [details]

    def new_tokens(self, row: int) -> list[int]:
        return self.tokens[row, self.n_prompt :].tolist()

    def row_details(self, row: int):
        if self.details is None:
            return None
        if not self.details:
            return (torch.zeros(0), torch.zeros(0), torch.zeros(0, 0, dtype=torch.long), torch.zeros(0, 0))
        return tuple(torch.stack([d[i][row] for d in self.details]) for i in range(4))


def _normalized(score: float, length: int, length_penalty: float) -> float:
    return score / (max(1, length) ** length_penalty)


@torch.no_grad()
def _beam_steps(
    stepper: Stepper,
    prompt: list[int],
    max_new_tokens: int,
    width: int,
    length_penalty: float,
    eos_id: int | None,
    details: bool,
    top_n: int,
    should_stop: Callable[[], bool] | None,
) -> Iterator[Step]:
    device = stepper.device
    beams = _Beams(prompt, width, details)
    finished: list[tuple[float, list[int], tuple | None]] = []  # (normalized score, tokens, details), best first
    cache = stepper.new_cache(width)
    model = stepper.model
    was_training = model.training
    model.eval()
    try:
        for n in range(stepper.max_new_tokens(max_new_tokens)):
            if should_stop is not None and should_stop():
                break
            ctx = _beam_context(beams.tokens, cache, n, stepper.block_size)
            logits = stepper.logits(ctx.to(device), cache).float().cpu()  # (W, V)
            ending = _Ending(finished, n + 1, length_penalty, top_n if details else None)
            rows, toks, scores = _next_tokens(beams, logits, width, eos_id, ending)
            if not rows:
                break
            rows_t, toks_t = torch.tensor(rows), torch.tensor(toks)
            step_details = token_details(logits[rows_t], toks_t, top_n) if details else None
            beams.grow(rows_t, toks_t, torch.tensor(scores), step_details)
            stepper.reorder(cache, rows_t)  # each cache row follows its beam's parent
            best_live = _normalized(max(scores), n + 1, length_penalty)
            if len(finished) == width and best_live < finished[-1][0]:
                break  # no live beam beats the endings already found
        tokens, d = _best_sequence(beams, finished, length_penalty)
    finally:
        model.train(was_training)
    yield from _steps(tokens, d)


def _beam_context(tokens: torch.Tensor, cache, n: int, block_size: int) -> torch.Tensor:
    """The positions step `n` feeds the model: the whole (last block of the) prompt first, then the newest
    token, or, once the cache is full, the last half block again on an emptied cache (re-priming). Without a
    cache: the last block every time."""
    if n == 0 or cache is None:
        return tokens[:, -block_size:]
    if cache.length < block_size:
        return tokens[:, -1:]
    cache.reset()
    return tokens[:, -max(1, block_size // 2) :]


@dataclass
class _Ending:
    """Where the beams that end at one step go: `finished` (kept sorted, best first), scored by length
    `length`; `top_n` is None without details."""

    finished: list
    length: int
    length_penalty: float
    top_n: int | None

    def add(self, beams: _Beams, row: int, tok: int, score: float, logits: torch.Tensor) -> None:
        d = None
        if self.top_n is not None:
            d = tuple(
                torch.cat([a, b])
                for a, b in zip(
                    beams.row_details(row), token_details(logits[row : row + 1], torch.tensor([tok]), self.top_n)
                )
            )
        self.finished.append((_normalized(score, self.length, self.length_penalty), beams.new_tokens(row) + [tok], d))


def _next_tokens(
    beams: _Beams, logits: torch.Tensor, width: int, eos_id: int | None, ending: _Ending
) -> tuple[list[int], list[int], list[float]]:
    """The (parent rows, tokens, scores) of the `width` best continuations of the beams' logits (W, V); the
    endings among them go to `ending`. Empty when no beam can go on."""
    logp = F.log_softmax(logits, dim=-1)
    vocab = logp.size(-1)
    candidates = (beams.scores[:, None] + logp).view(-1)  # (W * V,)
    # Each beam offers at most one end-of-text candidate, so 2W candidates hold W that go on.
    top_scores, top_flat = candidates.topk(min(candidates.numel(), 2 * width))
    rows, toks, scores = [], [], []
    for rank, (score, flat) in enumerate(zip(top_scores.tolist(), top_flat.tolist())):
        if score == float("-inf") or len(rows) == width:
            break
        row, tok = divmod(flat, vocab)
        if eos_id is not None and tok == eos_id:
            if rank < width:  # an ending counts only when it would have been kept as a beam
                ending.add(beams, row, tok, score, logits)
            continue
        rows.append(row)
        toks.append(tok)
        scores.append(score)
    ending.finished.sort(key=lambda f: -f[0])
    del ending.finished[width:]
    while rows and len(rows) < width:  # a tiny vocabulary: fill with copies that can never win
        rows.append(rows[0])
        toks.append(toks[0])
        scores.append(float("-inf"))
    return rows, toks, scores


def _best_sequence(beams: _Beams, finished: list, length_penalty: float) -> tuple[list[int], tuple | None]:
    """The new tokens (and details) of the best sequence: the best ending, or a live beam that beats it."""
    length = beams.tokens.size(1) - beams.n_prompt
    live = [
        (_normalized(s, length, length_penalty), r) for r, s in enumerate(beams.scores.tolist()) if s != float("-inf")
    ]
    best_live = max(live, key=lambda x: x[0]) if live and length else None
    if finished and (best_live is None or finished[0][0] >= best_live[0]):
        return finished[0][1], finished[0][2]
    if best_live is not None:
        return beams.new_tokens(best_live[1]), beams.row_details(best_live[1])
    return [], None


def generate(model, prompt_ids: list[int], **kw) -> list[int]:
    """All new tokens of sample_stream(model, prompt_ids, **kw) as a list."""
    return list(sample_stream(model, prompt_ids, **kw))
