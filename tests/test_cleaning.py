"""Cleaning steps, one by one and together, in the preview and in a real import (the same counts)."""

import hashlib
import json

import pytest

from engine.data.cleaning import STEPS, Cleaner, CleaningConfig, DigestSet, clean_preview, clean_records, clean_text
from engine.data.importers import DataError, import_text


def test_config_is_json_safe_validated_and_lists_its_steps():
    cfg = CleaningConfig(normalize="nfkc", strip_control=True, regex=r"^\d+$", dedupe_docs=True, max_chars=50)
    assert cfg.normalize == "NFKC"
    assert CleaningConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.steps() == ["normalize", "strip_control", "regex", "length", "dedupe_docs"]
    assert CleaningConfig().steps() == [] and CleaningConfig.from_dict(None) == CleaningConfig()
    all_on = CleaningConfig("NFC", True, True, True, "x", "drop_lines", True, True, 1, 10)
    assert all_on.steps() == list(STEPS)
    with pytest.raises(DataError, match="no option"):
        CleaningConfig.from_dict({"lower": True})
    with pytest.raises(DataError, match="min_chars <= max_chars"):
        CleaningConfig(min_chars=10, max_chars=5)
    with pytest.raises(DataError, match="regex_action"):
        CleaningConfig(regex="a", regex_action="keep_lines")


def test_normalize_nfc_composes_and_nfkc_folds_compatibility_forms():
    decomposed = "Cafe\u0301 ﬁne ①"
    assert clean_text(decomposed, {"normalize": "NFC"}) == "Café ﬁne ①"
    assert clean_text(decomposed, {"normalize": "NFKC"}) == "Café fine 1"
    report = clean_preview([decomposed, "plain"], {"normalize": "NFC"})
    assert report["normalize"]["changed_docs"] == 1
    assert report["normalize"]["examples"] == [("Cafe\u0301 ﬁne ①", "Café ﬁne ①")]


def test_strip_control_keeps_tabs_and_newlines():
    assert clean_text("a\x00b\x07c\td\x1be\x7f\u0085\ufeff\nnext", {"strip_control": True}) == "abc\tde\nnext"


def test_collapse_whitespace_squeezes_spaces_trims_lines_and_blank_runs():
    text = "\n\n  lead  and   inner\t\ttabs  \n\n\n\nnext   para\n \n"
    assert clean_text(text, {"collapse_whitespace": True}) == "lead and inner tabs\n\nnext para"
    report = clean_preview([text], {"collapse_whitespace": True})["collapse_whitespace"]
    # Two blank lines at the start and two of a run of three. The blank lines at the end are not counted: a
    # document never ends with a blank line, so dropping them changes nothing.
    assert report["changed_docs"] == 1 and report["removed_lines"] == 4


def test_trailing_blank_lines_are_no_change_in_the_import_or_its_preview(tmp_path):
    """The import's report and the preview's agree: a file that only ends in blank lines is not changed."""
    from engine.data.importers import preview_records
    from engine.store import Workspace

    path = tmp_path / "letter.txt"
    path.write_text("Dear reader,\nthe text ends here.\n\n\n\n")
    cleaning = {"collapse_whitespace": True}
    preview = clean_preview(preview_records([path])["records"], cleaning)["collapse_whitespace"]
    ds = Workspace(tmp_path / "ws").import_dataset([path], name="letter", val_fraction=0.0, cleaning=cleaning)
    imported = ds["stats"]["cleaning"]["collapse_whitespace"]
    assert (
        (imported["changed_docs"], imported["removed_lines"])
        == (preview["changed_docs"], preview["removed_lines"])
        == (0, 0)
    )

    # Where the step does change the text, both say so, with the same counts.
    path.write_text("Dear   reader,\n\n\n\nthe text ends here.\n\n")
    preview = clean_preview(preview_records([path])["records"], cleaning)["collapse_whitespace"]
    ds = Workspace(tmp_path / "ws").import_dataset([path], name="letter 2", val_fraction=0.0, cleaning=cleaning)
    imported = ds["stats"]["cleaning"]["collapse_whitespace"]
    assert (
        (imported["changed_docs"], imported["removed_lines"])
        == (preview["changed_docs"], preview["removed_lines"])
        == (1, 2)
    )


def test_lowercase():
    assert clean_text("MiXeD Ünïcode ΣΑΣ", {"lowercase": True}) == "mixed ünïcode σας"


def test_regex_drops_lines_or_documents_or_keeps_only_matching_documents():
    docs = ["keep this\nhttp://spam.example\nand this", "no links here", "http://only.example"]
    assert clean_records(docs, {"regex": r"https?://"}) == ["keep this\nand this", "no links here", None]
    assert clean_records(docs, {"regex": r"https?://", "regex_action": "drop_docs"}) == [None, "no links here", None]
    assert clean_records(docs, {"regex": r"https?://", "regex_action": "keep_docs"}) == [docs[0], None, docs[2]]
    report = clean_preview(docs, {"regex": r"https?://"})["regex"]
    assert (report["removed_lines"], report["removed_docs"], report["changed_docs"]) == (2, 1, 2)
    assert report["examples"][0] == ("http://spam.example", None)


def test_dedupe_lines_across_documents_but_never_blank_lines():
    docs = ["header\nunique one\n\nfooter", "header\nunique two\n\nfooter"]
    assert clean_records(docs, {"dedupe_lines": True}) == ["header\nunique one\n\nfooter", "unique two"]


def test_dedupe_docs_after_the_other_steps():
    docs = ["Same Text", "same text", "same  text ", "other"]
    assert clean_records(docs, {"dedupe_docs": True}) == ["Same Text", "same text", "same  text ", "other"]
    cleaned = clean_records(docs, {"dedupe_docs": True, "lowercase": True, "collapse_whitespace": True})
    assert cleaned == ["same text", None, None, "other"]


def test_length_limits_count_characters_after_cleaning():
    docs = ["ab", "abcd", "abcdef", "a    b"]
    assert clean_records(docs, {"min_chars": 3, "max_chars": 5}) == [None, "abcd", None, None]
    assert clean_records(docs, {"min_chars": 3, "max_chars": 5, "collapse_whitespace": True}) == [
        None,
        "abcd",
        None,
        "a b",
    ]


def test_a_document_emptied_by_a_step_is_counted_under_that_step():
    report = clean_preview(["\x00\x01", "ok", "   \x02  "], {"strip_control": True, "collapse_whitespace": True})
    # Both had no visible character left once control characters were gone.
    assert report["strip_control"]["removed_docs"] == 2
    assert report["collapse_whitespace"]["removed_docs"] == 0
    assert clean_records(["\x00\x01", "ok"], {"strip_control": True}) == [None, "ok"]


def test_documents_stream_through_in_batches_with_the_same_result():
    text = "Line ONE  \n\n\nline two\x00\nLine ONE  \n\n"
    cfg = {"lowercase": True, "strip_control": True, "collapse_whitespace": True, "dedupe_lines": True}
    whole = clean_text(text, cfg)
    c = Cleaner(cfg)
    c.start_doc()
    out = []
    for line in text.split("\n"):  # one line a batch
        out += c.feed([line])
    assert c.finish_doc() and "\n".join(out) == whole == "line one\n\nline two"


def test_digest_set_is_exact_and_grows():
    s = DigestSet(capacity=16)
    digests = [hashlib.blake2b(str(i).encode(), digest_size=16).digest() for i in range(50_000)]
    assert all(s.add(d) for d in digests)
    assert not any(s.add(d) for d in digests)
    assert len(s) == 50_000 and s.nbytes < 50_000 * 27  # 12-byte slots, at least 47 % full


def test_import_reports_the_same_counts_as_the_preview(tmp_path):
    docs = ["Hello  World", "hello world", "unique\x07 text", "tin", "HTTP://x.example line\nkeep"]
    cfg = {
        "strip_control": True,
        "collapse_whitespace": True,
        "lowercase": True,
        "regex": "http://",
        "dedupe_docs": True,
        "min_chars": 4,
    }
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps({"text": d}) for d in docs), encoding="utf-8")
    stats = import_text([src], tmp_path / "out", val_fraction=0, cleaning=cfg)
    assert stats.cleaning == clean_preview(docs, cfg, n_examples=3)
    assert (tmp_path / "out" / "train.txt").read_text(encoding="utf-8") == "hello world\n\nunique text\n\nkeep\n"
    assert stats.cleaning["dedupe_docs"]["removed_docs"] == 1
    assert stats.cleaning["length"]["removed_docs"] == 1
    assert stats.n_docs == 3 and stats.docs_read == 5
