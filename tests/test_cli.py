"""`studio-engine` run as a user would: `python -m engine.cli` in a subprocess on a workspace in tmp_path."""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.store import Workspace

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--set",
    "model.n_layer=1",
    "--set",
    "model.n_embd=32",
    "--set",
    "model.n_head=2",
    "--set",
    "model.block_size=16",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.eval_iters=3",
    "--set",
    "train.device=cpu",
]


# One thread: tiny models run faster on one, and a busy machine does not slow them down as much.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
ENV.pop("STUDIO_ENGINE_DEBUG", None)


def cli(*args, workspace=None, input=None, timeout=120):
    cmd = [sys.executable, "-m", "engine.cli", *map(str, args)]
    if workspace is not None:
        cmd += ["--workspace", str(workspace)]
    env = ENV.copy()
    return subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout, cwd=ROOT, env=env)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def assert_one_error_line(r, code=None):
    assert r.returncode != 0 if code is None else r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def snapshot(path: Path):
    """What a user could see of a workspace: its rows, and the files under it (the database aside)."""
    with Workspace(path) as ws:
        rows = ws.summary()
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if not p.name.startswith("workspace.db"))
    return rows, files


def _corpus(n_lines=500, seed=1):
    rng = random.Random(seed)
    words = "the a cat dog sat ran on under mat log".split()
    return "\n".join(" ".join(rng.choice(words) for _ in range(6)) + "." for _ in range(n_lines)) + "\n"


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A workspace with a dataset and a char tokenizer, made through the CLI; returns (ws path, ids, outputs)."""
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "words.txt"
    corpus.write_text(_corpus(), encoding="utf-8")
    ws = root / "ws"
    imp = cli("import", corpus, "--name", "words", "--val-fraction", "0.2", workspace=ws)
    assert imp.returncode == 0, imp.stderr
    dataset = int(last_line(imp.stdout))
    tok = cli("tokenizer", "train", "--dataset", dataset, "--kind", "char", "--vocab-size", 40, workspace=ws)
    assert tok.returncode == 0, tok.stderr
    return {
        "ws": ws,
        "dataset": dataset,
        "tokenizer": int(last_line(tok.stdout)),
        "import": imp,
        "tokenizer_out": tok,
        "root": root,
    }


def test_import_and_tokenizer_print_stats_and_the_id_last(prepared):
    imp, tok = prepared["import"], prepared["tokenizer_out"]
    assert "words" in imp.stdout and "characters" in imp.stdout
    assert "%" in imp.stderr  # progress goes to stderr, never into the output a script parses
    with Workspace(prepared["ws"]) as ws:
        ds = ws.dataset(prepared["dataset"])
        assert ds["name"] == "words" and ds["val_fraction"] == 0.2
        assert ws.tokenizer(prepared["tokenizer"])["dataset_id"] == ds["id"]
    assert "char" in tok.stdout


def test_config_show_and_presets():
    r = cli("config", "show", "--preset", "tiny", "--set", "model.n_layer=3")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["model"]["n_layer"] == 3 and cfg["model"]["n_embd"] == 64  # the preset, then the override
    assert set(cfg) == {"data", "tokenizer", "model", "objective", "train"}
    default = json.loads(cli("config", "show").stdout)
    assert default["model"]["n_layer"] == 4  # "baby"
    presets = cli("config", "presets").stdout.splitlines()
    names = [line.split()[0] for line in presets]
    # in resources/presets/order.txt's order: the GPTs first, then the classic recipes of other architectures
    assert names == ["baby", "tiny", "shakespeare-char", "small-bpe", "bert-mini", "t5-mini", "transformer-2017-mini"]


@pytest.fixture(scope="module")
def first_run(prepared, tmp_path_factory):
    """`studio-engine train CONFIG.json` of run "first" (40 steps, evaluated at 20 and 40)."""
    cfg = json.loads(cli("config", "show", "--preset", "tiny").stdout)
    cfg["data"]["dataset"] = prepared["dataset"]
    cfg["tokenizer"]["tokenizer"] = prepared["tokenizer"]
    path = tmp_path_factory.mktemp("config") / "run.json"
    path.write_text(json.dumps(cfg))
    return cli(
        "train",
        path,
        "--name",
        "first",
        *TINY,
        "--set",
        "train.max_iters=40",
        "--set",
        "train.eval_interval=20",
        workspace=prepared["ws"],
    )


def test_train_from_a_config_file_then_runs_and_generate(prepared, first_run):
    ws = prepared["ws"]
    r = first_run
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == ["step 20", "step 40"]
    assert "train loss" in lines[0] and "val loss" in lines[0] and "tok/s" in lines[0]
    run_id = int(lines[-1])
    with Workspace(ws) as w:
        run = w.run(run_id)
        assert run["name"] == "first" and run["status"] == "finished" and run["step"] == 40
        assert run["config"]["model"]["n_embd"] == 32 and run["tokenizer_id"] == prepared["tokenizer"]
        assert float(lines[-2].split("val loss ")[1].split()[0]) == pytest.approx(run["best_val_loss"], abs=1e-4)

    runs = cli("runs", workspace=ws)
    assert runs.returncode == 0
    mine = [line for line in runs.stdout.splitlines() if line.split()[0] == str(run_id)]
    assert len(mine) == 1 and "first" in mine[0] and "finished" in mine[0] and "40/40" in mine[0]
    assert str(prepared["dataset"]) in cli("datasets", workspace=ws).stdout
    assert "words" in cli("tokenizers", workspace=ws).stdout

    g = cli(
        "generate",
        "--run",
        run_id,
        "--prompt",
        "the cat",
        "--max-new-tokens",
        30,
        "--seed",
        5,
        "--temperature",
        0.9,
        "--top-k",
        8,
        workspace=ws,
    )
    assert g.returncode == 0, g.stderr
    assert g.stdout.startswith("the cat") and len(g.stdout) > len("the cat") + 20
    assert "30 tokens" in g.stderr
    again = cli(
        "generate",
        "--run",
        "first",
        "--prompt",
        "the cat",
        "--max-new-tokens",
        30,
        "--seed",
        5,
        "--temperature",
        0.9,
        "--top-k",
        8,
        workspace=ws,
    )
    assert again.stdout == g.stdout  # by name, and the seed repeats


def test_attention_writes_an_npz_and_generate_compares_checkpoints_and_modes(prepared, first_run, tmp_path):
    ws = prepared["ws"]
    run_id = int(last_line(first_run.stdout))
    out = tmp_path / "look.npz"
    r = cli(
        "attention", "--run", run_id, "--text", "the cat sat on the mat", "--out", out, "--max-tokens", 12, workspace=ws
    )
    assert r.returncode == 0, r.stderr
    assert last_line(r.stdout) == str(out) and "12 tokens" in r.stderr
    with np.load(out, allow_pickle=False) as z:
        assert set(z.files) == {"attn", "tokens"}
        attn, tokens = z["attn"], list(z["tokens"])
    assert attn.dtype == np.float32 and attn.shape == (1, 2, 12, 12)  # [layer, head, query, key]
    assert "".join(tokens) == "the cat sat on the mat"[-12:].replace(" ", "␣")
    assert np.allclose(attn.sum(-1), 1.0, atol=1e-5) and not np.triu(attn, 1).any()

    listed = cli("checkpoints", "--run", run_id, workspace=ws)
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "step-00000000",
        "step-00000020",
        "step-00000040",
        "latest",
    ]

    def gen(*args):
        g = cli("generate", "--run", run_id, "--prompt", "the", "--max-new-tokens", 20, *args, workspace=ws)
        assert g.returncode == 0, g.stderr
        return g

    greedy = gen("--mode", "greedy")
    assert "checkpoint latest (step 40)" in greedy.stderr
    wide = gen("--mode", "beam", "--beam-width", 4, "--length-penalty", 0.5)
    assert wide.stdout.startswith("the") and "20 tokens" in wide.stderr
    untrained = gen("--mode", "greedy", "--checkpoint", "step-00000000")
    assert untrained.stdout != greedy.stdout and "step-00000000 (step 0)" in untrained.stderr


def test_train_from_stdin_with_a_preset_style_config(prepared):
    cfg = {
        "data": {"dataset": "words"},
        "tokenizer": {"kind": "char", "vocab_size": 40},
        "train": {"max_iters": 6, "eval_interval": 3, "warmup_iters": 2, "lr_decay_iters": 6},
    }
    r = cli("train", "-", *TINY, input=json.dumps(cfg), workspace=prepared["ws"])
    assert r.returncode == 0, r.stderr
    assert [line.split(":")[0] for line in r.stdout.splitlines()[:-1]] == ["step 3", "step 6"]
    with Workspace(prepared["ws"]) as w:
        # The same dataset, kind and vocabulary size reuse the tokenizer instead of training another.
        assert w.run(int(last_line(r.stdout)))["tokenizer_id"] == prepared["tokenizer"]


def test_ctrl_c_stops_with_a_checkpoint_and_resume_finishes(prepared):
    ws = prepared["ws"]
    cmd = [
        sys.executable,
        "-m",
        "engine.cli",
        "train",
        "--preset",
        "tiny",
        *TINY,
        "--set",
        "data.dataset=words",
        "--set",
        "tokenizer.vocab_size=40",
        "--set",
        "train.max_iters=3000",
        "--set",
        "train.eval_interval=20",
        "--name",
        "interrupted",
        "--workspace",
        str(ws),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV)
    try:
        first = proc.stdout.readline()  # the first evaluation: training is under way
        assert first.startswith("step 20:"), first + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    run_id = int(last_line(out))
    with Workspace(ws) as w:
        run = w.run(run_id)
        assert run["status"] == "stopped" and 20 <= run["step"] < 3000
        assert w.latest_checkpoint(run_id)["step"] == run["step"]
        stopped_at = run["step"]

    # Resuming continues to max_iters; shorten the run's horizon first so the test stays quick.
    with Workspace(ws) as w:
        cfg = w.run(run_id)["config"]
        cfg["train"]["max_iters"] = stopped_at + 10
        w.update_run(run_id, config=cfg, max_iters=stopped_at + 10)
    r = cli("train", "--resume", run_id, workspace=ws)
    assert r.returncode == 0, r.stderr
    assert int(last_line(r.stdout)) == run_id
    assert r.stdout.splitlines()[-2].startswith(f"step {stopped_at + 10}:")
    with Workspace(ws) as w:
        run = w.run(run_id)
        assert run["status"] == "finished" and run["step"] == stopped_at + 10
        steps = [m["step"] for m in w.metrics(run_id, "train")]
        assert steps == sorted(set(steps))  # no step logged twice across the interruption


@pytest.mark.parametrize(
    "args, code",
    [
        (["import", "{root}/missing.txt"], 1),
        (["import", "{root}/binary.dat"], 1),
        (["train", "--preset", "tiny", "--set", "data.dataset=words", "--set", "model.n_layer"], 2),
        (["train", "--preset", "tiny", "--set", "data.dataset=words", "--set", "model.heads=2"], 2),
        (["train", "--preset", "huge", "--set", "data.dataset=words"], 2),
        (["config", "show", "--preset", "huge"], 2),
        (["train", "{root}/missing.json"], 1),
        (["train", "--preset", "tiny"], 2),  # no dataset chosen
        (["train", "--preset", "tiny", "--set", "data.dataset=words", "--set", "model.n_head=3"], 2),
        (["train", "--preset", "tiny", "--set", "data.dataset=nosuch"], 1),
        (["generate", "--run", "9999", "--prompt", "x"], 1),
        (["generate", "--run", "first", "--checkpoint", "step-00000007"], 1),
        (["generate", "--run", "first", "--mode", "beam", "--beam-width", "0"], 1),
        (["generate", "--run", "first", "--mode", "nucleus"], 2),
        (["attention", "--run", "first", "--text", "", "--out", "{root}/empty.npz"], 1),
        (["attention", "--run", "first", "--text", "the", "--out", "{root}/no-such-folder/a.npz"], 1),
        (["attention", "--run", "first", "--text", "the", "--out", "{root}/a.txt"], 2),
        (["attention", "--run", "first", "--text", "the"], 2),
        (["train", "--resume", "9999"], 1),
        (["tokenizer", "train", "--dataset", "words", "--kind", "bytebpe", "--vocab-size", "100"], 1),
        (["train", "--preset", "tiny", "--bogus"], 2),
    ],
)
def test_bad_input_is_one_error_line_and_changes_nothing(prepared, first_run, args, code):
    root = prepared["root"]
    (root / "binary.dat").write_bytes(bytes(range(256)) * 8)
    before = snapshot(prepared["ws"])
    r = cli(*[a.format(root=root) for a in args], workspace=prepared["ws"])
    assert_one_error_line(r, code)
    assert r.stdout == ""
    assert snapshot(prepared["ws"]) == before


def test_csv_import_with_cleaning_then_compare_and_export_tokenizers(tmp_path):
    ws = tmp_path / "ws"
    rows = ["text,label", '"Hello THERE, friend.",a', '"Hello THERE, friend.",a'] + [
        f'"line {i} of the corpus, with some words.",x' for i in range(200)
    ]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    r = cli(
        "import",
        tmp_path / "t.csv",
        "--column",
        "text",
        "--label-column",
        "label",
        "--clean",
        "lowercase,dedupe-docs",
        "--split",
        "documents",
        "--seed",
        "1",
        workspace=ws,
    )
    assert r.returncode == 0, r.stderr
    assert "201 document(s)" in r.stdout  # the duplicate document was dropped
    with Workspace(ws) as w:
        train, val = w.dataset_files(last_line(r.stdout))
        text = train.read_text() + val.read_text()
    assert "hello there, friend." in text and "THERE" not in text
    ids = []
    for kind, size in (("bpe", "300"), ("char", "100")):
        r = cli("tokenizer", "train", "--dataset", "t", "--kind", kind, "--vocab-size", size, workspace=ws)
        assert r.returncode == 0, r.stderr
        ids.append(last_line(r.stdout))
    r = cli("tokenizer", "compare", *ids, "--text", "hello there friend", workspace=ws)
    assert r.returncode == 0, r.stderr
    assert "bytes/token" in r.stdout and "h | e | l | l | o" in r.stdout
    r = cli("tokenizer", "export", ids[0], tmp_path / "tok.json", workspace=ws)
    assert r.returncode == 0 and last_line(r.stdout) == str(tmp_path / "tok.json")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "tok.json"))
    assert tok.decode(tok.encode("hello there").ids).replace(" ", "") == "hellothere"
    assert_one_error_line(cli("import", tmp_path / "t.csv", "--clean", "bogus", workspace=ws), code=2)


def test_folder_import_patterns_paragraphs_and_tokenizer_spec_flags(tmp_path):
    ws = tmp_path / "ws"
    folder = tmp_path / "notes"
    (folder / "drafts").mkdir(parents=True)
    (folder / "a.md").write_text("First Para one.\n\nSecond PARA two.\n\nThird para three.\n")
    (folder / "b.txt").write_text("plain text file that the md pattern leaves out\n")
    (folder / "drafts" / "c.md").write_text("a draft that the exclude pattern leaves out\n")
    r = cli(
        "import",
        folder,
        "--include",
        "*.md",
        "--exclude",
        "drafts/*",
        "--doc-unit",
        "paragraph",
        "--regex",
        "Second",
        "--regex-action",
        "drop_docs",
        "--val-fraction",
        "0",
        workspace=ws,
    )
    assert r.returncode == 0, r.stderr
    with Workspace(ws) as w:
        ds = w.dataset(last_line(r.stdout))
        text = w.dataset_files(ds["id"])[0].read_text()
    assert ds["n_docs"] == 2 and "First Para" in text and "Third" in text
    assert "Second" not in text and "plain text" not in text and "draft" not in text
    assert_one_error_line(cli("import", folder, "--regex-action", "keep_docs", workspace=ws), code=2)

    r = cli(
        "tokenizer",
        "train",
        "--dataset",
        ds["id"],
        "--kind",
        "wordpiece",
        "--vocab-size",
        120,
        "--normalizer",
        "lowercase",
        "--special",
        "bos=[BOS]",
        "--special",
        "mask=",
        "--min-frequency",
        1,
        workspace=ws,
    )
    assert r.returncode == 0, r.stderr
    with Workspace(ws) as w:
        row = w.tokenizer(last_line(r.stdout))
        tok = w.load_tokenizer(row["id"])
    assert row["spec"]["normalizer"] == "lowercase" and "mask" not in row["spec"]["special_tokens"]
    assert tok.token_to_id("[BOS]") is not None and tok.token_to_id("[MASK]") is None
    assert tok.encode("FIRST").ids == tok.encode("first").ids
    assert_one_error_line(
        cli("tokenizer", "train", "--dataset", ds["id"], "--kind", "wordpiece", "--special", "unk=", workspace=ws)
    )
    assert_one_error_line(cli("tokenizer", "train", "--dataset", ds["id"], "--special", "bos", workspace=ws), code=2)


def test_delete_restore_and_trash(tmp_path):
    ws = tmp_path / "ws"
    (tmp_path / "a.txt").write_text(_corpus(50))
    ds = last_line(cli("import", tmp_path / "a.txt", "--name", "a", workspace=ws).stdout)
    tok = last_line(cli("tokenizer", "train", "--dataset", ds, "--vocab-size", 60, workspace=ws).stdout)
    before = snapshot(ws)
    r = cli("delete", "dataset", "a", workspace=ws)
    assert_one_error_line(r)
    assert "still used by 1 tokenizer" in r.stderr and snapshot(ws) == before
    r = cli("delete", "tokenizer", tok, workspace=ws)
    assert r.returncode == 0 and "restore" in r.stderr
    trash_id = last_line(r.stdout)
    assert f"{trash_id}  tokenizer" in cli("trash", workspace=ws).stdout
    assert "no tokenizers" in cli("tokenizers", workspace=ws).stderr
    r = cli("restore", trash_id, workspace=ws)
    assert r.returncode == 0 and last_line(r.stdout) == tok
    rows, files = snapshot(ws)
    assert rows == before[0] and [f for f in files if not f.startswith("trash")] == before[1]
    assert_one_error_line(cli("restore", trash_id, workspace=ws))
