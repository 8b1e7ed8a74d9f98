"""Denoising (BART): the target is always the original text; each noise function alone does what it says
(masking keeps the length, deletion shortens, infilling puts one [MASK] per span, sentence permutation keeps the
sentences, rotation is a rotation); the damaged share follows the option; the marks say what happened; the loss
learns."""

from collections import Counter

import pytest
import torch
from seq_objective_kit import char_source, tiny_config, train_briefly

from engine.config import ConfigError
from engine.objectives.bart_noise import poisson_spans, sentence_permutation, text_infilling
from engine.objectives.base import decoder_start_id
from engine.objectives.registry import get_objective

BLOCK = 32


@pytest.fixture(scope="module")
def setup():
    return char_source()


def _draw(source, noises: str, n: int = 32, seed: int = 0, **options):
    """(batch, the original windows) for denoising with these noise functions."""
    obj = get_objective(tiny_config("encoder-decoder", "denoising", BLOCK, noises=noises, **options))
    batch = obj.batch(source, n, torch.Generator().manual_seed(seed), "cpu")
    originals = source.windows(BLOCK - 1, n, torch.Generator().manual_seed(seed))  # the batch's first draw
    return batch, originals


def _inputs(batch) -> list[list[int]]:
    real = batch.inputs.get("src_padding")
    idx = batch.inputs["idx"]
    return [row[: int(real[i].sum())] if real is not None else row for i, row in enumerate(idx.tolist())]


def _is_subsequence(short: list[int], long: list[int]) -> bool:
    it = iter(long)
    return all(t in it for t in short)


@pytest.mark.parametrize(
    "noises",
    ["text_infilling,sentence_permutation", "token_masking,token_deletion,text_infilling,document_rotation"],
)
def test_the_target_is_the_original_text_and_eos(setup, noises):
    source, _ = setup
    batch, originals = _draw(source, noises)
    eos = source.specials["eos"]
    assert torch.equal(batch.targets[:, :-1], originals) and (batch.targets[:, -1] == eos).all()
    assert (batch.inputs["tgt"][:, 0] == decoder_start_id(source.specials)).all()
    assert torch.equal(batch.inputs["tgt"][:, 1:], batch.targets[:, :-1])
    assert batch.inputs["idx"].size(1) <= BLOCK and batch.targets.size(1) == BLOCK


def test_token_masking_alone_keeps_the_length_and_masks_the_share(setup):
    source, _ = setup
    batch, originals = _draw(source, "token_masking")
    mask = source.specials["mask"]
    for inp, original in zip(_inputs(batch), originals.tolist()):
        assert len(inp) == len(original)
        assert sum(t == mask for t in inp) == round(0.3 * 31)
        assert all(a == b for a, b in zip(inp, original) if a != mask)


def test_token_deletion_alone_shortens_and_deleted_tokens_are_on_the_target_side_only(setup):
    source, tok = setup
    batch, originals = _draw(source, "token_deletion")
    for inp, original in zip(_inputs(batch), originals.tolist()):
        assert len(inp) == 31 - round(0.3 * 31)
        assert _is_subsequence(inp, original)
    row = get_objective(tiny_config("encoder-decoder", "denoising", BLOCK, noises="token_deletion")).describe(
        batch, source, tok.id_to_token
    )[0]
    assert {s["mark"] for s in row["input"]} == {"kept"}
    assert sum(s["mark"] == "deleted" for s in row["target"]) == round(0.3 * 31)
    assert len(row["input"]) + round(0.3 * 31) + 1 == len(row["target"])  # + eos


def test_text_infilling_puts_one_mask_per_span(setup):
    g = torch.Generator().manual_seed(0)
    mask = 99
    spans_seen = []
    for _ in range(200):
        items = [(t, i) for i, t in enumerate(range(40))]
        fate = ["kept"] * 40
        out, n_spans = text_infilling(items, 12, 3.0, mask, fate, g)
        ids = [t for t, _ in out]
        assert ids.count(mask) == n_spans
        assert all(not (a == b == mask) for a, b in zip(ids, ids[1:]))  # one mask per span: masks never touch
        kept = [t for t in ids if t != mask]
        assert len(kept) == 40 - 12 and _is_subsequence(kept, list(range(40)))
        assert fate.count("masked") == 12
        spans_seen.append(n_spans)
    # Poisson(3) spans covering 12 tokens: about 4 of them (some of length 0, which insert a mask).
    assert 3.5 < sum(spans_seen) / len(spans_seen) < 5.5


def test_poisson_span_lengths_have_the_configured_mean():
    g = torch.Generator().manual_seed(0)
    lengths = [n for _ in range(300) for n in poisson_spans(60, 3.0, g)[:-1]]  # the last is cut to fit
    assert sum(lengths) / len(lengths) == pytest.approx(3.0, abs=0.15)
    assert 0 in lengths  # zero-length spans exist: they insert a mask


def test_the_damaged_share_follows_the_option(setup):
    source, _ = setup
    masked = total = 0
    for seed in range(10):
        batch, _ = _draw(source, "text_infilling", seed=seed, denoise_mask_prob=0.2)
        for marks in batch.extra["target_marks"]:
            masked += marks.count("masked")
            total += len(marks) - 1
    assert masked / total == pytest.approx(0.2, abs=0.01)


def test_sentence_permutation_alone_keeps_the_sentences(setup):
    source, _ = setup
    g = torch.Generator().manual_seed(0)
    reordered = 0
    for window in source.windows(BLOCK - 1, 64, g).tolist():
        pieces = [tuple(range(a, b)) for a, b in _sentence_bounds(window, source)]
        out = sentence_permutation([(t, i) for i, t in enumerate(window)], source.sentence_end, g)
        assert [t for t, _ in out] == [window[o] for _, o in out]
        origins = [o for _, o in out]
        # The output is the window's sentences, each whole, in another order.
        starts = {p[0]: p for p in pieces}
        at, used = 0, []
        while at < len(origins):
            piece = starts[origins[at]]
            assert tuple(origins[at : at + len(piece)]) == piece
            used.append(piece)
            at += len(piece)
        assert sorted(used) == sorted(pieces)
        reordered += used != pieces
    assert reordered > 20  # most windows hold two or more sentences
    batch, originals = _draw(source, "sentence_permutation")
    for inp, original in zip(_inputs(batch), originals.tolist()):
        assert Counter(inp) == Counter(original)


def _sentence_bounds(ids: list[int], source) -> list[tuple[int, int]]:
    """[start, end) of each sentence of a window (the last may be cut short)."""
    ends = [i + 1 for i, t in enumerate(ids) if source.sentence_end[t]]
    bounds = [0, *ends] + ([len(ids)] if not ends or ends[-1] != len(ids) else [])
    return list(zip(bounds, bounds[1:]))


def test_document_rotation_alone_is_a_rotation(setup):
    source, tok = setup
    batch, originals = _draw(source, "document_rotation")
    for inp, original in zip(_inputs(batch), originals.tolist()):
        assert inp != original
        start = next(k for k in range(1, len(original)) if original[k:] + original[:k] == inp)
        assert 0 < start < len(original)
    row = get_objective(tiny_config("encoder-decoder", "denoising", BLOCK, noises="document_rotation")).describe(
        batch, source, tok.id_to_token
    )[0]
    assert {s["mark"] for s in row["input"]} <= {"moved", "kept"} and "moved" in {s["mark"] for s in row["input"]}


def test_the_noises_apply_in_barts_order_whatever_order_they_are_listed_in(setup):
    source, _ = setup
    a, _ = _draw(source, "token_masking,sentence_permutation,document_rotation")
    b, _ = _draw(source, "document_rotation,token_masking,sentence_permutation")
    assert torch.equal(a.inputs["idx"], b.inputs["idx"])


def test_marks_say_what_happened(setup):
    source, tok = setup
    obj = get_objective(tiny_config("encoder-decoder", "denoising", BLOCK, noises="text_infilling,token_deletion"))
    rows = obj.describe(obj.batch(source, 8, torch.Generator().manual_seed(0), "cpu"), source, tok.id_to_token)
    for row in rows:
        assert {"input", "target"} <= set(row)
        assert all(s["text"] == "[MASK]" for s in row["input"] if s["mark"] == "masked")
        assert {s["mark"] for s in row["target"]} <= {"kept", "masked", "deleted", "special"}
        assert row["target"][-1]["text"] == "<|endoftext|>" and all(s["loss"] for s in row["target"])


def test_a_context_too_short_is_refused(setup):
    source, _ = setup
    with pytest.raises(ConfigError, match="too short for denoising") as err:
        get_objective(tiny_config("encoder-decoder", "denoising", 3, denoise_mask_prob=0.1)).check(source)
    assert err.value.field == "model.block_size"


def test_the_validation_loss_falls_within_a_few_hundred_steps(setup):
    source, _ = setup
    before, after = train_briefly(tiny_config("encoder-decoder", "denoising", BLOCK), source, steps=120)
    assert after < 0.7 * before, (before, after)
