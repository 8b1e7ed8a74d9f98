"""resources/: the presets, the sample play's words and lines, and the theme are data that the code reads, found in
this checkout (tests/test_wheel.py: in an installed wheel); a copy without them says so instead of half working."""

import hashlib
import json
from pathlib import Path

import pytest

from engine import resources
from engine.config import PRESETS, preset
from engine.data.sample import play, write_sample_scenes

ROOT = Path(__file__).resolve().parents[1]

# sha256 of the corpus a new workspace's "sample" dataset is imported from (write_sample_scenes' defaults). Runs
# trained on "sample" are comparable across versions only while this stays; change it only with the play.
SAMPLE_SCENES_SHA256 = "9bc9616b6a65944cdbaf6e823f34753e7d933dda50f636dbe27a25560f262df1"


def test_a_checkout_reads_its_own_resources_folder():
    assert resources.resources_dir() == ROOT / "resources"
    assert resources.resource_path("theme.json") == ROOT / "resources" / "theme.json"


def test_every_preset_file_is_listed_in_order_and_loads():
    folder = ROOT / "resources" / "presets"
    order = (folder / "order.txt").read_text(encoding="utf-8").split()
    gpts = ["baby", "tiny", "shakespeare-char", "small-bpe"]
    assert list(PRESETS) == order == [*gpts, "bert-mini", "t5-mini", "transformer-2017-mini"]
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(order)
    for name in order:
        assert PRESETS[name] == json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        assert PRESETS[name]["description"] and preset(name).validate(need_data=False)


def test_the_sample_play_is_made_of_the_resources_words_and_is_the_same_corpus_as_ever(tmp_path):
    words = json.loads((ROOT / "resources" / "sample" / "words.json").read_text(encoding="utf-8"))
    assert play().people == words["people"] and len(play().lines) == 12
    write_sample_scenes(tmp_path / "sample.jsonl")
    assert hashlib.sha256((tmp_path / "sample.jsonl").read_bytes()).hexdigest() == SAMPLE_SCENES_SHA256


def test_the_theme_names_real_palette_roles_and_colours():
    from PySide6.QtGui import QColor, QPalette

    theme = json.loads((ROOT / "resources" / "theme.json").read_text(encoding="utf-8"))
    colours = [theme["accent"], *theme["plot"].values(), *theme["engine_states"].values()]
    for scheme in ("light", "dark"):
        for part in ("roles", "disabled"):
            for role, colour in theme[scheme][part].items():
                assert isinstance(getattr(QPalette.ColorRole, role), QPalette.ColorRole), role
                colours.append(colour)
    assert theme["dark"]["roles"], "the dark scheme sets its colours"
    assert all(QColor(c).isValid() for c in colours), colours


def test_a_copy_without_its_resources_says_which_are_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "_ABOVE_ENGINE", tmp_path)
    monkeypatch.setattr(resources, "PACKAGE", "transformer_studio_resources_that_is_not_installed")
    resources.resources_dir.cache_clear()
    try:
        with pytest.raises(resources.ResourcesMissing, match="reinstall transformer-studio"):
            resources.read_json("theme.json")
    finally:
        resources.resources_dir.cache_clear()
    (tmp_path / "pyproject.toml").write_text("", encoding="utf-8")
    (tmp_path / "resources").mkdir()
    try:
        with pytest.raises(resources.ResourcesMissing, match="theme.json is missing"):
            resources.read_json("theme.json")
    finally:
        resources.resources_dir.cache_clear()
