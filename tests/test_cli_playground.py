"""`studio-engine fill-mask`, `infill` and `score-pair` (engine/cli_playground.py) on tiny runs trained through the
real loop, and `generate` on an encoder-decoder run; the lines they print and the mistakes they refuse."""

import ast
import re

import pytest

from engine.store import Workspace
from tests.test_cli import assert_one_error_line, cli
from tests.test_playground_engine import LINE, _run


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-playground")
    (root / "hamlet.txt").write_text(LINE * 300, encoding="utf-8")
    with Workspace(root / "ws") as w:
        w.import_dataset([root / "hamlet.txt"], "hamlet", 0.1)
        yield w


@pytest.fixture(scope="module")
def runs(ws):
    return {
        "masked": _run(ws, "encoder", "masked_lm", pos_encoding="rope"),
        "nsp": _run(ws, "encoder", "nsp", n_segments=2),
        "t5": _run(ws, "encoder-decoder", "span_corruption"),
        "decoder": _run(ws, "decoder", "causal_lm"),
    }


def run_command(ws, *argv) -> tuple[list[str], str]:
    """`studio-engine ARGV --workspace WS --device cpu` as a process: (stdout lines, stderr); it must succeed."""
    r = cli(*argv, "--device", "cpu", workspace=ws.path)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines(), r.stderr


def test_fill_mask_prints_a_line_of_candidates_per_mask_then_the_text(ws, runs):
    lines, err = run_command(ws, "fill-mask", "--run", runs["masked"], "--text", "to [MASK]e or [MASK]ot")
    assert len(lines) == 3
    for n, line in enumerate(lines[:2], 1):
        assert re.fullmatch(rf"\[MASK\] {n}: (\S+ \d+\.\d %, ){{4}}\S+ \d+\.\d %", line), line
    assert lines[2].startswith("to ") and lines[2].endswith("ot") and len(lines[2]) == len("to be or not")
    assert "checkpoint latest (step 20)" in err
    lines, _ = run_command(ws, "fill-mask", "--run", runs["masked"], "--text", "to [MASK]", "--top-k", 2)
    assert lines[0].count("%") == 2


def test_score_pair_prints_the_probability_in_words(ws, runs):
    lines, err = run_command(ws, "score-pair", "--run", runs["nsp"], "--a", "to be or not", "--b", "to be")
    assert len(lines) == 1 and re.fullmatch(r"B follows A: \d{1,3} %", lines[0]) and "checkpoint" in err


def test_infill_prints_each_gap_then_the_text(ws, runs):
    lines, _ = run_command(
        ws, "infill", "--run", runs["t5"], "--text", "to be [GAP] not [GAP] be", "--max-new-tokens", 3
    )
    assert [line[:8] for line in lines[:2]] == ["[GAP] 1:", "[GAP] 2:"] and len(lines) == 3
    fills = [ast.literal_eval(line[9:]) for line in lines[:2]]  # repr of each fill, quotes and all
    assert lines[2] == f"to be {fills[0]} not {fills[1]} be"


@pytest.mark.parametrize(
    "argv,code,words",
    [
        (["infill", "--run", "t5", "--text", "no gap"], 2, r"--text has no \[GAP\]"),
        (["fill-mask", "--run", "masked", "--text", "[MASK]", "--top-k", "0"], 2, "--top-k"),
        (["score-pair", "--run", "nsp", "--a", " ", "--b", "x"], 2, "--a and --b"),
        (["fill-mask", "--run", "decoder", "--text", "to [MASK]"], 1, "decoder trained with .*use Continue a text"),
        (["score-pair", "--run", "masked", "--a", "a", "--b", "b"], 1, "Score a pair needs .*use Fill mask"),
    ],
)
def test_mistakes_are_one_error_line(ws, runs, argv, code, words):
    argv = [str(runs.get(a, a)) if argv[i - 1] == "--run" else a for i, a in enumerate(argv)]
    r = cli(*argv, "--device", "cpu", workspace=ws.path)
    assert_one_error_line(r, code)
    assert re.search(words, r.stderr), r.stderr


def test_generate_writes_an_encoder_decoders_output_for_the_prompt(ws, runs):
    r = cli("generate", "--run", runs["t5"], "--prompt", "to be", "--max-new-tokens", 5, "--mode", "greedy",
            workspace=ws.path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("to be") and re.search(r"^[1-5] tokens", r.stderr, re.M), r.stderr
    r = cli("generate", "--run", runs["masked"], "--prompt", "to be", workspace=ws.path)
    assert r.returncode == 1 and "error: this run's model is an encoder" in r.stderr and "Fill mask" in r.stderr
