"""WorkspaceState and PendingRequests without a window: summaries made by the engine's real workspace store (as the
engine sends them, through JSON), the choices that follow them, live run rows, saved choices, and requests that
get exactly one answer."""

import json

import pytest

from engine import protocol as p
from engine.config import ConfigError
from engine.store import Workspace
from studio.state.requests import PendingRequests
from studio.state.workspace import WorkspaceState

TEXT = "".join(f"Line {i}: the quick brown fox jumps over {i % 7} lazy dogs.\n" for i in range(200))


@pytest.fixture
def store(tmp_path):
    """The engine's workspace: the sample dataset and "fox", a character vocabulary of each, a run on fox."""
    corpus = tmp_path / "fox.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    with Workspace(tmp_path / "ws") as ws:
        sample = ws.ensure_sample_dataset()
        fox = ws.import_dataset([corpus])
        ws.train_tokenizer(sample["id"], "char", 512)
        fox_chars = ws.train_tokenizer(fox["id"], "char", 512)
        ws.create_run("first", {}, fox["id"], fox_chars["id"])
        yield ws


def sent(ws) -> dict:
    """The workspace summary as it reaches the studio: JSON over the wire."""
    return json.loads(json.dumps(ws.summary()))


def events_of(state_events, *names):
    return [(e, v) for e, v in state_events if e in names]


@pytest.fixture
def events():
    return []


@pytest.fixture
def state(store, events):
    return WorkspaceState(str(store.path), lambda event, value: events.append((event, value)))


def test_the_first_summary_chooses_for_a_newcomer(store, state, events):
    summary = sent(store)
    state.apply_summary(summary)
    assert [d["name"] for d in state.summary["datasets"]] == ["sample", "fox"]
    # Nothing was chosen before: the newest dataset, with the config following it, and the newest run.
    assert state.dataset["name"] == "fox" and state.config.data.dataset == state.dataset["id"]
    assert state.run["name"] == "first"
    assert [e for e, _ in events] == ["workspace", "config", "dataset", "run"]
    assert events[0][1] is state.summary


def test_choices_survive_a_fresh_summary_and_point_at_its_rows(store, state, events):
    state.apply_summary(sent(store))
    fox_chars = next(t for t in state.summary["tokenizers"] if t["dataset_id"] == state.dataset["id"])
    state.select_tokenizer(fox_chars["id"])
    assert state.config.tokenizer.tokenizer == fox_chars["id"] and state.vocab_size == fox_chars["vocab_size"]
    events.clear()
    fresh = sent(store)
    state.apply_summary(fresh)
    assert [e for e, _ in events] == ["workspace"]  # nothing else changed, so nothing else is said
    assert state.dataset is fresh["datasets"][1] and state.tokenizer is fresh["tokenizers"][1]
    assert state.run is fresh["runs"][0]


def test_a_tokenizer_follows_its_dataset(store, state, events):
    state.apply_summary(sent(store))
    state.select_tokenizer(state.summary["tokenizers"][1])  # fox's
    events.clear()
    state.select_dataset("sample")
    assert state.tokenizer["dataset_id"] == state.dataset["id"] == state.summary["datasets"][0]["id"]
    assert [e for e, _ in events] == ["config", "dataset", "config", "tokenizer"]


def test_a_deleted_choice_falls_back_and_is_said(store, state, events):
    state.apply_summary(sent(store))
    run = state.run
    store.delete("run", run["id"])
    events.clear()
    state.apply_summary(sent(store))
    assert state.run is None and events_of(events, "run") == [("run", None)]
    store.delete("tokenizer", state.summary["tokenizers"][1]["id"])
    state.select_dataset("sample")
    state.select_tokenizer(state.summary["tokenizers"][0])
    store.delete("tokenizer", state.tokenizer["id"])
    events.clear()
    state.apply_summary(sent(store))
    assert state.tokenizer is None and state.config.tokenizer.tokenizer is None
    assert events_of(events, "tokenizer") == [("tokenizer", None)]


def test_a_training_run_keeps_its_row_live(store, state, events):
    state.apply_summary(sent(store))
    run_id = state.run["id"]
    events.clear()
    state.status_arrived(run_id, "training", 50, 200)
    row = state.find("runs", run_id)
    assert (row["status"], row["step"], row["max_iters"]) == ("running", 50, 200)
    assert state.run["step"] == 50 and events == [("run_updated", row)]
    state.metrics_arrived(
        run_id, [{"step": 60, "split": "train", "loss": 2.0}, {"step": 60, "split": "val", "loss": 2.4}]
    )
    state.metrics_arrived(run_id, [{"step": 70, "split": "val", "loss": 2.6}])
    assert (row["step"], row["best_val_loss"]) == (70, 2.4)  # the best stays the best
    state.status_arrived(run_id, "stopping", 70, 200)
    assert row["status"] == "running"  # until the engine says how it ended
    state.status_arrived(run_id, "stopped", 70, 200)
    assert row["status"] == "stopped" and state.run["status"] == "stopped"
    events.clear()
    state.status_arrived(999, "training", 5, 10)  # a run this list does not hold
    state.metrics_arrived(run_id, [])
    assert events == []


def test_a_started_run_is_listed_chosen_and_its_new_vocabulary_adopted(store, state, events):
    state.apply_summary(sent(store))
    state.select_tokenizer(None)
    fox = state.dataset
    new_tokenizer = store.train_tokenizer(fox["id"], "char", 512, name="for the run")
    run = json.loads(json.dumps(store.create_run("second", {}, fox["id"], new_tokenizer["id"])))
    events.clear()
    state.run_started(run)
    assert state.run is run and state.summary["runs"][-1] is run and events == [("run", run)]
    state.apply_summary(sent(store))  # the engine's next summary lists the vocabulary it trained
    assert state.tokenizer["id"] == new_tokenizer["id"] == state.config.tokenizer.tokenizer


def test_choices_and_settings_come_back_in_the_next_session(store, state):
    state.apply_summary(sent(store))
    state.select_dataset("sample")
    state.select_tokenizer(state.summary["tokenizers"][0])
    state.update_config("model", n_layer=3)
    state.set_ui("playground", {"prompt": "ROMEO:"})
    assert state.save()

    again = WorkspaceState(str(store.path))
    assert not again.save()  # not applied yet: the file must not be overwritten with defaults
    assert again.config.model.n_layer == 3 and again.ui("playground") == {"prompt": "ROMEO:"}
    again.apply_summary(sent(store))
    assert (again.dataset["name"], again.tokenizer["id"]) == ("sample", state.tokenizer["id"])
    assert again.run["id"] == state.run["id"] and again.save()


def test_reopening_another_folder_forgets_the_choices_made_here(store, state, events, tmp_path):
    state.apply_summary(sent(store))
    state.update_config("model", n_layer=5)
    events.clear()
    other = tmp_path / "other"
    other.mkdir()
    state.reopen(str(other))
    assert (state.dataset, state.tokenizer, state.run) == (None, None, None)
    assert events == [("dataset", None), ("run", None), ("config", None)]  # no tokenizer was chosen
    assert state.path == str(other) and state.config.model.n_layer == 5  # nothing saved there: the form stays


def test_config_changes_are_checked_and_said_once(state, events):
    state.update_config("train", max_iters=123)
    state.update_config("train", max_iters=123)
    assert events == [("config", None)] and state.config.train.max_iters == 123
    with pytest.raises(ConfigError, match="max_itters"):
        state.update_config("train", max_itters=5)
    with pytest.raises(ConfigError, match="section"):
        state.update_config("nonsense", x=1)


def test_rows_are_found_by_id_name_or_row(store, state):
    state.apply_summary(sent(store))
    fox = state.summary["datasets"][1]
    assert state.find("datasets", fox["id"]) is state.find("datasets", "fox") is state.find("datasets", dict(fox))
    assert state.find("datasets", "nope") is None and state.find("runs", None) is None
    with pytest.raises(KeyError, match="no dataset 'nope'"):
        state.select_dataset("nope")


# ------------------------------------------------------------------------------------------------ requests


def test_a_queued_request_is_cancelled_with_one_error_reply():
    requests, replies = PendingRequests(), []
    first, second = p.GenerateRequest(run=1), p.WorkspaceRequest()
    for msg in (first, second):
        requests.add(msg, replies.append, None)
        requests.hold(msg)
    assert requests.queued == (first, second)
    assert requests.unqueue(first.id) and not requests.unqueue(first.id)
    requests.fail(first.id, "cancelled")
    requests.fail(first.id, "cancelled")  # answered already: nothing more
    assert [type(r) for r in replies] == [p.GenerateReply] and replies[0].error == "cancelled"
    assert requests.take_queued() == [second] and requests.queued == ()


def test_events_reach_their_request_and_a_failing_callback_does_not_stop_the_rest(monkeypatch):
    requests, seen, reported = PendingRequests(), [], []
    monkeypatch.setattr("sys.excepthook", lambda *exc: reported.append(exc[0]))
    broken, fine = p.GenerateRequest(run=1), p.GenerateRequest(run=2)
    requests.add(broken, lambda reply: 1 / 0, lambda msg: 1 / 0)
    requests.add(fine, seen.append, seen.append)
    requests.event(p.Token(parent=broken.id, text="a"))
    requests.event(p.Token(parent=fine.id, text="b"))
    requests.event(p.Token(parent="someone else's", text="c"))
    requests.fail_all("the engine stopped")
    assert [type(m) for m in seen] == [p.Token, p.GenerateReply] and seen[0].text == "b"
    assert seen[1].error == "the engine stopped"
    assert reported == [ZeroDivisionError, ZeroDivisionError] and requests.pop(fine.id) is None
