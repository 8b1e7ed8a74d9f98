"""`studio-engine objectives` and `studio-engine sample-batch` run as a user would: `python -m engine.cli` in a
subprocess, on a real workspace in tmp_path."""

import pytest

from engine.cli import build_parser
from engine.objectives.catalog import OBJECTIVE_CATALOG
from engine.store import Workspace
from tests.test_cli import assert_one_error_line, cli

TEXT = "".join(
    f"{who}: the {a} cat sat on the {c} mat. Did it? It did!\n\n"
    for who in ("ANNA", "BEN")
    for a in ("red", "big", "old")
    for c in ("warm", "cold", "soft")
)

pytestmark = pytest.mark.skipif(
    "sample-batch" not in build_parser().format_help(),
    reason="engine/cli.py does not register engine.cli_objectives' commands yet",
)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_objectives")
    path = root / "mats.txt"
    path.write_text(TEXT * 6, encoding="utf-8")
    with Workspace(root / "ws") as w:
        w.import_dataset([path], "mats", 0.1)
    return root / "ws"


def test_objectives_lists_every_objective_with_its_architectures_options_and_metrics():
    r = cli("objectives")
    assert r.returncode == 0, r.stderr
    for info in OBJECTIVE_CATALOG.values():
        assert f"  {info.name} " in r.stdout and info.label in r.stdout
    assert "Fill in the blanks:" in r.stdout
    block = r.stdout.split("  masked_lm ")[1].split("\n  ")[0:4]
    assert "trains   encoder" in block[1]
    assert "mask_prob=0.15  mask_token_share=0.8  random_token_share=0.1  whole_word=false" in block[2]
    assert "perplexity, masked-token accuracy" in block[3]
    assert "trains   encoder-decoder, decoder" in r.stdout.split("  span_corruption ")[1]
    assert "<extra_id_0> … <extra_id_31>" in r.stdout


def test_sample_batch_marks_masked_tokens(ws):
    r = cli("sample-batch", "--set", "data.dataset=mats", "--set", "model.arch=encoder", "--set",
            "objective.name=masked_lm", "-n", "3", "--seed", "2", workspace=ws)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows = [line for line in lines if line[:1].isdigit()]
    assert [row.split()[0] for row in rows] == ["1", "2", "3"]
    assert "[MASK]→⟨" in r.stdout and "Masked language modelling (masked_lm)" in r.stdout
    assert any(line.startswith("note: ") and "[MASK]" in line for line in lines)
    again = cli("sample-batch", "--set", "data.dataset=mats", "--set", "model.arch=encoder", "--set",
                "objective.name=masked_lm", "-n", "3", "--seed", "2", workspace=ws)  # fmt: skip
    assert again.stdout == r.stdout  # the seed draws the batch


def test_sample_batch_of_an_encoder_decoder_objective_has_input_and_target_lines(ws, tmp_path):
    config = tmp_path / "t5.json"
    config.write_text(
        '{"data": {"dataset": "mats"}, "model": {"arch": "encoder-decoder", "block_size": 64},'
        ' "objective": {"name": "span_corruption"}}'
    )
    r = cli("sample-batch", config, "-n", "2", "--max-tokens", "0", workspace=ws)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("1  input:  ") and lines[1].startswith("   target: <extra_id_0>⟨")
    assert "<extra_id_0>" in lines[0] and lines[2].startswith("2  input:  ")
    deleted = cli("sample-batch", "--preset", "tiny", "--set", "data.dataset=mats", "--set",
                  "model.arch=encoder-decoder", "--set", "objective.name=denoising", "--set",
                  "objective.noises=token_deletion", workspace=ws)  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    assert "~" in deleted.stdout.splitlines()[1] and "~x~ deleted" in deleted.stdout


def test_sample_batch_causal_lm_marks_the_predicted_tokens(ws):
    r = cli("sample-batch", "--set", "data.dataset=mats", "-n", "1", "--max-tokens", "12", workspace=ws)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith("1  ") and first.count("⟨") == 1 and first.endswith("⟩")
    assert len(first[3:].replace("⟨", "").replace("⟩", "")) == 12


def test_bad_combinations_are_one_error_line(ws):
    r = cli("sample-batch", "--set", "data.dataset=mats", "--set", "objective.name=masked_lm", workspace=ws)
    assert_one_error_line(r, 2)
    assert "Masked language modelling trains an encoder model, not a decoder" in r.stderr
    r = cli("sample-batch", "--set", "model.arch=encoder", "--set", "objective.name=masked_lm", workspace=ws)
    assert_one_error_line(r, 2)
    assert "data.dataset" in r.stderr
    r = cli("sample-batch", "--preset", "tiny", "x.json", workspace=ws)
    assert_one_error_line(r, 2)
