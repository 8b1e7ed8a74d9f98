import numpy as np
import pytest

import engine.tokenizer.streaming as T
from engine.tokenizer import (
    TokenizerCancelled,
    TokenizerError,
    display_token,
    encode_to_memmap,
    load_tokenizer,
    save_tokenizer,
    token_counts,
    token_spans,
    train_tokenizer,
)

TEXT = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
    "JULIET:\tO Romeo, Romeo! wherefore art thou Romeo?\r\n"
    "Ünïcödé — 日本語 and emoji 🙂🚀, a literal [UNK] and <|endoftext|> too.\n"
    "   indented line with trailing spaces   \n"
) * 40


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8", newline="")
    return path


@pytest.fixture(params=[("char", 512), ("bytebpe", 400)], ids=["char", "bytebpe"])
def trained(request, corpus):
    kind, vocab = request.param
    return kind, train_tokenizer(kind, vocab, [corpus])


def decode(tok, ids):
    return tok.decode([int(i) for i in ids], skip_special_tokens=False)


def test_char_vocab_is_sorted_characters_plus_unk(corpus):
    tok = train_tokenizer("char", 512, [corpus])
    chars = sorted(set(TEXT))
    assert tok.get_vocab_size() == len(chars) + 1
    assert [tok.id_to_token(i) for i in range(len(chars))] == chars
    assert tok.id_to_token(len(chars)) == "[UNK]"


def test_round_trip_is_lossless(trained):
    kind, tok = trained
    ids = tok.encode(TEXT, add_special_tokens=False).ids
    assert decode(tok, ids) == TEXT
    if kind == "bytebpe":
        assert len(ids) < len(TEXT.encode()) / 2  # merges were learned, not just bytes


def test_char_vocab_limit_keeps_most_frequent_and_maps_the_rest_to_unk(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("aaaa bbb cc d\n", encoding="utf-8")
    tok = train_tokenizer("char", 4, [path])  # room for 3 characters + [UNK]
    assert sorted(tok.get_vocab()) == [" ", "[UNK]", "a", "b"]
    unk = tok.token_to_id("[UNK]")
    assert tok.encode("abcd\n").ids == [tok.token_to_id("a"), tok.token_to_id("b"), unk, unk, unk]


def test_save_and_load_give_the_same_tokenizer(trained, tmp_path):
    _, tok = trained
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert again.encode(TEXT).ids == tok.encode(TEXT).ids
    assert display_token(again, 5) == display_token(tok, 5)


def test_load_errors_are_tokenizer_errors(tmp_path):
    with pytest.raises(TokenizerError, match="no tokenizer file"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerError, match="cannot load the tokenizer"):
        load_tokenizer(tmp_path / "bad.json")


def test_encode_to_memmap_decodes_back_with_small_chunks(trained, corpus, tmp_path, monkeypatch):
    _, tok = trained
    # Tiny chunks and pieces: many boundaries, plus one line longer than a chunk.
    monkeypatch.setattr(T, "CHUNK_BYTES", 300)
    monkeypatch.setattr(T, "PIECE_CHARS", 50)
    text = TEXT + "x" * 1000 + " long line " * 80 + "\n"
    corpus.write_text(text, encoding="utf-8", newline="")
    n, dtype = encode_to_memmap(tok, corpus, tmp_path / "ids.bin")
    ids = np.memmap(tmp_path / "ids.bin", dtype=dtype, mode="r")
    assert dtype == "uint16" and len(ids) == n
    assert decode(tok, ids) == text
    assert not list(tmp_path.glob("*.tmp"))


def test_large_vocab_uses_uint32(tmp_path):
    # 70,000 distinct characters give a char vocabulary past uint16: ids above 65,535 must survive the file.
    path = tmp_path / "wide.txt"
    chars = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 20_000))
    chars += "".join(chr(c) for c in range(0x20000, 0x20000 + 50_000))
    path.write_text(chars + "\n", encoding="utf-8")
    tok = train_tokenizer("char", 100_000, [path])
    assert tok.get_vocab_size() == 70_002
    n, dtype = encode_to_memmap(tok, path, tmp_path / "wide.bin")
    ids = np.fromfile(tmp_path / "wide.bin", dtype=dtype)
    assert dtype == "uint32" and n == 70_001
    assert ids.max() > 65_535 and decode(tok, ids) == chars + "\n"
    assert T.token_dtype(65_536) == "uint16" and T.token_dtype(65_537) == "uint32"


def test_token_counts_match_a_direct_count():
    ids = np.array([3, 1, 3, 0, 3, 1], dtype=np.uint16)
    assert token_counts(ids, 5).tolist() == [1, 2, 0, 3, 0]


def test_display_token_is_readable_for_byte_level(corpus):
    tok = train_tokenizer("bytebpe", 400, [corpus])
    shown = {display_token(tok, i) for i in range(tok.get_vocab_size())}
    assert {"␣", "⏎", "⇥", "<|endoftext|>"} <= shown
    assert "␣Romeo" in shown  # a learned word-with-space token reads as text (its raw spelling is "ĠRomeo")
    assert not any("Ġ" in s or "Ċ" in s for s in shown)
    # Whole multi-byte characters read as themselves; a byte that is only part of one shows as hex.
    word = tok.encode("Ünïcödé").ids
    assert [display_token(tok, i) for i in word] == ["Ünïcödé"]
    assert display_token(tok, tok.token_to_id("Ã")) == "<0xC3>"
    assert [display_token(tok, i) for i in tok.encode(" 🙂").ids] == ["␣<0xF0><0x9F>", "<0x99>", "<0x82>"]
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        display_token(tok, tok.get_vocab_size())


def test_display_token_is_readable_for_chars(corpus):
    tok = train_tokenizer("char", 512, [corpus])
    assert display_token(tok, tok.token_to_id(" ")) == "␣"
    assert display_token(tok, tok.token_to_id("\n")) == "⏎"
    assert display_token(tok, tok.token_to_id("\t")) == "⇥"
    assert display_token(tok, tok.token_to_id("\r")) == "␍"
    assert display_token(tok, tok.token_to_id("日")) == "日"


@pytest.mark.parametrize("text", ["", "ROMEO: hi there\n", "a 🙂 b\r\nwry 日本 [UNK] <|endoftext|>\t end  "])
def test_token_spans_cover_the_text_in_order(trained, text):
    _, tok = trained
    spans = token_spans(tok, text)
    ends = [0] + [s["end"] for s in spans]
    assert [s["start"] for s in spans] == ends[:-1]  # contiguous
    assert all(s["start"] <= s["end"] for s in spans)
    assert ends[-1] == len(text)
    assert decode(tok, [s["id"] for s in spans]) == text
    for s in spans:
        assert s["token"] == display_token(tok, s["id"])


def test_token_spans_match_characters_for_char_tokens(corpus):
    tok = train_tokenizer("char", 512, [corpus])
    spans = token_spans(tok, "a 🙂\n")
    assert [(s["token"], s["start"], s["end"]) for s in spans] == [("a", 0, 1), ("␣", 1, 2), ("🙂", 2, 3), ("⏎", 3, 4)]


def test_bad_inputs(tmp_path, corpus):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    for kind, vocab in (("char", 100), ("bytebpe", 300)):
        with pytest.raises(TokenizerError, match="no text"):
            train_tokenizer(kind, vocab, [empty])
    with pytest.raises(TokenizerError, match="at least 2"):
        train_tokenizer("char", 1, [corpus])
    with pytest.raises(TokenizerError, match="at least 257"):
        train_tokenizer("bytebpe", 100, [corpus])
    with pytest.raises(TokenizerError, match="unknown tokenizer kind"):
        train_tokenizer("sentencepiece", 100, [corpus])
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"abc\ncaf\xe9\n")
    with pytest.raises(TokenizerError, match=r"latin.txt is not UTF-8 text: bad byte at offset 7"):
        train_tokenizer("char", 100, [latin])


@pytest.mark.parametrize("kind,vocab", [("char", 100), ("bytebpe", 300)])
def test_cancel_stops_training_and_encoding(corpus, tmp_path, monkeypatch, kind, vocab):
    monkeypatch.setattr(T, "CHUNK_BYTES", 256)
    with pytest.raises(TokenizerCancelled):
        train_tokenizer(kind, vocab, [corpus], cancelled=lambda: True)
    tok = train_tokenizer(kind, vocab, [corpus])
    with pytest.raises(TokenizerCancelled):
        encode_to_memmap(tok, corpus, tmp_path / "ids.bin", cancelled=lambda: True)
    assert not (tmp_path / "ids.bin").exists() and not list(tmp_path.glob("*.tmp"))


def test_progress_is_reported_up_to_one(corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(T, "CHUNK_BYTES", 512)
    seen = []
    tok = train_tokenizer("bytebpe", 300, [corpus], progress=lambda f, m: seen.append(f))
    encode_to_memmap(tok, corpus, tmp_path / "ids.bin", progress=lambda f, m: seen.append(f))
    assert len(seen) > 10 and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)


# ------------------------------------------------------------------------------------------------ all kinds

import json  # noqa: E402
from collections import Counter  # noqa: E402

from engine.tokenizer import KINDS, TokenizerSpec, merge_ranks  # noqa: E402

# Text whose every character is in the training corpus, so a kind that is lossless shows it.
SEEN = "ROMEO:\nBut soft, what light through yonder window breaks?\n\n  two  spaces\t and light\n"
LOSSLESS = ("char", "bpe", "bytebpe", "unigram")
VOCAB = {"char": 512, "bpe": 300, "bytebpe": 400, "wordpiece": 300, "unigram": 120}


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("kinds") / "corpus.txt"
    path.write_text(TEXT[: len(TEXT) // 4], encoding="utf-8", newline="")
    return path


@pytest.fixture(scope="module", params=KINDS)
def any_kind(request, small_corpus):
    kind = request.param
    return kind, train_tokenizer(kind, VOCAB[kind], [small_corpus])


def test_every_kind_trains_and_round_trips_where_lossless(any_kind):
    kind, tok = any_kind
    ids = tok.encode(SEEN, add_special_tokens=False).ids
    back = decode(tok, ids)
    if kind in LOSSLESS:
        assert back == SEEN
    else:  # WordPiece rebuilds spaces on decode: every other character survives, the spacing does not
        assert "".join(back.split()) == "".join(SEEN.split())
    assert 1 < tok.get_vocab_size() <= max(VOCAB[kind], len(set(TEXT)) + 8)


def test_every_kind_has_its_default_special_tokens_first(any_kind):
    kind, tok = any_kind
    specials = TokenizerSpec(kind, VOCAB[kind]).specials()
    if kind == "char":  # [UNK] after the characters, as before
        assert tok.id_to_token(tok.get_vocab_size() - 1) == "[UNK]"
    else:
        assert [tok.id_to_token(i) for i in range(len(specials))] == specials


def test_unknown_characters_become_the_unk_token_except_in_byte_level(any_kind):
    kind, tok = any_kind
    ids = tok.encode("Ω", add_special_tokens=False).ids
    if kind == "bytebpe":
        assert decode(tok, ids) == "Ω"
    else:
        unk = TokenizerSpec(kind, VOCAB[kind]).special_tokens["unk"]
        assert [tok.id_to_token(i) for i in ids] == [unk] or tok.id_to_token(ids[-1]) == unk


def test_saved_tokenizers_load_unchanged_in_tokenizers_and_transformers(any_kind, tmp_path):
    transformers = pytest.importorskip("transformers")
    kind, tok = any_kind
    save_tokenizer(tok, tmp_path / "tokenizer.json")
    from tokenizers import Tokenizer

    again = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    expected = tok.encode(SEEN, add_special_tokens=False).ids
    assert again.encode(SEEN, add_special_tokens=False).ids == expected
    assert hf.encode(SEEN, add_special_tokens=False) == expected
    if kind in LOSSLESS:
        assert hf.decode(expected, clean_up_tokenization_spaces=False) == SEEN


def test_merge_ranks_follow_the_order_bpe_learned_them(small_corpus):
    for kind in ("bpe", "bytebpe"):
        tok = train_tokenizer(kind, VOCAB[kind], [small_corpus])
        ranks = merge_ranks(tok)
        merges = json.loads(tok.to_str())["model"]["merges"]
        assert len(ranks) > 10 and set(ranks.values()) <= set(range(len(merges)))
        # A merge joins tokens that existed before it: its parts have no rank (alphabet) or a lower one.
        for token_id, rank in ranks.items():
            a, b = merges[rank]
            assert tok.id_to_token(token_id) == a + b
            for part in (a, b):
                assert ranks.get(tok.token_to_id(part), -1) < rank
    assert merge_ranks(train_tokenizer("wordpiece", 300, [small_corpus])) == {}
    assert merge_ranks(train_tokenizer("char", 100, [small_corpus])) == {}


def test_special_tokens_can_be_added_renamed_and_removed(small_corpus):
    tok = train_tokenizer("bytebpe", 400, [small_corpus], special_tokens={"pad": "<pad>", "mask": "<mask>"})
    assert [tok.id_to_token(i) for i in range(3)] == ["<pad>", "<|endoftext|>", "<mask>"]
    tok = train_tokenizer("bytebpe", 400, [small_corpus], special_tokens={"eos": None})
    assert tok.token_to_id("<|endoftext|>") is None and tok.get_added_tokens_decoder() == {}
    tok = train_tokenizer("char", 512, [small_corpus], special_tokens={"unk": "<?>", "bos": "<s>", "eos": "</s>"})
    n = len(set(TEXT))
    assert [tok.id_to_token(i) for i in (n, n + 1, n + 2)] == ["<?>", "<s>", "</s>"]
    assert tok.encode("a<s>b", add_special_tokens=False).tokens == ["a", "<s>", "b"]
    with pytest.raises(TokenizerError, match="needs an unk token"):
        train_tokenizer("wordpiece", 300, [small_corpus], special_tokens={"unk": None})
    with pytest.raises(TokenizerError, match="unknown special token role"):
        train_tokenizer("bpe", 300, [small_corpus], special_tokens={"end": "</e>"})
    with pytest.raises(TokenizerError, match="at least 258 tokens"):
        train_tokenizer("bytebpe", 257, [small_corpus], special_tokens={"pad": "<pad>"})


def test_normalizer_min_frequency_and_pre_tokenizer_options(small_corpus):
    lower = train_tokenizer("char", 512, [small_corpus], normalizer="lowercase")
    assert lower.token_to_id("R") is None and lower.encode("ROMEO").tokens == list("romeo")
    counts = Counter(TEXT[: len(TEXT) // 4])
    frequent = train_tokenizer("char", 512, [small_corpus], min_frequency=20)
    kept = sorted(c for c, n in counts.items() if n >= 20)
    assert len(kept) < len(counts)
    assert [frequent.id_to_token(i) for i in range(frequent.get_vocab_size())] == kept + ["[UNK]"]
    ws = train_tokenizer("bpe", 300, [small_corpus], pre_tokenizer="whitespace")
    assert "▁" not in "".join(ws.get_vocab())
    for bad, message in (
        ({"normalizer": "upper"}, "unknown normalizer"),
        ({"pre_tokenizer": "whitespace"}, "always uses the 'bytelevel'"),
    ):
        with pytest.raises(TokenizerError, match=message):
            train_tokenizer("bytebpe", 400, [small_corpus], **bad)
    with pytest.raises(TokenizerError, match="does not fit"):
        train_tokenizer("unigram", 100, [small_corpus], pre_tokenizer="bytelevel")


def test_metaspace_tokens_read_with_visible_spaces(small_corpus):
    tok = train_tokenizer("bpe", 300, [small_corpus])
    shown = {display_token(tok, i) for i in range(tok.get_vocab_size())}
    assert "␣Romeo" in shown or "␣Romeo," in shown
    assert not any("▁" in s for s in shown)
    assert "⏎" in shown and not any("⏎" in s and len(s) > 1 for s in shown)  # newlines stand alone


@pytest.mark.parametrize("chunk_bytes", [7, 11, 64, 1 << 20])
def test_documents_are_joined_by_one_end_of_text_token_whatever_the_chunking(tmp_path, monkeypatch, chunk_bytes):
    # Small chunks cut between the separator's two line breaks and inside multi-byte characters' documents.
    monkeypatch.setattr(T, "CHUNK_BYTES", chunk_bytes)
    docs = ["naïve café\nsecond line", "ok", "ünïcödé everywhere, twice ünïcödé", "x\ny\nz", "last one"]
    text = "\n\n".join(docs) + "\n"
    path = tmp_path / "docs.txt"
    path.write_text(text, encoding="utf-8", newline="")
    starts, pos = [], 0
    for d in docs[:-1]:
        pos += len((d + "\n\n").encode("utf-8"))
        starts.append(pos)
    tok = train_tokenizer("bytebpe", 300, [path])
    eot = tok.token_to_id("<|endoftext|>")
    n, dtype = encode_to_memmap(tok, path, tmp_path / "ids.bin", doc_starts=np.array(starts), sep_id=eot)
    ids = np.fromfile(tmp_path / "ids.bin", dtype=dtype)
    assert len(ids) == n and np.count_nonzero(ids == eot) == len(docs) - 1
    assert tok.decode(ids.tolist(), skip_special_tokens=False) == "<|endoftext|>".join(docs) + "\n"


# ------------------------------------------------------------------------------------- sentinels (issue 10)


def test_sentinels_come_after_the_other_special_tokens_and_keep_the_char_ids(corpus):
    from engine.tokenizer import TokenizerSpec, sentinel_ids, train_from_spec

    plain = train_tokenizer("char", 512, [corpus])
    spec = TokenizerSpec("char", 512, special_tokens={"mask": "[MASK]"}, sentinels=4)
    tok = train_from_spec(spec, [corpus])
    n = plain.get_vocab_size()
    assert [tok.id_to_token(i) for i in range(n)] == [plain.id_to_token(i) for i in range(n)]
    assert tok.token_to_id("[MASK]") == n
    assert sentinel_ids(tok, spec) == [n + 1, n + 2, n + 3, n + 4]
    assert tok.id_to_token(n + 4) == "<extra_id_3>" and tok.get_vocab_size() == n + 5
    assert decode(tok, tok.encode("ab<extra_id_2>c").ids) == "ab<extra_id_2>c"


def test_sentinels_in_a_trained_kind_follow_its_special_tokens(corpus):
    from engine.tokenizer import TokenizerSpec, role_ids, sentinel_ids, train_from_spec

    spec = TokenizerSpec("bytebpe", 400, sentinels=3)
    tok = train_from_spec(spec, [corpus])
    assert role_ids(tok, spec) == {"eos": 0} and sentinel_ids(tok, spec) == [1, 2, 3]
    assert spec.specials() == ["<|endoftext|>", "<extra_id_0>", "<extra_id_1>", "<extra_id_2>"]


def test_a_spec_without_sentinels_reads_as_before_and_sentinels_count_against_the_room():
    from engine.tokenizer import TokenizerSpec

    assert "sentinels" not in TokenizerSpec("bpe", 300).to_dict()
    assert TokenizerSpec("bpe", 300, sentinels=2).to_dict()["sentinels"] == 2
    with pytest.raises(TokenizerError, match="at least 289 tokens .256 bytes and <\\|endoftext\\|>, 32 sentinels"):
        TokenizerSpec("bytebpe", 288, sentinels=32)
    with pytest.raises(TokenizerError, match="no room beside the 34 special tokens"):
        TokenizerSpec("bpe", 34, sentinels=32)
    with pytest.raises(TokenizerError, match="<extra_id_0> is a sentinel token"):
        TokenizerSpec("bpe", 300, special_tokens={"mask": "<extra_id_0>"}, sentinels=1)
    with pytest.raises(TokenizerError, match="sentinels must be between 0 and 1000"):
        TokenizerSpec("char", 300, sentinels=-1)
