"""The Data and Vocabulary panels' Qt-free state: the quick look at chosen files, the import page's warnings and
progress words, a dataset row in words, the tokenizer summary. No window is needed."""

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from engine.format import eta_text
from studio.state.data_details import COUNT_ROWS, DETAIL_ROWS, detail_texts, import_warnings_text, sources_text
from studio.state.data_import import ImportState, imported_message, preview_status, progress_line, quick_look_info
from studio.state.import_files import guess_format
from studio.state.import_report import STEP_NAMES, STEP_ORDER, cleaning_text, step_effect
from studio.state.tokenizer_choices import KIND_LABELS, KINDS, tokenizer_summary

ROOT = Path(__file__).resolve().parents[1]
STATE = [
    "studio.state.import_files",
    "studio.state.import_report",
    "studio.state.data_details",
    "studio.state.data_import",
    "studio.state.tokenizer_choices",
    "studio.state.model_form",
]


def test_the_state_modules_load_no_qt():
    code = (
        f"import importlib, json, sys\nfor m in {STATE!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', "
        "'pyqtgraph'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_guess_format_by_extension_and_folder(tmp_path):
    assert [guess_format(n) for n in ("a.csv", "b.TSV", "c.ndjson", "d.pq", "e.md")] == [
        "csv",
        "tsv",
        "jsonl",
        "parquet",
        "txt",
    ]
    (tmp_path / "notes.csv").mkdir()
    assert guess_format(tmp_path / "notes.csv") == "txt"  # a folder, whatever its name


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_quick_look_is_redone_only_when_the_files_would_change(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.md").write_text("beta\n")
    state = ImportState()
    first = state.look([str(tmp_path)], {})
    assert first is state.preview and [Path(f).name for f in first.files] == ["a.txt"]
    assert state.look([str(tmp_path)], {"cleaning": {"lowercase": True}}) is None  # same files: kept
    again = state.look([str(tmp_path)], {"include": ["*.txt", "*.md"]})
    assert [Path(f).name for f in again.files] == ["a.txt", "b.md"]
    assert "2 files, 11 B in all" in quick_look_info(again) and "“File start” shows a.txt" in quick_look_info(again)
    state.new_files()
    assert state.look([str(tmp_path)], {"include": ["*.txt", "*.md"]}) is not None
    state.preview_request_id = "7"
    state.forget()
    assert state.preview is None and state.preview_request_id is None


def test_warnings_say_what_the_decode_choice_does_and_are_not_repeated(tmp_path):
    bad = tmp_path / "latin.txt"
    bad.write_bytes("café\n".encode("latin-1"))
    state = ImportState()
    state.look([str(bad)], {})
    assert state.warnings("error", None) == [
        "latin.txt is not UTF-8 text: bad byte at offset 3 — the import will probably be refused."
    ]
    assert state.warnings("latin-1", None)[0].endswith("it will be decoded as Latin-1.")
    assert state.warnings("skip", None)[0].endswith("it will be skipped.")
    # the engine's preview names the file by its path: the same warning is not said twice
    engine_words = f"{bad} is not UTF-8 text: bad byte at offset 3"
    state.last_preview_reply = SimpleNamespace(ok=True, preview={"warnings": [engine_words, "w1", "w2", "w3", "w4"]})
    assert state.warnings("error", None)[1:] == ["w1", "w2", "w3", "… and 1 more warnings"]
    state.last_preview_reply = SimpleNamespace(ok=False, error="no such column")
    assert state.warnings("error", None)[1:] == ["Preview: no such column"]


def test_a_json_file_is_said_to_be_read_as_text_unless_jsonl_is_chosen(tmp_path):
    state = ImportState()
    state.look([write(tmp_path / "rows.json", '{"a": 1}\n')], {})
    assert state.warnings(None, None) == ["A .json file is read as plain text unless you choose JSONL as the format."]
    assert state.warnings(None, "jsonl") == []


def test_progress_and_outcome_words():
    assert eta_text(0.25, 20) == "about 1 m 00 s left" and eta_text(0.01, 20) == ""
    assert progress_line("reading a.txt", 0.25, 20) == "reading a.txt — about 1 m 00 s left"
    assert progress_line("reading, 3 s left", 0.25, 20) == "reading, 3 s left"  # the engine's own estimate
    assert progress_line("", 0.5, 10) == "about 10 s left" and progress_line("busy", -1, 10) == "busy"
    assert imported_message({"name": "notes", "n_docs": 3, "n_chars": 1200}) == (
        "Imported “notes”: 3 documents, 1.2 k characters.",
        "info",
    )
    text, level = imported_message({"name": "n", "n_docs": 1, "n_chars": 5, "stats": {"warnings": ["x"]}})
    assert level == "warning" and text.endswith("(1 warning, see the details).")
    assert (
        preview_status({"records": [{}, {}], "format": "csv"})
        == "The first 2 records as the import would read them (CSV)."
    )


def test_a_dataset_row_in_words():
    row = {
        "name": "reviews",
        "n_docs": 30,
        "n_chars": 1234,
        "n_lines": 30,
        "train_chars": 1100,
        "val_chars": 134,
        "val_fraction": 0.1,
        "n_bytes": 2048,
        "sources": ["/a/r.csv", "/a/s.csv"],
        "format": "csv",
        "split": "documents",
        "seed": 7,
        "n_val_docs": 3,
        "has_labels": True,
        "options": {"label_column": "stars"},
        "stats": {
            "docs_read": 31,
            "empty_records": 1,
            "cleaning": {"lowercase": {"changed_docs": 30}},
            "warnings": ["a", "b", "c", "d"],
        },
    }
    texts = detail_texts(row)
    assert set(texts) | set(COUNT_ROWS) == {key for key, _, _ in DETAIL_ROWS}
    assert texts["split"] == "1.1 k / 134 characters (10 % held out)"
    assert texts["split_kind"] == "random whole documents (seed 7): 3 held out"
    assert texts["format"] == "CSV" and texts["labels"] == "yes, from “stars”"
    assert texts["cleaning"] == "Lowercase: changed 30 documents"
    assert texts["records"] == "31 read, 1 empty left out" and texts["n_bytes"] == "2.0 KiB"
    assert texts["sources"] == sources_text(row) == "/a/r.csv and 1 more"
    assert import_warnings_text(row) == "Import warnings: a; b; c; … and 1 more"
    plain = detail_texts({"name": "t"})
    assert plain["format"] == "plain text, one document per file" and plain["records"] == "—"
    assert plain["labels"] == "no" and plain["sources"] == "—" and import_warnings_text({}) == ""


def test_cleaning_steps_are_named_in_the_engines_order():
    assert set(STEP_NAMES) == set(STEP_ORDER)
    assert step_effect({}) == "no change"
    assert step_effect({"removed_docs": 1, "changed_docs": 2}) == "removed 1 document, changed 2 documents"
    report = {"length": {"removed_docs": 1}, "normalize": {"changed_docs": 2}}
    assert (
        cleaning_text({"stats": {"cleaning": report}})
        == "Unicode normalization: changed 2 documents; Document length: removed 1 document"
    )


def test_tokenizer_words_and_summary():
    assert [k for k, _, _ in KINDS] == list(KIND_LABELS) and all(help_ for _, _, help_ in KINDS)
    row = {
        "kind": "bpe",
        "vocab_size": 3000,
        "train_tokens": 12000,
        "val_tokens": 900,
        "spec": {"normalizer": "nfkc", "pre_tokenizer": "whitespace_split", "special_tokens": {"unk": "<u>"}},
    }
    assert tokenizer_summary(row).split("<br>") == [
        "<b>BPE</b>, 3,000 tokens",
        "normalizer nfkc · words: whitespace split",
        "Special tokens: &lt;u&gt; (unk)",
        "Training text: 12.0 k tokens · validation: 900 tokens",
    ]
    assert "words" not in tokenizer_summary({**row, "spec": {"pre_tokenizer": "metaspace"}})  # BPE's default
