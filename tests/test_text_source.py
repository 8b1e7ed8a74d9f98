"""TokenSource (engine/objectives/text_source.py): a real workspace's token files and tokenizers of every kind
read as the objectives need them: special roles, sentinels, the document separator, word starts, sentence ends,
and windows drawn exactly as the training loop's get_batch draws them."""

import re

import numpy as np
import pytest
import torch

from engine.config import ConfigError
from engine.errors import UserError
from engine.objectives.catalog import objective_info
from engine.objectives.text_source import TokenSource, require_specials
from engine.store import Workspace
from engine.tokenizer import make_spec, train_tokenizer
from engine.training_data import TokenData, get_batch

TEXT = "".join(
    f"The cat number {i} sat on the mat. Then it slept!\nA dog ran under the log, and ate bread.\n\n" for i in range(60)
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("source") / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ws(corpus, tmp_path_factory):
    w = Workspace(tmp_path_factory.mktemp("ws") / "ws")
    w.import_dataset([corpus], "cats", 0.1, doc_unit="paragraph")
    yield w
    w.close()


def source_of(corpus, kind: str, vocab_size: int = 120, **options) -> tuple[TokenSource, object]:
    tok = train_tokenizer(kind, vocab_size, [corpus], **options)
    spec = make_spec(kind, vocab_size, **options).to_dict()
    ids = np.asarray(tok.encode(TEXT[:400]).ids, dtype=np.int64)
    return TokenSource.from_tokenizer(tok, spec, ids), tok


def words(source: TokenSource, tok, text: str) -> list[str]:
    """The text cut where the source says words begin."""
    ids = np.asarray(tok.encode(text).ids)
    out: list[str] = []
    for i, begins in zip(ids, source.word_begins(ids)):
        piece = tok.decode([int(i)])
        out.append(piece) if begins or not out else out.__setitem__(-1, out[-1] + piece)
    return [w.strip() for w in out]


def test_a_workspace_split_reads_its_token_file_roles_and_separator(ws):
    tok_row = ws.train_tokenizer("cats", "bpe", 200)
    files = ws.token_files(tok_row["id"])
    train = TokenSource.from_workspace(ws, tok_row["id"], "train")
    val = TokenSource.from_workspace(ws, tok_row["id"], "val")
    assert len(train) == TokenData(files["train"], files["dtype"]).n_tokens > len(val) > 0
    assert train.vocab_size == files["vocab_size"]
    tok = ws.load_tokenizer(tok_row["id"])
    assert train.specials == {"unk": tok.token_to_id("[UNK]"), "eos": tok.token_to_id("<|endoftext|>")}
    # Each paragraph is a document, ended by the eos token in the stream.
    assert train.doc_end == train.specials["eos"]
    assert 40 <= train.n_documents() <= 60
    start, end = train.document_bounds(int(train.doc_ends()[3]) + 1)
    assert (start, end) == (int(train.doc_ends()[3]) + 1, int(train.doc_ends()[4]))
    assert tok.decode(train.ids[start:end].tolist()).startswith("The cat number")
    assert train.document_of(start) == train.document_of(end - 1) == 4 != train.document_of(end + 1)
    with pytest.raises(ValueError):
        TokenSource.from_workspace(ws, tok_row["id"], "test")


def test_windows_are_the_draw_get_batch_makes(ws):
    tok_row = ws.train_tokenizer("cats", "char", 100)
    files = ws.token_files(tok_row["id"])
    source = TokenSource.from_workspace(ws, tok_row["id"], "train")
    for block in (8, 31):
        x, y = get_batch(
            TokenData(files["train"], files["dtype"]), block, 5, torch.Generator().manual_seed(7), torch.device("cpu")
        )
        w = source.windows(block + 1, 5, torch.Generator().manual_seed(7))
        assert w.dtype == torch.int64 and w.shape == (5, block + 1)
        assert torch.equal(w[:, :-1], x) and torch.equal(w[:, 1:], y)


def test_a_text_shorter_than_one_sequence_says_so(corpus):
    source, _ = source_of(corpus, "char")
    with pytest.raises(UserError, match="fewer than the 1,000 one sequence needs"):
        source.windows(1000, 2, torch.Generator())


def test_special_tokens_are_never_ordinary_and_sentinels_keep_their_order(corpus):
    extra = {"special_tokens": {"mask": "[MASK]", "cls": "[CLS]", "sep": "[SEP]", "eos": "<|endoftext|>"}}
    source, tok = source_of(corpus, "char", sentinels=4, **extra)
    assert set(source.specials) == {"unk", "mask", "cls", "sep", "eos"}
    assert source.sentinels == [tok.token_to_id(f"<extra_id_{i}>") for i in range(4)]
    special = {*source.specials.values(), *source.sentinels}
    assert source.is_special[sorted(special)].all() and source.is_special.sum() == len(special)
    ordinary = set(source.ordinary.tolist())
    assert not ordinary & special
    assert ordinary | special == set(range(source.vocab_size))
    assert source.doc_end == source.specials["eos"]  # the separator documents end with in the token files
    assert source.special_mask(torch.tensor([source.specials["mask"], tok.token_to_id("a")])).tolist() == [True, False]


def test_a_char_vocabulary_has_no_separator_unless_it_has_an_eos(corpus):
    source, _ = source_of(corpus, "char")
    assert source.doc_end is None and source.n_documents() == 1
    assert source.document_bounds(10) == (0, len(source))


@pytest.mark.parametrize(
    "kind, vocab",
    [("char", 100), ("bpe", 160), ("bytebpe", 300), ("wordpiece", 160), ("unigram", 120)],
)
def test_words_begin_where_the_text_says_for_every_kind(corpus, kind, vocab):
    source, tok = source_of(corpus, kind, vocab)
    text = "The cat slept under the log, and ate bread."
    got = [w for w in words(source, tok, text) if w]
    assert "".join(got) == text.replace(" ", "")
    # Whatever pieces a kind cuts a word into, they stay one word, and no word runs over a space.
    for word in re.findall(r"\w+", text):
        assert any(word in w for w in got), (word, got)
    assert all(any(w in part for part in text.split()) for w in got), got
    assert len(got) >= 9


def test_wordpiece_continuations_never_begin_a_word(corpus):
    source, tok = source_of(corpus, "wordpiece", 160)
    for token, i in tok.get_vocab().items():
        assert source.word_start[i] == (not token.startswith("##")), token


@pytest.mark.parametrize("kind, vocab", [("char", 100), ("bpe", 160), ("bytebpe", 300), ("unigram", 120)])
def test_sentences_end_at_stops_and_line_breaks(corpus, kind, vocab):
    source, tok = source_of(corpus, kind, vocab)
    ids = tok.encode("The cat sat. Then it slept!\nA dog").ids
    ends = [source.sentence_end[i] for i in ids]
    texts = [tok.decode([i]) for i in ids]
    assert [t for t, e in zip(texts, ends) if e] == [t for t in texts if set(t) & set(".!?\n")]
    assert sum(ends) == 3
    assert not source.sentence_end[source.is_special].any()


def test_an_objective_refuses_a_vocabulary_without_its_tokens_naming_them_and_the_fix(corpus):
    source, _ = source_of(corpus, "char")
    with pytest.raises(ConfigError) as e:
        require_specials(objective_info("masked_lm+nsp"), source)
    assert "[MASK], [CLS] and [SEP]" in e.value.message and "Vocabulary panel" in e.value.message
    assert e.value.field == "tokenizer.tokenizer" and "objective.name" in e.value.fields
    with pytest.raises(ConfigError, match="<extra_id_0> … <extra_id_31>"):
        require_specials(objective_info("span_corruption"), source)
    require_specials(objective_info("causal_lm"), source)
    wordpiece, _ = source_of(corpus, "wordpiece", 160)
    require_specials(objective_info("masked_lm+sop"), wordpiece)  # BERT's own tokens serve
