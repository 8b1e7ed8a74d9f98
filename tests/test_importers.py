import codecs
import os

import pytest

from engine.data.importers import DataError, ImportCancelled, collect_files, import_text, read_document
from engine.data.sample import sample_text, write_sample_corpus


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_split(out):
    return (out / "train.txt").read_text(encoding="utf-8"), (out / "val.txt").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------ good input


def test_single_file_imports_whole_text(tmp_path):
    text = "First line.\nSecond line, with ümlauts and 日本語.\n"
    src = write(tmp_path / "a.txt", text.encode())
    stats = import_text([src], tmp_path / "out", val_fraction=0.25)
    train, val = read_split(tmp_path / "out")
    assert train + val == text
    assert (stats.n_docs, stats.n_chars, stats.n_lines) == (1, len(text), 2)
    assert stats.n_bytes == len(text.encode())
    assert stats.files == [str(src.resolve())]


def test_folder_is_searched_recursively_in_sorted_order_and_documents_stay_apart(tmp_path):
    write(tmp_path / "corpus" / "b.txt", b"bravo\n\n\n")
    write(tmp_path / "corpus" / "a.txt", b"alpha")
    write(tmp_path / "corpus" / "sub" / "c.txt", b"charlie\n")
    write(tmp_path / "corpus" / "notes.md", b"not a text file")
    write(tmp_path / "corpus" / ".hidden" / "d.txt", b"hidden")
    files = collect_files([tmp_path / "corpus"])
    assert [f.relative_to(tmp_path / "corpus").as_posix() for f in files] == ["a.txt", "b.txt", "sub/c.txt"]
    stats = import_text([tmp_path / "corpus"], tmp_path / "out", val_fraction=0)
    train, val = read_split(tmp_path / "out")
    # One blank line between documents, however many newlines each ended with.
    assert train == "alpha\n\nbravo\n\ncharlie\n"
    assert val == "" and stats.val_chars == 0 and stats.n_docs == 3


def test_symlink_loop_in_folder_terminates(tmp_path):
    write(tmp_path / "corpus" / "a.txt", b"alpha\n")
    try:
        os.symlink(tmp_path / "corpus", tmp_path / "corpus" / "loop")
    except OSError:
        pytest.skip("this file system cannot make symlinks")
    assert [f.name for f in collect_files([tmp_path / "corpus"])] == ["a.txt"]


@pytest.mark.parametrize(
    "encoding,bom",
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
    ],
)
def test_byte_order_marks_are_decoded_and_dropped(tmp_path, encoding, bom):
    text = "Grüße, 世界 🙂\nzweite Zeile\n"
    src = write(tmp_path / "bom.txt", bom + text.encode(encoding))
    assert read_document(src) == text


def test_crlf_and_lone_cr_become_newlines_even_across_chunk_boundaries(tmp_path, monkeypatch):
    import engine.data.importers as importers

    monkeypatch.setattr(importers, "CHUNK_BYTES", 7)  # forces \r and \n into different chunks somewhere
    src = write(tmp_path / "dos.txt", b"one\r\ntwo\r\nthree\rfour\r\n" * 5)
    assert read_document(src) == "one\ntwo\nthree\nfour\n" * 5


def test_multibyte_characters_split_across_chunks_decode(tmp_path, monkeypatch):
    import engine.data.importers as importers

    monkeypatch.setattr(importers, "CHUNK_BYTES", 3)
    text = "ä€🙂 " * 50
    assert read_document(write(tmp_path / "u.txt", text.encode())) == text
    assert read_document(write(tmp_path / "u16.txt", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))) == text


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5])
def test_val_is_exactly_the_last_fraction_of_characters(tmp_path, fraction):
    text = "".join(f"line {i}: é\n" for i in range(123))
    src = write(tmp_path / "t.txt", text.encode())
    stats = import_text([src], tmp_path / "out", val_fraction=fraction)
    train, val = read_split(tmp_path / "out")
    cut = int(len(text) * (1 - fraction))
    assert train == text[:cut] and val == text[cut:]
    assert (stats.train_chars, stats.val_chars) == (cut, len(text) - cut)


def test_progress_reaches_one_and_never_goes_back(tmp_path, monkeypatch):
    import engine.data.importers as importers

    monkeypatch.setattr(importers, "CHUNK_BYTES", 64)
    for i in range(3):
        write(tmp_path / "c" / f"{i}.txt", b"some text\n" * 50)
    seen = []
    import_text([tmp_path / "c"], tmp_path / "out", progress=lambda f, msg: seen.append(f))
    assert seen[-1] == 1.0 and len(seen) > 5
    assert all(a <= b for a, b in zip(seen, seen[1:]))


# ------------------------------------------------------------------------------------------------ bad input


def error_of(paths, tmp_path):
    with pytest.raises(DataError) as info:
        import_text(paths, tmp_path / "out")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_empty_file(tmp_path):
    src = write(tmp_path / "empty.txt", b"")
    assert error_of([src], tmp_path) == f"{src} is empty"


def test_whitespace_only_file(tmp_path):
    src = write(tmp_path / "blank.txt", b"  \n\t\r\n  ")
    assert error_of([src], tmp_path) == f"{src} has only whitespace"


def test_nul_bytes_look_binary_with_offset(tmp_path):
    src = write(tmp_path / "bin.txt", b"hello world\x00\x01\x02")
    assert error_of([src], tmp_path) == f"{src} looks like a program or binary file, not text (NUL byte at offset 11)"


def test_nul_character_in_utf16_is_binary_but_zero_bytes_of_normal_text_are_not(tmp_path):
    good = write(tmp_path / "ok16.txt", codecs.BOM_UTF16_LE + "A\u0100B\n".encode("utf-16-le"))
    assert read_document(good) == "A\u0100B\n"
    bad = write(tmp_path / "bad16.txt", codecs.BOM_UTF16_LE + "AB\0C".encode("utf-16-le"))
    assert error_of([bad], tmp_path) == f"{bad} looks like a program or binary file, not text (NUL byte at offset 6)"


def test_bad_utf8_gives_offset_and_line(tmp_path):
    data = "line one\nline two ok\n".encode() + b"caf\xe9 latin-1\n"
    src = write(tmp_path / "latin1.txt", data)
    assert error_of([src], tmp_path) == f"{src} is not UTF-8 text: bad byte at offset {len(data) - 10} (line 3)"


def test_bad_utf8_offset_is_exact_across_chunks(tmp_path, monkeypatch):
    import engine.data.importers as importers

    monkeypatch.setattr(importers, "CHUNK_BYTES", 5)
    # A valid two-byte character straddles a chunk boundary, then a truncated one ends the file.
    data = "abcé\n".encode() * 7 + b"xy\xc3"
    src = write(tmp_path / "cut.txt", data)
    assert error_of([src], tmp_path) == f"{src} is not UTF-8 text: bad byte at offset {len(data) - 1} (line 8)"


def test_folder_without_text_files(tmp_path):
    write(tmp_path / "pics" / "a.png", b"\x89PNG")
    assert error_of([tmp_path / "pics"], tmp_path) == f"folder {tmp_path / 'pics'} has no .txt files"


def test_missing_path(tmp_path):
    assert error_of([tmp_path / "nope.txt"], tmp_path) == f"{tmp_path / 'nope.txt'} does not exist"


def test_dangling_symlink_in_folder_is_unreadable(tmp_path):
    write(tmp_path / "c" / "a.txt", b"alpha\n")
    try:
        os.symlink(tmp_path / "gone.txt", tmp_path / "c" / "b.txt")
    except OSError:
        pytest.skip("this file system cannot make symlinks")
    message = error_of([tmp_path / "c"], tmp_path)
    assert str(tmp_path / "c" / "b.txt") in message and "No such file" in message


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_permission_denied(tmp_path):
    src = write(tmp_path / "secret.txt", b"hidden\n")
    src.chmod(0)
    try:
        assert error_of([src], tmp_path) == f"cannot read {src}: Permission denied"
    finally:
        src.chmod(0o644)


def test_val_fraction_out_of_range(tmp_path):
    src = write(tmp_path / "a.txt", b"alpha\n")
    with pytest.raises(DataError, match="between 0 and 0.5"):
        import_text([src], tmp_path / "out", val_fraction=0.6)


def test_cancel_raises_and_writes_nothing(tmp_path, monkeypatch):
    import engine.data.importers as importers

    monkeypatch.setattr(importers, "CHUNK_BYTES", 16)
    src = write(tmp_path / "a.txt", b"some text here\n" * 100)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(ImportCancelled):
        import_text([src], tmp_path / "out", cancelled=cancelled)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ sample corpus


def test_sample_corpus_is_deterministic_play_text(tmp_path):
    write_sample_corpus(tmp_path / "s.txt", n_chars=20_000, seed=3)
    text = (tmp_path / "s.txt").read_text(encoding="utf-8")
    assert text == sample_text(20_000, seed=3) != sample_text(20_000, seed=4)
    assert 19_000 < len(text) <= 20_000 and text.endswith("\n")
    lines = text.splitlines()
    speakers = [ln for ln in lines if ln.endswith(":") and ln[:-1].isupper()]
    assert len(speakers) > 100 and len(set(speakers)) <= 10  # a small cast, speaking in "NAME:" lines
    assert read_document(tmp_path / "s.txt") == text
