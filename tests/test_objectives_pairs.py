"""Sentence pairs (engine/objectives/pairs.py): NSP, SOP and masked LM with either, on a real character tokenizer
with BERT's special tokens and generated documents whose every sentence says where it comes from, so a test can
find each half of a pair in the token stream."""

import random

import numpy as np
import pytest
import torch

from engine.config import ConfigError, RunConfig
from engine.model import build_model
from engine.objectives.base import IGNORE
from engine.objectives.pairs import pair_inputs
from engine.objectives.registry import get_objective
from engine.objectives.text_source import TokenSource
from engine.tokenizer import make_spec, train_tokenizer

SPECIALS = {"pad": "[PAD]", "mask": "[MASK]", "cls": "[CLS]", "sep": "[SEP]", "eos": "<|endoftext|>"}
WORDS = "the cat sat on a mat and dog ran".split()
BLOCK = 48


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


def _sentence(rng, words, tag: str = "") -> str:
    return f"{tag}{' '.join(rng.choice(words) for _ in range(rng.randint(2, 3)))}."


def tagged_documents(n_docs: int, n_sentences: int = 8, seed: int = 0) -> list[str]:
    """Every sentence begins with its document and its place in it ("d12s3 cat sat."), so a span that holds
    a tag occurs once in the text."""
    rng = random.Random(seed)
    return [" ".join(_sentence(rng, WORDS, f"d{d}s{s} ") for s in range(n_sentences)) for d in range(n_docs)]


def _source(tmp_path, docs: list[str], separated: bool = True) -> tuple[TokenSource, object]:
    """The documents as a workspace's token file holds them: each ended by the eos token (or, separated=False,
    run together as one document)."""
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(docs), encoding="utf-8")
    tok = train_tokenizer("char", 100, [path], special_tokens=SPECIALS)
    spec = make_spec("char", 100, special_tokens=SPECIALS).to_dict()
    end = [tok.token_to_id(SPECIALS["eos"])] if separated else tok.encode(" ").ids
    ids = np.concatenate([np.asarray([*tok.encode(d).ids, *end], dtype=np.int64) for d in docs])
    return TokenSource.from_tokenizer(tok, spec, ids), tok


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    return _source(tmp_path_factory.mktemp("tagged"), tagged_documents(60))


def config(name: str, block: int = BLOCK, **model) -> RunConfig:
    m = {"arch": "encoder", "n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": block, "n_segments": 2, **model}
    return RunConfig.from_dict({"model": m, "objective": {"name": name}})


def halves(batch, source) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(label, A, B) of each pair of a batch, read back from its [CLS] A [SEP] B [SEP] layout."""
    out = []
    idx = batch.inputs["idx"]
    if batch.targets is not None and (batch.targets != IGNORE).any():
        idx = torch.where(batch.targets != IGNORE, batch.targets, idx)  # the text before masking
    for row, label in zip(idx.numpy(), batch.labels.tolist()):
        seps = np.flatnonzero(row == source.specials["sep"])
        out.append((label, row[1 : seps[0]], row[seps[0] + 1 : seps[1]]))
    return out


def where(source, part: np.ndarray) -> list[int]:
    """Every position of the stream where `part` begins."""
    stream = np.asarray(source.ids, dtype=np.int32).tobytes()
    needle = np.asarray(part, dtype=np.int32).tobytes()
    found, at = [], stream.find(needle)
    while at >= 0:
        if at % 4 == 0:
            found.append(at // 4)
        at = stream.find(needle, at + 1)
    return found


def tagged_pairs(source, batches) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The pairs whose halves each hold a whole tag (so each occurs once); nearly all of them."""
    pairs = [p for batch in batches for p in halves(batch, source)]
    kept = [(label, a, b) for label, a, b in pairs if len(where(source, a)) == 1 and len(where(source, b)) == 1]
    assert len(kept) > 0.8 * len(pairs), (len(kept), len(pairs))
    return kept


def draw(objective, source, n_batches: int = 20, batch_size: int = 16, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [objective.batch(source, batch_size, gen, "cpu") for _ in range(n_batches)]


# ------------------------------------------------------------------------------------------------ building


def test_a_pair_is_cls_a_sep_b_sep_in_two_segments_padded_to_the_block(tagged):
    source, _ = tagged
    batch = get_objective(config("nsp")).batch(source, 16, torch.Generator().manual_seed(0), "cpu")
    idx, seg, real = batch.inputs["idx"], batch.inputs["segments"], batch.inputs["key_padding"]
    assert idx.shape == seg.shape == real.shape == (16, BLOCK) and batch.labels.shape == (16,)
    cls, sep, pad = source.specials["cls"], source.specials["sep"], source.specials["pad"]
    for b in range(16):
        n = int(real[b].sum())
        assert real[b, :n].all() and not real[b, n:].any()
        assert (idx[b, n:] == pad).all() and idx[b, 0] == cls and idx[b, n - 1] == sep
        first = int(np.flatnonzero(idx[b].numpy() == sep)[0])
        assert (idx[b, :n] == sep).sum() == 2 and 2 <= first < n - 2  # A and B each hold a token at least
        assert (seg[b, : first + 1] == 0).all() and (seg[b, first + 1 : n] == 1).all()
        assert batch.marks[b][0] == batch.marks[b][first] == "special" and batch.marks[b][n:] == ["pad"] * (BLOCK - n)
    assert (batch.targets == IGNORE).all()  # NSP alone predicts no tokens


def test_pair_inputs_fits_long_texts_by_trimming_the_longer_one(tagged):
    source, tok = tagged
    a, b = tok.encode("d0s1 the cat sat. " * 10).ids, tok.encode("dog ran.").ids
    idx, seg = pair_inputs(a, b, source, 32)
    assert len(idx) == len(seg) == 32
    assert idx[0] == source.specials["cls"] and idx[-1] == source.specials["sep"]
    assert idx[32 - len(b) - 2] == source.specials["sep"] and idx[-len(b) - 1 : -1].tolist() == b
    assert seg.tolist() == [0] * (32 - len(b) - 1) + [1] * (len(b) + 1)
    short, _ = pair_inputs([5], [6, 7], source, 32)
    assert short.tolist() == [source.specials["cls"], 5, source.specials["sep"], 6, 7, source.specials["sep"]]


def test_pairs_are_cut_where_sentences_end(tagged):
    source, _ = tagged
    pairs = [p for batch in draw(get_objective(config("sop")), source, 10) for p in halves(batch, source)]
    for at in (lambda a, b: a[-1], lambda a, b: b[-1]):
        ends = np.mean([source.sentence_end[at(a, b)] for _, a, b in pairs])
        assert ends > 0.85, ends


def test_a_context_too_short_or_a_vocabulary_without_cls_is_refused(tagged, tmp_path):
    source, _ = tagged
    with pytest.raises(ConfigError) as e:
        get_objective(config("masked_lm+nsp", block=6)).check(source)
    assert e.value.field == "model.block_size" and "[CLS] A [SEP] B [SEP]" in e.value.message
    path = tmp_path / "t.txt"
    path.write_text("the cat sat.", encoding="utf-8")
    plain = TokenSource.from_tokenizer(train_tokenizer("char", 50, [path]), None, np.zeros(100, dtype=np.int64))
    with pytest.raises(ConfigError, match=r"\[CLS\] and \[SEP\]"):
        get_objective(config("sop")).check(plain)


# ------------------------------------------------------------------------------------------------ labels


def test_nsp_pairs_half_follow_and_half_come_from_another_document(tagged):
    source, _ = tagged
    batches = draw(get_objective(config("nsp")), source, 40)
    labels = torch.cat([b.labels for b in batches]).float()
    assert labels.mean().item() == pytest.approx(0.5, abs=0.05)
    for label, a, b in tagged_pairs(source, batches):
        (pos_a,), (pos_b,) = where(source, a), where(source, b)
        if label:
            assert pos_b == pos_a + len(a)  # B is what follows A in the text
            assert source.document_of(pos_a) == source.document_of(pos_b)
        else:
            assert source.document_of(pos_a) != source.document_of(pos_b)  # another document


def test_nsp_on_a_single_document_takes_b_from_far_away(tmp_path):
    source, _ = _source(tmp_path, tagged_documents(40), separated=False)
    assert source.n_documents() == 1
    objective = get_objective(config("nsp"))
    for label, a, b in tagged_pairs(source, draw(objective, source, 10)):
        (pos_a,), (pos_b,) = where(source, a), where(source, b)
        assert pos_b == pos_a + len(a) if label else abs(pos_b - pos_a) >= BLOCK


def test_sop_pairs_half_in_order_and_half_swapped(tagged):
    source, _ = tagged
    batches = draw(get_objective(config("sop")), source, 40)
    labels = torch.cat([b.labels for b in batches]).float()
    assert labels.mean().item() == pytest.approx(0.5, abs=0.05)
    for label, first, second in tagged_pairs(source, batches):
        (pos_first,), (pos_second,) = where(source, first), where(source, second)
        if label:
            assert pos_second == pos_first + len(first)
        else:
            assert pos_first == pos_second + len(second)  # the second half comes first in the text


def test_masked_lm_with_pairs_masks_the_text_and_adds_the_two_losses(tagged):
    source, _ = tagged
    cfg = config("masked_lm+nsp")
    objective = get_objective(cfg)
    chosen = candidates = 0
    for batch in draw(objective, source, 20):
        idx, targets, real = batch.inputs["idx"], batch.targets, batch.inputs["key_padding"]
        picked = targets != IGNORE
        original = torch.where(picked, targets, idx)
        special = source.special_mask(original)
        assert not (picked & (special | ~real)).any()  # never [CLS], [SEP] or padding
        chosen += int(picked.sum())
        candidates += int((real & ~special).sum())
    assert chosen / candidates == pytest.approx(0.15, abs=0.01)
    torch.manual_seed(0)
    model = build_model(cfg.model, source.vocab_size)
    out = objective.loss(model, batch)
    assert set(out.stats) == {"lm_loss", "masked_accuracy", "pair_accuracy"}
    assert out.stats["pair_accuracy"][1].item() == 16
    alone = get_objective(config("nsp")).loss(model, batch)
    mlm_sum, mlm_count = out.stats["lm_loss"]
    assert out.loss.item() == pytest.approx(alone.loss.item() + (mlm_sum / mlm_count).item(), rel=1e-5)


def test_describe_names_the_label_and_leaves_the_padding_out(tagged):
    source, tok = tagged
    for name, names in (("nsp", {"B follows A", "B is from elsewhere"}), ("masked_lm+sop", {"in order", "swapped"})):
        objective = get_objective(config(name))
        batch = objective.batch(source, 8, torch.Generator().manual_seed(1), "cpu")
        rows = objective.describe(batch, source, tok.id_to_token)
        assert {r["label"] for r in rows} == names
        for row, real in zip(rows, batch.inputs["key_padding"]):
            assert len(row["input"]) == int(real.sum())
            assert row["input"][0] == {"text": "[CLS]", "mark": "special", "loss": False, "order": None}
            assert (row["target"] is None) == (name == "nsp")


# ------------------------------------------------------------------------------------------------ learning


def _kind_sentences(rng, words: list[str], n: int) -> list[str]:
    return [f"{' '.join(rng.choice(words) for _ in range(rng.randint(3, 4)))}." for _ in range(n)]


LOWER, DIGITS, UPPER = WORDS, "12 34 56 78 90 13 57 24".split(), "RED BLUE GREEN PINK GREY".split()


def pair_accuracy(tmp_path, name: str, docs: list[str]) -> float:
    """The pair accuracy of the last 50 of 150 steps of a tiny encoder trained with the objective. Large batches:
    a pair gives one bit per sequence, and with 16 of them the signal is too noisy for a model this small to
    leave chance within a few hundred steps (measured: stuck at 50 % for most seeds, where 128 learn at every
    seed tried)."""
    source, _ = _source(tmp_path, docs)
    cfg = config(name, block=32, n_layer=2, n_head=4, pos_encoding="rope")
    objective = get_objective(cfg)
    objective.check(source)
    torch.manual_seed(0)
    model = build_model(cfg.model, source.vocab_size)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    correct = total = 0
    for step in range(150):
        out = objective.loss(model, objective.batch(source, 128, gen, "cpu"))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        if step >= 100:
            correct += int(out.stats["pair_accuracy"][0])
            total += int(out.stats["pair_accuracy"][1])
    return correct / total


def test_nsp_learns_which_text_follows_on_two_very_different_documents(tmp_path):
    rng = random.Random(0)
    docs = [" ".join(_kind_sentences(rng, LOWER, 600)), " ".join(_kind_sentences(rng, DIGITS, 600))]
    assert pair_accuracy(tmp_path, "nsp", docs) > 0.7  # chance is 0.5


def test_sop_learns_the_order_of_sentences_that_always_come_in_one_order(tmp_path):
    rng = random.Random(0)
    # Each document: a sentence of words, one of numbers, one of capitals, always in that order.
    docs = [" ".join(_kind_sentences(rng, k, 1)[0] for k in (LOWER, DIGITS, UPPER)) for _ in range(400)]
    assert pair_accuracy(tmp_path, "sop", docs) > 0.7
