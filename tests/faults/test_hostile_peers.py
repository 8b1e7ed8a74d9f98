"""The engine's own robustness (issue 12, item 10), against a real engine process: a frame nested too deeply is
answered and the command lane goes on (it used to stop it while heartbeats went on); a length prefix of
0x7fffffff is refused and the connection closed in words instead of waiting for 2 GiB; stray local peers during
start-up (closing at once, a wrong key, silent) are ignored until the real engine connects; and the key is never
in the engine's environment."""

import json
import os
import socket
import struct
import threading
import time

import pytest

from engine import protocol as p
from studio.engine_process import FAMILY, EngineProcess, send
from studio.thread_mailbox import accept_connection
from tests.engine_harness import EngineProcess as Harness

pytestmark = pytest.mark.skipif(os.name != "posix", reason="Unix sockets and /proc")


def _answers_hello_and_stop(eng: Harness) -> None:
    assert eng.request(p.HelloRequest(), timeout=30).ok
    stop = eng.request(p.ControlRequest(action="stop"), timeout=30)
    assert "nothing to stop" in stop.error  # answered: the lane that Stop uses is alive


def test_a_frame_nested_too_deeply_is_answered_and_the_lane_goes_on(tmp_path):
    eng = Harness(tmp_path / "ws")
    try:
        deep = "[" * 200_000 + "]" * 200_000
        eng.conn.send_bytes(f'{{"v": "{p.PROTOCOL_VERSION}", "msgs": {deep}}}'.encode())
        eng.conn.send_bytes(json.dumps({"v": p.PROTOCOL_VERSION, "msgs": [{"kind": 5}]}).encode())
        eng.conn.send_bytes(b"\xff\xfe not json")
        log = eng.wait_for(lambda m: isinstance(m, p.Log) and "nested too deeply" in m.message, timeout=30)
        assert log.level == "error"
        _answers_hello_and_stop(eng)
    finally:
        eng.close()


def test_a_huge_length_prefix_closes_the_connection_in_words_instead_of_hanging(tmp_path):
    eng = Harness(tmp_path / "ws")
    try:
        os.write(eng.conn.fileno(), struct.pack("!i", 0x7FFFFFFF))
        log = eng.wait_for(lambda m: isinstance(m, p.Log) and "closed the connection" in m.message, timeout=30)
        assert "bad message length" in log.message
        eng.proc.wait(15)  # it does not sit waiting for 2 GiB that never come
    finally:
        eng.close()


def test_stray_peers_during_start_up_are_ignored_until_the_engine_connects(tmp_path):
    spawner = EngineProcess(tmp_path / "ws")
    posted, cancelled = [], threading.Event()
    thread = threading.Thread(target=accept_connection, args=(spawner.listener, 1, posted.append, cancelled))
    thread.start()

    def peer() -> socket.socket:
        s = socket.socket(socket.AF_UNIX if FAMILY == "AF_UNIX" else socket.AF_INET)
        s.connect(spawner.address)
        return s

    peer().close()  # connects and closes at once
    silent = peer()  # connects and says nothing
    wrong = socket.socket(socket.AF_UNIX)
    wrong.connect(spawner.address)
    wrong.sendall(struct.pack("!i", 4) + b"nope")
    spawner.spawn()
    try:
        thread.join(60)
        assert [m[0] for m in posted] == ["accepted"], posted
        conn = posted[0][2]
        hello = p.HelloRequest()
        send(conn, hello)
        deadline = time.monotonic() + 60
        replies = []
        while time.monotonic() < deadline and not any(getattr(m, "parent", None) == hello.id for m in replies):
            if conn.poll(0.1):
                replies.extend(p.decode_batch(conn.recv_bytes()))
        assert any(isinstance(m, p.HelloReply) and m.ok for m in replies)  # the real engine, connected
        environ = open(f"/proc/{spawner.pid}/environ", "rb").read()
        assert spawner.authkey.hex().encode() not in environ  # the key came over a pipe
        conn.close()
    finally:
        silent.close()
        wrong.close()
        spawner.signal_group(9)
        spawner.proc.wait(10)
        spawner.close()
