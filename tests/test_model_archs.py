"""The encoder, the encoder-decoder, ALiBi, post-norm and the decoder's attn_mask / two-stream steps
(engine/model.py, engine/model_encoders.py, engine/model_parts.py), on tiny models."""

import itertools

import pytest
import torch

from engine.config import ModelConfig
from engine.model import GPT, Encoder, EncoderDecoder, build_model

V = 30
ARCHS = ["decoder", "encoder", "encoder-decoder"]
POSITIONS = ["learned", "sinusoidal", "rope", "alibi"]


def tiny(**kw) -> ModelConfig:
    base = dict(n_layer=2, n_head=2, n_embd=16, block_size=16)
    base.update(kw)
    return ModelConfig(**base)


def build(seed=0, vocab=V, **kw):
    torch.manual_seed(seed)
    return build_model(tiny(**kw), vocab)


def ids(B=2, T=12, seed=1, vocab=V):
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


def run(model, x, **kw):
    """(logits, loss[, attn]) of any architecture on one token batch (an encoder-decoder reads it as source
    and as target)."""
    if isinstance(model, EncoderDecoder):
        return model(x, x, **kw)
    return model(x, **kw)


def test_build_model_picks_the_architecture_and_every_model_shares_one_embedding():
    for arch, cls in (("decoder", GPT), ("encoder", Encoder), ("encoder-decoder", EncoderDecoder)):
        model = build(arch=arch)
        assert type(model) is cls and model.vocab_size == V and model.cfg.arch == arch
        assert model.lm_head.weight is model.transformer.wte.weight
    assert isinstance(GPT(tiny(), V), GPT)  # the old constructor still works


# ------------------------------------------------------------------------------------------------ encoder


@pytest.mark.parametrize("pos", POSITIONS)
def test_encoder_attention_is_not_causal(pos):
    model = build(arch="encoder", pos_encoding=pos).eval()
    x = ids()
    changed = x.clone()
    changed[:, 9] = (changed[:, 9] + 1) % V
    a, _ = model(x)
    b, _ = model(changed)
    # earlier positions see the later token (a decoder's would not move at all; sinusoidal positions, large
    # beside the tiny initial token embeddings, leave it a small change)
    assert (a[:, :9] - b[:, :9]).abs().max().item() > 1e-6


def test_key_padding_hides_pad_tokens_from_every_real_position():
    model = build(arch="encoder", pos_encoding="alibi").eval()
    x = ids(T=12)
    real = torch.ones_like(x, dtype=torch.bool)
    real[0, 8:] = False  # the first sequence is 8 tokens and 4 pads
    other = x.clone()
    other[0, 8:] = (other[0, 8:] + 5) % V  # what stands in the pad slots must not matter
    a, _, attn = model(x, key_padding=real, return_attn=True)
    b, _ = model(other, key_padding=real)
    assert (a[0, :8] - b[0, :8]).abs().max().item() < 1e-6
    for w in attn:
        assert torch.all(w[0, :, :, 8:] == 0) and torch.all(w[1] > 0)  # no triangle: every real key is seen


def test_encoder_heads_segments_pooler_and_pair_head():
    model = build(arch="encoder", n_segments=2).eval()
    x = ids()
    segments = torch.zeros_like(x)
    segments[:, 6:] = 1
    hidden = model.encode(x, segments=segments)
    assert hidden.shape == (2, 12, 16)
    assert model.lm_logits(hidden).shape == (2, 12, V)
    assert model.pool(hidden).shape == (2, 16) and model.pair_logits(hidden).shape == (2, 2)
    assert not torch.allclose(hidden, model.encode(x))  # segment embeddings change what the encoder reads
    no_pairs = build(arch="encoder")
    assert no_pairs.pair_head is None and "wse" not in no_pairs.transformer
    with pytest.raises(ValueError, match="no segment embeddings"):
        no_pairs.encode(x, segments=segments)
    with pytest.raises(ValueError, match="no pair head"):
        no_pairs.pair_logits(no_pairs.encode(x))


def test_encoder_loss_counts_only_the_chosen_positions():
    model = build(arch="encoder").eval()
    x = ids()
    targets = torch.full_like(x, -1)
    targets[:, 3] = x[:, 3]
    logits, loss = model(x, targets)
    expected = torch.nn.functional.cross_entropy(logits[:, 3], x[:, 3])
    assert torch.allclose(loss, expected, atol=1e-6)


# ---------------------------------------------------------------------------------------- encoder-decoder


@pytest.mark.parametrize("pos", POSITIONS)
@pytest.mark.parametrize("norm_position", ["pre", "post"])
def test_cached_decoding_step_by_step_equals_the_full_decode(pos, norm_position):
    model = build(arch="encoder-decoder", pos_encoding=pos, norm_position=norm_position, n_decoder_layer=3).eval()
    src, tgt = ids(T=10), ids(T=9, seed=2)
    padding = torch.ones_like(src, dtype=torch.bool)
    padding[1, 7:] = False
    with torch.no_grad():
        memory = model.encode(src, padding)
        full = model.decode(tgt, memory, src_padding=padding)
        cache = model.new_kv_cache(2, "cpu")
        steps = [model.decode(tgt[:, :3], memory, src_padding=padding, kv_cache=cache)]
        assert all(kv is not None for kv in cache.cross)  # the source's keys/values, computed once
        for t in range(3, 9):
            # later calls read the cached cross keys/values, not the memory passed in
            steps.append(model.decode(tgt[:, t : t + 1], torch.zeros_like(memory), src_padding=padding, kv_cache=cache))
    assert cache.length == 9 and len(cache.cross) == 3
    assert (torch.cat(steps, dim=1) - full).abs().max().item() < 1e-5


def test_encoder_decoder_attention_kinds_and_shapes():
    model = build(arch="encoder-decoder", n_layer=2, n_decoder_layer=1).eval()
    src, tgt = ids(T=10), ids(T=7, seed=2)
    fast, _ = model(src, tgt)
    logits, loss, attn = model(src, tgt, return_attn=True)
    assert loss is None and (fast - logits).abs().max().item() < 1e-5
    assert set(attn) == {"encoder", "decoder", "cross"}
    assert [a.shape for a in attn["encoder"]] == [(2, 2, 10, 10)] * 2
    assert [a.shape for a in attn["decoder"]] == [(2, 2, 7, 7)]
    assert [a.shape for a in attn["cross"]] == [(2, 2, 7, 10)]
    assert torch.all(attn["encoder"][0] > 0)  # bidirectional
    assert torch.all(attn["decoder"][0].triu(diagonal=1) == 0)  # causal
    assert torch.allclose(attn["cross"][0].sum(-1), torch.ones(2, 2, 7), atol=1e-6)


def test_a_future_decoder_input_never_changes_earlier_logits():
    model = build(arch="encoder-decoder", pos_encoding="alibi").eval()
    src, tgt = ids(T=10), ids(T=8, seed=2)
    changed = tgt.clone()
    changed[:, 5] = (changed[:, 5] + 1) % V
    a, _ = model(src, tgt)
    b, _ = model(src, changed)
    assert (a[:, :5] - b[:, :5]).abs().max().item() < 1e-6
    assert not torch.allclose(a[:, 5], b[:, 5], atol=1e-4)
    other_src = src.clone()
    other_src[:, -1] = (other_src[:, -1] + 1) % V
    assert not torch.allclose(model(other_src, tgt)[0][:, 0], a[:, 0], atol=1e-5)  # every target sees the source


def test_encoder_decoder_cache_follows_beams_and_checks_its_size():
    model = build(arch="encoder-decoder").eval()
    src, tgt = ids(B=3, T=6), ids(B=3, T=4, seed=2)
    with torch.no_grad():
        memory = model.encode(src)
        cache = model.new_kv_cache(3, "cpu")
        model.decode(tgt[:, :3], memory, kv_cache=cache)
        rows = torch.tensor([2, 2, 0])
        cache.reorder(rows)
        step = model.decode(tgt[rows, 3:], memory[rows], kv_cache=cache)
        full = model.decode(tgt[rows], memory[rows])
    assert (step[:, 0] - full[:, 3]).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="holds 3 sequences but 2"):
        model.decode(tgt[:2, :1], memory[:2], kv_cache=cache)
    with pytest.raises(ValueError, match="source of 17 tokens is longer than the model's context"):
        model(torch.zeros(1, 17, dtype=torch.long), tgt[:1])


# --------------------------------------------------------------------------------------------- the decoder


def test_alibi_decoder_with_kv_cache_equals_without():
    model = build(pos_encoding="alibi", n_head=4, n_embd=32).eval()
    x = ids(T=14)
    full, _ = model(x)
    cache = model.new_kv_cache(2, "cpu")
    pieces = [model(x[:, a:b], kv_cache=cache)[0] for a, b in ((0, 5), (5, 6), (6, 11), (11, 14))]
    assert (torch.cat(pieces, dim=1) - full).abs().max().item() < 1e-5
    assert not hasattr(model.transformer, "wpe")


def test_alibi_prefers_near_keys_and_keeps_the_causal_mask():
    model = build(pos_encoding="alibi").eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.zero_()  # every score equal but for the bias
        _, _, attn = model(ids(T=8), return_attn=True)
    row = attn[0][0, 0, 7]  # the last query over keys 0..7
    assert torch.all(row[1:] > row[:-1])  # the nearer the key, the more weight
    assert torch.all(attn[0][0].triu(diagonal=1) == 0)


def test_prefix_mask_lets_the_prefix_see_itself_both_ways():
    model = build().eval()
    T, prefix = 10, 4
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    mask[:prefix, :prefix] = True
    x = ids(T=T)
    changed = x.clone()
    changed[:, 3] = (changed[:, 3] + 1) % V
    a, _, attn = model(x, attn_mask=mask, return_attn=True)
    fast, _ = model(x, attn_mask=mask)
    b, _ = model(changed, attn_mask=mask)
    assert (a - fast).abs().max().item() < 1e-5
    assert torch.all(attn[0][..., :prefix, :prefix] > 0)  # the prefix sees itself both ways
    assert torch.all(attn[0][..., prefix:, :].masked_select(~mask[prefix:]) == 0)  # the rest stays causal
    assert not torch.allclose(a[:, 0], b[:, 0], atol=1e-5)  # position 0 sees position 3 in the prefix
    per_row = mask.expand(2, T, T)
    assert (model(x, attn_mask=per_row)[0] - fast).abs().max().item() < 1e-6  # (B, T, T) masks too
    additive = torch.zeros(T, T).masked_fill(~mask, float("-inf"))
    assert (model(x, attn_mask=additive)[0] - fast).abs().max().item() < 1e-5  # a float mask is added instead


def test_decoder_key_padding_hides_left_pads():
    model = build(pos_encoding="alibi").eval()
    x = ids(T=10)
    real = torch.ones_like(x, dtype=torch.bool)
    real[0, :3] = False  # three pads before the first sequence's text
    other = x.clone()
    other[0, :3] = (other[0, :3] + 7) % V
    a, _ = model(x, key_padding=real)
    b, _ = model(other, key_padding=real)
    assert (a[0, 3:] - b[0, 3:]).abs().max().item() < 1e-6


def test_embed_blocks_and_head_are_the_forward_pass_and_kv_x_reads_the_other_stream():
    model = build(pos_encoding="rope").eval()
    x = ids(T=10)
    logits, _ = model(x)
    h, pos = model.embed(x)
    for block in model.transformer.h:
        h, _ = block(h, pos)
    assert torch.equal(model.head(h), logits)
    content, _ = model.embed(x)
    block = model.transformer.h[0]
    same, _ = block(content, pos, kv_x=content)
    assert (same - block(content, pos)[0]).abs().max().item() < 1e-6  # kv_x = x is plain self-attention
    query = torch.randn_like(content)
    only_self = torch.eye(10, dtype=torch.bool)
    # with a mask that shows each query only its own position, the output depends on the query stream at that
    # position and the content stream's key/value there, never on other queries
    out, att = block(query, pos, attn_mask=only_self, kv_x=content, return_attn=True)
    query2 = query.clone()
    query2[:, 5] += 1.0
    out2, _ = block(query2, pos, attn_mask=only_self, kv_x=content)
    assert (out[:, :5] - out2[:, :5]).abs().max().item() < 1e-6 and att.shape == (2, 2, 10, 10)


# --------------------------------------------------------------------------------------- every variant, every arch


@pytest.mark.parametrize("arch,pos", list(itertools.product(ARCHS, POSITIONS)))
def test_inspect_path_equals_the_fused_path_on_every_arch(arch, pos):
    model = build(arch=arch, pos_encoding=pos, norm_position="post", bias=True).eval()
    x = ids(T=9)
    fast = run(model, x)[0]
    slow = run(model, x, return_attn=True)
    assert (fast - slow[0]).abs().max().item() < 1e-5
    weights = slow[2] if arch != "encoder-decoder" else [w for ws in slow[2].values() for w in ws]
    assert all(torch.allclose(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5) for w in weights)


@pytest.mark.parametrize("arch", ARCHS)
def test_post_norm_learns_a_repeated_sequence_on_every_arch(arch):
    torch.manual_seed(0)
    model = build_model(tiny(arch=arch, n_layer=1, norm_position="post", pos_encoding="alibi"), V)
    seq = torch.arange(9).repeat(2, 1)  # (2, 9)
    inputs, targets = seq[:, :-1], seq[:, 1:]
    if arch == "encoder":
        targets = inputs.clone()  # an encoder reads its input back out
    opt = model.configure_optimizer(0.0, 1e-2, (0.9, 0.99), "cpu")
    losses = []
    for _ in range(50):
        _, loss = model(inputs, inputs, targets) if arch == "encoder-decoder" else model(inputs, targets)
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]
    assert "ln_e" in model.transformer and "ln_f" not in model.transformer  # post-norm: the embedding norm


@pytest.mark.parametrize("arch", ARCHS)
def test_every_norm_and_mlp_variant_runs_backward_on_every_arch(arch):
    for norm, mlp, tie in itertools.product(["layernorm", "rmsnorm"], ["gelu", "swiglu"], [True, False]):
        model = build(
            arch=arch, norm=norm, mlp=mlp, tie_embeddings=tie, dropout=0.1, n_segments=2 * (arch == "encoder")
        )
        x = ids(T=8)
        _, loss = run(model, x, targets=x)
        loss.backward()
        assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith(("pooler", "pair")))
