"""Import formats, options, splits and previews (engine.data.importers), on files made in each test."""

import codecs
import json
import os
import tracemalloc

import numpy as np
import pytest

import engine.data.importers as importers
from engine.data.corpus import read_idx, val_document_mask
from engine.data.importers import DataError, import_text, preview_records

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def run(tmp_path, paths, **kw):
    out = tmp_path / "out"
    stats = import_text(paths, out, **kw)
    return stats, out


def docs_of(out, split):
    """The documents of a split, as the .idx offsets cut them, without their trailing newlines."""
    data = (out / f"{split}.txt").read_bytes()
    idx = [int(i) for i in read_idx(out / f"{split}.idx")] + [len(data)]
    return [data[a:b].decode("utf-8").rstrip("\n") for a, b in zip(idx, idx[1:])]


def labels_of(out, split):
    path = out / f"{split}.labels.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_docs(out):
    return docs_of(out, "train") + docs_of(out, "val")


# ------------------------------------------------------------------------------------------------ txt and folders


def test_documents_are_kept_apart_and_indexed(tmp_path):
    a = write(tmp_path / "c" / "a.txt", "ends mid")
    b = write(tmp_path / "c" / "b.txt", "word starts\nsecond line\n\n\n")
    stats, out = run(tmp_path, [a, b], val_fraction=0)
    assert (out / "train.txt").read_text(encoding="utf-8") == "ends mid\n\nword starts\nsecond line\n"
    assert docs_of(out, "train") == ["ends mid", "word starts\nsecond line"]
    assert (stats.n_docs, stats.n_train_docs, stats.n_val_docs, stats.format) == (2, 2, 0, "txt")


def test_include_and_exclude_patterns_pick_files_in_folders(tmp_path):
    for name in ("keep/a.txt", "keep/b.md", "drafts/c.txt", "keep/deep/d.md", "e.log"):
        write(tmp_path / "c" / name, f"text of {name}\n")
    stats, out = run(tmp_path, [tmp_path / "c"], val_fraction=0, include=["*.txt", "*.md"], exclude=["drafts/*"])
    assert all_docs(out) == ["text of keep/a.txt", "text of keep/b.md", "text of keep/deep/d.md"]
    with pytest.raises(DataError, match=r"has no files matching \*\.log"):
        run(tmp_path, [tmp_path / "c" / "keep"], include=["*.log"])


def test_symlinked_folders_are_followed_and_loops_reported(tmp_path):
    write(tmp_path / "c" / "a.txt", "alpha\n")
    write(tmp_path / "other" / "b.txt", "bravo\n")
    try:
        os.symlink(tmp_path / "other", tmp_path / "c" / "linked")
        os.symlink(tmp_path / "c", tmp_path / "c" / "loop")
    except OSError:
        pytest.skip("this file system cannot make symlinks")
    stats, out = run(tmp_path, [tmp_path / "c"], val_fraction=0)
    assert all_docs(out) == ["alpha", "bravo"]
    assert any("symlink loop" in w and "loop" in w for w in stats.warnings)


@pytest.mark.parametrize(
    "unit,expected",
    [
        ("line", ["one", "two words", "three", "four"]),
        ("paragraph", ["one\ntwo words", "three\nfour"]),
    ],
)
def test_doc_unit_splits_text_files_into_lines_or_paragraphs(tmp_path, unit, expected, monkeypatch):
    monkeypatch.setattr(importers, "CHUNK_BYTES", 5)  # paragraphs and lines across chunk boundaries
    src = write(tmp_path / "t.txt", "\n\none\ntwo words\n\n \n\nthree\nfour\n\n")
    stats, out = run(tmp_path, [src], val_fraction=0, doc_unit=unit)
    assert docs_of(out, "train") == expected
    assert stats.docs_read == len(expected)


# ------------------------------------------------------------------------------------------------ encodings


@pytest.mark.parametrize(
    "bom,encoding",
    [
        (b"", "utf-8"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_utf8_and_utf16_with_bom_import_the_same_text(tmp_path, bom, encoding):
    text = "Grüße 世界 🙂\nline two\n"
    src = write(tmp_path / "t.txt", bom + text.encode(encoding))
    _, out = run(tmp_path, [src], val_fraction=0)
    assert (out / "train.txt").read_text(encoding="utf-8") == text


def test_undecodable_file_can_be_read_as_latin1_or_skipped(tmp_path):
    good = write(tmp_path / "c" / "a.txt", "plain\n")
    latin = write(tmp_path / "c" / "b.txt", b"caf\xe9 cr\xe8me\n")
    with pytest.raises(importers.DecodeError) as info:
        run(tmp_path, [good, latin])
    assert (info.value.path, info.value.offset, info.value.line) == (latin, 3, 1)
    stats, out = run(tmp_path, [good, latin], val_fraction=0, on_decode_error="latin-1")
    assert all_docs(out) == ["plain", "café crème"]
    assert stats.warnings == [f"{latin} is not UTF-8 text: bad byte at offset 3 (line 1); decoded as Latin-1"]
    stats, out = run(tmp_path, [good, latin], val_fraction=0, on_decode_error="skip")
    assert all_docs(out) == ["plain"] and stats.skipped_files == [str(latin)]
    assert stats.files == [str(good.resolve())]
    assert "bad byte at offset 3" in stats.warnings[0]


def test_skip_also_leaves_out_binary_files_but_latin1_does_not_decode_them(tmp_path):
    good = write(tmp_path / "a.txt", "plain\n")
    blob = write(tmp_path / "b.txt", b"PK\x03\x04\x00\x00binary")
    stats, out = run(tmp_path, [good, blob], val_fraction=0, on_decode_error="skip")
    assert all_docs(out) == ["plain"] and "NUL byte at offset 4" in stats.warnings[0]
    with pytest.raises(importers.BinaryFileError, match="NUL byte at offset 4"):
        run(tmp_path, [good, blob], on_decode_error="latin-1")


# ------------------------------------------------------------------------------------------------ CSV / TSV


def test_csv_text_and_label_columns_with_quoted_newlines(tmp_path):
    src = write(
        tmp_path / "r.csv", 'id,review,stars\n1,"Great, really.",5\n2,"Two\nlines ""quoted""",3\n3,,1\n4,Last one,4\n'
    )
    stats, out = run(tmp_path, [src], val_fraction=0, column="review", label_column="stars")
    assert docs_of(out, "train") == ["Great, really.", 'Two\nlines "quoted"', "Last one"]
    assert labels_of(out, "train") == ["5", "3", "4"]
    assert (stats.format, stats.empty_records, stats.has_labels) == ("csv", 1, True)


def test_tsv_and_the_default_text_column(tmp_path):
    src = write(tmp_path / "r.tsv", "label\ttext\nx\tfirst doc\ny\tsecond doc\n")
    stats, out = run(tmp_path, [src], val_fraction=0)
    assert docs_of(out, "train") == ["first doc", "second doc"] and stats.format == "tsv"
    with pytest.raises(DataError, match=r"choose the text column \(columns: a, b\)"):
        run(tmp_path, [write(tmp_path / "ab.csv", "a,b\n1,2\n")])


def test_ragged_csv_rows_can_be_skipped(tmp_path):
    src = write(tmp_path / "r.csv", "text,label\nok one,a\nbad,row,x\nok two,b\nshort\n")
    stats, out = run(tmp_path, [src], val_fraction=0, on_bad_record="skip", label_column="label")
    assert docs_of(out, "train") == ["ok one", "ok two"] and labels_of(out, "train") == ["a", "b"]
    assert stats.bad_records == 2
    assert stats.warnings == [f"{src}: skipped 2 bad records (lines 3, 5); line 3: has 3 fields, the header has 2"]


# ------------------------------------------------------------------------------------------------ JSONL


def test_jsonl_dotted_field_and_label(tmp_path):
    rows = [
        {"meta": {"body": "first"}, "y": 1},
        {"meta": {"body": "second\nline"}, "y": [2]},
        {"meta": {"body": None}, "y": 3},
        {"meta": {"body": "third"}, "y": "z"},
    ]
    src = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    stats, out = run(tmp_path, [src], val_fraction=0, column="meta.body", label_column="y")
    assert docs_of(out, "train") == ["first", "second\nline", "third"]
    assert labels_of(out, "train") == [1, "[2]", "z"]
    assert stats.empty_records == 1 and stats.format == "jsonl"


def test_jsonl_list_index_in_path_and_plain_string_lines(tmp_path):
    src = write(tmp_path / "t.jsonl", '{"turns": [{"text": "hi"}, {"text": "there"}]}\n')
    _, out = run(tmp_path, [src], val_fraction=0, column="turns.1.text")
    assert docs_of(out, "train") == ["there"]
    strings = write(tmp_path / "s.jsonl", '"just a string"\n"another"\n')
    _, out = run(tmp_path, [strings], val_fraction=0)
    assert docs_of(out, "train") == ["just a string", "another"]


def test_malformed_jsonl_lines_are_named_and_can_be_skipped(tmp_path):
    src = write(tmp_path / "d.jsonl", '{"text": "a"}\n{"text": "b"\n{"text": "c"}\nnope\n{"text": 5}\n')
    with pytest.raises(importers.BadRecordError) as info:
        run(tmp_path, [src])
    assert info.value.lines == [2, 4, 5]
    assert str(info.value).startswith(f"{src}: 3 bad records (lines 2, 4, 5); line 2: not valid JSON")
    stats, out = run(tmp_path, [src], val_fraction=0, on_bad_record="skip")
    assert docs_of(out, "train") == ["a", "c"] and stats.bad_records == 3
    assert "lines 2, 4, 5" in stats.warnings[0] and "field 'text' is a number, not text" not in stats.warnings[0]


# ------------------------------------------------------------------------------------------------ Parquet


def write_parquet(path, table):
    pq.write_table(table, path, row_group_size=3)
    return path


def test_parquet_string_column_and_label(tmp_path):
    table = pa.table(
        {"n": [1, 2, 3, 4, 5], "body": ["one", "two", None, "four", "five\nlines"], "tag": ["a", "b", "c", "d", "e"]}
    )
    src = write_parquet(tmp_path / "t.parquet", table)
    stats, out = run(tmp_path, [src], val_fraction=0, column="body", label_column="tag")
    assert docs_of(out, "train") == ["one", "two", "four", "five\nlines"]
    assert labels_of(out, "train") == ["a", "b", "d", "e"]
    assert (stats.format, stats.empty_records) == ("parquet", 1)


def test_parquet_large_string_and_dictionary_columns_are_text(tmp_path):
    table = pa.table({"a": pa.array(["x", "y"], type=pa.large_string()), "b": pa.array(["p", "q"]).dictionary_encode()})
    src = write_parquet(tmp_path / "t.parquet", table)
    assert all_docs(run(tmp_path, [src], val_fraction=0, column="a")[1]) == ["x", "y"]
    assert all_docs(run(tmp_path, [src], val_fraction=0, column="b")[1]) == ["p", "q"]


# ------------------------------------------------------------------------------------------------ mixed formats


def test_formats_are_detected_per_file_and_mixed(tmp_path):
    a = write(tmp_path / "a.txt", "from text\n")
    b = write(tmp_path / "b.csv", "text\nfrom csv\n")
    c = write(tmp_path / "c.jsonl", '{"text": "from jsonl"}\n')
    d = write_parquet(tmp_path / "d.parquet", pa.table({"text": ["from parquet"]}))
    stats, out = run(tmp_path, [a, b, c, d], val_fraction=0)
    assert all_docs(out) == ["from text", "from csv", "from jsonl", "from parquet"]
    assert stats.format == "mixed"


def test_unknown_options_and_values_are_refused(tmp_path):
    src = write(tmp_path / "a.txt", "x\n")
    with pytest.raises(DataError, match="unknown import option"):
        run(tmp_path, [src], colour="red")
    with pytest.raises(DataError, match="split must be one of tail, documents"):
        run(tmp_path, [src], split="random")
    with pytest.raises(DataError, match="unknown format 'xml'"):
        run(tmp_path, [src], fmt="xml")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ splits


def test_document_split_is_seeded_reproducible_and_whole(tmp_path):
    docs = [f"document number {i} " + "é" * (i % 7) for i in range(40)]
    src = write(tmp_path / "d.jsonl", "\n".join(json.dumps({"text": d, "i": i}) for i, d in enumerate(docs)))
    s1, o1 = run(tmp_path, [src], val_fraction=0.25, split="documents", seed=7, label_column="i")
    train, val = docs_of(o1, "train"), docs_of(o1, "val")
    assert (len(train), len(val)) == (30, 10) and (s1.n_train_docs, s1.n_val_docs) == (30, 10)
    assert sorted(train + val) == sorted(docs)
    # Each side keeps the corpus order, labels follow their documents, and characters add up.
    assert [docs.index(d) for d in train] == sorted(docs.index(d) for d in train)
    assert [docs[i] for i in labels_of(o1, "val")] == val
    assert s1.train_chars == len((o1 / "train.txt").read_text(encoding="utf-8"))
    assert s1.train_chars + s1.val_chars == s1.n_chars
    again = tmp_path / "again"
    import_text([src], again, val_fraction=0.25, split="documents", seed=7)
    assert docs_of(again, "val") == val
    other = tmp_path / "other"
    import_text([src], other, val_fraction=0.25, split="documents", seed=8)
    assert docs_of(other, "val") != val


def test_val_document_mask_keeps_a_document_each_side():
    assert val_document_mask(10, 0.01, 0).sum() == 1
    assert val_document_mask(2, 0.5, 0).tolist().count(True) == 1
    assert val_document_mask(1, 0.5, 0).sum() == 0
    assert val_document_mask(5, 0.0, 0).sum() == 0


def test_tail_split_indexes_the_document_cut_in_two_on_both_sides(tmp_path):
    src = write(
        tmp_path / "d.jsonl",
        "\n".join(json.dumps({"text": t, "y": i}) for i, t in enumerate(["aaaa aaaa", "bbbb bbbb", "cccc cccc"])),
    )
    stats, out = run(tmp_path, [src], val_fraction=0.2, label_column="y")
    text = "aaaa aaaa\n\nbbbb bbbb\n\ncccc cccc\n"
    cut = int(len(text) * 0.8)
    assert docs_of(out, "train") == ["aaaa aaaa", "bbbb bbbb", text[22:cut]]
    assert docs_of(out, "val") == [text[cut:].rstrip("\n")]
    assert labels_of(out, "train") == [0, 1, 2] and labels_of(out, "val") == [2]
    assert (stats.n_train_docs, stats.n_val_docs) == (3, 1)


# ------------------------------------------------------------------------------------------------ scale


def traced_peak(tmp_path, name, n_lines, monkeypatch):
    src = tmp_path / f"{name}.txt"
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta", "theta"]
    with open(src, "w", encoding="utf-8") as f:
        for i in range(0, n_lines, 1000):
            f.write("\n".join(" ".join(rng.choice(words, 9)) for _ in range(1000)) + "\n\n")
    tracemalloc.start()
    try:
        import_text([src], tmp_path / f"out-{name}", cleaning={"dedupe_docs": True, "lowercase": True})
        return tracemalloc.get_traced_memory()[1], src.stat().st_size
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded_whatever_the_corpus_size(tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "CHUNK_BYTES", 1 << 16)
    small_peak, small_size = traced_peak(tmp_path, "small", 20_000, monkeypatch)
    big_peak, big_size = traced_peak(tmp_path, "big", 200_000, monkeypatch)
    assert big_size > 9 * small_size
    # The peak is set by the chunk and buffer sizes (about 1 MiB each), not by the corpus.
    assert big_peak < small_peak + (2 << 20) and big_peak < big_size / 2


# ------------------------------------------------------------------------------------------------ preview


def test_preview_csv_lists_columns_records_and_bad_rows(tmp_path):
    src = write(tmp_path / "r.csv", "title,body\nA,first body\nB,second,extra\nC,third\n")
    p = preview_records([src], n=10)
    assert p["format"] == "csv" and p["columns"] == ["title", "body"]
    assert p["warnings"] == [f"{src}: choose the text column (columns: title, body)"]
    assert [r["fields"] for r in p["records"]] == [
        {"title": "A", "body": "first body"},
        {"title": "B", "body": "second"},
        {"title": "C", "body": "third"},
    ]
    assert [r["text"] for r in p["records"]] == [None, None, None]
    p = preview_records([src], column="body", n=10)
    assert [r["text"] for r in p["records"]] == ["first body", None, "third"]
    assert [r["line"] for r in p["records"]] == [2, 3, 4]
    assert p["warnings"] == [f"{src} line 3: has 3 fields, the header has 2"]


def test_preview_jsonl_shows_dotted_fields_and_parquet_types(tmp_path):
    src = write(tmp_path / "d.jsonl", '{"a": {"b": "deep text", "c": 1}, "d": "x"}\n{"a": {"b": "more"}}\n')
    p = preview_records([src], column="a.b", n=1)
    assert p["columns"] == ["a.b", "a.c", "d"] and [r["text"] for r in p["records"]] == ["deep text"]
    pqf = write_parquet(tmp_path / "t.parquet", pa.table({"n": [1, 2], "s": ["x", "y"]}))
    p = preview_records([pqf], n=5)
    assert p["format"] == "parquet" and p["column_types"] == {"n": "int64", "s": "string"}
    assert [r["text"] for r in p["records"]] == ["x", "y"]  # the only string column is taken
    assert [r["fields"]["n"] for r in p["records"]] == [1, 2]
    p = preview_records([pqf], column="n")
    assert any("holds int64, not text" in w for w in p["warnings"])


def test_preview_text_files_and_problems_as_warnings(tmp_path):
    write(tmp_path / "c" / "a.txt", "first file\n")
    write(tmp_path / "c" / "b.txt", "x" * 5000)
    write(tmp_path / "c" / "c.txt", b"caf\xe9\n")
    p = preview_records([tmp_path / "c"], n=20)
    assert p["format"] == "txt" and [r["text"] for r in p["records"]][:1] == ["first file"]
    assert len(p["records"][1]["text"]) == importers.PREVIEW_CHARS + 1  # cut, with an ellipsis
    assert any("is not UTF-8 text" in w for w in p["warnings"])
    p = preview_records([tmp_path / "c"], on_decode_error="latin-1")
    assert p["records"][2]["text"] == "café"
    p = preview_records([tmp_path / "missing"])
    assert p["records"] == [] and p["warnings"] == [f"{tmp_path / 'missing'} does not exist"]
    p = preview_records([write(tmp_path / "l.txt", "one\n\ntwo\nthree\n")], doc_unit="line", n=2)
    assert [r["text"] for r in p["records"]] == ["one", "two"]
