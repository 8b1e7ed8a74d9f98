"""Every kind of bad input gets one clear message naming the file (and the line or byte offset), and the
workspace stays exactly as it was: the same SQLite rows, the same files on disk."""

import os

import pytest

from engine.data.importers import DataError
from engine.store import Workspace

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws") as w:
        good = tmp_path / "good.txt"
        good.write_text("a dataset that is already there\n" * 20, encoding="utf-8")
        w.import_dataset([good], name="keep")
        yield w


def snapshot(ws):
    tables = {t: [list(r) for r in ws.db.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in ws.db.table_names()}
    files = sorted(
        (p.relative_to(ws.path).as_posix(), p.stat().st_size if p.is_file() else None)
        for p in ws.path.rglob("*")
        if not p.name.startswith("workspace.db")
    )
    return tables, files


def symlink(target, link):
    try:
        os.symlink(target, link)
    except OSError:
        pytest.skip("this file system cannot make symlinks")


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# Each case: make(tmp_path) -> (paths, import options, the expected message with {p} for the bad file).
def empty(t):
    return [write(t / "in" / "empty.txt", b"")], {}, "{p} is empty"


def whitespace(t):
    return [write(t / "in" / "blank.txt", " \n\t \r\n")], {}, "{p} has only whitespace"


def binary(t):
    return (
        [write(t / "in" / "bin.txt", b"header\x00\x01\x02")],
        {},
        "{p} looks like a program or binary file, not text (NUL byte at offset 6)",
    )


def undecodable(t):
    return (
        [write(t / "in" / "latin.txt", "ok line\n".encode() + b"na\xefve\n")],
        {},
        "{p} is not UTF-8 text: bad byte at offset 10 (line 2)",
    )


def huge_line(t):
    # A one-line 100 MB file, scaled down: the limit is an option, the message the same.
    return (
        [write(t / "in" / "oneline.txt", "short\n" + "x" * 5000)],
        {"max_line_chars": 1000},
        "{p} line 2 is longer than 1,000 characters (is it text with line breaks? raise the line length "
        "limit if it is)",
    )


def csv_without_column(t):
    return (
        [write(t / "in" / "t.csv", "title,body\na,b\n")],
        {"column": "text"},
        "{p} has no column 'text' (columns: title, body)",
    )


def ragged_csv(t):
    return (
        [write(t / "in" / "r.csv", "text,label\nfine,a\ntoo,many,fields\nfine again,b\nshort\n")],
        {},
        "{p}: 2 bad records (lines 3, 5); line 3: has 3 fields, the header has 2; skip bad records to import the rest",
    )


def malformed_jsonl(t):
    return (
        [write(t / "in" / "d.jsonl", '{"text": "ok"}\n{"text": \n{"text": "ok"}\n[1, 2\n')],
        {},
        "{p}: 2 bad records (lines 2, 4); line 2: not valid JSON (Expecting value, column 10); skip bad "
        "records to import the rest",
    )


def jsonl_non_text_field(t):
    return (
        [write(t / "in" / "d.jsonl", '{"text": "ok"}\n{"text": 12}\n')],
        {},
        "{p}: 1 bad record (lines 2); line 2: field 'text' is a number, not text; skip bad records to import the rest",
    )


def parquet_non_string(t):
    p = t / "in" / "n.parquet"
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"n": [1, 2, 3]}), p)
    return [p], {"column": "n"}, "{p}: column 'n' holds int64, not text; choose a string column"


def not_parquet(t):
    return ([write(t / "in" / "fake.parquet", b"this is not parquet at all")], {}, "{p} is not a readable Parquet file")


def unreadable(t):
    target = t / "in" / "gone.txt"
    link = t / "in" / "dangling.txt"
    link.parent.mkdir(parents=True, exist_ok=True)
    symlink(target, link)
    return [link], {}, "cannot read {p}: No such file or directory"


def no_text_files(t):
    write(t / "in" / "pic.png", b"\x89PNG")
    return [t / "in"], {}, "folder {p} has no .txt files"


def symlink_loop(t):
    folder = t / "in"
    folder.mkdir(parents=True, exist_ok=True)
    write(folder / "a.txt", "fine\n")
    symlink(folder / "loop.txt", folder / "loop.txt")  # a link to itself
    return [folder], {}, "cannot read {p}/loop.txt: Too many levels of symbolic links"


CASES = [
    empty,
    whitespace,
    binary,
    undecodable,
    huge_line,
    csv_without_column,
    ragged_csv,
    malformed_jsonl,
    jsonl_non_text_field,
    parquet_non_string,
    not_parquet,
    unreadable,
    no_text_files,
    symlink_loop,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_gives_one_clear_message_and_leaves_the_workspace_as_it_was(ws, tmp_path, case):
    paths, options, expected = case(tmp_path)
    before = snapshot(ws)
    with pytest.raises(DataError) as info:
        ws.import_dataset(paths, **options)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(expected.format(p=paths[0]))
    assert snapshot(ws) == before


def test_a_file_that_changes_during_import_is_refused(ws, tmp_path, monkeypatch):
    import engine.data.importers as importers

    monkeypatch.setattr(importers, "CHUNK_BYTES", 64)
    src = write(tmp_path / "growing.txt", "a line of text\n" * 100)
    before = snapshot(ws)
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        if len(calls) == 3:  # another program appends while we read
            with open(src, "a", encoding="utf-8") as f:
                f.write("more text\n")

    with pytest.raises(importers.FileChangedError) as info:
        ws.import_dataset([src], progress=progress)
    assert str(info.value) == (
        f"{src} changed while it was being imported; import it again when nothing is writing to it"
    )
    assert snapshot(ws) == before


def test_cleaning_that_removes_everything_is_an_error_not_an_empty_dataset(ws, tmp_path):
    src = write(tmp_path / "short.txt", "tiny\n")
    before = snapshot(ws)
    with pytest.raises(DataError, match=r"^cleaning removed every document \(length: 1\)$"):
        ws.import_dataset([src], cleaning={"min_chars": 100})
    assert snapshot(ws) == before


def test_bad_options_are_refused_before_anything_is_written(ws, tmp_path):
    src = write(tmp_path / "a.txt", "text\n")
    before = snapshot(ws)
    for options, message in (
        ({"cleaning": {"regex": "(unclosed"}}, "is not valid"),
        ({"cleaning": {"normalize": "NFX"}}, "normalize must be"),
        ({"on_bad_record": "ignore"}, "on_bad_record must be"),
        ({"max_line_chars": 0}, "at least 1"),
    ):
        with pytest.raises(DataError, match=message):
            ws.import_dataset([src], **options)
    assert snapshot(ws) == before


def test_skipping_bad_records_imports_the_rest_and_keeps_the_counts(ws, tmp_path):
    src = write(tmp_path / "d.jsonl", '{"text": "one"}\nbroken\n{"text": "two"}\n')
    ds = ws.import_dataset([src], on_bad_record="skip", val_fraction=0)
    assert ds["n_docs"] == 2 and ds["stats"]["bad_records"] == 1
    assert ds["stats"]["warnings"] == [
        f"{src}: skipped 1 bad record (lines 2); line 2: not valid JSON (Expecting value, column 1)"
    ]
    assert ds["options"]["on_bad_record"] == "skip"
