"""An engine this window did not start: one that kept training in the background after a window closed, found
through the endpoint it recorded in the workspace (engine/endpoint.py). Qt-free, like studio/engine_process.py,
whose EngineProcess it stands in for: EngineClient supervises both the same way (poll, signal the group, read
the log's tail), only the connection is made by us instead of accepted.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from engine.endpoint import pid_alive
from studio.engine_process import EngineProcess


class ForeignProcess:
    """The little of Popen that supervision needs, for a process that is not our child (no exit code to read)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not pid_alive(self.pid):
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"engine {self.pid}", timeout or 0)
            time.sleep(0.02)
        return 0

    def kill(self) -> None:
        try:
            os.kill(self.pid, 9)
        except OSError:
            pass


class AttachedEngine(EngineProcess):
    """The background engine of `record` (engine.endpoint.read_endpoint's dict); its log is the one it writes."""

    def __init__(self, workspace: str | Path, record: dict):  # noqa: D107 — no listener, no spawn
        self.workspace = str(workspace)
        self.record = record
        self.address = str(record["address"])
        self.authkey = record["authkey"]
        self.run = record.get("run")
        self.sockdir = None
        self.listener = None
        self._log_file = None
        self.log_path = Path(self.workspace) / "logs" / "engine.log"
        self.proc = ForeignProcess(int(record["pid"]))  # type: ignore[assignment]

    def spawn(self):  # pragma: no cover — the process exists already
        raise RuntimeError("an attached engine is not spawned")

    def poke(self) -> None:
        pass

    def exit_reason(self, code: int) -> str:
        return f"the engine (process {self.proc.pid}, which trained in the background) ended" + self.tail_text()
