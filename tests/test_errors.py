"""One UserError hierarchy: every error a user can act on knows its field, and the worker, the CLI and the
training loop decide and word it in one place (engine/errors.py); training events are typed."""

import pytest

from engine import protocol as p
from engine import training_events as ev
from engine.config import ConfigError, RunConfig
from engine.errors import UserError, is_user_error, user_text


def test_every_users_error_is_a_user_error():
    from engine.attention_probes import InspectError
    from engine.checkpoint import CheckpointError
    from engine.cli_commands import UsageError
    from engine.data.errors import DataError
    from engine.generate import GenerationError
    from engine.store import WorkspaceError
    from engine.tokenizer import TokenizerError
    from engine.train import TrainingError

    for cls in (
        ConfigError,
        DataError,
        CheckpointError,
        WorkspaceError,
        TokenizerError,
        InspectError,
        GenerationError,
        TrainingError,
        UsageError,
    ):
        assert issubclass(cls, UserError), cls
        assert is_user_error(cls("plain words"))


def test_a_config_error_knows_its_fields_and_keeps_its_old_names():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"train": {"learning_rate": 1e-4, "min_lr": 1e-3}}).validate(need_data=False)
    e = info.value
    assert e.field == e.key == "train.min_lr"
    assert e.fields == e.keys and e.fields[0] == "train.min_lr" and "train.learning_rate" in e.fields
    assert str(e) == f"train.min_lr: {e.message}"
    assert user_text(e) == str(e)


def test_an_error_reply_carries_the_field():
    e = ConfigError("Width (128) must be a multiple of Attention heads (3)", "model.n_embd", also=("model.n_head",))
    reply = p.error_reply(p.TrainRequest(), user_text(e), field=e.field, fields=e.fields)
    back = p.decode_batch(p.encode_batch([reply]))[0]
    assert not back.ok and back.field == "model.n_embd" and back.fields == ["model.n_embd", "model.n_head"]
    assert back.error == str(e)
    plain = p.decode_batch(p.encode_batch([p.error_reply(p.TrainRequest(), "busy")]))[0]
    assert plain.field is None and plain.fields == []


def test_pythons_own_errors_in_plain_words_and_bugs_by_their_type():
    missing = FileNotFoundError(2, "No such file or directory", "/nowhere/a.txt")
    assert is_user_error(missing) and user_text(missing) == "no such file or folder: /nowhere/a.txt"
    assert user_text(FileNotFoundError(2, "no such config file", "c.json")) == "no such config file: c.json"
    assert is_user_error(MemoryError()) and user_text(MemoryError()).startswith("out of memory: ")
    bug = KeyError("step")
    assert not is_user_error(bug) and user_text(bug) == "KeyError: 'step'"
    assert user_text(UserError("two\nlines")) == "two\nlines"


def test_training_events_are_typed_and_old_callbacks_still_get_dicts():
    seen = []
    event = ev.Evaluation(step=10, train_loss=2.0, val_loss=2.5, elapsed_s=1.0)
    ev.as_handler(lambda kind, payload: seen.append((kind, payload)))(event)
    ev.as_handler(seen.append)(event)
    expected = {"step": 10, "train_loss": 2.0, "val_loss": 2.5, "elapsed_s": 1.0, "metrics": {}}
    assert seen == [("eval", expected), event]
    assert ev.Notice("warning", "careful").kind == "warning"
    with pytest.raises(AttributeError):
        event.step = 11
