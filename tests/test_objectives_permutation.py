"""Permutation LM (XLNet): one factorization order per sequence, its last part predicted, two-stream attention
that never lets a predicted position see its own token (for every kind of position and norm), left-to-right
prediction with the query stream, and a loss that learns to use the context."""

import numpy as np
import pytest
import torch
from seq_objective_kit import char_source, make_model, one_thread, tiny_config, train_briefly

from engine.config import ConfigError
from engine.objectives.base import IGNORE
from engine.objectives.permutation_lm import n_predicted, next_token_logits, stream_masks, two_stream_logits
from engine.objectives.registry import get_objective
from engine.tokenizer import TokenizerError


@pytest.fixture(scope="module")
def setup():
    return char_source()


def test_each_sequence_gets_an_order_and_its_last_sixth_is_predicted(setup):
    source, _ = setup
    obj = get_objective(tiny_config("decoder", "permutation_lm", 32))
    batch = obj.batch(source, 64, torch.Generator().manual_seed(0), "cpu")
    rank, idx, targets = batch.extra["rank"], batch.inputs["idx"], batch.targets
    assert n_predicted(32, 1 / 6) == 5
    for r in rank:
        assert sorted(r.tolist()) == list(range(32))
    predicted = targets != IGNORE
    assert torch.equal(predicted, rank >= 32 - 5)
    assert torch.equal(targets[predicted], idx[predicted])
    # Orders differ between sequences and are not the text's own.
    assert len({tuple(r.tolist()) for r in rank}) == 64
    assert not any(torch.equal(r, torch.arange(32)) for r in rank)


def test_the_masks_follow_the_order(setup):
    source, _ = setup
    rank = torch.tensor([[2, 0, 3, 1]])  # the order visits positions 1, 3, 0, 2
    content, query = stream_masks(rank)
    # Position 0 (third in the order) reads positions 1 and 3 and, in the content stream, itself.
    assert content[0, 0].tolist() == [True, True, False, True]
    assert query[0, 0].tolist() == [False, True, False, True]
    # Position 1 comes first: its query row (never predicted, never read) may see only itself.
    assert query[0, 1].tolist() == [False, True, False, False]
    assert not query[0].diagonal()[rank[0] > 0].any()


def test_a_batch_is_the_same_for_the_same_generator_state(setup):
    source, _ = setup
    obj = get_objective(tiny_config("decoder", "permutation_lm", 32))
    a = obj.batch(source, 8, torch.Generator().manual_seed(3), "cpu")
    b = obj.batch(source, 8, torch.Generator().manual_seed(3), "cpu")
    assert torch.equal(a.inputs["idx"], b.inputs["idx"]) and torch.equal(a.extra["rank"], b.extra["rank"])


@pytest.mark.parametrize(
    "variant",
    [{}, {"pos_encoding": "rope"}, {"pos_encoding": "alibi"}, {"pos_encoding": "sinusoidal", "norm_position": "post"}],
    ids=["learned", "rope", "alibi", "sinusoidal-post"],
)
def test_a_predicted_position_never_sees_its_own_token(setup, variant):
    source, _ = setup
    cfg = tiny_config("decoder", "permutation_lm", 16)
    for key, value in variant.items():
        setattr(cfg.model, key, value)
    obj, model = get_objective(cfg), make_model(cfg, source).eval()
    batch = obj.batch(source, 1, torch.Generator().manual_seed(7), "cpu")
    idx, rank, mask_id = batch.inputs["idx"], batch.extra["rank"], source.specials["mask"]
    predicted = (batch.targets[0] != IGNORE).nonzero().flatten().tolist()
    with torch.no_grad(), one_thread():
        base = two_stream_logits(model, idx, rank, mask_id)
        for i in predicted:
            changed = idx.clone()
            changed[0, i] = (changed[0, i] + 1) % source.vocab_size
            logits = two_stream_logits(model, changed, rank, mask_id)
            assert torch.equal(logits[0, i], base[0, i]), f"position {i} sees its own token"
            later = [j for j in predicted if rank[0, j] > rank[0, i]]
            if later:  # positions later in the order do read it (at init only a little), so a leak would show
                assert not torch.equal(logits[0, later], base[0, later])


def test_next_token_logits_is_the_query_stream_after_the_context(setup):
    source, tok = setup
    cfg = tiny_config("decoder", "permutation_lm", 16)
    obj, model = get_objective(cfg), make_model(cfg, source).eval()
    assert obj.next_token_logits is next_token_logits
    mask_id = source.specials["mask"]
    ids = tok.encode("The cat sat").ids
    with torch.no_grad():
        logits = next_token_logits(model, ids, mask_id)
        assert logits.shape == (source.vocab_size,)
        # Whatever stands at the next position, its prediction reads only the context before it.
        other = torch.tensor([[*ids, tok.token_to_id("e")]])
        natural = torch.arange(len(ids) + 1)[None]
        assert torch.allclose(two_stream_logits(model, other, natural, mask_id)[0, -1], logits, atol=1e-5)
        # A context longer than the model's keeps its last block_size - 1 tokens.
        long = tok.encode("A dog ran to the park. The cat sat").ids
        assert torch.allclose(next_token_logits(model, long, mask_id), next_token_logits(model, long[-15:], mask_id))


def test_describe_numbers_every_token_by_its_place_in_the_order(setup):
    source, tok = setup
    obj = get_objective(tiny_config("decoder", "permutation_lm", 16))
    batch = obj.batch(source, 2, torch.Generator().manual_seed(0), "cpu")
    row = obj.describe(batch, source, tok.id_to_token)[0]
    assert row["target"] is None
    assert sorted(s["order"] for s in row["input"]) == list(range(1, 17))
    assert {s["order"] for s in row["input"] if s["loss"]} == set(range(17 - n_predicted(16, 1 / 6), 17))


def test_a_vocabulary_without_mask_is_refused(setup):
    source, _ = setup
    bare = type(source)(
        source.ids,
        source.vocab_size,
        {k: v for k, v in source.specials.items() if k != "mask"},
        source.sentinels,
        source.doc_end,
        source.is_special,
        source.word_start,
        source.sentence_end,
    )
    with pytest.raises((ConfigError, TokenizerError), match=r"\[MASK\]"):
        get_objective(tiny_config("decoder", "permutation_lm", 16)).check(bare)


def test_the_validation_loss_falls_below_what_token_frequencies_alone_give(setup):
    source, _ = setup
    counts = np.bincount(np.asarray(source.ids))
    p = counts[counts > 0] / counts.sum()
    unigram = float(-(p * np.log(p)).sum())  # the loss of a model that ignores the context
    cfg = tiny_config("decoder", "permutation_lm", 16)
    cfg.model.pos_encoding = "rope"  # relative positions: the neighbours are found within a few hundred steps
    before, after = train_briefly(cfg, source, steps=300)
    assert after < 0.7 * before and after < unigram - 0.2, (before, after, unigram)
