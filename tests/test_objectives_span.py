"""Span corruption: T5's spans on an encoder-decoder (density, span lengths, sentinels, exact reconstruction, no
target leakage, a context too short) and fill-in-the-middle on a decoder (the PSM layout, fim_rate, prompts);
both learn within a few hundred steps."""

import pytest
import torch
from seq_objective_kit import char_source, make_model, one_thread, tiny_config, train_briefly

from engine.config import ConfigError
from engine.objectives.base import decoder_start_id
from engine.objectives.registry import get_objective
from engine.objectives.span_corruption import fills_of, fim_prompt, infill_input
from engine.objectives.spans import fit_layout
from engine.tokenizer import TokenizerError


@pytest.fixture(scope="module")
def setup():
    return char_source()


def _spans(target: list[int], sentinels: list[int], eos: int) -> list[tuple[int, list[int]]]:
    """(sentinel, the span after it) pairs of a target, up to its eos."""
    assert target[-1] == eos and eos not in target[:-1]
    out: list[tuple[int, list[int]]] = []
    for t in target[:-1]:
        if t in sentinels:
            out.append((t, []))
        else:
            out[-1][1].append(t)
    return out


def _windows_of(objective, source, n: int, seed: int) -> torch.Tensor:
    """The windows a batch drawn with this seed corrupted (the batch's first draw from the generator)."""
    lay = objective._layout(source)
    return source.windows(lay.length, n, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("density,mean", [(0.15, 3.0), (0.3, 8.0)])
def test_hidden_share_and_span_length_follow_the_options(setup, density, mean):
    source, _ = setup
    cfg = tiny_config("encoder-decoder", "span_corruption", 128, noise_density=density, mean_span_length=mean)
    obj = get_objective(cfg)
    g = torch.Generator().manual_seed(0)
    hidden = windows = 0
    lengths: list[int] = []
    for _ in range(20):
        batch = obj.batch(source, 16, g, "cpu")
        for target in batch.targets.tolist():
            spans = _spans(target, source.sentinels, source.specials["eos"])
            lengths += [len(s) for _, s in spans]
            hidden += sum(len(s) for _, s in spans)
            windows += obj._layout(source).length
    assert hidden / windows == pytest.approx(density, abs=0.01)
    assert sum(lengths) / len(lengths) == pytest.approx(mean, rel=0.1)
    assert min(lengths) < mean < max(lengths)  # the lengths vary around the mean, as T5's segmentation draws them


def test_sentinels_appear_once_in_order_and_input_plus_target_is_the_text(setup):
    source, _ = setup
    obj = get_objective(tiny_config("encoder-decoder", "span_corruption", 32))
    batch = obj.batch(source, 64, torch.Generator().manual_seed(5), "cpu")
    originals = _windows_of(obj, source, 64, 5).tolist()
    eos = source.specials["eos"]
    for inp, target, original in zip(batch.inputs["idx"].tolist(), batch.targets.tolist(), originals):
        spans = _spans(target, source.sentinels, eos)
        in_sentinels = [t for t in inp if t in source.sentinels]
        assert in_sentinels == source.sentinels[: len(spans)] == [s for s, _ in spans]
        rebuilt = [tok for t in inp for tok in (dict(spans)[t] if t in source.sentinels else [t])]
        assert rebuilt == original
        assert len(inp) <= 32 and len(target) <= 32


def test_the_decoder_reads_the_target_shifted_right_behind_the_start_token(setup):
    source, _ = setup
    obj = get_objective(tiny_config("encoder-decoder", "span_corruption", 32))
    batch = obj.batch(source, 4, torch.Generator().manual_seed(0), "cpu")
    tgt = batch.inputs["tgt"]
    assert (tgt[:, 0] == decoder_start_id(source.specials)).all()
    assert torch.equal(tgt[:, 1:], batch.targets[:, :-1])


def test_a_batch_is_the_same_for_the_same_generator_state(setup):
    source, _ = setup
    for arch in ("encoder-decoder", "decoder"):
        obj = get_objective(tiny_config(arch, "span_corruption", 32))
        a = obj.batch(source, 8, torch.Generator().manual_seed(3), "cpu")
        b = obj.batch(source, 8, torch.Generator().manual_seed(3), "cpu")
        assert all(torch.equal(a.inputs[k], b.inputs[k]) for k in a.inputs)
        assert torch.equal(a.targets, b.targets)


def test_the_decoder_logits_never_see_the_target_they_predict(setup):
    source, _ = setup
    cfg = tiny_config("encoder-decoder", "span_corruption", 32)
    obj, model = get_objective(cfg), make_model(cfg, source).eval()
    batch = obj.batch(source, 2, torch.Generator().manual_seed(1), "cpu")
    src, tgt = batch.inputs["idx"], batch.inputs["tgt"]
    with torch.no_grad(), one_thread():
        base = model(src, tgt)[0]
        for j in range(batch.targets.size(1) - 1):
            changed = tgt.clone()
            changed[:, j + 1] = (changed[:, j + 1] + 1) % source.vocab_size  # as if targets[:, j] were another token
            logits = model(src, changed)[0]
            assert torch.allclose(logits[:, : j + 1], base[:, : j + 1], atol=1e-5), f"target {j} leaks"
            assert not torch.allclose(logits[:, j + 1], base[:, j + 1], atol=1e-5)  # the next position does read it


def test_describe_shows_input_and_target_side_by_side(setup):
    source, tok = setup
    obj = get_objective(tiny_config("encoder-decoder", "span_corruption", 32))
    rows = obj.describe(obj.batch(source, 2, torch.Generator().manual_seed(0), "cpu"), source, tok.id_to_token)
    row = rows[0]
    assert {"input", "target"} <= set(row)
    assert [s["text"] for s in row["input"] if s["mark"] == "sentinel"][0] == "<extra_id_0>"
    assert row["target"][0] == {"text": "<extra_id_0>", "mark": "sentinel", "loss": True, "order": None}
    assert {s["mark"] for s in row["target"]} == {"sentinel", "masked", "special"}
    assert not any(s["loss"] for s in row["input"]) and all(s["loss"] for s in row["target"])


def test_a_context_too_short_for_the_spans_is_refused_with_the_length_that_works(setup):
    source, _ = setup
    with pytest.raises(ConfigError) as err:
        get_objective(tiny_config("encoder-decoder", "span_corruption", 8)).check(source)
    assert err.value.field == "model.block_size"
    assert "Context length 8 is too short for span corruption" in err.value.message
    need = int(err.value.message.rsplit("choose at least ", 1)[1])
    get_objective(tiny_config("encoder-decoder", "span_corruption", need)).check(source)
    with pytest.raises(ConfigError):
        get_objective(tiny_config("encoder-decoder", "span_corruption", need - 1)).check(source)
    with pytest.raises(ConfigError, match="too short for span corruption on a decoder"):
        get_objective(tiny_config("decoder", "span_corruption", 5)).check(source)


def test_a_vocabulary_without_sentinels_is_refused(setup):
    source, _ = char_source(sentinels=0)
    with pytest.raises((ConfigError, TokenizerError), match="extra_id_0"):
        get_objective(tiny_config("encoder-decoder", "span_corruption", 32)).check(source)


def test_a_long_context_uses_no_more_spans_than_there_are_sentinels():
    lay = fit_layout(4096, 0.15, 3.0, 32)
    assert lay.n_spans <= 32 and lay.input_length <= 4096


# ------------------------------------------------------------------------------------- fill-in-the-middle


def _fim_parts(seq: list[int], source) -> tuple[list[int], list[int], list[int]]:
    s0, s1, s2 = source.sentinels[:3]
    assert seq[0] == s0 and seq.count(s0) == seq.count(s1) == seq.count(s2) == 1
    assert seq[-1] == source.specials["eos"]
    i1, i2 = seq.index(s1), seq.index(s2)
    assert 0 < i1 < i2
    return seq[1:i1], seq[i1 + 1 : i2], seq[i2 + 1 : -1]


def test_fim_sequences_hold_the_three_markers_and_the_middle_after_them(setup):
    source, _ = setup
    obj = get_objective(tiny_config("decoder", "span_corruption", 32, fim_rate=1.0))
    batch = obj.batch(source, 64, torch.Generator().manual_seed(2), "cpu")
    windows = source.windows(33, 64, torch.Generator().manual_seed(2)).tolist()
    assert torch.equal(batch.inputs["idx"][:, 1:], batch.targets[:, :-1])  # plain next-token shift
    middles = []
    for idx, target, window in zip(batch.inputs["idx"].tolist(), batch.targets.tolist(), windows):
        prefix, suffix, middle = _fim_parts([idx[0], *target], source)
        assert prefix + middle + suffix == window[: 33 - 4]
        assert source.doc_end not in middle
        middles.append(len(middle))
    assert min(middles) < 5 and max(middles) > 10  # middles of every size, as two uniform cuts make them


def test_fim_describe_shows_the_markers_the_moved_middle_and_loss_everywhere(setup):
    source, tok = setup
    obj = get_objective(tiny_config("decoder", "span_corruption", 32, fim_rate=1.0))
    row = obj.describe(obj.batch(source, 1, torch.Generator().manual_seed(2), "cpu"), source, tok.id_to_token)[0]
    texts = [s["text"] for s in row["input"]]
    assert texts[0] == "<extra_id_0>" and texts[-1] == "<|endoftext|>" and len(texts) == 33
    assert [s["text"] for s in row["input"] if s["mark"] == "sentinel"] == [f"<extra_id_{k}>" for k in range(3)]
    moved = [k for k, s in enumerate(row["input"]) if s["mark"] == "moved"]
    assert moved and min(moved) > texts.index("<extra_id_2>")  # the middle comes after the last marker
    assert all(s["loss"] for s in row["input"][1:])


def test_fim_rate_is_the_share_of_rearranged_sequences(setup):
    source, _ = setup
    for rate in (0.0, 0.5):
        obj = get_objective(tiny_config("decoder", "span_corruption", 32, fim_rate=rate))
        g = torch.Generator().manual_seed(0)
        batches = [obj.batch(source, 50, g, "cpu") for _ in range(8)]
        share = sum(sum(b.extra["fim"]) for b in batches) / 400
        assert share == pytest.approx(rate, abs=0.06)
    plain = obj.batch(source, 8, torch.Generator().manual_seed(4), "cpu")
    windows = source.windows(33, 8, torch.Generator().manual_seed(4))
    for k, is_fim in enumerate(plain.extra["fim"]):
        if not is_fim:
            assert torch.equal(plain.inputs["idx"][k], windows[k, :-1])
            assert torch.equal(plain.targets[k], windows[k, 1:])


def test_prompts_and_infill_layouts(setup):
    source, tok = setup
    s = source.sentinels
    ab, cd = tok.encode("ab").ids, tok.encode("cd").ids
    assert fim_prompt(ab, cd, source) == [s[0], *ab, s[1], *cd, s[2]]
    assert infill_input([ab, cd, ab], source) == [*ab, s[0], *cd, s[1], *ab]
    generated = [s[0], *cd, s[1], s[2], *ab, source.specials["eos"], *ab]
    assert fills_of(generated, source, 2) == [cd, []]


@pytest.mark.parametrize("arch", ["encoder-decoder", "decoder"])
def test_the_validation_loss_falls_within_a_few_hundred_steps(setup, arch):
    source, _ = setup
    before, after = train_briefly(tiny_config(arch, "span_corruption", 32), source, steps=120)
    assert after < 0.7 * before, (before, after)
