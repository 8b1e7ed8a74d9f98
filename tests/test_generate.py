"""engine.generate: KV-cache sampling matches recomputation, seeding, filters, stopping, long generations; the
encoder-decoder (cached equals uncached, beams follow their parents), the encoder refused, a given next-token
function (permutation LM), a prefix LM's prompt read both ways."""

import pytest
import torch

from engine.config import ModelConfig
from engine.generate import _pick, generate, sample_stream
from engine.model import GPT

V = 30
PERIOD = 7  # the trained model continues 0, 1, ..., 6, 0, 1, ...


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


def build(pos="learned", seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = ModelConfig(n_layer=2, n_head=4, n_embd=32, block_size=16, pos_encoding=pos, **kw)
    return GPT(cfg, V)


def sharpen(model: GPT) -> GPT:
    """Random weights large enough that the next-token distribution is far from uniform."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
    return model


@pytest.fixture(scope="module", params=["learned", "rope"])
def counting_model(request):
    """A model trained to count modulo PERIOD, from windows starting anywhere in the cycle."""
    model = build(request.param)
    opt = model.configure_optimizer(0.0, 1e-2, (0.9, 0.99), "cpu")
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        start = torch.randint(0, PERIOD, (16, 1), generator=g)
        seq = (start + torch.arange(17)) % PERIOD  # (16, 17)
        _, loss = model(seq[:, :-1], seq[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    return model


@pytest.mark.parametrize("pos", ["learned", "rope", "sinusoidal"])
@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_kv_cache_gives_the_same_tokens_as_recomputing(pos, temperature):
    model = sharpen(build(pos))
    prompt = [3, 14, 15, 9]
    kw = dict(max_new_tokens=16 - len(prompt), temperature=temperature, seed=7)
    cached = generate(model, prompt, use_cache=True, **kw)
    recomputed = generate(model, prompt, use_cache=False, **kw)
    assert len(cached) == 12
    assert cached == recomputed
    if temperature == 0:
        assert len(set(cached)) > 1  # a real continuation, not a constant that any path would give


def test_same_seed_same_tokens_different_seed_different_tokens():
    model = build()
    a = generate(model, [1, 2], max_new_tokens=14, seed=1)
    assert a == generate(model, [1, 2], max_new_tokens=14, seed=1)
    assert a != generate(model, [1, 2], max_new_tokens=14, seed=2)


def test_sampling_leaves_the_global_rng_alone():
    model = build()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generate(model, [1, 2], max_new_tokens=5, seed=9)
    generate(model, [1, 2], max_new_tokens=5)  # unseeded: a random private seed, still not the global RNG
    assert torch.equal(torch.rand(3), expected)


def test_top_k_one_equals_greedy():
    model = sharpen(build("rope"))
    greedy = generate(model, [5], max_new_tokens=12, temperature=0)
    for seed in (1, 2):
        assert generate(model, [5], max_new_tokens=12, temperature=1.5, top_k=1, seed=seed) == greedy


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()
    g = torch.Generator().manual_seed(0)
    drawn = {_pick(logits, 1.0, None, 0.75, g) for _ in range(300)}
    assert drawn == {0, 1}  # 0.5 alone is short of 0.75; 0.5 + 0.3 reaches it
    assert {_pick(logits, 1.0, None, 0.5, g) for _ in range(100)} == {0}
    assert {_pick(logits, 1.0, None, 1e-9, g) for _ in range(100)} == {0}  # never less than one token
    assert {_pick(logits, 1.0, 3, None, g) for _ in range(500)} == {0, 1, 2}


def test_should_stop_is_checked_before_each_token():
    model = build()
    produced = []
    for token in sample_stream(model, [1], max_new_tokens=20, seed=0, should_stop=lambda: len(produced) >= 5):
        produced.append(token)
    assert len(produced) == 5
    assert generate(model, [1], max_new_tokens=20, should_stop=lambda: True) == []


@pytest.mark.parametrize("use_cache", [True, False])
def test_generation_continues_past_the_context(counting_model, use_cache):
    prompt = [2, 3, 4]
    out = generate(counting_model, prompt, max_new_tokens=50, temperature=0, use_cache=use_cache)
    assert out == [(5 + i) % PERIOD for i in range(50)]
    # A prompt longer than the context is cut to its last block_size tokens rather than refused.
    long_prompt = [i % PERIOD for i in range(40)]
    assert generate(counting_model, long_prompt, max_new_tokens=3, temperature=0, use_cache=use_cache) == [
        40 % PERIOD,
        41 % PERIOD,
        42 % PERIOD,
    ]


def test_eval_mode_during_generation_and_mode_restored():
    model = sharpen(build(dropout=0.5))
    model.train()
    a = generate(model, [1, 2, 3], max_new_tokens=10, seed=3)
    assert model.training
    assert a == generate(model, [1, 2, 3], max_new_tokens=10, seed=3, use_cache=False)  # dropout was off
    model.eval()
    generate(model, [1], max_new_tokens=2)
    assert not model.training


def test_cache_works_under_bfloat16_autocast():
    model = sharpen(build("rope"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = generate(model, [1, 2], max_new_tokens=20, temperature=0)
    assert len(out) == 20 and all(0 <= t < V for t in out)


def test_bad_prompts_and_settings_are_clear_errors():
    model = build()
    with pytest.raises(ValueError, match="prompt is empty"):
        sample_stream(model, [], max_new_tokens=3)  # at the call, before anything is iterated
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        generate(model, [V], max_new_tokens=3)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, [1], max_new_tokens=3, temperature=-1)
    with pytest.raises(ValueError, match="top_p"):
        generate(model, [1], max_new_tokens=3, top_p=1.5)


# ------------------------------------------------------------------------------------ modes, beams, details

from engine.generate import GenerationError, beam_search, stream_steps  # noqa: E402


def test_beam_width_one_is_greedy_token_for_token_even_past_the_context():
    model = sharpen(build("rope"))
    for prompt in ([5], [3, 14, 15, 9, 2, 6]):
        greedy = generate(model, prompt, max_new_tokens=40, temperature=0)  # 40 > block_size 16: re-primes
        assert [s.token for s in beam_search(model, prompt, max_new_tokens=40, beam_width=1)] == greedy
        assert [
            s.token for s in stream_steps(model, prompt, max_new_tokens=40, mode="greedy", temperature=1.7)
        ] == greedy


@torch.no_grad()
def _total_logprob(model, prompt, new):
    logits, _ = model(torch.tensor([prompt + new]))
    logp = torch.log_softmax(logits[0].double(), -1)
    return float(sum(logp[len(prompt) - 1 + i, t] for i, t in enumerate(new)))


@torch.no_grad()
def _pair_logprobs(model, prompt) -> torch.Tensor:
    """(V, V): log-probability of continuing `prompt` with token a, then b, for every a and b."""
    logits, _ = model(torch.tensor([prompt + [a] for a in range(V)]))  # (V, T + 1, V)
    logp = torch.log_softmax(logits.double(), -1)
    return logp[:, -2].diagonal()[:, None] + logp[:, -1]


def test_wide_beam_finds_the_best_pair_exactly_and_beats_greedy():
    model = sharpen(build("rope", seed=3)).eval()
    prompt = [1, 2, 3]
    best = divmod(int(_pair_logprobs(model, prompt).argmax()), V)
    assert tuple(s.token for s in beam_search(model, prompt, max_new_tokens=2, beam_width=V)) == best
    greedy = generate(model, prompt, max_new_tokens=6, temperature=0)
    beam = [s.token for s in beam_search(model, prompt, max_new_tokens=6, beam_width=8)]
    assert _total_logprob(model, prompt, beam) >= _total_logprob(model, prompt, greedy) - 1e-5


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 4.0])
def test_beams_end_at_eos_and_the_length_penalty_weighs_endings_by_length(length_penalty):
    model = sharpen(build("rope", seed=5)).eval()
    prompt = [4, 8]
    eos = generate(model, prompt, max_new_tokens=1, temperature=0)[0]  # ending at once is the likeliest step
    # Every hypothesis of at most two tokens, scored as beam search scores it: log-probability / length ** lp.
    pairs = _pair_logprobs(model, prompt)
    hyps = {(eos,): _total_logprob(model, prompt, [eos])}
    hyps.update({(a, b): float(pairs[a, b]) for a in range(V) for b in range(V) if a != eos})
    best = max(hyps, key=lambda h: hyps[h] / len(h) ** length_penalty)
    got = beam_search(model, prompt, max_new_tokens=2, beam_width=V, eos_id=eos, length_penalty=length_penalty)
    assert tuple(s.token for s in got) == best
    # Raw sums settle for the short ending; a strong penalty prefers the longer text.
    assert len(got) == {0.0: 1, 4.0: 2}.get(length_penalty, len(got))


def test_details_give_probabilities_entropy_and_sorted_alternatives():
    model = sharpen(build())
    for mode in ("sample", "greedy", "beam"):
        steps = list(
            stream_steps(
                model, [1, 2], max_new_tokens=8, mode=mode, seed=3, temperature=1.3, details=True, beam_width=3
            )
        )
        assert len(steps) == 8
        for s in steps:
            assert 0 < s.prob <= 1 and 0 <= s.entropy <= torch.log(torch.tensor(float(V))) + 1e-5
            probs = [p for _, p in s.top]
            assert len(s.top) == 5 and probs == sorted(probs, reverse=True)
            if s.token in dict(s.top):
                assert dict(s.top)[s.token] == pytest.approx(s.prob)
        if mode == "greedy":
            assert all(s.token == s.top[0][0] for s in steps)
    # The chosen token's probability is the model's at temperature 1, whatever the sampling temperature.
    first = next(stream_steps(model, [1, 2], max_new_tokens=1, mode="sample", seed=3, temperature=0.2, details=True))
    logits, _ = model.eval()(torch.tensor([[1, 2]]))
    assert first.prob == pytest.approx(torch.softmax(logits[0, -1], -1)[first.token].item(), rel=1e-5)
    assert next(stream_steps(model, [1], max_new_tokens=1)).prob is None  # no details unless asked


def test_beam_search_stops_when_asked_and_rejects_bad_settings():
    model = build()
    calls = []
    out = beam_search(
        model, [1], max_new_tokens=30, beam_width=3, should_stop=lambda: calls.append(1) or len(calls) > 4
    )
    assert len(out) == 4
    with pytest.raises(GenerationError, match="beam_width"):
        stream_steps(model, [1], max_new_tokens=3, mode="beam", beam_width=0)
    with pytest.raises(GenerationError, match="mode"):
        stream_steps(model, [1], max_new_tokens=3, mode="nucleus")
    with pytest.raises(GenerationError, match="length_penalty"):
        beam_search(model, [1], max_new_tokens=3, length_penalty=float("nan"))


# ------------------------------------------------------------------------------ other architectures (issue 10)

from engine.model import build_model  # noqa: E402
from engine.objectives.permutation_lm import next_token_logits  # noqa: E402
from engine.objectives.prefix_lm import prefix_mask  # noqa: E402

START = 1  # the decoder start token of the encoder-decoders here


def build_arch(arch: str, pos: str = "learned", seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch=arch, n_layer=2, n_head=4, n_embd=32, block_size=16, pos_encoding=pos, **kw)
    return sharpen(build_model(cfg, V))


@torch.no_grad()
def _decode_greedy(model, src: list[int], n: int) -> list[int]:
    """Greedy decoding the long way: the whole decoder input again for every token, no cache, no engine code."""
    memory = model.encode(torch.tensor([src]))
    out = [START]
    for _ in range(n):
        out.append(int(model.decode(torch.tensor([out]), memory)[0, -1].argmax()))
    return out[1:]


@pytest.mark.parametrize("pos", ["learned", "rope", "alibi"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_encoder_decoder_generation_with_the_cache_equals_without(pos, temperature):
    model = build_arch("encoder-decoder", pos)
    src = [3, 14, 15, 9, 2, 6]
    kw = dict(max_new_tokens=40, temperature=temperature, seed=7, start_id=START)
    cached = generate(model, src, use_cache=True, **kw)
    assert cached == generate(model, src, use_cache=False, **kw)
    assert len(cached) == 16  # the decoder's output is at most its context: no re-priming
    if temperature == 0:
        assert cached == _decode_greedy(model, src, 16) and len(set(cached)) > 1
        assert cached != generate(model, [7, 7, 7], use_cache=True, **kw)  # the output follows the input


def test_encoder_decoder_beams_follow_their_parents_in_the_cache():
    model = build_arch("encoder-decoder", "rope", seed=2).eval()
    src = [5, 4, 3, 2]
    greedy = generate(model, src, max_new_tokens=12, temperature=0, start_id=START)
    assert [s.token for s in beam_search(model, src, max_new_tokens=12, beam_width=1, start_id=START)] == greedy
    # Each token's probability as the beam saw it (through the cache) is the probability of the winning
    # sequence decoded the long way, which holds only when every cache row (self- and cross-attention) follows
    # its beam's parent.
    got = beam_search(model, src, max_new_tokens=10, beam_width=4, start_id=START, details=True)
    tokens = [s.token for s in got]
    with torch.no_grad():
        probs = torch.softmax(model.decode(torch.tensor([[START, *tokens]]), model.encode(torch.tensor([src]))), -1)
    assert [s.prob for s in got] == pytest.approx([float(probs[0, i, t]) for i, t in enumerate(tokens)], rel=1e-4)
    assert tokens != greedy[:10]  # the beam chose otherwise somewhere, so its rows were reordered


def test_an_encoder_is_refused_with_a_pointer_to_fill_mask():
    model = build_arch("encoder")
    with pytest.raises(GenerationError, match="an encoder fills in blanks.*use Fill mask"):
        generate(model, [1, 2], max_new_tokens=3)
    with pytest.raises(GenerationError, match="use Fill mask"):
        stream_steps(model, [1, 2], max_new_tokens=3, mode="beam")


def test_a_given_next_token_function_writes_left_to_right_without_a_cache():
    model = build_arch("decoder", "rope")
    mask = V - 1

    def predict(ids):
        return next_token_logits(model, ids, mask)

    out = generate(model, [3, 1, 4], max_new_tokens=30, temperature=0, next_token_logits=predict)
    expected = [3, 1, 4]
    with torch.no_grad():
        for _ in range(30):  # past the context: the last block_size - 1 tokens each time
            expected.append(int(next_token_logits(model, expected[-15:], mask).argmax()))
    assert out == expected[3:] and out != generate(model, [3, 1, 4], max_new_tokens=30, temperature=0)
    beam = [s.token for s in beam_search(model, [3, 1, 4], max_new_tokens=10, beam_width=1, next_token_logits=predict)]
    assert beam == out[:10]


@pytest.mark.parametrize("pos", ["learned", "rope", "alibi"])
def test_a_prefix_lm_reads_its_prompt_both_ways_as_in_training(pos):
    """Each greedy token and its probability come from training's forward over prompt + tokens so far with the
    prompt as the prefix (not from the causal reading); cached, uncached and beam-1 agree."""
    model = build_arch("decoder", pos)
    prompt = [3, 1, 4, 1, 5]
    P = len(prompt)
    kw = dict(max_new_tokens=16 - P, bidirectional_prompt=True)
    steps = list(stream_steps(model, prompt, mode="greedy", details=True, **kw))
    out = [s.token for s in steps]
    seq = prompt + out
    with torch.no_grad():
        idx = torch.tensor([seq])
        both_ways = model(idx, attn_mask=prefix_mask(torch.tensor([P]), len(seq)))[0][0, P - 1 : -1].softmax(-1)
        causal = model(idx)[0][0, P - 1 : -1].softmax(-1)
    assert out == both_ways.argmax(-1).tolist()
    assert [s.prob for s in steps] == pytest.approx(both_ways.max(-1).values.tolist(), rel=1e-4)
    assert not torch.allclose(both_ways[0], causal[0], atol=1e-3)  # the two readings really differ
    assert generate(model, prompt, use_cache=False, temperature=0, **kw) == out
    beam = beam_search(model, prompt, max_new_tokens=8, beam_width=1, bidirectional_prompt=True)
    assert [s.token for s in beam] == out[:8]


def test_a_prefix_lm_goes_on_past_its_context_with_the_cache_as_without():
    model = build_arch("decoder", "rope")
    kw = dict(max_new_tokens=40, temperature=0, bidirectional_prompt=True)
    cached = generate(model, [2, 7, 1, 8], **kw)
    assert len(cached) == 40 and cached[:12] == generate(model, [2, 7, 1, 8], use_cache=False, **kw)[:12]
