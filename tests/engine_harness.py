"""A small synchronous client for the real engine process, for tests without Qt."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Listener
from pathlib import Path

from engine import protocol as p

ROOT = Path(__file__).resolve().parents[1]


class EngineProcess:
    def __init__(self, workspace: Path):
        self._dir = tempfile.mkdtemp(prefix="studio-test-")
        key = secrets.token_bytes(32)
        self.listener = Listener(os.path.join(self._dir, "engine.sock"), family="AF_UNIX", authkey=key)
        env = dict(os.environ, STUDIO_AUTHKEY=key.hex(), PYTHONPATH=str(ROOT))
        self.stderr = open(os.path.join(self._dir, "engine.log"), "w+b")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.worker", "--address", self.listener.address, "--workspace", str(workspace)],
            env=env, stderr=self.stderr, start_new_session=True, cwd=ROOT)
        self.conn = self.listener.accept()
        self.inbox: list[p.Message] = []

    def send(self, msg: p.Message) -> p.Message:
        self.conn.send_bytes(p.encode_batch([msg]))
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
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

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
        self.listener.close()
        self.stderr.close()
