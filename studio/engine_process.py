"""One engine process and the private socket it connects back to, without Qt: spawn, accept, send, receive,
signal its group, and say in words why it ended.

`studio/engine_client.py` wraps this for the window (it receives from the event loop or a reader thread,
supervises from one timer and speaks in Qt signals), as qtconsole wraps jupyter_client; `tests/engine_harness.py`
drives it synchronously. Keeping the process plumbing here means the two cannot start the engine differently.

The engine (`python -m engine.worker`) runs in its own process group (a POSIX session; a Windows group that
Ctrl+Break reaches), so one signal reaches everything it started. It connects back to a Unix socket in a private
temporary folder (a named pipe on Windows) and proves itself with a random authkey written to its stdin (a pipe, not the environment).
Its stdout and stderr go to `<workspace>/logs/engine.log` (the previous one kept as `engine.log.1`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path

from engine import protocol as p
from engine.peers import private_address

WINDOWS = sys.platform == "win32"
FAMILY = "AF_PIPE" if WINDOWS else "AF_UNIX"
_NEW_GROUP = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if WINDOWS else {"start_new_session": True}
SIGKILL = getattr(signal, "SIGKILL", 9)  # Windows has no SIGKILL; signal_group maps it to TerminateProcess
LOG_TAIL_LINES = 4
# The engine package lives next to studio/; the child can import it even when nothing is installed.
_PROJECT_ROOT = str(Path(p.__file__).resolve().parents[1])


class EngineProcess:
    """A listening socket and, once `spawn()` ran, the engine process that will connect to it."""

    def __init__(self, workspace: str | Path):
        self.workspace = str(workspace)
        self.authkey = os.urandom(32)
        self.address, self.sockdir = private_address("")
        self.listener = Listener(self.address, family=FAMILY, authkey=self.authkey)
        self.log_path = self._open_log(Path(self.workspace))
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> subprocess.Popen:
        """Start the engine; OSError (no Python, no memory) closes the listener and propagates."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("STUDIO_AUTHKEY", None)
        env["PYTHONPATH"] = os.pathsep.join(x for x in (_PROJECT_ROOT, env.get("PYTHONPATH", "")) if x)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "engine.worker", "--address", self.address, "--workspace", self.workspace],
                env=env,
                stdin=subprocess.PIPE,
                stdout=self._log_file,
                stderr=self._log_file,
                close_fds=True,
                **_NEW_GROUP,
            )
        except OSError:
            self.listener.close()
            raise
        try:  # the key over a pipe only the two processes hold, never in the environment (/proc/PID/environ)
            assert self.proc.stdin is not None
            self.proc.stdin.write(self.authkey.hex().encode("ascii") + b"\n")
            self.proc.stdin.close()
        except OSError:
            pass  # the engine died at once: its exit code and log say why
        return self.proc

    def accept(self) -> Connection:
        """Block until the engine connects (for synchronous callers; the window accepts on a thread)."""
        try:
            return self.listener.accept()
        finally:
            self.listener.close()
            self.remove_sockdir()

    def poke(self) -> None:
        """Connect to our own listener, so a thread blocked in accept() returns (Listener has no timeout)."""
        try:
            Client(self.address, family=FAMILY, authkey=self.authkey).close()
        except Exception:  # already closed, or the engine took the only connection
            pass

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            if not WINDOWS:
                os.killpg(self.proc.pid, sig)  # start_new_session made the engine its group's leader
            elif sig == signal.SIGTERM:
                os.kill(self.proc.pid, signal.CTRL_BREAK_EVENT)  # the engine's SIGBREAK handler checkpoints
            elif self.proc.poll() is None:
                self.proc.kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def exit_reason(self, code: int) -> str:
        text = f"the engine was killed by {signal_name(-code)}" if code < 0 else f"the engine exited with code {code}"
        return text + self.tail_text()

    def tail_text(self) -> str:
        """ "; last output: …" from the engine's log (a traceback's last line names the error), or ""."""
        self.flush_log()
        tail = log_tail(self.log_path, 40)
        if any(line.startswith("Traceback") for line in tail):
            tail = tail[-1:]
        tail = [line.strip() for line in tail if line.strip(" ^~")][-LOG_TAIL_LINES:]
        return f"; last output: {' | '.join(tail)}" if tail else ""

    def flush_log(self) -> None:
        if self._log_file is not None:
            try:
                self._log_file.flush()
            except (OSError, ValueError):
                pass

    def remove_sockdir(self) -> None:
        if self.sockdir:
            shutil.rmtree(self.sockdir, ignore_errors=True)
            self.sockdir = None

    def close(self) -> None:
        """Remove the socket folder and close the log file (the process itself is the caller's). The listener is
        not closed here: a thread may be blocked in its accept(), and closing a descriptor under a blocked call
        lets the number be reused beneath it; accept() and the accept thread close it (poke() wakes that)."""
        self.remove_sockdir()
        if self._log_file is not None:
            try:
                self._log_file.close()
            except OSError:
                pass
            self._log_file = None

    def _open_log(self, workspace: Path) -> Path:
        try:
            logs = workspace / "logs"
            logs.mkdir(parents=True, exist_ok=True)
        except OSError:
            logs = Path(self.sockdir or tempfile.mkdtemp(prefix="studio-log-"))
        path = logs / "engine.log"
        if path.exists():
            try:
                os.replace(path, logs / "engine.log.1")
            except OSError:
                pass
        self._log_file = open(path, "wb")
        return path


def send(conn: Connection, msg: p.Message) -> None:
    """One message as one frame; OSError/ValueError when the connection is gone."""
    conn.send_bytes(p.encode_batch([msg]))


def hello_problem(reply: p.HelloReply) -> str | None:
    """Why a hello reply ends the handshake, in words; None when the engine may be used."""
    if not reply.ok:
        return reply.error or "the engine refused the handshake"
    if not p.compatible(reply.protocol_version):
        return f"the engine speaks protocol {reply.protocol_version}, the studio {p.PROTOCOL_VERSION}"
    return None


def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def log_tail(path: str | Path | None, n: int = LOG_TAIL_LINES) -> list[str]:
    """The last `n` non-empty lines of a log file (reads only its end)."""
    if not path:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in data.splitlines() if line.strip()][-n:]
