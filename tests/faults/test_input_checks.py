"""Input checks that slipped (issue 12, item 12): NaN and 1e999 in a whole-number field, and a NaN temperature,
are one line in words naming the field, never a raw exception name."""

import pytest

from engine.config import ConfigError, RunConfig, preset
from engine.generate import GenerationError, check_settings


@pytest.mark.parametrize("raw", ["NaN", "1e999", "-Infinity"])
def test_a_non_finite_number_in_a_whole_number_field_names_the_field(raw):
    with pytest.raises(ConfigError) as e:
        preset("baby").with_overrides([f"model.n_layer={raw}"])
    assert e.value.message.startswith("Layers must be a whole number, not ") and e.value.key == "model.n_layer"
    with pytest.raises(ConfigError, match="Random seed must be a whole number"):
        RunConfig.from_dict({"train": {"seed": float(raw.replace("1e999", "inf"))}})


def test_a_nan_temperature_is_refused_in_words():
    with pytest.raises(GenerationError, match="temperature must be a number, not nan"):
        check_settings(temperature=float("nan"))


def test_the_cli_says_it_in_one_line(tmp_path):
    from tests.test_cli import assert_one_error_line, cli

    out = cli("config", "show", "--preset", "baby", "--set", "train.eval_iters=NaN")
    assert_one_error_line(out)
    assert "Evaluation batches must be a whole number, not nan" in out.stderr and "ValueError" not in out.stderr


def test_a_25_digit_seed_is_refused_in_words(tmp_path):
    from tests.test_cli import assert_one_error_line, cli

    seed = "1" * 25
    with pytest.raises(ConfigError, match="Random seed must be at most"):
        RunConfig.from_dict({"train": {"seed": int(seed)}}).validate(need_data=False)
    out = cli("config", "show", "--preset", "baby", "--set", f"train.seed={seed}")
    assert_one_error_line(out)
    assert "Random seed must be at most" in out.stderr and "Overflow" not in out.stderr
    import torch

    from engine.generate import seeded

    with pytest.raises(GenerationError, match="the seed must be a whole number from 0 to"):
        seeded(torch.Generator(), int(seed))
    assert seeded(torch.Generator(), 2**64 - 1).initial_seed() == 2**64 - 1


@pytest.mark.parametrize(
    "body, words",
    [
        ('"good one",a\n"unclosed,b\nplain,c\nmore,d\n', "line 3: a quote opened in this record is never closed"),
        ('"ok",a\n"bad"x,b\nfine,c\n', "line 3 is not valid CSV: ',' expected after '\"'"),
    ],
)
def test_csv_quoting_is_strict_and_names_the_line_where_the_record_began(tmp_path, body, words):
    from engine.data.errors import DataError
    from engine.store import Workspace

    (tmp_path / "t.csv").write_text("text,label\n" + body, encoding="utf-8")
    with Workspace(tmp_path / "ws") as ws:
        before = ws.datasets()
        with pytest.raises(DataError, match=words.replace('"', ".").replace("'", ".")):
            ws.import_dataset([tmp_path / "t.csv"], "t", 0.1, column="text")
        assert ws.datasets() == before  # nothing merged, nothing half-imported
