"""Tokenizer analysis on a real workspace (engine/tokenizer/analysis.py and export.py): contexts of a token,
document lengths, comparisons, export."""

import json

import numpy as np
import pytest

from engine.store import Workspace
from engine.tokenizer import TokenizerError
from engine.tokenizer.analysis import compare_tokenizers, doc_length_histogram, token_contexts
from engine.tokenizer.export import export_tokenizer

DOCS = [f"Document {i}: the cat sat on the mat. " + "More words follow here. " * (i % 5) for i in range(60)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    src = root / "docs.jsonl"
    src.write_text("\n".join(json.dumps({"text": d}) for d in DOCS), encoding="utf-8")
    with Workspace(root / "ws") as ws:
        ds = ws.import_dataset([src], name="docs", split="documents", val_fraction=0.2, seed=1)
        toks = {
            kind: ws.train_tokenizer(ds["id"], kind, vocab)
            for kind, vocab in (("char", 100), ("bytebpe", 320), ("wordpiece", 200))
        }
        yield ws, ds, toks


def test_token_contexts_show_the_token_in_the_corpus(lab):
    ws, _, toks = lab
    tok = ws.load_tokenizer(toks["char"]["id"])
    lines = token_contexts(ws, toks["char"]["id"], tok.token_to_id("m"), n=5, width=12)
    assert len(lines) == 5
    for line in lines:
        left, rest = line.split("⟦")
        mid, right = rest.split("⟧")
        assert mid == "m" and len(left) == 12 and len(right) <= 12 and "\n" not in line
        assert (left + mid + right).replace("⏎", "\n").strip() in "\n\n".join(DOCS)
    # Spread over the corpus, not all from its first lines.
    assert len({line for line in lines}) == 5


def test_token_contexts_for_a_rare_or_unused_token(lab):
    ws, _, toks = lab
    tid = toks["bytebpe"]["id"]
    tok = ws.load_tokenizer(tid)
    unused = tok.token_to_id("Ā")  # byte 0x00 as byte-level BPE shows it: never in this text
    assert token_contexts(ws, tid, unused) == []
    digit = tok.token_to_id("7")
    found = token_contexts(ws, tid, digit, n=50)
    assert 0 < len(found) < 50 and all("⟦7⟧" in line for line in found)
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        token_contexts(ws, tid, 10**6)


def test_doc_length_histogram_counts_every_document(lab):
    ws, ds, toks = lab
    h = doc_length_histogram(ws, toks["char"]["id"], bins=5)
    assert h["n_docs"] == ds["n_train_docs"] == 48 and h["sampled"] == 48 and sum(h["counts"]) == 48
    train_docs = [d["text"] for d in ws.dataset_documents(ds["id"], "train", limit=100, max_chars=10_000)]
    lengths = sorted(len(d) for d in train_docs)  # char tokenizer: tokens == characters
    assert (h["min"], h["max"]) == (lengths[0], lengths[-1])
    assert len(h["edges"]) == 6 and h["edges"][0] == lengths[0]
    sample = doc_length_histogram(ws, toks["bytebpe"]["id"], split="val", max_docs=5, bins=3)
    assert sample["n_docs"] == 12 and sample["sampled"] == 5 and sample["max"] < h["max"]


def test_compare_tokenizers_on_the_same_corpus_and_text(lab):
    ws, _, toks = lab
    result = compare_tokenizers(
        ws, [toks["char"]["id"], toks["bytebpe"]["name"], toks["wordpiece"]["id"]], text="the cat sat"
    )
    assert result["corpus"]["split"] == "val" and result["text"] == "the cat sat"
    char, bbpe, wp = result["rows"]
    assert char["bytes_per_token"] == pytest.approx(1.0) and char["lossless"] and bbpe["lossless"]
    assert bbpe["bytes_per_token"] > 1.5 and bbpe["tokens_per_word"] < char["tokens_per_word"]
    assert not wp["lossless"] and wp["kind"] == "wordpiece"
    assert char["sample_split"] == list("the␣cat␣sat") and bbpe["sample_split"][0] == "the"
    for row in result["rows"]:
        assert 0 <= row["unk_rate"] <= 1 and 0 < row["vocab_coverage"] <= 1
    json.dumps(result, allow_nan=False)
    with pytest.raises(TokenizerError, match="at least one"):
        compare_tokenizers(ws, [])


def test_unk_rate_counts_unknown_characters(tmp_path):
    with Workspace(tmp_path / "ws") as ws:
        src = tmp_path / "t.txt"
        src.write_text("aaaa bbbb cccc\n" * 50 + "zzzz\n" * 10, encoding="utf-8")
        ds = ws.import_dataset([src], val_fraction=0.1)
        tok = ws.train_tokenizer(ds["id"], "char", 4)  # a, b, c, space... the rest is [UNK]
        row = compare_tokenizers(ws, [tok["id"]])["rows"][0]
        assert row["unk_rate"] > 0.5 and not row["lossless"]


def test_export_loads_in_tokenizers_and_transformers_with_roles(lab, tmp_path):
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer

    ws, _, toks = lab
    text = "Document 3: the cat sat on the mat."
    for kind, row in toks.items():
        ours = ws.load_tokenizer(row["id"]).encode(text, add_special_tokens=False).ids
        one = export_tokenizer(ws, row["id"], tmp_path / f"{kind}.json")
        assert Tokenizer.from_file(str(one)).encode(text, add_special_tokens=False).ids == ours
        fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(one))
        assert fast.encode(text, add_special_tokens=False) == ours
        folder = export_tokenizer(ws, row["id"], tmp_path / f"{kind}-hf")
        auto = transformers.AutoTokenizer.from_pretrained(str(folder))
        assert auto.encode(text, add_special_tokens=False) == ours
        if kind == "wordpiece":
            assert (auto.unk_token, auto.mask_token, auto.pad_token, auto.cls_token) == (
                "[UNK]",
                "[MASK]",
                "[PAD]",
                "[CLS]",
            )
        if kind == "bytebpe":
            assert auto.eos_token == "<|endoftext|>"
    with pytest.raises(TokenizerError, match="does not exist"):
        export_tokenizer(ws, toks["char"]["id"], tmp_path / "no" / "such" / "t.json")


def test_documents_end_with_the_end_of_text_token_in_the_token_files(lab):
    ws, ds, toks = lab
    eot = ws.load_tokenizer(toks["bytebpe"]["id"]).token_to_id("<|endoftext|>")
    files = ws.token_files(toks["bytebpe"]["id"])
    tok = ws.load_tokenizer(toks["bytebpe"]["id"])
    for split, n_docs in (("train", ds["n_train_docs"]), ("val", ds["n_val_docs"])):
        ids = np.fromfile(files[split], dtype=files["dtype"])
        assert np.count_nonzero(ids == eot) == n_docs - 1  # one between each two documents
        docs = tok.decode(ids.tolist(), skip_special_tokens=False).split("<|endoftext|>")
        text = ws.dataset_files(ds["id"])[0 if split == "train" else 1].read_text(encoding="utf-8")
        docs[-1] = docs[-1].rstrip("\n")  # the file's last separator has no next document
        assert docs == text.rstrip("\n").split("\n\n")  # each document whole, nothing lost or cut mid-word
    # A char vocabulary has no end-of-text token: the blank line stays the separator.
    char = ws.token_files(toks["char"]["id"])
    assert len(np.fromfile(char["train"], dtype=char["dtype"])) == len(ws.dataset_files(ds["id"])[0].read_text())


def test_compare_samples_a_whole_line_and_sees_a_tokenizer_file_change(tmp_path):
    lines = [f"Line number {i} says hello to the reader." for i in range(400)]
    src = tmp_path / "lines.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Workspace(tmp_path / "ws") as ws:
        ds = ws.import_dataset([src], val_fraction=0.137)  # the "last 13.7 %" cut lands mid-line
        a = ws.train_tokenizer(ds["id"], "char", 100)
        b = ws.train_tokenizer(ds["id"], "bytebpe", 300)
        result = compare_tokenizers(ws, [a["id"], b["id"]])
        assert result["text"] in lines  # not the cut-off end of a line
        path = ws.tokenizer_path(b["id"])
        path.unlink()
        with pytest.raises(Exception, match=f"tokenizer '{b['name']}' .* has lost its file"):
            compare_tokenizers(ws, [a["id"], b["id"]])


def test_a_comparison_can_be_cancelled(lab):
    ws, _, toks = lab
    asked = []

    def cancelled():
        asked.append(1)
        return len(asked) > 1  # the second tokenizer is never encoded

    with pytest.raises(TokenizerError, match="cancelled"):
        compare_tokenizers(ws, [toks["char"]["id"], toks["bytebpe"]["id"]], cancelled=cancelled)
    assert len(asked) == 2
