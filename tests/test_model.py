"""engine.model.GPT: masking, initial loss, learning, every variant, the inspect path, today's numbers kept; the
parameter count of every architecture; and engine.device. (The encoder and encoder-decoder: test_model_archs.py.)"""

import itertools
import math
import re

import pytest
import torch

from engine.config import ModelConfig, param_count
from engine.device import autocast_dtype, device_description, pick_device
from engine.model import GPT, build_model

V = 40
POSITIONS = ["learned", "sinusoidal", "rope", "alibi"]


def tiny(**kw) -> ModelConfig:
    base = dict(n_layer=2, n_head=4, n_embd=32, block_size=16)
    base.update(kw)
    return ModelConfig(**base)


def build(seed=0, vocab=V, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(tiny(**kw), vocab)


def batch(B=4, T=16, vocab=V, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (B, T + 1), generator=g)


@pytest.mark.parametrize("pos", POSITIONS)
def test_later_tokens_do_not_change_earlier_logits(pos):
    model = build(pos_encoding=pos).eval()
    idx = batch(B=2)[:, :16]
    changed = idx.clone()
    changed[:, 10] = (changed[:, 10] + 1) % V
    a, _ = model(idx)
    b, _ = model(changed)
    assert torch.allclose(a[:, :10], b[:, :10], atol=1e-6)
    assert not torch.allclose(a[:, 10], b[:, 10], atol=1e-4)


def test_initial_loss_is_about_ln_vocab():
    for vocab in (20, 50):
        model = build(vocab=vocab)
        data = batch(B=8, vocab=vocab)
        _, loss = model(data[:, :-1], data[:, 1:])
        assert abs(loss.item() - math.log(vocab)) < 0.15


def test_logits_cover_every_position_and_loss_ignores_minus_one():
    model = build().eval()
    data = batch(B=3)
    logits, loss = model(data[:, :-1])
    assert logits.shape == (3, 16, V) and loss is None
    targets = data[:, 1:].clone()
    targets[:, 8:] = -1
    _, masked = model(data[:, :-1], targets)
    expected = torch.nn.functional.cross_entropy(logits[:, :8].reshape(-1, V), data[:, 1:9].reshape(-1))
    assert torch.allclose(masked, expected, atol=1e-6)


def test_a_tiny_batch_can_be_overfit():
    model = build()
    data = batch(B=4)
    data[:, 0] = torch.arange(4)  # distinct first tokens, so every target is determined by its prefix
    opt = model.configure_optimizer(0.0, 3e-3, (0.9, 0.99), "cpu")
    for _ in range(200):
        _, loss = model(data[:, :-1], data[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1


VARIANTS = list(
    itertools.product(POSITIONS, ["layernorm", "rmsnorm"], ["gelu", "swiglu"], [True, False], [True, False])
)


@pytest.mark.parametrize("pos,norm,mlp,tie,bias", VARIANTS)
def test_every_variant_builds_counts_its_parameters_and_learns(pos, norm, mlp, tie, bias):
    cfg = tiny(pos_encoding=pos, norm=norm, mlp=mlp, tie_embeddings=tie, bias=bias, n_embd=24, n_head=2)
    torch.manual_seed(0)
    model = GPT(cfg, V)
    assert model.num_params() == param_count(cfg, V)
    assert (model.lm_head.weight is model.transformer.wte.weight) == tie
    assert hasattr(model.transformer, "wpe") == (pos == "learned")
    data = batch(B=4)
    opt = model.configure_optimizer(0.1, 1e-2, (0.9, 0.99), "cpu")
    losses = []
    for _ in range(6):
        _, loss = model(data[:, :-1], data[:, 1:])
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0] - 0.05


def test_every_architecture_and_variant_counts_its_parameters():
    """engine.config.param_count (the Model panel's figure) equals the real model for all three architectures
    and every variant: positions, norm, norm position, MLP, tying, bias (and segments, a second decoder depth)."""
    archs = [("decoder", {}), ("encoder", {"n_segments": 0}), ("encoder", {"n_segments": 2})]
    archs += [("encoder-decoder", {}), ("encoder-decoder", {"n_decoder_layer": 3})]
    for (arch, extra), pos, norm, where, mlp, tie, bias in itertools.product(
        archs, POSITIONS, ["layernorm", "rmsnorm"], ["pre", "post"], ["gelu", "swiglu"], [True, False], [True, False]
    ):
        cfg = ModelConfig(
            arch=arch,
            n_layer=2,
            n_head=2,
            n_embd=8,
            block_size=8,
            pos_encoding=pos,
            norm=norm,
            norm_position=where,
            mlp=mlp,
            tie_embeddings=tie,
            bias=bias,
            **extra,
        )
        model = build_model(cfg, 11)
        assert model.num_params() == param_count(cfg, 11), (arch, extra, pos, norm, where, mlp, tie, bias)
        assert (model.lm_head.weight is model.transformer.wte.weight) == tie


# Recorded from the decoder before issue 10 added the other architectures (seed 0, the batch of batch(B=4)): a
# change in the decoder's path (its masks, its init order, its norms) shows here. Bit-identity was checked when
# they were recorded; the tolerance only allows for the last bit a different thread count gives on a CPU.
DECODER_LOSSES = {
    ("learned", "layernorm", "gelu", True, False): 3.707693099975586,
    ("learned", "rmsnorm", "swiglu", True, True): 3.7112326622009277,
    # Re-recorded when sinusoidal positions began to scale the embeddings by sqrt(n_embd) (the paper's section
    # 3.4; unscaled, the table drowned the tokens and the transformer-2017-mini preset learned only the unigram).
    ("sinusoidal", "layernorm", "gelu", True, False): 3.6967082023620605,
    ("rope", "rmsnorm", "swiglu", False, True): 3.6906626224517822,
}
DECODER_TRAINING = {  # five AdamW steps with dropout 0.1: the losses before each step
    "learned": [3.7065999507904053, 3.4088547229766846, 3.249657392501831, 3.0977962017059326, 2.908160924911499],
    "rope": [3.710904121398926, 3.4343810081481934, 3.3292698860168457, 3.210080623626709, 3.0206379890441895],
}


def test_the_decoder_gives_the_numbers_it_gave_before_the_other_architectures():
    for (pos, norm, mlp, tie, bias), expected in DECODER_LOSSES.items():
        torch.manual_seed(0)
        model = GPT(tiny(pos_encoding=pos, norm=norm, mlp=mlp, tie_embeddings=tie, bias=bias), V).eval()
        data = batch(B=4)
        _, loss = model(data[:, :-1], data[:, 1:])
        assert loss.item() == pytest.approx(expected, abs=1e-6)
    for pos, expected in DECODER_TRAINING.items():
        torch.manual_seed(0)
        model = GPT(tiny(pos_encoding=pos, dropout=0.1), V)
        opt = model.configure_optimizer(0.1, 1e-2, (0.9, 0.99), "cpu")
        data = batch(B=4)
        losses = []
        for _ in range(5):
            _, loss = model(data[:, :-1], data[:, 1:])
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert losses == pytest.approx(expected, abs=1e-5)


def test_parameter_count_of_presets_matches():
    for cfg in (
        ModelConfig(),
        ModelConfig(
            n_layer=6,
            n_head=8,
            n_embd=256,
            pos_encoding="rope",
            norm="rmsnorm",
            mlp="swiglu",
            bias=True,
            tie_embeddings=False,
        ),
    ):
        assert GPT(cfg, 65).num_params() == param_count(cfg, 65)


@pytest.mark.parametrize("pos", POSITIONS)
def test_inspect_path_matches_fast_path_and_gives_causal_weights(pos):
    model = build(pos_encoding=pos, bias=True).eval()
    idx = batch(B=2)[:, :12]
    fast, _ = model(idx)
    slow, _, attn = model(idx, return_attn=True)
    assert (fast - slow).abs().max().item() <= 1e-5
    assert len(attn) == 2
    for a in attn:
        assert a.shape == (2, 4, 12, 12)
        assert torch.allclose(a.sum(-1), torch.ones(2, 4, 12), atol=1e-6)
        assert torch.all(a.triu(diagonal=1) == 0)
        assert torch.all(a[..., torch.ones(12, 12, dtype=torch.bool).tril()] > 0)


@pytest.mark.parametrize("pos", ["learned", "rope"])
@pytest.mark.parametrize("return_attn", [False, True])
def test_kv_cache_in_chunks_gives_the_full_sequence_logits(pos, return_attn):
    model = build(pos_encoding=pos).eval()
    idx = batch(B=2)[:, :14]
    full, _ = model(idx)
    cache = model.new_kv_cache(2, "cpu")
    pieces, weights = [], []
    for start, end in ((0, 6), (6, 7), (7, 10), (10, 14)):
        out = model(idx[:, start:end], kv_cache=cache, return_attn=return_attn)
        pieces.append(out[0])
        if return_attn:
            weights.append(out[2][0])
    assert cache.length == 14
    assert (torch.cat(pieces, dim=1) - full).abs().max().item() < 1e-5
    if return_attn:
        a = weights[2]  # queries 7..9 over keys 0..9
        assert a.shape == (2, 4, 3, 10)
        assert torch.allclose(a.sum(-1), torch.ones(2, 4, 3), atol=1e-6)
        assert torch.all(a[..., 0, 8:] == 0) and torch.all(a[..., 0, :8] > 0)


def test_weight_decay_only_on_matrices_and_embeddings():
    model = build(bias=True, pos_encoding="learned")
    opt = model.configure_optimizer(0.1, 1e-3, (0.9, 0.95), "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # each once, the tied matrix too
    assert any(p is model.transformer.wte.weight for p in decay["params"])
    assert any(p is model.transformer.ln_f.bias for p in no_decay["params"])
    assert not opt.defaults.get("fused")


def test_too_long_input_is_a_clear_error():
    model = build()
    with pytest.raises(
        ValueError, match=re.escape("sequence of 17 tokens is longer than the model's context (block_size 16)")
    ):
        model(torch.zeros(1, 17, dtype=torch.long))
    cache = model.new_kv_cache(1, "cpu")
    model(torch.zeros(1, 10, dtype=torch.long), kv_cache=cache)
    with pytest.raises(ValueError, match="sequence of 18 tokens"):
        model(torch.zeros(1, 8, dtype=torch.long), kv_cache=cache)


def test_dropout_is_active_in_training_only():
    model = build(dropout=0.3)
    idx = batch()[:, :16]
    a, _ = model(idx)
    b, _ = model(idx)
    assert not torch.allclose(a, b)
    model.eval()
    assert torch.equal(model(idx)[0], model(idx)[0])


# ------------------------------------------------------------------------------------------------ device


def test_device_choices():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert autocast_dtype("cpu") is None
    assert autocast_dtype("cpu", "float32") is None
    assert autocast_dtype("cpu", "bfloat16") is torch.bfloat16
    assert re.fullmatch(r"CPU \(\d+ threads?\)", device_description("cpu"))
    with pytest.raises(ValueError, match="unknown device"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_a_missing_gpu_says_so():
    with pytest.raises(RuntimeError, match="cuda"):
        pick_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_choices():
    device = pick_device("cuda")
    assert autocast_dtype(device) in (torch.bfloat16, torch.float16)
    assert device_description(device) == torch.cuda.get_device_name(device)
    model = build().to(device)
    assert model.configure_optimizer(0.1, 1e-3, (0.9, 0.95), "cuda").defaults.get("fused")


@pytest.mark.parametrize("arch", ["decoder", "encoder-decoder"])
def test_sinusoidal_positions_leave_the_tokens_readable(arch):
    """The fixed table's entries are ~0.7 and the embeddings start at 0.02: without the paper's sqrt(n_embd) scale
    the positions drowned the tokens, and a post-norm model (the transformer-2017-mini preset) stayed at chance.
    Here such a model must learn a text whose next token follows from the current one, in 150 steps."""
    torch.manual_seed(0)
    n_vocab = 40
    cfg = ModelConfig(
        arch=arch, n_layer=2, n_head=2, n_embd=64, block_size=32, pos_encoding="sinusoidal", norm_position="post",
        dropout=0.1, bias=True,
    )  # fmt: skip
    model = build_model(cfg, n_vocab)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(1)
    text = torch.randint(0, n_vocab, (400,), generator=gen).repeat(10)
    for _ in range(150):
        starts = torch.randint(0, len(text) - 33, (16,), generator=gen)
        x = torch.stack([text[i : i + 32] for i in starts])
        y = torch.stack([text[i + 1 : i + 33] for i in starts])
        _, loss = model(x, y) if arch == "decoder" else model(x, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.85 * math.log(n_vocab)  # measured 2.75 against chance's 3.69 (3.65 unscaled)
