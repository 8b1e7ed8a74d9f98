"""A small synchronous client for the real engine process, for tests without Qt.

It starts the engine exactly as the window does (studio/engine_process.py: the same socket, authkey, process
group and log) and then reads synchronously instead of from an event loop."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from engine import protocol as p
from studio.engine_process import EngineProcess as _Spawner
from studio.engine_process import send

ROOT = Path(__file__).resolve().parents[1]


class EngineProcess:
    def __init__(self, workspace: Path):
        self._spawner = _Spawner(workspace)
        self.proc = self._spawner.spawn()
        self.conn = self._spawner.accept()
        self.inbox: list[p.Message] = []

    def send(self, msg: p.Message) -> p.Message:
        send(self.conn, msg)
        return msg

    def pump(self, timeout: float = 0.1) -> None:
        if self.conn.poll(timeout):
            while self.conn.poll(0):
                self.inbox.extend(p.decode_batch(self.conn.recv_bytes()))

    def wait_for(self, pred, timeout: float = 60.0) -> p.Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, m in enumerate(self.inbox):
                if pred(m):
                    return self.inbox.pop(i)
            self.pump()
            if self.proc.poll() is not None and not self.conn.poll(0):
                raise AssertionError(f"engine exited with {self.proc.returncode}: {self.log()[-2000:]}")
        raise AssertionError(f"timed out; engine log:\n{self.log()[-2000:]}")

    def request(self, msg: p.Message, timeout: float = 60.0) -> p.Reply:
        self.send(msg)
        return self.wait_for(lambda m: isinstance(m, p.Reply) and m.parent == msg.id, timeout)

    def events(self, parent: str, kind: type) -> list[p.Message]:
        self.pump(0)
        return [m for m in self.inbox if isinstance(m, kind) and m.parent == parent]

    def log(self) -> str:
        self._spawner.flush_log()
        return self._spawner.log_path.read_bytes().decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send(p.ShutdownRequest())
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.conn.close()
        self._spawner.close()
