"""The data and tokenizer lab through the real engine process: import options and preview, spec options,
contexts, document lengths, comparison and export."""

import json

import pytest

from engine import protocol as p
from tests.engine_harness import EngineProcess


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = EngineProcess(tmp_path_factory.mktemp("ws"))
    assert eng.request(p.HelloRequest(), timeout=60).ok
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    path = folder / "reviews.csv"
    rows = [("id", "review", "stars")]
    for i in range(60):
        rows.append((str(i), f"  The Film  number {i} was GOOD\u00a0and long  ", str(i % 5)))
    rows.append(("60", "short", "1"))
    path.write_text("\n".join(",".join(f'"{c}"' for c in r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_preview_lists_columns_and_shows_cleaning_before_and_after(engine, reviews):
    reply = engine.request(p.ImportPreviewRequest(paths=[str(reviews)], options={"fmt": "csv"}, n=5))
    assert reply.ok, reply.error
    assert reply.preview["columns"] == ["id", "review", "stars"]
    # the text column is not chosen yet and "review" is not called "text": the user is told, nothing fails
    assert any("column" in w for w in reply.preview["warnings"])

    cleaning = {"collapse_whitespace": True, "lowercase": True, "min_chars": 10}
    reply = engine.request(
        p.ImportPreviewRequest(
            paths=[str(reviews)],
            n=100,
            options={"fmt": "csv", "column": "review", "label_column": "stars", "cleaning": cleaning},
        )
    )
    assert reply.ok, reply.error
    records = reply.preview["records"]
    assert records[0]["text"].startswith("  The Film") and records[0]["label"] == "0"
    assert reply.cleaned[0] == "the film number 0 was good and long"  # the no-break space is whitespace too
    assert reply.cleaned[-1] is None  # "short" is under 10 characters
    assert reply.cleaning["length"]["removed_docs"] == 1
    assert reply.cleaning["lowercase"]["changed_docs"] == 60  # "short" had nothing to lower
    before, after = reply.cleaning["collapse_whitespace"]["examples"][0]
    assert "  " in before and "  " not in after


def test_import_with_options_keeps_labels_and_cleaning(engine, reviews):
    reply = engine.request(
        p.ImportRequest(
            paths=[str(reviews)],
            name="reviews",
            val_fraction=0.2,
            options={
                "fmt": "csv",
                "column": "review",
                "label_column": "stars",
                "split": "documents",
                "seed": 3,
                "cleaning": {"lowercase": True, "min_chars": 10},
            },
        )
    )
    assert reply.ok, reply.error
    ds = reply.dataset
    assert ds["n_docs"] == 60 and ds["has_labels"] and ds["split"] == "documents"
    text = engine.request(p.DatasetPreviewRequest(dataset=ds["id"], n_chars=200)).text
    assert "the film  number 0" in text and "The Film" not in text


def test_bad_options_get_one_clear_line_and_nothing_is_added(engine, reviews):
    before = engine.request(p.WorkspaceRequest()).workspace["datasets"]
    reply = engine.request(p.ImportRequest(paths=[str(reviews)], options={"fmt": "csv", "column": "nope"}))
    assert not reply.ok and "nope" in reply.error and "review" in reply.error  # names the columns there are
    reply = engine.request(p.ImportRequest(paths=[str(reviews)], options={"cleaning": {"regex": "(["}}))
    assert not reply.ok and "regex" in reply.error
    reply = engine.request(p.ImportRequest(paths=[str(reviews)], options={"colour": "red"}))
    assert not reply.ok and "colour" in reply.error
    assert engine.request(p.WorkspaceRequest()).workspace["datasets"] == before


@pytest.fixture(scope="module")
def two_tokenizers(engine):
    sample = next(d for d in engine.request(p.WorkspaceRequest()).workspace["datasets"] if d["name"] == "sample")
    char = engine.request(p.TokenizerTrainRequest(dataset=sample["id"], tokenizer_kind="char", vocab_size=200))
    wp = engine.request(
        p.TokenizerTrainRequest(
            dataset=sample["id"],
            tokenizer_kind="wordpiece",
            vocab_size=400,
            options={"min_frequency": 2, "normalizer": "lowercase", "special_tokens": {"bos": "[BOS]"}},
        ),
        timeout=120,
    )
    assert char.ok and wp.ok, (char.error, wp.error)
    return char.tokenizer, wp.tokenizer


def test_tokenizer_spec_options_reach_the_trained_tokenizer(engine, two_tokenizers):
    _, wp = two_tokenizers
    assert wp["kind"] == "wordpiece" and wp["spec"]["normalizer"] == "lowercase"
    assert wp["spec"]["special_tokens"]["bos"] == "[BOS]"
    spans = engine.request(p.TokenizeRequest(tokenizer=wp["id"], text="The THE the")).spans
    assert len({s["id"] for s in spans}) == 1  # lowercased before it is cut
    bad = engine.request(p.TokenizerTrainRequest(dataset=wp["dataset_id"], tokenizer_kind="bytebpe", vocab_size=100))
    assert not bad.ok and "at least" in bad.error


def test_contexts_histogram_compare_and_export(engine, two_tokenizers, tmp_path):
    char, wp = two_tokenizers
    rows = engine.request(p.VocabRequest(tokenizer=char["id"])).rows
    e_row = next(r for r in rows if r[1] == "e")
    reply = engine.request(p.TokenContextsRequest(tokenizer=char["id"], token_id=e_row[0], n=5, width=20))
    assert reply.ok and reply.frequency == e_row[2] and reply.token == "e"
    assert len(reply.contexts) == 5 and all("⟦e⟧" in c for c in reply.contexts)

    hist = engine.request(p.DocLengthsRequest(tokenizer=wp["id"], bins=10)).histogram
    assert hist["n_docs"] > 0 and sum(hist["counts"]) == hist["sampled"] and len(hist["edges"]) == 11

    result = engine.request(p.TokenizerCompareRequest(tokenizers=[char["id"], wp["id"]], text="the cat")).result
    by_kind = {r["kind"]: r for r in result["rows"]}
    assert by_kind["char"]["bytes_per_token"] == pytest.approx(1.0, abs=0.05)
    assert by_kind["wordpiece"]["bytes_per_token"] > 2 * by_kind["char"]["bytes_per_token"]
    assert by_kind["char"]["sample_split"] == ["t", "h", "e", "␣", "c", "a", "t"]

    out = tmp_path / "wp.json"
    reply = engine.request(p.TokenizerExportRequest(tokenizer=wp["id"], path=str(out)))
    assert reply.ok and reply.path == str(out)
    assert json.loads(out.read_text())["model"]["type"] == "WordPiece"
    reply = engine.request(p.TokenizerExportRequest(tokenizer=wp["id"], path=str(tmp_path / "no" / "x.json")))
    assert not reply.ok and "does not exist" in reply.error


def test_delete_and_restore_through_the_engine(engine, two_tokenizers):
    char, _ = two_tokenizers
    reply = engine.request(p.DeleteRequest(item_kind="dataset", ref=char["dataset_id"]))
    assert not reply.ok and "still used by" in reply.error and "tokenizer" in reply.error
    reply = engine.request(p.DeleteRequest(item_kind="tokenizer", ref=char["id"]))
    assert reply.ok and reply.trash["name"] == char["name"]
    ids = [t["id"] for t in engine.request(p.WorkspaceRequest()).workspace["tokenizers"]]
    assert char["id"] not in ids
    assert not engine.request(p.VocabRequest(tokenizer=char["id"])).ok
    back = engine.request(p.RestoreRequest(trash_id=reply.trash["id"]))
    assert back.ok and back.item_kind == "tokenizer" and back.row["id"] == char["id"]
    assert len(engine.request(p.VocabRequest(tokenizer=char["id"])).rows) == char["vocab_size"]
