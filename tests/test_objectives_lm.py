"""Causal, prefix and masked language modelling (engine/objectives/causal_lm.py, prefix_lm.py, masked_lm.py) on
real tokenizers trained on a small generated corpus: the batches they build (today's windows, the prefix masks,
BERT's corruption rates), that no position sees the token it predicts, and that a tiny model learns from each."""

import random

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.model import build_model
from engine.objectives.base import IGNORE
from engine.objectives.registry import get_objective
from engine.objectives.text_source import TokenSource
from engine.tokenizer import make_spec, train_tokenizer
from engine.training_data import TokenData, get_batch

WORDS = "the a cat dog sat ran on under mat log and then slept ate fish bread".split()
SPECIALS = {"mask": "[MASK]", "eos": "<|endoftext|>"}


def _corpus(n_lines: int, seed: int = 0) -> list[str]:
    """Sentences with a simple grammar, so a tiny model has something to learn within a few hundred steps."""
    rng = random.Random(seed)
    return [
        f"{rng.choice(WORDS[:2])} {rng.choice(WORDS[2:4])} {rng.choice(WORDS[4:6])} "
        f"{rng.choice(WORDS[6:8])} the {rng.choice(WORDS[8:10])}."
        for _ in range(n_lines)
    ]


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


def _source(tmp_path, kind: str, vocab_size: int, lines: list[str]) -> tuple[TokenSource, object]:
    """A source over the lines as documents, each ended by the eos token, as a workspace's token file holds them
    (written to a .bin file and read through TokenData, as training reads it)."""
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tok = train_tokenizer(kind, vocab_size, [path], special_tokens=SPECIALS)
    spec = make_spec(kind, vocab_size, special_tokens=SPECIALS).to_dict()
    eos = tok.token_to_id(SPECIALS["eos"])
    ids = np.concatenate([np.asarray([*tok.encode(ln).ids, eos], dtype=np.uint16) for ln in lines])
    ids.tofile(tmp_path / "train.bin")
    return TokenSource.from_tokenizer(tok, spec, TokenData(tmp_path / "train.bin", "uint16")), tok


@pytest.fixture(scope="module")
def char_source(tmp_path_factory):
    return _source(tmp_path_factory.mktemp("char"), "char", 100, _corpus(400))


@pytest.fixture(scope="module")
def wordpiece_source(tmp_path_factory):
    # A vocabulary this small keeps several words in pieces ("c ##at", "u ##n ##d ##e ##r").
    return _source(tmp_path_factory.mktemp("wordpiece"), "wordpiece", 40, _corpus(400))


def config(name: str, arch: str, block: int = 32, **objective) -> RunConfig:
    model = {"arch": arch, "n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": block, "dropout": 0.0}
    return RunConfig.from_dict({"model": model, "objective": {"name": name, **objective}})


def model_for(cfg: RunConfig, source: TokenSource, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(cfg.model, source.vocab_size)


def train(cfg: RunConfig, source: TokenSource, steps: int, lr: float = 1e-2) -> tuple[dict, dict, object]:
    """A tiny model trained with the objective in a plain loop; the mean loss and stats of the first and the
    last 20 steps."""
    objective = get_objective(cfg)
    objective.check(source)
    model = model_for(cfg, source)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(1)
    history = []
    for _ in range(steps):
        out = objective.loss(model, objective.batch(source, 16, gen, "cpu"))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        history.append((out.loss.item(), {k: (float(s), float(c)) for k, (s, c) in out.stats.items()}))
    return _summary(history[:20]), _summary(history[-20:]), model


def _summary(part) -> dict:
    out = {"loss": sum(loss for loss, _ in part) / len(part)}
    for key in part[0][1]:
        total = sum(stats[key][0] for _, stats in part)
        count = sum(stats[key][1] for _, stats in part)
        out[key] = total / count
    return out


# ------------------------------------------------------------------------------------------------ causal LM


def test_causal_lm_draws_the_windows_and_computes_the_loss_the_loop_always_did(char_source, tmp_path_factory):
    source, _ = char_source
    cfg = config("causal_lm", "decoder")
    objective = get_objective(cfg)
    data = TokenData(source._ids.path, "uint16")
    for seed in (0, 5):
        x, y = get_batch(data, 32, 8, torch.Generator().manual_seed(seed), torch.device("cpu"))
        batch = objective.batch(source, 8, torch.Generator().manual_seed(seed), "cpu")
        assert torch.equal(batch.inputs["idx"], x) and torch.equal(batch.targets, y)
    model = model_for(cfg, source)
    out = objective.loss(model, batch)
    assert out.loss.item() == model(x, y)[1].item()  # exactly GPT.forward's loss, so runs keep their numbers
    total, count = out.stats["lm_loss"]
    assert count.item() == 8 * 32 and total.item() == pytest.approx(out.loss.item() * 8 * 32, rel=1e-6)
    assert 0 <= out.stats["accuracy"][0].item() <= 8 * 32
    assert batch.n_tokens == 8 * 32


def test_causal_lm_learns(char_source):
    first, last, _ = train(config("causal_lm", "decoder"), char_source[0], 150)
    assert last["loss"] < 0.6 * first["loss"]
    assert last["accuracy"] > first["accuracy"] + 0.2


# ------------------------------------------------------------------------------------------------ prefix LM


def test_a_prefix_is_read_both_ways_and_carries_no_loss(char_source):
    source, _ = char_source
    objective = get_objective(config("prefix_lm", "decoder", block=16))
    batch = objective.batch(source, 400, torch.Generator().manual_seed(0), "cpu")
    prefix = batch.extra["prefix"]
    assert prefix.min() >= 1 and prefix.max() <= 15
    assert abs(prefix.float().mean().item() - 8) < 0.5  # uniform from 1 to T - 1
    assert len(set(prefix.tolist())) == 15
    mask, targets = batch.inputs["attn_mask"], batch.targets
    for b in range(5):
        p = int(prefix[b])
        assert mask[b, :p, :p].all()  # the prefix sees all of itself
        assert not mask[b, :p, p:].any()  # and nothing after it
        assert torch.equal(mask[b, p:], torch.tril(torch.ones(16, 16, dtype=torch.bool))[p:] | (torch.arange(16) < p))
        assert (targets[b, : p - 1] == IGNORE).all() and (targets[b, p - 1 :] != IGNORE).all()
        assert batch.marks[b] == ["prefix"] * p + ["kept"] * (16 - p)
    fixed = get_objective(config("prefix_lm", "decoder", block=16, prefix_fraction=0.25))
    assert fixed.batch(source, 8, torch.Generator(), "cpu").extra["prefix"].tolist() == [4] * 8


def test_prefix_lm_never_lets_a_position_see_the_token_it_predicts(char_source):
    source, _ = char_source
    cfg = config("prefix_lm", "decoder", block=16)
    objective = get_objective(cfg)
    model = model_for(cfg, source).eval()
    batch = objective.batch(source, 4, torch.Generator().manual_seed(3), "cpu")
    idx, mask = batch.inputs["idx"], batch.inputs["attn_mask"]
    with torch.no_grad():
        before = model(idx, attn_mask=mask)[0]
        for b in range(4):
            p = int(batch.extra["prefix"][b])
            for k in (p, min(p + 3, 15), 15):  # a suffix token: predicted at k - 1
                changed = idx.clone()
                changed[b, k] = (changed[b, k] + 1) % source.vocab_size
                after = model(changed, attn_mask=mask)[0]
                assert torch.equal(after[b, :k], before[b, :k])  # every position that predicts it or comes before
                assert not torch.equal(after[b, k:], before[b, k:])
            if p >= 2:  # a prefix token changes what the positions before it read: the prefix is bidirectional
                changed = idx.clone()
                changed[b, p - 1] = (changed[b, p - 1] + 1) % source.vocab_size
                assert not torch.equal(model(changed, attn_mask=mask)[0][b, 0], before[b, 0])


def test_prefix_lm_learns(char_source):
    first, last, _ = train(config("prefix_lm", "decoder"), char_source[0], 150)
    assert last["loss"] < 0.6 * first["loss"]
    assert last["accuracy"] > first["accuracy"] + 0.2


# ------------------------------------------------------------------------------------------------ masked LM


def _masked_stats(source, cfg, n_batches: int = 40):
    objective = get_objective(cfg)
    gen = torch.Generator().manual_seed(0)
    counts = {"candidates": 0, "chosen": 0, "masked": 0, "random": 0, "unchanged": 0}
    for _ in range(n_batches):
        batch = objective.batch(source, 16, gen, "cpu")
        idx, targets = batch.inputs["idx"], batch.targets
        chosen = targets != IGNORE
        original = torch.where(chosen, targets, idx)
        special = source.special_mask(original)
        assert not (chosen & special).any()  # a special token is never chosen
        marks = np.array(batch.marks)
        assert ((marks == "special") == special.numpy()).all()
        assert (idx[torch.from_numpy(marks == "masked")] == source.specials["mask"]).all()
        assert not source.special_mask(idx[torch.from_numpy(marks == "random")]).any()  # random: ordinary tokens
        unchanged = torch.from_numpy(marks == "unchanged")
        assert torch.equal(idx[unchanged], targets[unchanged])
        assert torch.equal(chosen, torch.from_numpy(np.isin(marks, ["masked", "random", "unchanged"])))
        counts["candidates"] += int((~special).sum())
        counts["chosen"] += int(chosen.sum())
        for fate in ("masked", "random", "unchanged"):
            counts[fate] += int((marks == fate).sum())
    return counts


def test_masked_lm_chooses_15_percent_and_splits_them_80_10_10(char_source):
    source, _ = char_source
    counts = _masked_stats(source, config("masked_lm", "encoder"))
    assert counts["chosen"] / counts["candidates"] == pytest.approx(0.15, abs=0.01)
    assert counts["masked"] / counts["chosen"] == pytest.approx(0.8, abs=0.03)
    assert counts["random"] / counts["chosen"] == pytest.approx(0.1, abs=0.02)
    assert counts["unchanged"] / counts["chosen"] == pytest.approx(0.1, abs=0.02)
    other = _masked_stats(
        source, config("masked_lm", "encoder", mask_prob=0.3, mask_token_share=0.5, random_token_share=0.5), 10
    )
    assert other["chosen"] / other["candidates"] == pytest.approx(0.3, abs=0.015)
    assert other["unchanged"] == 0 and other["masked"] / other["chosen"] == pytest.approx(0.5, abs=0.04)


def test_whole_word_masking_chooses_every_piece_of_a_word_together(wordpiece_source):
    source, tok = wordpiece_source
    objective = get_objective(config("masked_lm", "encoder", whole_word=True))
    gen = torch.Generator().manual_seed(0)
    chosen_total = candidates = split_words = 0
    for _ in range(20):
        batch = objective.batch(source, 16, gen, "cpu")
        chosen = (batch.targets != IGNORE).numpy()
        original = np.where(chosen, batch.targets.numpy(), batch.inputs["idx"].numpy())
        for b in range(16):
            word = np.cumsum(source.word_begins(original[b])) - 1
            for w in np.unique(word):
                pieces = chosen[b][word == w]
                assert pieces.all() or not pieces.any()  # a word is masked whole or not at all
                split_words += len(pieces) > 1 and pieces.all()
        chosen_total += chosen.sum()
        candidates += (~source.is_special[original]).sum()
    assert split_words > 20  # words of several pieces were among the chosen (the test tests something)
    assert 0.10 < chosen_total / candidates <= 0.16
    vocab = {i: t for t, i in tok.get_vocab().items()}
    assert any(vocab[int(i)].startswith("##") for i in batch.targets[batch.targets != IGNORE])


def test_masked_lm_never_shows_the_token_under_a_mask(char_source, tmp_path):
    source, tok = char_source
    cfg = config("masked_lm", "encoder")
    objective = get_objective(cfg)
    model = model_for(cfg, source).eval()
    gen_state = torch.Generator().manual_seed(4).get_state()
    batch = objective.batch(source, 4, torch.Generator().set_state(gen_state), "cpu")
    starts = source.starts(32, 4, torch.Generator().set_state(gen_state))
    ids = np.array(source.ids)
    hidden = [(b, p) for b in range(4) for p in range(32) if batch.marks[b][p] in ("masked", "random")]
    assert hidden
    letters = source.ordinary[:2].tolist()
    for b, p in hidden:
        ids[starts[b] + p] = next(t for t in letters if t != ids[starts[b] + p])  # another ordinary token
    again = objective.batch(source.with_ids(ids), 4, torch.Generator().set_state(gen_state), "cpu")
    for b, p in hidden:
        assert again.targets[b, p] != batch.targets[b, p]  # the target changed ...
    assert torch.equal(again.inputs["idx"], batch.inputs["idx"])  # ... and the input did not
    with torch.no_grad():
        assert torch.equal(model(**again.inputs)[0], model(**batch.inputs)[0])


def test_masked_lm_learns_on_the_chosen_tokens_only(char_source):
    # Rotary positions: with learned or sinusoidal ones a tiny bidirectional model (an Encoder, or a GPT given a
    # full attn_mask alike) stays on the unigram plateau for hundreds of steps before it finds its neighbours.
    cfg = config("masked_lm", "encoder")
    cfg.model.pos_encoding = "rope"
    first, last, model = train(cfg, char_source[0], 250, lr=3e-3)
    assert last["loss"] < 0.7 * first["loss"]
    assert last["masked_accuracy"] > first["masked_accuracy"] + 0.2
    assert last["lm_loss"] == pytest.approx(last["loss"], rel=0.05)  # the loss is the chosen tokens' mean


def test_describe_shows_the_masks_over_the_original_and_the_prefix(char_source):
    source, tok = char_source
    decode = tok.id_to_token
    masked = get_objective(config("masked_lm", "encoder"))
    batch = masked.batch(source, 2, torch.Generator().manual_seed(0), "cpu")
    row = masked.describe(batch, source, decode)[0]
    assert len(row["input"]) == len(row["target"]) == 32 and row["label"] is None
    for shown, original, mark in zip(row["input"], row["target"], batch.marks[0]):
        assert shown["mark"] == original["mark"] == mark
        assert shown["loss"] == original["loss"] == (mark in ("masked", "random", "unchanged"))
        if mark == "masked":
            assert shown["text"] == "[MASK]" != original["text"]
    prefix = get_objective(config("prefix_lm", "decoder", prefix_fraction=0.25))
    batch = prefix.batch(source, 1, torch.Generator().manual_seed(0), "cpu")
    row = prefix.describe(batch, source, decode)[0]
    assert row["target"] is None and len(row["input"]) == 33  # the window: the inputs and the last target
    assert [s["mark"] for s in row["input"][:9]] == ["prefix"] * 8 + ["kept"]
    assert [s["loss"] for s in row["input"]] == [False] * 8 + [True] * 25
