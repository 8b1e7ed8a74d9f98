"""Session against the real engine: queueing before hello, reply routing, errors, selections, death."""

import os
import signal

from tests.conftest import wait_until
from engine import protocol as p
from engine.config import RunConfig
from studio.session import Session


def test_queued_before_ready_then_sent_and_defaults_selected(qtbot, tmp_path):
    s = Session(str(tmp_path / "ws"))
    replies, seen_hello = [], []

    def on_reply(reply):
        seen_hello.append(s.hello is not None)
        replies.append(reply)

    s.request(p.WorkspaceRequest(), on_reply)  # before the engine even exists
    states, lists_when_ready = [], []

    def on_state(st, detail):
        states.append(st)
        if st == "ready":  # "ready" in the status bar must mean the workspace lists are filled
            lists_when_ready.append(len(s.workspace["datasets"]))

    s.engineStateChanged.connect(on_state)
    try:
        s.start_engine()
        qtbot.waitUntil(lambda: len(replies) == 1, timeout=60_000)
        assert replies[0].ok and seen_hello == [True]
        assert states[:2] == ["starting", "ready"]
        assert lists_when_ready and all(n > 0 for n in lists_when_ready)
        assert "sample" in [d["name"] for d in replies[0].workspace["datasets"]]
        assert s.workspace["path"] == str(tmp_path / "ws")
        assert "sample" in [d["name"] for d in s.workspace["datasets"]]
        # A newcomer can press Train at once: the sample dataset is selected and in the config.
        assert s.dataset["name"] == "sample" and s.config.data.dataset == s.dataset["id"]
        assert s.device_name and s.engine_detail == s.device_name

        # A request the engine never answers (it is frozen), then the engine dies: the callback still runs.
        os.kill(s.client.pid, signal.SIGSTOP)
        pending = []
        s.request(p.WorkspaceRequest(), pending.append)
        notices = []
        s.notice.connect(lambda level, text: notices.append((level, text)))
        os.kill(s.client.pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: len(pending) == 1, timeout=3000)
        assert not pending[0].ok and pending[0].error.startswith("the engine stopped: the engine was killed")
        assert isinstance(pending[0], p.WorkspaceReply)
        assert s.engine_state == "dead" and ("error", f"Engine stopped: {s.engine_detail}") in notices
        # After death, requests fail at once with a readable line instead of hanging.
        late = []
        s.request(p.WorkspaceRequest(), late.append)
        qtbot.waitUntil(lambda: bool(late), timeout=2000)
        assert "restart it" in late[0].error
    finally:
        s.client.kill_now()


def test_error_reply_is_readable(module_session):
    s = module_session
    replies = []
    s.request(p.ImportRequest(paths=["/no/such/file.txt"]), replies.append)
    wait_until(lambda: replies, 20, "the import reply")
    r = replies[0]
    assert isinstance(r, p.ImportReply) and r.status == "error"
    assert "/no/such/file.txt" in r.error and "Traceback" not in r.error and "\n" not in r.error


def test_progress_events_reach_on_event_and_lists_refresh(module_session, tmp_path):
    s = module_session
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("hello world, the quick brown fox.\n" * 400)
    events, replies, changes = [], [], []
    s.workspaceChanged.connect(changes.append)
    s.request(p.ImportRequest(paths=[str(corpus)], name="tiny"), replies.append, events.append)
    wait_until(lambda: replies and changes, 30, "the import reply and a workspace refresh")
    assert replies[0].ok, replies[0].error
    assert events and all(isinstance(m, p.Progress) and m.parent == replies[0].parent for m in events)
    # After an import the session re-reads the workspace, so every list shows the new dataset.
    assert "tiny" in [d["name"] for d in changes[-1]["datasets"]]

    s.select_dataset("tiny")
    assert s.dataset["name"] == "tiny" and s.config.data.dataset == s.dataset["id"]
    tok_replies = []
    s.request(p.TokenizerTrainRequest(dataset=s.dataset["id"], tokenizer_kind="char"), tok_replies.append)
    wait_until(lambda: tok_replies, 30, "the tokenizer reply")
    assert tok_replies[0].ok, tok_replies[0].error
    s.select_tokenizer(tok_replies[0].tokenizer)
    tc = s.config.tokenizer
    assert tc.tokenizer == tok_replies[0].tokenizer["id"] and tc.kind == "char"
    assert tc.vocab_size == tok_replies[0].tokenizer["vocab_size"] == s.vocab_size
    # Choosing another dataset drops a tokenizer trained on a different one.
    s.select_dataset("sample")
    assert s.tokenizer is None or s.tokenizer["dataset_id"] == s.dataset["id"]


def test_config_updates_emit_and_validate(qtbot, tmp_path):
    s = Session(str(tmp_path / "ws"))
    with qtbot.waitSignal(s.configChanged, timeout=100):
        s.update_config("model", n_layer=2, n_head=2)
    assert (s.config.model.n_layer, s.config.model.n_head) == (2, 2)
    with qtbot.assertNotEmitted(s.configChanged):
        s.update_config("model", n_layer=2)  # no change, no signal
    try:
        s.update_config("model", n_layayer=3)
    except ValueError as e:
        assert "n_layayer" in str(e)
    else:
        raise AssertionError("an unknown field must be refused")
    cfg = RunConfig()
    with qtbot.waitSignal(s.configChanged, timeout=100):
        s.set_config(cfg)
    assert s.config is cfg


def test_a_request_an_older_engine_does_not_know_fails_at_once(qtbot, tmp_path):
    """A 1.2 engine would silently ignore a rename: the studio says so instead of waiting for ever."""
    from studio.session import Session

    s = Session(str(tmp_path / "ws"))
    s.deliver_hello(
        p.HelloReply(
            protocol_version="1.2",
            device="cpu",
            device_name="CPU",
            workspace={"path": str(tmp_path / "ws"), "datasets": [], "tokenizers": [], "runs": []},
        )
    )
    replies = []
    s.request(p.RenameRequest(ref=1, name="new"), replies.append)
    qtbot.waitUntil(lambda: bool(replies), timeout=2000)
    assert len(replies) == 1 and not replies[0].ok and "too old" in replies[0].error
    assert isinstance(replies[0], p.RenameReply)


def test_a_clean_stop_answers_what_the_engine_left_unanswered(qtbot, tmp_path):
    """Stopping the engine (quitting, or the stop half of a restart) must not leave a panel waiting for ever: a
    request the engine had not answered, and one still queued for an engine that is starting, get an error reply."""
    from tests.conftest import start_session

    s = start_session(tmp_path / "ws")
    try:
        os.kill(s.client.pid, signal.SIGSTOP)  # frozen: it will never answer what is sent now
        sent, queued = [], []
        s.request(p.WorkspaceRequest(), sent.append)
        s.client.stop()
        qtbot.waitUntil(lambda: s.engine_state == "stopped", timeout=15_000)
        assert len(sent) == 1 and isinstance(sent[0], p.WorkspaceReply)
        assert not sent[0].ok and sent[0].error == "the engine was stopped before it answered"

        s.start_engine()
        s.request(p.WorkspaceRequest(), queued.append)  # held until the hello, which never comes
        s.client.stop()
        qtbot.waitUntil(lambda: s.engine_state == "stopped", timeout=15_000)
        assert len(queued) == 1 and queued[0].error == "the engine was stopped before it answered"
        assert s.queued == ()
    finally:
        s.client.kill_now()


def test_a_request_that_fails_at_once_is_answered_after_request_returns(qtbot, session):
    """Panels keep the id request() returns and drop replies to other ids, so an answer that came before the id
    was kept was lost and left the panel 'loading…' for ever (the vocabulary list, an export, a preview)."""
    from tests.conftest import kill_engine_unnoticed

    kill_engine_unnoticed(session)
    replies = []
    request_id = session.request(p.VocabRequest(tokenizer=1), replies.append)
    assert replies == [], "answered before request() returned: the caller could not know its id yet"
    qtbot.waitUntil(lambda: bool(replies), timeout=5000)
    assert replies[0].parent == request_id and not replies[0].ok and "engine" in replies[0].error
