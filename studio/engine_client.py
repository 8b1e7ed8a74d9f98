"""Starts and supervises the engine process and turns its batched frames into Qt signals.

The engine is a separate OS process (`python -m engine.worker`) in its own session, so torch never loads in the GUI
and a crash there cannot take the window with it. It connects back to a private Unix socket (a named pipe on
Windows) with a random authkey. The GUI thread reads that connection from its event loop through a QSocketNotifier
and emits ONE signal per drain, never one per message: measured here, that keeps the event loop free of stalls at
10k messages/s. A QSocketNotifier cannot watch a Windows pipe, so there a reader thread receives and decodes the
frames and posts each drain to the GUI thread through a Mailbox (STUDIO_ENGINE_READER=thread picks it anywhere).
Neither that thread nor the accept thread ever holds the client or any Qt object (see studio/thread_mailbox.py).
Spawning, the socket, signals and the words for an exit are Qt-free, in studio/engine_process.py.

Supervision, all from one 100 ms timer in the GUI thread (no blocking waits anywhere); what it decides (death,
hang, the ordered stop's escalation) is Qt-free, in studio/engine_supervisor.py, and this class carries it out:
- death: EOF on the connection or `Popen.poll()` -> `engineDied(reason)` with exit code / signal and the log's tail;
- hang: no frame for a while, no hello reply in time, or pings unanswered while heartbeats come (the command lane
  is stuck, so Stop and Pause would not arrive) -> `engineHung(reason)`;
- stop: shutdown_request, then SIGTERM (the engine checkpoints), then SIGKILL to the whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject, QSocketNotifier, QTimer, Signal

from engine import protocol as p
from engine.endpoint import read_endpoint
from studio.engine_attach import AttachedEngine
from studio.engine_process import SIGKILL, WINDOWS, EngineProcess, hello_problem, log_tail, send
from studio.engine_supervisor import KILL_AFTER_S, TERM_AFTER_S, Watch, next_step
from studio.thread_mailbox import (
    MAX_FRAMES_PER_DRAIN,
    Mailbox,
    accept_connection,
    connect_to,
    decode_frames,
    keep_open_while_watched,
    read_frames,
)

READERS = ("notifier", "thread")


def default_reader() -> str:
    """How the GUI reads the engine: "notifier" (event loop) where sockets allow it, "thread" on Windows."""
    chosen = os.environ.get("STUDIO_ENGINE_READER", "").strip().lower()
    if chosen in READERS and not (WINDOWS and chosen == "notifier"):
        return chosen
    return "thread" if WINDOWS else "notifier"


__all__ = ["EngineClient", "default_reader", "log_tail"]


class EngineClient(QObject):
    """One engine process and its connection. States: idle, starting, ready, hung, stopping, stopped, dead."""

    messagesReceived = Signal(list)  # every message of one drain (heartbeats included), hello excepted
    engineReady = Signal(object)  # the HelloReply
    engineDied = Signal(str)  # readable reason
    engineHung = Signal(str)  # readable reason
    stateChanged = Signal(str, str)  # state, detail
    stopped = Signal()  # an asked-for stop has finished (process gone)

    def __init__(self, parent=None, reader: str | None = None):
        super().__init__(parent)
        self.reader = reader or default_reader()
        if self.reader not in READERS:
            raise ValueError(f"reader must be one of {', '.join(READERS)}, not {self.reader!r}")
        # The accept and reader threads hand over through this; they never see `self` (see thread_mailbox).
        self._mailbox = Mailbox(self, self._on_mailbox)
        self._accept_cancelled = threading.Event()
        self.state = "idle"
        self.detail = ""
        self.watch = Watch()  # the limits and the clock of supervision (Qt-free, studio/engine_supervisor.py)
        self.hello: p.HelloReply | None = None
        self.workspace: str | None = None
        self.engine: EngineProcess | None = None  # the process and its socket (Qt-free)
        self._conn: Connection | None = None
        self._notifier: QSocketNotifier | None = None
        self._gen = 0
        self._accepting = False
        self._restart_after_stop = False
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._supervise)

    # ------------------------------------------------------------------------------------------------ public
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def hang_s(self) -> float:
        return self.watch.hang_s

    @hang_s.setter
    def hang_s(self, seconds: float) -> None:
        self.watch.hang_s = seconds

    @property
    def startup_grace_s(self) -> float:
        return self.watch.startup_grace_s

    @startup_grace_s.setter
    def startup_grace_s(self, seconds: float) -> None:
        self.watch.startup_grace_s = seconds

    @property
    def proc(self) -> subprocess.Popen | None:
        return self.engine.proc if self.engine is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.engine.log_path if self.engine is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def attached(self) -> bool:
        """Whether this engine is one that trained in the background, reattached to (studio/engine_attach.py)."""
        return isinstance(self.engine, AttachedEngine)

    def start(self, workspace: str) -> None:
        """Reattach to the workspace's background engine if it has one, else spawn an engine for it; returns at
        once (the hello reply arrives later)."""
        if self.proc is not None and self.state not in ("dead", "stopped"):
            raise RuntimeError("the engine is already running; stop it first")
        self._cleanup()
        self.workspace = str(workspace)
        record = read_endpoint(self.workspace)
        if record is not None:
            self._attach(record)
        else:
            self._spawn()

    def _attach(self, record: dict) -> None:
        self._gen += 1
        self.hello = None
        self.watch.started(time.monotonic())
        self.engine = AttachedEngine(self.workspace, record)
        threading.Thread(
            target=connect_to,
            name="engine-attach",
            daemon=True,
            args=(self.engine.address, self.engine.authkey, self._gen, self._mailbox.post),
        ).start()
        self._set_state("starting", f"reattaching to run {record.get('run')}, which trains in the background")
        self._timer.start()

    def let_go(self) -> None:
        """Leave the engine running without us (it said it trains on in the background): close our end only."""
        self._cancel_accept()
        self._close_conn()
        self._timer.stop()
        if self.engine is not None:
            self.engine.close()
        self.engine = None
        self._set_state("stopped", "training goes on in the background")

    def _spawn(self) -> None:
        self._gen += 1
        self.hello = None
        self.watch.started(time.monotonic())
        self.engine = engine = EngineProcess(self.workspace)
        try:
            engine.spawn()
        except OSError as e:
            self._set_state("dead", f"the engine could not be started: {e}")
            self.engineDied.emit(self.detail)
            return
        self.watch.started(time.monotonic())
        self._accepting = True
        self._accept_cancelled = threading.Event()
        threading.Thread(
            target=accept_connection,
            name="engine-accept",
            daemon=True,
            args=(engine.listener, self._gen, self._mailbox.post, self._accept_cancelled),
        ).start()
        self._set_state("starting", "")
        self._timer.start()

    def send(self, msg: p.Message) -> bool:
        """Send one message; False when there is no live connection (the caller reports it)."""
        if self._conn is None or self.watch.eof_at is not None:
            return False
        try:
            send(self._conn, msg)
            return True
        except (OSError, ValueError):
            self._on_eof()
            return False

    def stop(self, kill_after: float | None = None) -> None:
        """Ask the engine to shut down, escalating to SIGTERM and SIGKILL of its group; returns at once.

        `kill_after` (seconds) gives a running training longer to stop and write its checkpoint before SIGKILL."""
        self._restart_after_stop = False
        self.watch.kill_after = max(kill_after or KILL_AFTER_S, TERM_AFTER_S)
        self._begin_stop()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """Run a local event loop (the GUI keeps painting) until the process is gone; for quitting the app."""
        timeout = timeout if timeout is not None else self.watch.kill_after + 1.0
        if self.proc is None or self.state in ("stopped", "dead"):
            return True
        loop = QEventLoop()
        self.stopped.connect(loop.quit)
        self.engineDied.connect(loop.quit)
        QTimer.singleShot(int(timeout * 1000), loop.quit)
        loop.exec()
        self.stopped.disconnect(loop.quit)
        self.engineDied.disconnect(loop.quit)
        return self.proc is None or self.proc.poll() is not None

    def restart(self, workspace: str | None = None) -> None:
        if workspace:
            self.workspace = str(workspace)
        if self.proc is None or self.proc.poll() is not None:
            self._cleanup()
            self.start(self.workspace)
            return
        self._restart_after_stop = True
        self.watch.kill_after = KILL_AFTER_S
        self._begin_stop()

    def kill_now(self) -> None:
        """Last resort when the app exits: SIGKILL the group without waiting."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(SIGKILL)
            try:
                self.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                pass
        self._cleanup()

    # --------------------------------------------------------------------------------------------- start-up
    def _cancel_accept(self) -> None:
        """Unblock the accept thread by connecting to the listener ourselves (Listener has no timeout)."""
        if not self._accepting:
            return
        self._accepting = False
        self._accept_cancelled.set()
        if self.engine is not None:
            threading.Thread(target=self.engine.poke, name="engine-accept-cancel", daemon=True).start()

    def _on_accepted(self, gen: int, conn: Connection) -> None:
        if gen != self._gen or self.state not in ("starting", "hung"):
            conn.close()
            return
        self._accepting = False
        self._conn = conn
        self.watch.last_frame = time.monotonic()
        if self.reader == "thread":
            threading.Thread(
                target=read_frames, args=(conn, self._mailbox.post), name="engine-reader", daemon=True
            ).start()
        else:
            self._notifier = QSocketNotifier(conn.fileno(), QSocketNotifier.Type.Read, self)
            self._notifier.activated.connect(self._drain)
            keep_open_while_watched(self._notifier, conn)
        self.engine.remove_sockdir()
        self.send(p.HelloRequest())

    def _on_accept_failed(self, gen: int, error: str) -> None:
        if gen == self._gen and self.state == "starting" and self.attached:
            self.engine = None  # it went (its run ended) or will not talk: an engine of our own, then
            self._spawn()
            return
        if gen == self._gen and self.state == "starting":
            self._die(f"the engine could not connect: {error}", signal.SIGTERM)

    # ------------------------------------------------------------------------------------------------ reading
    def _drain(self, *_):
        conn = self._conn
        if conn is None:
            return
        msgs: list[p.Message] = []
        try:
            for _ in range(MAX_FRAMES_PER_DRAIN):
                if not conn.poll(0):
                    break
                msgs.extend(decode_frames([conn.recv_bytes(p.MAX_FRAME_BYTES)]))
        except (EOFError, OSError):
            self._deliver(msgs)
            self._on_eof()
            return
        self._deliver(msgs)

    def _on_mailbox(self, items: list[tuple]) -> None:
        """What the accept and reader threads posted, in order; frames of the live connection become one drain."""
        msgs: list[p.Message] = []
        for item in items:
            kind = item[0]
            if kind == "frames":
                if item[1] is self._conn:
                    msgs.extend(item[2])
                continue
            self._deliver(msgs)
            msgs = []
            if kind == "accepted":
                self._on_accepted(item[1], item[2])
            elif kind == "accept_failed":
                self._on_accept_failed(item[1], item[2])
            elif kind == "ended" and item[1] is self._conn:
                self._on_eof()
        self._deliver(msgs)

    def _deliver(self, msgs: list[p.Message]) -> None:
        if not msgs:
            return
        self.watch.last_frame = time.monotonic()
        if any(isinstance(m, p.PingReply) for m in msgs):
            self.watch.ping_answered()
        if self.state == "hung" and not self.watch.lane_stuck:
            self._set_state("ready" if self.hello is not None else "starting", "")
        out = []
        for m in msgs:
            if isinstance(m, p.HelloReply):
                self._on_hello(m)
            elif not isinstance(m, p.PingReply):
                out.append(m)
        if out:
            self.messagesReceived.emit(out)

    def _on_hello(self, reply: p.HelloReply) -> None:
        problem = hello_problem(reply)
        if problem:
            self._die(problem, signal.SIGTERM)
            return
        self.hello = reply
        self.watch.pinging = not p.too_old_for("ping_request", reply.protocol_version)
        self._set_state("ready", reply.device_name or reply.device)
        self.engineReady.emit(reply)

    # --------------------------------------------------------------------------------------------- supervision
    def _supervise(self) -> None:
        """Carry out what the supervisor decides (studio/engine_supervisor.py)."""
        proc = self.proc
        if proc is None:
            self._timer.stop()
            return
        step, reason = next_step(
            self.state,
            self.watch,
            time.monotonic(),
            proc.poll(),
            frames_waiting=self._frames_waiting(),
            hello_seen=self.hello is not None,
        )
        if step == "finish_dead":
            self._finish_dead()
        elif step == "kill":
            self._signal_group(SIGKILL)
        elif step == "term":
            self._signal_group(signal.SIGTERM)
        elif step == "quiet":
            self._timer.stop()
        elif step == "finish_stop":
            self._finish_stop()
        elif step == "exited":
            self._die(self._exit_reason(proc.poll()))
            self._finish_dead()
        elif step == "eof_dead":
            self._die("the engine closed its connection" + self._tail_text(), SIGKILL)
        elif step == "hang":
            self._hang(reason)
        elif step == "ping" and self.send(p.PingRequest()):
            self.watch.ping_sent(time.monotonic())

    def _frames_waiting(self) -> bool:
        if self._mailbox.pending():
            return True
        return self.reader == "notifier" and self._conn is not None and self._conn.poll(0)

    def _hang(self, reason: str) -> None:
        self._set_state("hung", reason)
        self.engineHung.emit(reason)

    def _on_eof(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
        if self.watch.eof_at is None:
            self.watch.eof_at = time.monotonic()
        self._supervise()

    def _exit_reason(self, code: int) -> str:
        return self.engine.exit_reason(code) if self.engine is not None else f"the engine exited with code {code}"

    def _tail_text(self) -> str:
        return self.engine.tail_text() if self.engine is not None else ""

    def _die(self, reason: str, sig: int | None = None) -> None:
        """Report the engine dead; `sig` makes sure a half-alive process really goes (the timer escalates)."""
        if self.state in ("dead", "stopped"):
            return
        self._cancel_accept()
        self.watch.dead_at = time.monotonic()
        if sig is not None:
            self._signal_group(sig)
        self._timer.start()
        self._set_state("dead", reason)
        self.engineDied.emit(reason)

    def _finish_dead(self) -> None:
        self._signal_group(SIGKILL)  # whatever the engine left behind in its group
        self._close_conn()
        self._timer.stop()

    # ------------------------------------------------------------------------------------------------ stopping
    def _begin_stop(self) -> None:
        if self.proc is None or self.state == "stopping":
            return
        if self.proc.poll() is not None:
            self._finish_stop()
            return
        self._set_state("stopping", "")
        self.watch.stop_at = time.monotonic()
        self._cancel_accept()
        if not self.send(p.ShutdownRequest()):
            # Not connected (yet): nobody would read a shutdown request, so go straight to SIGTERM.
            self.watch.term_sent = True
            self._signal_group(signal.SIGTERM)
        self._timer.start()

    def _finish_stop(self) -> None:
        self._signal_group(SIGKILL)
        self._close_conn()
        self._timer.stop()
        restart = self._restart_after_stop
        self._restart_after_stop = False
        self._set_state("stopped", "")
        self.stopped.emit()
        if restart and self.workspace:
            self.start(self.workspace)

    def _signal_group(self, sig: int) -> None:
        if self.engine is not None:
            self.engine.signal_group(sig)

    # ---------------------------------------------------------------------------------------------- plumbing
    def _set_state(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail
        self.stateChanged.emit(state, detail)

    def _close_conn(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self.reader == "thread":
            self._conn = None  # the reader thread closes it once the engine is gone
            return
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def _cleanup(self) -> None:
        self._cancel_accept()
        self._close_conn()
        if self.proc is not None:
            try:
                self.proc.wait(0)
            except subprocess.TimeoutExpired:
                pass
        if self.engine is not None:
            self.engine.close()
