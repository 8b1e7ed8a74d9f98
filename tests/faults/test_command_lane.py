"""A stuck command lane is noticed (issue 12, item 10): heartbeats prove only the engine's sender alive, so the
window pings the lane that Stop and Pause use. Here a real engine's reader is left waiting inside a 1 MiB frame
whose rest does not come (its heartbeats go on; the window's pings only add to the frame): the window says the
engine stopped reading commands, a heartbeat does not clear that, the rest of the frame does, and Restart gets a
working engine from a stuck one."""

import os
import struct

import pytest

from engine import protocol as p
from studio import engine_client
from studio.engine_client import EngineClient
from studio.engine_supervisor import LANE_STUCK

pytestmark = pytest.mark.skipif(os.name != "posix", reason="writes half a frame to a Unix socket")

START_MS = 60_000


@pytest.fixture
def client(qapp):
    c = EngineClient(reader="notifier")
    c.hang_s = 3.0  # the real limit is 10 s; pings go every 2 s
    yield c
    c.kill_now()


def _start(qtbot, client, workspace) -> None:
    with qtbot.waitSignal(client.engineReady, timeout=START_MS):
        client.start(str(workspace))


FRAME = 1 << 20


class Wire:
    """Counts the bytes the client writes after the start of the injected frame (its pings become frame body)."""

    def __init__(self, monkeypatch):
        self.sent = 0
        real = engine_client.send

        def counted(conn, msg):
            real(conn, msg)
            self.sent += 4 + len(p.encode_batch([msg]))

        monkeypatch.setattr(engine_client, "send", counted)

    def start_frame(self, client) -> None:
        os.write(client._conn.fileno(), struct.pack("!i", FRAME) + b"{")
        self.sent = 1

    def finish_frame(self, client) -> None:
        os.write(client._conn.fileno(), b" " * (FRAME - self.sent))


def test_a_stuck_command_lane_is_a_hang_that_only_the_lane_itself_can_end(qtbot, client, tmp_path, monkeypatch):
    wire = Wire(monkeypatch)
    _start(qtbot, client, tmp_path / "ws")
    heartbeats, hung = [], []
    client.messagesReceived.connect(lambda msgs: heartbeats.extend(m for m in msgs if isinstance(m, p.Heartbeat)))
    client.engineHung.connect(hung.append)
    wire.start_frame(client)
    qtbot.waitUntil(lambda: bool(hung), timeout=10_000)
    assert hung == [LANE_STUCK] and client.state == "hung"
    seen = len(heartbeats)
    qtbot.waitUntil(lambda: len(heartbeats) >= seen + 2, timeout=5000)
    assert client.state == "hung", "a heartbeat ended a hang of the command lane"

    wire.finish_frame(client)  # the engine reads a bad frame, says so, and answers the next ping
    qtbot.waitUntil(lambda: client.state == "ready", timeout=5000)
    assert not client.watch.lane_stuck


def test_restart_gets_a_working_engine_from_one_whose_lane_is_stuck(qtbot, client, tmp_path, monkeypatch):
    wire = Wire(monkeypatch)
    _start(qtbot, client, tmp_path / "ws")
    stuck_pid = client.pid
    wire.start_frame(client)
    qtbot.waitUntil(lambda: client.state == "hung", timeout=10_000)
    with qtbot.waitSignal(client.engineReady, timeout=START_MS):
        client.restart()  # the shutdown request is never read: SIGTERM, then SIGKILL, end the stuck one
    assert client.pid != stuck_pid and client.state == "ready"
    replies = []
    client.messagesReceived.connect(lambda msgs: replies.extend(m for m in msgs if isinstance(m, p.PingReply)))
    req = p.WorkspaceRequest()
    with qtbot.waitSignal(
        client.messagesReceived, timeout=5000, check_params_cb=lambda msgs: any(m.parent == req.id for m in msgs)
    ):
        assert client.send(req)
    assert not replies, "ping replies are the client's own business, never handed to the window"
