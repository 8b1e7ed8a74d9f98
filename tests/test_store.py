import json
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHAKESPEARE
from engine.config import preset
from engine.data.importers import DataError, ImportCancelled
from engine.store import SCHEMA_VERSION, Workspace, WorkspaceError
from engine.tokenizer import TokenizerCancelled, TokenizerError

TEXT = "".join(f"Line {i}: the quick brown fox — jumps over {i % 7} lazy dogs. ☕\n" for i in range(300))


@pytest.fixture
def ws(tmp_path):
    with Workspace(tmp_path / "ws") as w:
        yield w


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "fox.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def snapshot(ws):
    """Everything a user could see: every table's rows and every file and folder under the workspace."""
    tables = {t: [list(r) for r in ws.db.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in ws.db.table_names()}
    files = sorted(
        p.relative_to(ws.path).as_posix() for p in ws.path.rglob("*") if not p.name.startswith("workspace.db")
    )
    return tables, files


def read_ids(ws, tok_id, split):
    files = ws.token_files(tok_id)
    return np.fromfile(files[split], dtype=files["dtype"])


# ------------------------------------------------------------------------------------------------ datasets


def test_import_dataset_row_and_files(ws, corpus):
    ds = ws.import_dataset([corpus], val_fraction=0.2)
    assert ds["name"] == "fox" and isinstance(ds["id"], int)
    assert ds["sources"] == [str(corpus.resolve())]
    assert (ds["n_docs"], ds["n_chars"], ds["n_lines"]) == (1, len(TEXT), 300)
    train, val = ws.dataset_files(ds["id"])
    assert train.read_text(encoding="utf-8") + val.read_text(encoding="utf-8") == TEXT
    assert ds["val_chars"] == len(TEXT) - int(len(TEXT) * 0.8)
    assert ws.dataset_preview("fox", 30) == TEXT[:30]
    json.dumps(ds, allow_nan=False)


def test_name_lookup_finds_the_newest_and_unknown_refs_fail(ws, corpus):
    first = ws.import_dataset([corpus], name="books")
    second = ws.import_dataset([corpus], name="books")
    assert ws.dataset("books")["id"] == second["id"] != first["id"]
    assert ws.dataset(first["id"])["id"] == first["id"]
    assert ws.dataset(str(first["id"]))["id"] == first["id"]  # an id typed on a command line
    for call, what, ref in (
        (ws.dataset, "dataset", "nope"),
        (ws.dataset, "dataset", 99),
        (ws.tokenizer, "tokenizer", "nope"),
        (ws.run, "run", 5),
        (ws.dataset_files, "dataset", "nope"),
        (ws.token_files, "tokenizer", 3),
    ):
        with pytest.raises(WorkspaceError) as info:
            call(ref)
        assert str(info.value) == f"no {what} {ref!r} in workspace {ws.path}"


def test_failed_imports_leave_the_workspace_unchanged(ws, corpus, tmp_path):
    ws.import_dataset([corpus], name="keep")  # something already there that must stay as it was
    before = snapshot(ws)
    bad = tmp_path / "corpus"
    bad.mkdir()
    (bad / "a.txt").write_text("fine text\n" * 1000, encoding="utf-8")
    (bad / "b.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(DataError, match="b.txt looks like a program or binary file, not text"):
        ws.import_dataset([bad])
    assert snapshot(ws) == before
    with pytest.raises(ImportCancelled):
        ws.import_dataset([corpus], cancelled=lambda: True)
    assert snapshot(ws) == before
    calls = []
    with pytest.raises(ImportCancelled):  # cancelled late: after reading, before writing
        ws.import_dataset([corpus], cancelled=lambda: calls.append(1) or len(calls) >= 3)
    assert snapshot(ws) == before


def test_failed_tokenizer_training_leaves_the_workspace_unchanged(ws, corpus):
    ds = ws.import_dataset([corpus])
    before = snapshot(ws)
    with pytest.raises(TokenizerCancelled):
        ws.train_tokenizer(ds["id"], "bytebpe", 300, cancelled=lambda: True)
    assert snapshot(ws) == before
    with pytest.raises(TokenizerError):
        ws.train_tokenizer(ds["id"], "bytebpe", 100)
    assert snapshot(ws) == before


def test_ensure_sample_dataset_is_idempotent_and_trainable(ws):
    sample = ws.ensure_sample_dataset()
    assert sample["name"] == "sample" and sample["n_chars"] > 100_000
    # One document a scene, so a newcomer's document-length histogram has a shape and documents have ends.
    assert sample["n_docs"] > 300 and sample["format"] == "jsonl"
    assert ws.dataset_documents(sample["id"], limit=1)[0]["text"].startswith("ACT 1\n\nSCENE 1.")
    assert ws.ensure_sample_dataset()["id"] == sample["id"]
    assert len(ws.datasets()) == 1
    tok = ws.train_tokenizer("sample", "char", 512)
    assert 30 < tok["vocab_size"] < 100
    ids = read_ids(ws, tok["id"], "train")
    assert len(ids) == sample["train_chars"] and (ids != tok["vocab_size"] - 1).all()  # no [UNK] in train


def test_ensure_sample_dataset_adds_nothing_to_a_used_workspace(ws, corpus):
    mine = ws.import_dataset([corpus])
    assert ws.ensure_sample_dataset()["id"] == mine["id"]
    assert [d["name"] for d in ws.datasets()] == ["fox"]


# ------------------------------------------------------------------------------------------------ tokenizers


@pytest.mark.parametrize("kind,vocab", [("char", 512), ("bytebpe", 400)])
def test_tokenizer_memmaps_decode_back_to_the_dataset(ws, corpus, kind, vocab):
    ds = ws.import_dataset([corpus])
    fractions = []
    row = ws.train_tokenizer(ds["id"], kind, vocab, progress=lambda f, m: fractions.append(f))
    assert row["kind"] == kind and row["dataset_id"] == ds["id"] and row["dtype"] == "uint16"
    assert fractions[-1] == 1.0 and all(a <= b + 1e-9 for a, b in zip(fractions, fractions[1:]))
    tok = ws.load_tokenizer(row["id"])
    assert tok.get_vocab_size() == row["vocab_size"]
    train_txt, val_txt = ws.dataset_files(ds["id"])
    for split, path in (("train", train_txt), ("val", val_txt)):
        ids = read_ids(ws, row["id"], split)
        assert len(ids) == row[f"{split}_tokens"]
        assert tok.decode(ids.tolist(), skip_special_tokens=False) == path.read_text(encoding="utf-8")
    assert ws.token_files(row["id"])["vocab_size"] == row["vocab_size"]
    assert ws.tokenizer_path(row["id"]).is_file()


def test_vocab_rows_frequencies_equal_a_direct_count(ws, corpus):
    ds = ws.import_dataset([corpus])
    row = ws.train_tokenizer(ds["id"], "bytebpe", 400)
    ids = np.concatenate([read_ids(ws, row["id"], "train"), read_ids(ws, row["id"], "val")])
    direct = np.bincount(ids, minlength=row["vocab_size"])
    rows = ws.vocab_rows(row["id"])
    assert [r[0] for r in rows] == list(range(row["vocab_size"]))
    assert [r[2] for r in rows] == direct.tolist()
    assert ws.vocab_rows(row["id"], offset=10, limit=5) == rows[10:15]
    shown = {r[1] for r in rows}
    assert "␣the" in shown and "<|endoftext|>" in shown


def test_uint32_for_vocabularies_past_65536(ws, tmp_path):
    wide = tmp_path / "wide.txt"
    wide.write_text("".join(chr(c) for c in range(0x20000, 0x20000 + 66_000)) + "\n", encoding="utf-8")
    ds = ws.import_dataset([wide], val_fraction=0)
    row = ws.train_tokenizer(ds["id"], "char", 100_000)
    assert row["vocab_size"] == 66_002 and row["dtype"] == "uint32"
    ids = read_ids(ws, row["id"], "train")
    assert ids.dtype == np.uint32 and ids.max() > 65_535 and row["val_tokens"] == 0


def test_find_or_train_tokenizer_reuses_an_identical_one(ws, corpus):
    ds = ws.import_dataset([corpus])
    first = ws.find_or_train_tokenizer(ds["id"], "char", 256)
    n = first["vocab_size"]
    assert n < 256  # every character of the text fitted
    assert ws.find_or_train_tokenizer(ds["name"], "char", 256)["id"] == first["id"]
    # Any size that still takes every character gives the same vocabulary: no second training.
    assert ws.find_or_train_tokenizer(ds["id"], "char", 512)["id"] == first["id"]
    assert ws.find_or_train_tokenizer(ds["id"], "char", n)["id"] == first["id"]
    smaller = ws.find_or_train_tokenizer(ds["id"], "char", n - 1)
    assert smaller["id"] != first["id"] and smaller["vocab_size"] == n - 1
    assert ws.find_or_train_tokenizer(ds["id"], "char", 512, min_frequency=3)["id"] not in (first["id"], smaller["id"])
    assert ws.find_or_train_tokenizer(ds["id"], "bytebpe", 300)["kind"] == "bytebpe"
    assert len(ws.tokenizers(ds["id"])) == 4 and len(ws.tokenizers()) == 4


# ------------------------------------------------------------------------------------------------ runs


def make_run(ws, corpus):
    ds = ws.import_dataset([corpus])
    tok = ws.train_tokenizer(ds["id"], "char", 512)
    config = preset("tiny").to_dict()
    config["data"]["dataset"] = ds["id"]
    return ws.create_run("first run", config, ds["id"], tok["id"]), config


def test_runs_metrics_checkpoints_round_trip_and_survive_reopening(ws, corpus):
    run, config = make_run(ws, corpus)
    assert run["status"] == "created" and run["config"] == config and run["max_iters"] == 300
    assert ws.run_dir(run["id"]).is_dir()
    ws.take_lease(run["id"])  # this process trains it, so it reads as running, not interrupted
    ws.update_run(run["id"], status="running", step=20, device="cpu", best_val_loss=2.5, message="training")
    ws.add_metrics(
        run["id"],
        [
            {
                "step": 10,
                "split": "train",
                "loss": 3.1,
                "lr": 1e-3,
                "grad_norm": 0.9,
                "tokens_per_sec": 1234.5,
                "elapsed_s": 1.5,
            },
            {"step": 10, "split": "val", "loss": 3.2, "metrics": {"val_perplexity": 24.5, "val_accuracy": 0.25}},
            {"step": 20, "split": "train", "loss": float("inf")},  # a diverged value must not break JSON
        ],
    )
    ws.add_metrics(run["id"], [{"step": 5, "split": "train", "loss": 3.5}])
    path = ws.run_dir(run["id"]) / "step-20.safetensors"
    ws.add_checkpoint(run["id"], 10, ws.run_dir(run["id"]) / "step-10.safetensors", "a" * 64, val_loss=3.2)
    ws.add_checkpoint(run["id"], 20, path, "b" * 64)

    again = Workspace(ws.path)  # a new instance, as another thread or the next session would open
    r = again.run("first run")
    assert (r["status"], r["step"], r["device"], r["best_val_loss"], r["message"]) == (
        "running",
        20,
        "cpu",
        2.5,
        "training",
    )
    assert r["config"] == config and r["updated"] >= r["created"]
    train = again.metrics(run["id"], "train")
    assert [(m["step"], m["loss"]) for m in train] == [(5, 3.5), (10, 3.1), (20, None)]
    assert train[1] == {
        "step": 10,
        "split": "train",
        "loss": 3.1,
        "lr": 1e-3,
        "grad_norm": 0.9,
        "tokens_per_sec": 1234.5,
        "elapsed_s": 1.5,
        "metrics": {},
    }
    assert again.metrics(run["id"], "val")[0]["metrics"] == {"val_perplexity": 24.5, "val_accuracy": 0.25}
    assert [m["split"] for m in again.metrics(run["id"])] == ["train", "train", "val", "train"]
    assert [c["step"] for c in again.checkpoints(run["id"])] == [10, 20]
    latest = again.latest_checkpoint(run["id"])
    assert (latest["path"], latest["sha256"], latest["val_loss"]) == (str(path), "b" * 64, None)
    again.delete_metrics(run["id"], after_step=10)  # resuming from the step-10 checkpoint
    assert [m["step"] for m in again.metrics(run["id"])] == [5, 10, 10]
    summary = again.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["path"] == str(ws.path)
    assert [len(summary[k]) for k in ("datasets", "tokenizers", "runs")] == [1, 1, 1]
    again.close()


def test_runs_are_listed_oldest_first_and_bad_updates_are_refused(ws, corpus):
    run, config = make_run(ws, corpus)
    second = ws.create_run("second", config, run["dataset_id"], run["tokenizer_id"])
    assert [r["name"] for r in ws.runs()] == ["first run", "second"]
    assert ws.latest_checkpoint(second["id"]) is None and ws.metrics(second["id"]) == []
    with pytest.raises(WorkspaceError, match="no field"):
        ws.update_run(run["id"], colour="red")
    with pytest.raises(WorkspaceError, match="no run 99"):
        ws.update_run(99, status="done")
    with pytest.raises(WorkspaceError, match="no run 99"):
        ws.add_metrics(99, [{"step": 1, "split": "train", "loss": 1.0}])
    with pytest.raises(WorkspaceError, match="no tokenizer 42"):
        ws.create_run("x", config, run["dataset_id"], 42)


# ------------------------------------------------------------------------------------------------ the database


def test_wal_mode_and_pragmas(ws):
    assert ws.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ws.db.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert ws.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with sqlite3.connect(ws.path / "workspace.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stored in the file itself


def test_a_reader_thread_sees_metrics_while_another_writes(ws, corpus):
    run, _ = make_run(ws, corpus)
    errors, seen = [], []

    def write():
        try:
            with Workspace(ws.path) as w:
                for step in range(50):
                    w.add_metrics(run["id"], [{"step": step, "split": "train", "loss": 1.0}])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():
        seen.append(len(ws.metrics(run["id"])))
    writer.join()
    assert not errors and len(ws.metrics(run["id"])) == 50
    assert seen == sorted(seen)


def test_a_newer_schema_is_refused(tmp_path):
    Workspace(tmp_path / "ws").close()
    with sqlite3.connect(tmp_path / "ws" / "workspace.db") as raw:
        raw.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(WorkspaceError, match="newer Transformer Studio"):
        Workspace(tmp_path / "ws")


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "workspace.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(WorkspaceError, match="not a usable workspace database"):
        Workspace(tmp_path / "ws")


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_WORKSPACE", str(tmp_path / "elsewhere"))
    assert Workspace.default_path() == tmp_path / "elsewhere"
    monkeypatch.delenv("STUDIO_WORKSPACE")
    assert Workspace.default_path().parts[-2:] == ("TransformerStudio", "workspace")


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason=f"{SHAKESPEARE} is not there")
def test_tinyshakespeare_char_vocab_matches_nanogpt(ws):
    ds = ws.import_dataset([SHAKESPEARE])
    text = SHAKESPEARE.read_text(encoding="utf-8")
    assert ds["n_chars"] == len(text) and ds["val_chars"] == len(text) - int(len(text) * 0.9)
    row = ws.train_tokenizer(ds["id"], "char", 512)
    assert row["vocab_size"] == 65 + 1  # nanoGPT's 65 characters, then [UNK]
    tok = ws.load_tokenizer(row["id"])
    ids = read_ids(ws, row["id"], "train")
    # Ids follow sorted(set(text)) as in nanoGPT's prepare.py.
    chars = sorted(set(text))
    assert ids[:20].tolist() == [chars.index(c) for c in text[:20]]
    assert tok.decode(ids.tolist()) == text[: int(len(text) * 0.9)]


# ------------------------------------------------------------------------------------------------ issue 4 additions


def test_import_options_cleaning_and_stats_are_stored_with_the_dataset(ws, tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("text,label\nHello  World,a\nhello world,b\nbroken,row,x\nthird one,c\n", encoding="utf-8")
    ds = ws.import_dataset(
        [src],
        name="reviews",
        val_fraction=0.34,
        label_column="label",
        on_bad_record="skip",
        split="documents",
        seed=3,
        cleaning={"lowercase": True, "collapse_whitespace": True, "dedupe_docs": True},
    )
    again = Workspace(ws.path).dataset("reviews")
    assert again == ds
    json.dumps(ds, allow_nan=False)
    assert (ds["format"], ds["split"], ds["seed"], ds["has_labels"]) == ("csv", "documents", 3, True)
    assert (ds["n_docs"], ds["n_train_docs"], ds["n_val_docs"]) == (2, 1, 1)
    assert ds["cleaning"]["lowercase"] and ds["options"]["label_column"] == "label"
    assert ds["stats"]["cleaning"]["dedupe_docs"]["removed_docs"] == 1
    assert ds["stats"]["cleaning"]["lowercase"]["examples"][0] == ["Hello World", "hello world"]
    assert ds["stats"]["bad_records"] == 1 and ds["stats"]["docs_read"] == 3
    docs = ws.dataset_documents(ds["id"], "train") + ws.dataset_documents(ds["id"], "val")
    assert sorted((d["text"], d["label"]) for d in docs) == [("hello world", "a"), ("third one", "c")]


def test_a_schema_1_workspace_is_upgraded_and_its_rows_read_as_before(tmp_path, corpus):
    with Workspace(tmp_path / "ws") as w:
        ds = w.import_dataset([corpus], name="old")
        tok = w.train_tokenizer(ds["id"], "bytebpe", 300)
    # Make it a schema 1 workspace: drop the new columns' values and the version, as an older studio left it.
    with sqlite3.connect(tmp_path / "ws" / "workspace.db") as raw:
        raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        raw.execute("UPDATE datasets SET format = NULL, split = NULL, options = NULL, stats = NULL, cleaning = NULL")
        raw.execute("UPDATE tokenizers SET spec = NULL")
    with Workspace(tmp_path / "ws") as w:
        assert w.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        old = w.dataset("old")
        assert (old["format"], old["split"], old["stats"]) == ("txt", "tail", {})
        assert w.tokenizer(tok["id"])["spec"]["special_tokens"] == {"eos": "<|endoftext|>"}
        # The old tokenizer still counts as the default bytebpe one of its size.
        assert w.find_or_train_tokenizer(old["id"], "bytebpe", 300)["id"] == tok["id"]


def test_a_schema_4_metrics_table_gains_the_metrics_column_and_its_rows_still_read(tmp_path, corpus):
    with Workspace(tmp_path / "ws") as w:
        run, _ = make_run(w, corpus)
    # Make it a schema 4 workspace: its metrics table as the studio before objectives made it, with rows in it.
    with sqlite3.connect(tmp_path / "ws" / "workspace.db") as raw:
        raw.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
        raw.execute("DROP TABLE metrics")
        raw.execute(
            "CREATE TABLE metrics (run_id INTEGER NOT NULL REFERENCES runs(id), step INTEGER NOT NULL, "
            "split TEXT NOT NULL, loss FLOAT, lr FLOAT, grad_norm FLOAT, tokens_per_sec FLOAT, elapsed_s FLOAT)"
        )
        raw.execute("INSERT INTO metrics (run_id, step, split, loss) VALUES (?, 10, 'val', 2.5)", [run["id"]])
    with Workspace(tmp_path / "ws") as w:
        assert "metrics" in w.db["metrics"].columns_dict
        assert w.metrics(run["id"]) == [
            {
                "step": 10,
                "split": "val",
                "loss": 2.5,
                "lr": None,
                "grad_norm": None,
                "tokens_per_sec": None,
                "elapsed_s": None,
                "metrics": {},
            }
        ]
        w.add_metrics(run["id"], [{"step": 20, "split": "val", "loss": 2.0, "metrics": {"val_perplexity": 7.4}}])
        assert [m["metrics"] for m in w.metrics(run["id"], "val")] == [{}, {"val_perplexity": 7.4}]


def test_a_schema_1_database_file_gains_the_new_columns(tmp_path):
    (tmp_path / "ws").mkdir()
    with sqlite3.connect(tmp_path / "ws" / "workspace.db") as raw:
        raw.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        raw.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        raw.execute(
            "CREATE TABLE datasets (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created TEXT NOT NULL, "
            "sources TEXT, val_fraction FLOAT, n_docs INTEGER, n_chars INTEGER, n_lines INTEGER, "
            "n_bytes INTEGER, train_chars INTEGER, val_chars INTEGER)"
        )
        raw.execute("INSERT INTO datasets (id, name, created, sources) VALUES (1, 'legacy', 'then', '[]')")
    with Workspace(tmp_path / "ws") as w:
        cols = {r[1] for r in w.db.execute("PRAGMA table_info(datasets)")}
        assert {"format", "split", "options", "stats", "cleaning", "n_train_docs"} <= cols
        assert w.dataset("legacy")["split"] == "tail" and "spec" in w.db["tokenizers"].columns_dict


def test_tokenizer_spec_is_stored_and_matched(ws, corpus):
    ds = ws.import_dataset([corpus])
    row = ws.train_tokenizer(ds["id"], "bpe", 300, min_frequency=2, special_tokens={"pad": "<pad>"})
    assert row["spec"] == {
        "kind": "bpe",
        "vocab_size": 300,
        "min_frequency": 2,
        "special_tokens": {"pad": "<pad>", "unk": "[UNK]", "eos": "<|endoftext|>"},
        "normalizer": "none",
        "pre_tokenizer": "metaspace",
    }
    same = ws.find_or_train_tokenizer(ds["id"], "bpe", 300, min_frequency=2, special_tokens={"pad": "<pad>"})
    assert same["id"] == row["id"]
    other = ws.find_or_train_tokenizer(ds["id"], "bpe", 300)
    assert other["id"] != row["id"] and other["spec"]["min_frequency"] == 0
    with pytest.raises(TokenizerError, match="unknown tokenizer option"):
        ws.train_tokenizer(ds["id"], "bpe", 300, colour="red")


@pytest.mark.parametrize("kind,vocab", [("bpe", 300), ("wordpiece", 300), ("unigram", 150)])
def test_new_kinds_make_token_files_that_decode_to_the_dataset(ws, corpus, kind, vocab):
    ds = ws.import_dataset([corpus])
    row = ws.train_tokenizer(ds["id"], kind, vocab)
    tok = ws.load_tokenizer(row["id"])
    train_txt, _ = ws.dataset_files(ds["id"])
    ids = read_ids(ws, row["id"], "train")
    decoded = tok.decode(ids.tolist(), skip_special_tokens=False)
    text = train_txt.read_text(encoding="utf-8")
    if kind == "wordpiece":
        assert "".join(decoded.split()) == "".join(text.split())
    else:
        assert decoded == text


def test_vocab_rows_carry_merge_ranks_for_bpe(ws, corpus):
    ds = ws.import_dataset([corpus])
    bpe = ws.train_tokenizer(ds["id"], "bytebpe", 300)
    rows = ws.vocab_rows(bpe["id"])
    assert all(len(r) == 4 for r in rows)
    ranked = [r for r in rows if r[3] is not None]
    assert len(ranked) == 300 - 257 and sorted(r[3] for r in ranked) == list(range(len(ranked)))
    assert rows[0][1] == "<|endoftext|>" and rows[0][3] is None
    char = ws.train_tokenizer(ds["id"], "char", 100)
    assert all(r[3] is None for r in ws.vocab_rows(char["id"]))


def test_dataset_documents_of_an_old_dataset_fall_back_to_paragraphs(ws, tmp_path):
    src = tmp_path / "p.txt"
    src.write_text("first para\nline two\n\nsecond para\n", encoding="utf-8")
    ds = ws.import_dataset([src], val_fraction=0)
    train, _ = ws.dataset_files(ds["id"])
    assert [d["text"] for d in ws.dataset_documents(ds["id"])] == ["first para\nline two\n\nsecond para"]
    train.with_suffix(".idx").unlink()  # as imported before documents were indexed
    assert [d["text"] for d in ws.dataset_documents(ds["id"])] == ["first para\nline two", "second para"]
    with pytest.raises(WorkspaceError, match="split must be"):
        ws.dataset_documents(ds["id"], "test")


def test_delete_checkpoints_forgets_only_the_named_rows_of_that_run(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ds = ws.ensure_sample_dataset()
    tok = ws.train_tokenizer(ds["id"], "char", 100)
    a = ws.create_run("a", {}, ds["id"], tok["id"])
    b = ws.create_run("b", {}, ds["id"], tok["id"])
    for run in (a, b):
        ws.add_checkpoint(run["id"], 10, "/ck/step-10.json", "x")
        ws.add_checkpoint(run["id"], 20, "/ck/latest.json", "y")
    ws.delete_checkpoints(a["id"], ["/ck/step-10.json"])
    assert [c["path"] for c in ws.checkpoints(a["id"])] == ["/ck/latest.json"]
    assert len(ws.checkpoints(b["id"])) == 2
    ws.delete_checkpoints(a["id"], [])
    assert len(Workspace(tmp_path / "ws").checkpoints(a["id"])) == 1


def test_a_killed_import_leaves_no_debris_once_the_workspace_is_reopened(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    ws_path = tmp_path / "ws"
    with Workspace(ws_path) as ws:
        before = ws.summary()["datasets"]
    big = tmp_path / "big.txt"
    big.write_text(("All the world's a stage, and all the men and women merely players.\n" * 400_000))
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "import", str(big), "--workspace", str(ws_path)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not list((ws_path / "datasets").glob(".tmp-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the import ended before it could be killed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list((ws_path / "datasets").glob(".tmp-*"))  # what SIGKILL leaves behind
    with Workspace(ws_path) as ws:
        assert ws.summary()["datasets"] == before
    assert not list((ws_path / "datasets").glob(".tmp-*"))


# ------------------------------------------------------------------------------------------------ trash


def _files(path):
    return sorted(
        str(p.relative_to(path))
        for p in path.rglob("*")
        if "trash" not in p.parts and not p.name.startswith("workspace.db")
    )


def test_delete_moves_to_the_trash_and_restore_puts_everything_back(ws, corpus):
    ds = ws.import_dataset([corpus], name="fox")
    tok = ws.train_tokenizer(ds["id"], "bytebpe", 300)
    before_rows, before_files = ws.summary(), _files(ws.path)

    with pytest.raises(WorkspaceError, match=r"dataset 'fox' is still used by 1 tokenizer \('fox-bytebpe-300'\)"):
        ws.delete("dataset", ds["id"])
    gone = ws.delete("tokenizer", tok["id"])
    assert gone["kind"] == "tokenizer" and gone["name"] == tok["name"] and gone["item_id"] == tok["id"]
    assert ws.tokenizers() == [] and not (ws.path / "tokenizers" / str(tok["id"])).exists()
    with pytest.raises(WorkspaceError):
        ws.load_tokenizer(tok["id"])
    gone_ds = ws.delete("dataset", "fox")
    assert ws.datasets() == [] and [t["id"] for t in ws.trash()] == [gone["id"], gone_ds["id"]]

    # A new import does not take the deleted one's id, so restoring gives it back unchanged.
    other = ws.import_dataset([corpus], name="other")
    assert other["id"] != ds["id"]
    with pytest.raises(WorkspaceError, match="restore that dataset first"):
        ws.restore(gone["id"])
    assert ws.restore(gone_ds["id"])["name"] == "fox"
    assert ws.restore(gone["id"])["id"] == tok["id"]
    assert ws.trash() == []
    ws.delete("dataset", other["id"])
    ws.empty_trash()
    assert ws.summary() == before_rows and _files(ws.path) == before_files
    assert ws.load_tokenizer(tok["id"]).get_vocab_size() == tok["vocab_size"]
    with pytest.raises(WorkspaceError, match="nothing with id"):
        ws.restore(gone["id"])


def test_a_tokenizer_a_run_uses_cannot_be_deleted_and_old_trash_is_emptied(ws, corpus):
    import datetime as dt

    ds = ws.import_dataset([corpus])
    tok = ws.train_tokenizer(ds["id"], "char", 100)
    ws.create_run("baby", {}, ds["id"], tok["id"])
    with pytest.raises(WorkspaceError, match=r"still used by 1 run \('baby'\)"):
        ws.delete("tokenizer", tok["id"])
    with pytest.raises(WorkspaceError, match="only datasets, tokenizers and runs"):
        ws.delete("model", 1)
    spare = ws.train_tokenizer(ds["id"], "char", 50)
    entry = ws.delete("tokenizer", spare["id"])
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=31)).isoformat(timespec="seconds")
    with ws._write():
        ws.db.execute("UPDATE trash SET deleted = ? WHERE id = ?", [old, entry["id"]])
    with Workspace(ws.path) as again:  # opening a workspace empties what was deleted 30+ days ago
        assert again.trash() == []
    assert not list((ws.path / "trash").iterdir())


def test_a_deleted_run_comes_back_with_its_curves_and_checkpoints(ws, corpus):
    ds = ws.import_dataset([corpus])
    tok = ws.train_tokenizer(ds["id"], "char", 100)
    run = ws.create_run("short", {"train": {"max_iters": 10}}, ds["id"], tok["id"])
    ws.add_metrics(run["id"], [{"step": s, "split": "train", "loss": 3.0 - s / 10} for s in range(10)])
    ck = ws.run_dir(run["id"]) / "latest.safetensors"
    ck.write_bytes(b"weights")
    ws.add_checkpoint(run["id"], 10, ck, "abc")
    before = (ws.summary(), ws.metrics(run["id"]), ws.checkpoints(run["id"]))

    with pytest.raises(WorkspaceError, match=r"tokenizer .* still used by 1 run \('short'\)"):
        ws.delete("tokenizer", tok["id"])
    entry = ws.delete("run", "short")
    assert ws.runs() == [] and ws.metrics(run["id"]) == [] and not ck.exists()
    assert ws.create_run("next", {}, ds["id"], tok["id"])["id"] != run["id"]  # its id stays reserved
    ws.delete("run", "next")
    ws.delete("tokenizer", tok["id"])  # nothing uses it now
    with pytest.raises(WorkspaceError, match="restore that tokenizer first"):
        ws.restore(entry["id"])
    ws.restore(ws.trash()[-1]["id"])
    assert ws.restore(entry["id"])["name"] == "short"
    assert (ws.summary()["runs"], ws.metrics(run["id"]), ws.checkpoints(run["id"])) == (
        before[0]["runs"],
        before[1],
        before[2],
    )
    assert ck.read_bytes() == b"weights"
