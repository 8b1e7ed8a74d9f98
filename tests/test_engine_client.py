"""EngineClient against the real engine process: handshake, batching, death, hang, ordered stop."""

import gc
import os
import signal
import weakref

import pytest

from engine import protocol as p
from studio.engine_client import EngineClient

START_MS = 60_000


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(params=["notifier", "thread"])
def client(qapp, tmp_path, request):
    """Both ways of reading the engine: the event loop's socket notifier (POSIX) and the reader thread that
    Windows needs (its pipes cannot be watched by a QSocketNotifier), here over the same Unix socket."""
    c = EngineClient(reader=request.param)
    yield c
    c.kill_now()


def _start(qtbot, client, workspace) -> p.HelloReply:
    with qtbot.waitSignal(client.engineReady, timeout=START_MS) as blocker:
        client.start(str(workspace))
    return blocker.args[0]


def test_hello_batches_and_ordered_stop(qtbot, client, tmp_path):
    hello = _start(qtbot, client, tmp_path / "ws")
    assert hello.ok and hello.device in ("cpu", "cuda") and hello.device_name
    assert hello.pid == client.pid
    assert "sample" in [d["name"] for d in hello.workspace["datasets"]]
    assert client.state == "ready" and client.detail == hello.device_name

    # Messages arrive as lists (one signal per drain); heartbeats come every second.
    with qtbot.waitSignal(
        client.messagesReceived,
        timeout=3000,
        check_params_cb=lambda msgs: any(isinstance(m, p.Heartbeat) for m in msgs),
    ) as got:
        pass
    assert isinstance(got.args[0], list)

    # A reply to our own request comes back through the same path.
    req = p.WorkspaceRequest()
    with qtbot.waitSignal(
        client.messagesReceived, timeout=5000, check_params_cb=lambda msgs: any(m.parent == req.id for m in msgs)
    ):
        assert client.send(req)

    pgid = client.pid
    assert _group_alive(pgid)
    with qtbot.waitSignal(client.stopped, timeout=8000):
        client.stop()
    assert client.state == "stopped"
    assert client.proc.poll() is not None
    assert not _group_alive(pgid), "the engine's process group outlived stop()"
    assert not client.send(p.WorkspaceRequest())  # nothing to send to any more


def test_kill_9_is_reported_within_two_seconds(qtbot, client, tmp_path):
    _start(qtbot, client, tmp_path / "ws")
    died = []
    client.engineDied.connect(died.append)
    os.kill(client.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: bool(died), timeout=2000)
    assert "SIGKILL" in died[0] and died[0].startswith("the engine was killed")
    assert client.state == "dead"


def test_hang_detected_and_recovered(qtbot, client, tmp_path):
    _start(qtbot, client, tmp_path / "ws")
    client.hang_s = 1.5  # the real limit is 10 s; heartbeats come every second
    hung = []
    client.engineHung.connect(hung.append)
    os.killpg(client.pid, signal.SIGSTOP)
    try:
        qtbot.waitUntil(lambda: bool(hung), timeout=5000)
        assert "no heartbeat" in hung[0]
        assert client.state == "hung"
    finally:
        os.killpg(client.pid, signal.SIGCONT)
    qtbot.waitUntil(lambda: client.state == "ready", timeout=5000)


def test_restart_gives_a_new_process(qtbot, client, tmp_path):
    _start(qtbot, client, tmp_path / "ws")
    old = client.pid
    with qtbot.waitSignal(client.engineReady, timeout=START_MS):
        client.restart()
    assert client.pid != old and client.state == "ready"
    assert not _group_alive(old)


def test_the_reader_is_chosen_by_platform_or_environment(monkeypatch):
    from studio import engine_client as ec

    monkeypatch.delenv("STUDIO_ENGINE_READER", raising=False)
    assert ec.default_reader() == ("thread" if ec.WINDOWS else "notifier")
    monkeypatch.setenv("STUDIO_ENGINE_READER", "thread")
    assert ec.default_reader() == "thread"
    with pytest.raises(ValueError, match="reader must be one of"):
        EngineClient(reader="carrier-pigeon")


def test_the_reader_thread_hands_over_a_flood_in_few_drains(qtbot, qapp, tmp_path):
    """Many replies at once arrive as a few lists, not one signal each, and in order."""
    c = EngineClient(reader="thread")
    try:
        _start(qtbot, c, tmp_path / "ws")
        drains, replies = [], []

        def on_msgs(msgs):
            drains.append(len(msgs))
            replies.extend(m for m in msgs if isinstance(m, p.WorkspaceReply))

        c.messagesReceived.connect(on_msgs)
        reqs = [p.WorkspaceRequest() for _ in range(200)]
        for r in reqs:
            assert c.send(r)
        qtbot.waitUntil(lambda: len(replies) == 200, timeout=20_000)
        assert [r.parent for r in replies] == [r.id for r in reqs]
        assert len(drains) < 200
    finally:
        c.kill_now()


def test_the_reader_thread_can_be_torn_down_mid_flood(qtbot, qapp, tmp_path):
    """Dropping a client while its reader thread is delivering a flood frees it at once, on the GUI thread, and
    nothing the thread posts afterwards reaches the dead object. (The thread used to hold the client, so it was
    destroyed on the reader thread with events still queued for it: a SIGSEGV in the event loop.)"""
    c = EngineClient(reader="thread")
    _start(qtbot, c, tmp_path / "ws")
    engine = c.proc
    got = []
    c.messagesReceived.connect(lambda msgs: got.extend(msgs))
    for _ in range(300):
        assert c.send(p.WorkspaceRequest())
    qtbot.waitUntil(lambda: len(got) > 20, timeout=20_000)  # the flood is arriving
    alive = weakref.ref(c)
    del c
    gc.collect()
    try:
        assert alive() is None, "the reader thread kept the client alive"
        qtbot.wait(1500)  # the engine goes on answering and sending heartbeats into a mailbox nobody reads
    finally:
        os.killpg(engine.pid, signal.SIGKILL)
        engine.wait(5)
    qtbot.wait(300)  # the reader thread sees EOF and ends, posting to nobody
    assert engine.poll() is not None


def test_a_watched_descriptor_is_never_closed_under_its_notifier(qtbot, qapp, qtlog):
    """The garbage collector may free a mailbox's Python side while its notifier, a C++ child of a live object,
    still watches the socket. Closing the socket then made Qt print "QSocketNotifier: Invalid socket" in a loop
    and stop delivering to every client (the suite hung under load). The socket now lives as long as the
    notifier, and the notifier stops when nobody reads it."""
    from PySide6.QtCore import QObject, QSocketNotifier

    from studio.thread_mailbox import Mailbox

    class Owner(QObject):
        def deliver(self, items):
            pass

    owner = Owner()
    box = Mailbox(owner, owner.deliver)
    fd = box._read_end.fileno()
    box.post(("frames", None, [], 1))  # a wake-up nobody will read
    del box
    gc.collect()
    qtbot.wait(300)
    assert not [r for r in qtlog.records if "Invalid socket" in r.message]
    assert os.path.exists(f"/proc/self/fd/{fd}"), "the socket was closed under its notifier"
    (notifier,) = owner.findChildren(QSocketNotifier)
    assert not notifier.isEnabled()
    owner.deleteLater()  # the notifier goes, and the socket with it
    qtbot.waitUntil(lambda: not os.path.exists(f"/proc/self/fd/{fd}"), timeout=2000)
