"""Messages in the user's words: config errors name fields by the labels on screen (the key on a second line),
a number typed outside a field's range says why it is not taken, the diagram never draws an impossible model,
and a binary file is called what it looks like to a user."""

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.config import FIELD_LABELS, ConfigError, ModelConfig, RunConfig, TrainConfig, user_message
from engine.data.errors import BinaryFileError
from engine.data.textio import TextReader
from studio.panels.architecture import ArchitecturePanel
from studio.session import Session
from studio.state.import_files import decode_head, preview_paths
from studio.state.model_form import ALL_FIELDS
from tests.conftest import shown

ROOT = Path(__file__).resolve().parents[1]


def config_error(**sections) -> ConfigError:
    cfg = RunConfig.from_dict(sections)
    with pytest.raises(ConfigError) as info:
        cfg.validate(need_data=False)
    return info.value


# ------------------------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    "sections, words, key",
    [
        (
            {"model": {"n_embd": 128, "n_head": 3}},
            "Width (128) must be a multiple of Attention heads (3)",
            "model.n_embd",
        ),
        ({"model": {"n_layer": 0}}, "Layers must be at least 1, not 0", "model.n_layer"),
        ({"train": {"max_iters": 0}}, "Training steps must be at least 1, not 0", "train.max_iters"),
        (
            {"train": {"learning_rate": 1e-4, "min_lr": 1e-3}},
            "Final learning rate (0.001) must be between 0 and the Learning rate (0.0001)",
            "train.min_lr",
        ),
        ({"model": {"dropout": 1.0}}, "Dropout must be at least 0 and below 1", "model.dropout"),
        (
            {"model": {"pos_encoding": "rope", "n_embd": 12, "n_head": 4}},
            "RoPE positions need an even head size",
            "model.pos_encoding",
        ),
    ],
)
def test_config_errors_say_the_on_screen_label_and_keep_the_key_apart(sections, words, key):
    e = config_error(**sections)
    assert words in e.message
    assert key not in e.message and "n_embd" not in e.message and "_" not in e.message.split("(")[0]
    assert e.key == key
    # the CLI and the engine's one-line replies still start with the key...
    assert str(e) == f"{key}: {e.message}"
    # ... and the studio gets the plain words back from such a line
    assert user_message(str(e)) == (e.message, key)
    assert user_message(e) == (e.message, key)


def test_missing_dataset_says_where_to_choose_one():
    with pytest.raises(ConfigError) as info:
        RunConfig().validate()
    text, key = user_message(f"{info.value}")
    assert key == "data.dataset"
    assert text == "Choose a dataset on the Data panel (import a text there first)"


def test_text_without_a_key_comes_back_as_it_is():
    assert user_message("run 3 has no checkpoint to resume from") == ("run 3 has no checkpoint to resume from", "")
    assert user_message("nosuch.key: something") == ("nosuch.key: something", "")


def test_every_model_and_training_field_has_the_panel_label_in_field_labels():
    for section, name, label, *_ in ALL_FIELDS:
        assert FIELD_LABELS[f"{section}.{name}"] == label
    for section in (ModelConfig, TrainConfig):
        prefix = "model" if section is ModelConfig else "train"
        for f in section.__dataclass_fields__:
            assert f"{prefix}.{f}" in FIELD_LABELS


def test_cli_prints_the_plain_message_and_the_key(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "train",
            "--preset",
            "tiny",
            "--set",
            "data.dataset=words",
            "--set",
            "model.n_head=3",
            "--workspace",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: model.n_embd: Width (64) must be a multiple of Attention heads (3): each "
        "head gets an equal share of the width (63 or 66 would do)"
    )


# ---------------------------------------------------------------------------------------- the Model panel


def make_panel(qtbot, tmp_path):
    session = Session(workspace_path=str(tmp_path))  # local: the form needs no engine
    panel = ArchitecturePanel(session)
    shown(qtbot, panel, (1280, 720))
    return session, panel


def type_into(qtbot, box, text):
    box.setFocus()
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)


@pytest.mark.parametrize("key, label", [(("model", "n_layer"), "Layers"), (("train", "max_iters"), "Training steps")])
def test_typing_zero_says_why_it_is_not_taken_without_moving_the_form(qtbot, tmp_path, key, label):
    session, panel = make_panel(qtbot, tmp_path)
    box, hint = panel.fields[key], panel.hints[key]
    before = getattr(getattr(session.config, key[0]), key[1])
    below = panel.fields[("train", "learning_rate")] if key[0] == "model" else panel.fields[("train", "min_lr")]
    geometry = (box.geometry(), below.mapTo(panel, below.rect().topLeft()))
    assert hint.text() == ""

    type_into(qtbot, box, "0")
    qtbot.waitUntil(lambda: hint.text() == f"{label} must be at least 1, not 0", timeout=2000)
    assert hint.isVisible()
    assert (box.geometry(), below.mapTo(panel, below.rect().topLeft())) == geometry  # nothing moved

    qtbot.keyClick(box.lineEdit(), Qt.Key.Key_Return)  # Qt puts the last value back...
    qtbot.wait(20)
    assert box.value() == before
    assert hint.text() == f"{label} must be at least 1, not 0 (kept {box.textFromValue(before)})"  # ...and says so
    assert getattr(getattr(session.config, key[0]), key[1]) == before

    type_into(qtbot, box, "3")
    assert hint.text() == ""
    assert getattr(getattr(session.config, key[0]), key[1]) == 3


def test_a_number_above_the_range_is_not_dropped_silently(qtbot, tmp_path):
    _, panel = make_panel(qtbot, tmp_path)
    type_into(qtbot, panel.fields[("model", "n_layer")], "300")
    qtbot.waitUntil(
        lambda: panel.hints[("model", "n_layer")].text() == "Layers must be at most 256, not 300", timeout=2000
    )


def test_diagram_draws_no_model_the_trainer_would_refuse(qtbot, tmp_path):
    session, panel = make_panel(qtbot, tmp_path)
    panel.fields[("model", "n_embd")].setValue(128)
    assert any("4 heads × 32" in text for _, text in panel.diagram.boxes())

    panel.fields[("model", "n_head")].setValue(3)
    assert panel.diagram.boxes() == []  # no "3 heads × 42"
    assert "Width (128) must be a multiple of Attention heads (3)" in panel.diagram.problem
    assert panel.params_label.text() == "—"
    assert "Width (n_embd)" not in panel.labels[("model", "n_embd")].text()
    assert "model.n_embd" in panel.fields[("model", "n_embd")].toolTip()  # the key, for CLI users

    panel.fields[("model", "n_head")].setValue(8)
    assert panel.diagram.problem == ""
    assert any("8 heads × 16" in text for _, text in panel.diagram.boxes())
    assert panel.params_label.text() != "—"


def test_error_line_puts_the_config_key_on_a_second_smaller_line(qtbot, tmp_path):
    _, panel = make_panel(qtbot, tmp_path)
    panel.fields[("train", "min_lr")].setValue(0.5)
    text = panel.error_line.text()
    plain, _, small = text.partition("<br>")
    assert plain.startswith("Final learning rate (0.5) must be between 0 and the Learning rate")
    assert "min_lr" not in plain
    assert small == "<small>Config: train.min_lr, train.learning_rate</small>"


# ------------------------------------------------------------------------------------------ binary files


def test_a_binary_file_is_called_a_program_or_binary_file_with_the_offset_apart(tmp_path):
    path = tmp_path / "tool.exe"
    path.write_bytes(b"MZ\x90header\x00\x01\x02")
    with pytest.raises(BinaryFileError) as info:
        list(TextReader(path, chunk_bytes=64).chunks())
    assert str(info.value) == f"{path} looks like a program or binary file, not text (NUL byte at offset 9)"
    assert "\n" not in str(info.value)  # one line, for the CLI and the import report


def test_the_quick_look_says_the_same_about_a_binary_file(tmp_path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"hello world!\x00\x01\x02 more bytes")
    text, warning = decode_head(path.read_bytes(), path.name, whole=True)
    assert text == "hello world!"
    assert warning == "notes.bin looks like a program or binary file, not text (NUL byte at offset 12)"
    pv = preview_paths([str(path)])
    assert pv.warning == warning and pv.decode_problem


def test_the_studio_and_the_engine_word_a_binary_file_alike():
    from engine.data.textio import binary_message as engine_words
    from studio.state.import_files import binary_message as studio_words

    assert studio_words("a.dat", 5) == engine_words("a.dat", 5)
