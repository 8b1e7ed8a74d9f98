"""A vocabulary too small for its text: the share read as [UNK] is measured when the tokenizer is trained, kept
on its row, and said before training (engine log, CLI, Vocabulary panel); a prompt's unknown characters are
named in the playground and by the CLI."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine import protocol as p
from engine.config import preset, unknown_share_warning
from engine.store import Workspace
from engine.run_generation import generate_text
from engine.run_setup import prepare_run
from engine.train import run_training
from studio.coverage import coverage_note, coverage_warning

ROOT = Path(__file__).resolve().parents[1]
TEXT = "".join(f"the cat sat on mat {i % 7}. Über café ☃\n" for i in range(300))
SMALL = [
    "model.n_layer=1",
    "model.n_head=2",
    "model.n_embd=32",
    "model.block_size=16",
    "train.batch_size=4",
    "train.max_iters=3",
    "train.lr_decay_iters=3",
    "train.warmup_iters=1",
    "train.eval_interval=3",
    "train.eval_iters=1",
    "train.device=cpu",
    "train.probe_attention=false",
]


@pytest.fixture
def ws(tmp_path):
    src = tmp_path / "cats.txt"
    src.write_text(TEXT, encoding="utf-8")
    with Workspace(tmp_path / "ws") as w:
        w.import_dataset([src], name="cats")
        yield w


def measured_share(w, tok_row) -> float:
    """The share of the dataset's characters that the tokenizer has no token for, counted here directly."""
    tok = w.load_tokenizer(tok_row["id"])
    text = "".join(path.read_text(encoding="utf-8") for path in w.dataset_files(tok_row["dataset_id"]))
    return sum(tok.token_to_id(c) is None for c in text) / len(text)


def test_the_unknown_share_is_measured_when_a_tokenizer_is_trained_and_kept_on_its_row(ws, tmp_path):
    small = ws.train_tokenizer("cats", "char", 12)
    assert small["unk_share"] == pytest.approx(measured_share(ws, small), abs=1e-9)
    assert small["unk_share"] > 0.2
    # the rarest characters are the ones left out, and named
    assert "☃" in small["unk_examples"] and "é" in small["unk_examples"]
    whole = ws.train_tokenizer("cats", "char", 512)
    assert whole["unk_share"] == 0 and whole["unk_examples"] == []
    byte_level = ws.train_tokenizer("cats", "bytebpe", 300)
    assert byte_level["unk_share"] == 0
    ws.close()
    with Workspace(tmp_path / "ws") as again:  # on disk, not only in the returned row
        assert again.tokenizer(small["id"])["unk_share"] == small["unk_share"]
        assert again.tokenizer(small["id"])["unk_examples"] == small["unk_examples"]


def test_wordpiece_names_the_unknown_character_not_the_whole_word(ws):
    from engine.tokenizer import unknown_characters, unknown_id

    row = ws.train_tokenizer("cats", "wordpiece", 200)
    tok = ws.load_tokenizer(row["id"])
    # WordPiece reads the whole word "c✓t" as [UNK]; the character to blame is ✓
    assert unknown_characters(tok, "the c✓t sat", unknown_id(tok, row["spec"])) == ["✓"]


def test_a_workspace_from_before_opens_and_its_tokenizers_have_no_share(tmp_path, ws):
    tok = ws.train_tokenizer("cats", "char", 12)
    ws.close()
    with sqlite3.connect(tmp_path / "ws" / "workspace.db") as raw:  # as schema 3 left it
        raw.execute("ALTER TABLE tokenizers DROP COLUMN unk_share")
        raw.execute("ALTER TABLE tokenizers DROP COLUMN unk_examples")
        raw.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with Workspace(tmp_path / "ws") as w:
        old = w.tokenizer(tok["id"])
        assert old["unk_share"] is None and old["unk_examples"] == []
        assert coverage_warning(old, w.dataset("cats")) is None  # unmeasured: nothing is claimed
        assert w.train_tokenizer("cats", "char", 12)["unk_share"] > 0.2


def test_coverage_warning_in_plain_words():
    row = {"id": 3, "dataset_id": 1, "unk_share": 0.123, "unk_examples": ["☃", " "]}
    assert coverage_warning(row, {"id": 1, "name": "sample"}) == (
        "12 % of the text in 'sample' is not in this vocabulary and reads as [UNK] (for example ☃ and ␣); "
        "train a larger vocabulary"
    )
    assert coverage_warning({**row, "unk_share": 0.009}, {"id": 1, "name": "sample"}) is None  # below 1 %
    assert coverage_warning({**row, "unk_share": None}, {"id": 1, "name": "sample"}) is None
    assert coverage_note({**row, "unk_share": 0.0}, None) == (
        "Every character of the text is in this vocabulary: nothing reads as [UNK].",
        "info",
    )
    assert coverage_note({**row, "unk_share": 0.004}, None) == (
        "99.6 % of the text is in this vocabulary; 0.4 % reads as [UNK].",
        "info",
    )


def tiny(**tokenizer):
    cfg = preset("tiny").with_overrides(["data.dataset=cats", *SMALL])
    for key, value in tokenizer.items():
        setattr(cfg.tokenizer, key, value)
    return cfg


def events_of(w, cfg):
    seen = []
    run = prepare_run(w, cfg, on_event=lambda kind, d: seen.append((kind, d.get("message", ""))))
    return run, [(k, m) for k, m in seen if k in ("warning", "info")]


def test_a_run_on_a_vocabulary_with_poor_coverage_is_warned_about(ws):
    # the engine trains the vocabulary itself (none chosen): a 12-character one
    run, said = events_of(ws, tiny(kind="char", vocab_size=12))
    tok = ws.tokenizer(run["tokenizer_id"])
    assert said == [
        (
            "warning",
            f"vocabulary {tok['name']!r}: " + unknown_share_warning(tok["unk_share"], "cats", tok["unk_examples"]),
        )
    ]
    assert "of the text in 'cats' is not in this vocabulary and reads as [UNK]" in said[0][1]
    # a chosen one with poor coverage: the same
    _, said = events_of(ws, tiny(tokenizer=tok["id"]))
    assert [k for k, _ in said] == ["warning"]
    # one that covers the text: no warning; trained for the run, it says so plainly
    _, said = events_of(ws, tiny(kind="char", vocab_size=512))
    assert said == [("info", said[0][1])] and "trained the vocabulary" in said[0][1]


def test_generate_names_the_prompt_characters_the_model_never_saw(ws):
    run, _ = events_of(ws, tiny(kind="char", vocab_size=512))
    assert run_training(ws, run["id"], on_event=lambda *a: None) == "finished"
    out = generate_text(ws, run["id"], "☃ the ✓ ☃", max_new_tokens=2, seed=1, device="cpu")
    assert out["unknown_chars"] == ["✓"]  # ☃ is in this text's vocabulary; ✓ is not
    assert generate_text(ws, run["id"], "the cat", max_new_tokens=1, seed=1, device="cpu")["unknown_chars"] == []


def cli(*args, workspace):
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )


def test_the_cli_prints_the_coverage_warning_and_the_unknown_prompt_characters(tmp_path):
    src = tmp_path / "cats.txt"
    src.write_text(TEXT, encoding="utf-8")
    with Workspace(tmp_path / "ws") as w:
        w.import_dataset([src], name="cats")
    sets = [x for item in ["data.dataset=cats", "tokenizer.vocab_size=12", *SMALL] for x in ("--set", item)]
    r = cli("train", "--preset", "tiny", *sets, workspace=tmp_path / "ws")
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and "of the text in 'cats' is not in this vocabulary and reads as [UNK]" in warning[0]
    run_id = r.stdout.strip().splitlines()[-1]

    r = cli(
        "generate",
        "--run",
        run_id,
        "--prompt",
        "✓the",
        "--max-new-tokens",
        "2",
        "--seed",
        "1",
        workspace=tmp_path / "ws",
    )
    assert r.returncode == 0, r.stderr
    assert "warning: ✓ is not in this model's vocabulary; it reads as [UNK]" in r.stderr.splitlines()


# ------------------------------------------------------------------------------------ the window, real engine


def test_the_window_warns_before_and_the_playground_names_unknown_characters(qtbot, session):
    """A run on a 12-character vocabulary of the sample text: the engine's warning reaches the window (the
    status bar shows such notices), the Vocabulary panel says how much is unknown, the playground names ☃."""
    from studio.panels.playground import PlaygroundPanel
    from studio.panels.vocab import VocabPanel

    s = session
    qtbot.waitUntil(lambda: bool(s.workspace.get("datasets")), timeout=30_000)
    sample = next(d for d in s.workspace["datasets"] if d["name"] == "sample")
    notices = []
    s.notice.connect(lambda level, text: notices.append((level, text)))
    cfg = preset("tiny").with_overrides(
        [f"data.dataset={sample['id']}", "tokenizer.kind=char", "tokenizer.vocab_size=12", *SMALL]
    )
    ended = []
    s.statusReceived.connect(
        lambda st: ended.append(st) if st.run is not None and st.state in ("finished", "stopped", "failed") else None
    )
    s.request(p.TrainRequest(config=cfg.to_dict()))
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended[0].state == "finished", ended[0].message
    assert [level for level, text in notices if "reads as [UNK]" in text] == ["warning"]
    assert any("of the text in 'sample' is not in this vocabulary" in text for _, text in notices)

    s.refresh_workspace()
    qtbot.waitUntil(lambda: any(r.get("status") == "finished" for r in s.workspace.get("runs", [])), timeout=10_000)
    run = [r for r in s.workspace["runs"] if r.get("status") == "finished"][-1]
    tok = next(t for t in s.workspace["tokenizers"] if t["id"] == run["tokenizer_id"])
    vocab = VocabPanel(s)
    qtbot.addWidget(vocab)
    s.select_dataset(sample)
    s.select_tokenizer(tok)
    assert "of the text in 'sample' is not in this vocabulary and reads as [UNK]" in vocab.tokenizer_info.text()

    play = PlaygroundPanel(s)
    qtbot.addWidget(play)
    play.show()
    play.run_combo.setCurrentIndex(play.run_combo.findData(run["id"]))
    play.prompt.setPlainText("☃ ")
    play.max_new.setValue(2)
    play.generate_button.click()
    qtbot.waitUntil(lambda: not play.writing, timeout=60_000)
    assert not play.error_label.isVisible(), play.error_label.text()
    assert play.stats_label.text().splitlines()[-1] == "☃ is not in this model's vocabulary; it reads as [UNK]"
