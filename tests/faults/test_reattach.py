"""Reattach (issue 12, item 7): a window that closes with "keep training in the background" leaves the engine
training; it records an authenticated endpoint in the workspace, and a studio opened later reattaches live. The
engine is real, the endpoint a real socket; these tests speak to it as the studio does."""

import os
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client

import pytest

from engine import protocol as p
from engine.endpoint import endpoint_path, read_endpoint
from studio.engine_process import send
from tests.engine_harness import EngineProcess
from tests.test_worker import corpus, tiny_config

pytestmark = pytest.mark.skipif(os.name != "posix", reason="Unix sockets and process probes")


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _training(engine, tmp_path, max_iters=100_000):
    assert engine.request(p.HelloRequest()).ok
    ds = engine.request(p.ImportRequest(paths=[str(corpus(tmp_path))], name="mats"))
    tok = engine.request(p.TokenizerTrainRequest(dataset=ds.dataset["id"], tokenizer_kind="char"))
    start = engine.request(p.TrainRequest(config=tiny_config(ds.dataset["id"], tok.tokenizer["id"], max_iters)))
    assert start.ok, start.error
    engine.wait_for(lambda m: isinstance(m, p.Metrics))
    return start.run["id"]


class Peer:
    """A studio that reattached: the same framing as the window's connection."""

    def __init__(self, record):
        self.conn = Client(record["address"], family="AF_UNIX", authkey=record["authkey"])
        self.inbox: list = []

    def request(self, msg, timeout=30.0):
        send(self.conn, msg)
        return self.wait_for(lambda m: isinstance(m, p.Reply) and m.parent == msg.id, timeout)

    def wait_for(self, pred, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, m in enumerate(self.inbox):
                if pred(m):
                    return self.inbox.pop(i)
            if self.conn.poll(0.1):
                self.inbox.extend(p.decode_batch(self.conn.recv_bytes()))
        raise AssertionError("timed out")


def test_the_run_trains_on_after_the_window_closes_and_a_studio_reattaches_live(tmp_path):
    ws = tmp_path / "ws"
    engine = EngineProcess(ws)
    try:
        run_id = _training(engine, tmp_path)
        reply = engine.request(p.DetachRequest())
        assert reply.ok and reply.run == run_id
        engine.pump(0)
        detached_at = max((m.rows[-1]["step"] for m in engine.inbox if isinstance(m, p.Metrics)), default=1)
        engine.conn.close()  # the window goes away
        record = read_endpoint(ws)
        assert record is not None and record["pid"] == engine.proc.pid and record["run"] == run_id
        assert endpoint_path(ws).stat().st_mode & 0o077 == 0, "the key is readable by others"
        time.sleep(1.5)
        assert engine.proc.poll() is None, "the engine stopped when the window closed"

        peer = Peer(record)
        hello = peer.request(p.HelloRequest())
        assert hello.ok and hello.pid == engine.proc.pid
        status = peer.wait_for(lambda m: isinstance(m, p.Status))
        assert status.run == run_id and p.status_states(status)[1] == "training"
        first = peer.wait_for(lambda m: isinstance(m, p.Metrics)).rows[-1]["step"]
        later = peer.wait_for(lambda m: isinstance(m, p.Metrics) and m.rows[-1]["step"] > first + 5)
        assert later.run == run_id
        history = peer.request(p.MetricsRequest(run=run_id))
        steps = [r["step"] for r in history.rows if r["split"] == "train"]
        # Stored in batches: the window merges this history with the live rows, as for a run it started.
        assert steps[0] <= 1 and steps[-1] > detached_at, "the steps trained while detached are missing"
        assert steps == list(range(steps[0], steps[-1] + 1)), "the steps trained while detached are missing"
        assert not endpoint_path(ws).exists(), "a second window could attach as well"
        assert peer.request(p.PingRequest()).job == "train_request"

        peer.conn.close()  # closing without detaching is the old rule: stop with a checkpoint, exit
        engine.proc.wait(timeout=30)
        assert engine.proc.returncode == 0
    finally:
        engine.close()


def test_a_detached_engine_whose_run_ends_exits_and_removes_its_endpoint(tmp_path):
    ws = tmp_path / "ws"
    engine = EngineProcess(ws)
    try:
        _training(engine, tmp_path, max_iters=150)
        if engine.request(p.DetachRequest()).ok:  # (a very fast machine could have finished already)
            engine.conn.close()
            engine.proc.wait(timeout=120)
            assert engine.proc.returncode == 0
        assert not endpoint_path(ws).exists()
    finally:
        engine.close()


def test_a_peer_without_the_key_is_ignored_and_the_real_studio_still_gets_in(tmp_path):
    ws = tmp_path / "ws"
    engine = EngineProcess(ws)
    try:
        _training(engine, tmp_path)
        assert engine.request(p.DetachRequest()).ok
        engine.conn.close()
        record = read_endpoint(ws)
        with pytest.raises((AuthenticationError, EOFError, OSError)):
            Client(record["address"], family="AF_UNIX", authkey=b"wrong key").close()
        assert read_endpoint(ws) is not None and engine.proc.poll() is None
        assert Peer(record).request(p.HelloRequest()).ok
    finally:
        engine.close()


def test_detach_with_nothing_training_is_refused_and_a_dead_engines_endpoint_is_forgotten(tmp_path):
    ws = tmp_path / "ws"
    engine = EngineProcess(ws)
    try:
        assert engine.request(p.HelloRequest()).ok
        refused = engine.request(p.DetachRequest())
        assert not refused.ok and "nothing is training" in refused.error
        assert not endpoint_path(ws).exists()
    finally:
        engine.close()
    endpoint_path(ws).write_text(
        '{"pid": %d, "host": "%s", "address": "/nowhere", "authkey": "00", "run": 1}'
        % (engine.proc.pid, __import__("engine.endpoint").endpoint.HOST)
    )
    assert read_endpoint(ws) is None and not endpoint_path(ws).exists()


# ------------------------------------------------------------------------------------------------ the window
def test_closing_the_window_keeps_the_run_training_and_reopening_reattaches_live(qtbot, qsettings, tmp_path):
    from tests.conftest import ENGINE_START_TIMEOUT_S, main_window, open_studio, wait_until
    from tests.test_first_hour import tiny_training
    from studio.session import Session

    ws = tmp_path / "ws"
    with open_studio(qtbot, qsettings, ws) as (win, session):
        tiny_training(session, steps=100_000, log_interval=5, eval_interval=1000)
        win.panels["train"].start_training()
        qtbot.waitUntil(lambda: session.is_training and session.run and session.run["step"] > 10, timeout=60_000)
        run_id, pid = session.training_run, session.client.pid
        win.ask_quit_while_training = lambda: "background"
        win.close()
        assert not win.isVisible()
    assert read_endpoint(ws)["pid"] == pid
    time.sleep(1.0)
    assert _wait_for(lambda: read_endpoint(ws) is not None) and os.kill(pid, 0) is None  # still training

    again = Session(str(ws))
    again.start_engine()
    wait_until(lambda: again.hello is not None or again.engine_state == "dead", ENGINE_START_TIMEOUT_S, "hello")
    win2 = main_window(qtbot, again, qsettings)
    win2.ask_quit_while_training = lambda: "stop"
    try:
        train = win2.panels["train"]
        assert again.client.attached and again.hello.pid == pid
        qtbot.waitUntil(lambda: again.is_training and train.curves.run_id == run_id, timeout=15_000)
        assert win2.current_page() == "train" and "Reattached to run" in win2.notice_label.text()
        qtbot.waitUntil(lambda: len(train.curves.steps) > 3, timeout=15_000)
        assert train.curves.steps[0] <= 5, "the history from before the window closed is missing"
        seen = train.curves.steps[-1]
        qtbot.waitUntil(lambda: train.curves.steps[-1] > seen + 20, timeout=30_000)  # live

        def whole() -> bool:  # steps 1, 5, 10, 15…: the rows trained while no window was open are filled in
            steps = train.curves.steps
            return steps[:2] == [1, 5] and all(b - a == 5 for a, b in zip(steps[1:], steps[2:]))

        try:
            qtbot.waitUntil(whole, timeout=10_000)
        except Exception:
            st = train.curves.steps
            raise AssertionError([(a, b) for a, b in zip(st, st[1:]) if b - a != 5][:10])
        win2.close()
        assert not win2.isVisible()
        assert _wait_for(lambda: again.client.proc is None or again.client.proc.poll() is not None, 40)
    finally:
        again.client.kill_now()
    from engine.store import Workspace

    with Workspace(ws) as w:
        assert w.run(run_id)["status"] == "stopped" and w.run(run_id)["step"] > seen
