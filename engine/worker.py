"""The engine process: connects back to the studio, answers requests, runs long jobs, streams events.

    python -m engine.worker --address ADDR --workspace DIR      (authkey on stdin, hex)

Threads, each with one job, so that Stop never waits and the studio never blocks:
- reader: receives frames, answers quick requests at once (hello, vocab, metrics, control, checkpoints, stored
  attention snapshots...), queues long jobs; control requests only set flags that the training loop reads
  between steps;
- main: runs long jobs one at a time (import, tokenizer training, training);
- reads: the side lane for long requests that read but write nothing (generation, attention of a text, a
  token's attention row, import previews, tokenizer comparisons…), one at a time, so the playground and the
  data views work while a run trains or is paused;
- sender (engine/outbox.py): sends batched frames (≤ MAX_BATCH messages, at least every FLUSH_INTERVAL_S) and a heartbeat.
When the studio goes away (EOF), a running training is stopped (which writes a checkpoint) and the process exits.

Each request `<kind>` is answered by the method `_handle_<kind>`: this module keeps the engine's own (hello,
workspace, control, shutdown), engine/worker_data.py those of datasets and tokenizers and engine/worker_models.py
those of runs; Engine inherits both mixins.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Callable

from engine import protocol as p
from engine.errors import field_of, is_user_error, user_text
from engine.outbox import Outbox
from engine.worker_data import DataHandlers
from engine.worker_models import ModelHandlers
from engine.worker_objectives import ObjectiveHandlers
from engine.worker_playground import PlaygroundHandlers

ENGINE_VERSION = "0.1.0"


class Job:
    def __init__(self, request: p.Message, run: Callable[["Job"], None]):
        self.request = request
        self.run = run
        self.cancel = threading.Event()

    def cancelled(self) -> bool:
        return self.cancel.is_set()


class Engine(DataHandlers, ModelHandlers, ObjectiveHandlers, PlaygroundHandlers):
    """The threads' shared state, the dispatcher and the requests about the engine itself; the handlers of data
    and tokenizer requests live in engine/worker_data.py, those of runs and models in engine/worker_models.py."""

    def __init__(self, conn: Connection, workspace: Path):
        self.conn = conn
        self.workspace_path = Path(workspace)
        self.outbox = Outbox(conn, on_dead=self._studio_gone)
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.read_jobs: queue.Queue[Job] = queue.Queue()
        self.current: Job | None = None
        self.current_read: Job | None = None
        self.control = None  # engine.train.Control of the running training
        self.training_run: int | None = None
        self.shutdown = threading.Event()
        self.ready = threading.Event()
        self._local = threading.local()
        self.device = None
        self.device_name = ""
        self.torch_version = ""
        self.background = None  # engine.background.BackgroundEndpoint while no window is attached
        self.job_started = 0.0

    # ---------------------------------------------------------------------------------------------- helpers
    def ws(self):
        """This thread's Workspace (sqlite connections belong to one thread)."""
        from engine.store import Workspace

        cached = getattr(self._local, "ws", None)
        if cached is None or cached.path != self.workspace_path:
            cached = Workspace(self.workspace_path)
            self._local.ws = cached
        return cached

    def send(self, msg: p.Message) -> None:
        self.outbox.send(msg)

    def set_state(self, state: p.EngineState, message: str = "") -> None:
        self.outbox.state = state
        self.send(p.Status(state=state, engine_state=state, run=self.training_run, message=message))

    def _status_now(self) -> p.Status:
        """Where the engine stands, for a studio that has just said hello. `state` is the heartbeat's word, as a
        1.4 engine sent it; while a run trains that is the run's state, and the engine is busy."""
        state = self.outbox.state
        run_state = state if state in p.RUN_STATES else None
        engine_state = "busy" if run_state else state
        return p.Status(state=state, engine_state=engine_state, run_state=run_state, run=self.training_run)

    def _studio_gone(self, conn: Connection | None = None) -> None:
        if conn is not None and conn is not self.conn:
            return  # a window that left after another one reattached
        if self.background is not None:
            print("engine: the window closed; training goes on in the background", file=sys.stderr, flush=True)
            return
        print("engine: studio connection closed; stopping", file=sys.stderr, flush=True)
        self.request_shutdown()

    def _studio_back(self, conn: Connection) -> None:
        """A studio reattached (engine/background.py): it becomes ours, with a reader of its own."""
        if self.shutdown.is_set():
            conn.close()
            return
        print("engine: a window reattached", file=sys.stderr, flush=True)
        self.conn = conn
        self.outbox.replace(conn)
        self.background = None
        threading.Thread(target=self.read_loop, name="reader", daemon=True).start()

    def request_shutdown(self) -> None:
        self.shutdown.set()
        if self.control is not None:
            self.control.request_stop()
        for job in (self.current, self.current_read):
            if job is not None:
                job.cancel.set()

    # ----------------------------------------------------------------------------------------------- start-up
    def load_torch(self) -> None:
        import torch  # noqa: F401  (loaded here, after connecting, so the studio sees us alive at once)
        from engine.device import device_description, pick_device

        self.torch_version = torch.__version__
        self.device = pick_device("auto")
        self.device_name = device_description(self.device)
        self.ws().ensure_sample_dataset()
        # No status broadcast here: the hello reply (with the workspace) goes first and its status follows, so the
        # studio never shows "ready" while its lists are still empty.
        self.outbox.state = "idle"
        self.ready.set()

    # ------------------------------------------------------------------------------------------------ reading
    def read_loop(self) -> None:
        conn = self.conn
        while not self.shutdown.is_set():
            try:
                data = conn.recv_bytes(p.MAX_FRAME_BYTES)
            except OSError as e:
                if "bad message length" in str(e):  # a frame too big to read: the stream is lost, say so and go
                    self.send(p.Log(level="error", message=f"engine closed the connection: {e}"))
                self._studio_gone(conn)
                return
            except EOFError:
                self._studio_gone(conn)
                return
            try:
                msgs = p.decode_batch(data)
            except Exception as e:  # whatever a frame holds, the command lane goes on
                self.send(p.Log(level="error", message=f"engine ignored a bad frame: {e}"))
                continue
            for msg in msgs:
                try:
                    self.dispatch(msg)
                except Exception as e:  # a bug in one handler must not kill the reader
                    self._fail(msg, e)

    def dispatch(self, msg: p.Message) -> None:
        handler = getattr(self, f"_handle_{msg.kind}", None)
        if handler is None:
            if not isinstance(msg, p.Unknown):
                self.send(p.error_reply(msg, f"the engine does not handle {msg.kind}"))
            elif msg.kind_name.endswith("_request"):  # a newer studio's request: answer it, or it waits for ever
                self.send(
                    p.error_reply(
                        msg,
                        f"this engine (protocol {p.PROTOCOL_VERSION}) does not handle "
                        f"{msg.kind_name}; update the engine",
                    )
                )
            return
        handler(msg)

    # ------------------------------------------------------------------------------------------ quick requests
    def _handle_hello_request(self, msg: p.HelloRequest) -> None:
        if not p.compatible(msg.protocol_version):
            self.send(
                p.HelloReply(
                    parent=msg.id,
                    status="error",
                    error=(f"studio speaks protocol {msg.protocol_version}, engine {p.PROTOCOL_VERSION}: update both"),
                )
            )
            return
        self.ready.wait()
        self.send(
            p.HelloReply(
                parent=msg.id,
                engine_version=ENGINE_VERSION,
                pid=os.getpid(),
                device=self.device.type,
                device_name=self.device_name,
                torch_version=self.torch_version,
                workspace=self.ws().summary(),
            )
        )
        self.send(self._status_now())

    def _handle_ping_request(self, msg: p.PingRequest) -> None:
        job = self.current
        self.send(
            p.PingReply(
                parent=msg.id,
                job=job.request.kind if job is not None else "",
                job_s=round(time.monotonic() - self.job_started, 1) if job is not None else 0.0,
            )
        )

    def _handle_detach_request(self, msg: p.DetachRequest) -> None:
        if self.control is None or self.training_run is None:
            self.send(p.error_reply(msg, "nothing is training: there is nothing to keep running"))
            return
        if self.background is None:
            from engine.background import BackgroundEndpoint

            self.background = BackgroundEndpoint(self.workspace_path, self.training_run, self._studio_back)
        self.send(p.DetachReply(parent=msg.id, run=self.training_run))

    def _handle_shutdown_request(self, msg: p.ShutdownRequest) -> None:
        self.send(p.ShutdownReply(parent=msg.id))
        self.request_shutdown()

    def _handle_workspace_request(self, msg: p.WorkspaceRequest) -> None:
        if msg.path and Path(msg.path) != self.workspace_path:
            if self.current is not None:
                self.send(p.error_reply(msg, "finish or stop the running job before opening another workspace"))
                return
            from engine.store import Workspace

            # Opened first, switched to after: a folder that cannot be opened leaves the engine where it was.
            opened = Workspace(Path(msg.path).expanduser())
            opened.ensure_sample_dataset()
            self.workspace_path, self._local.ws = opened.path, opened
        self.send(p.WorkspaceReply(parent=msg.id, workspace=self.ws().summary()))

    def _handle_control_request(self, msg: p.ControlRequest) -> None:
        action = msg.action
        if action == "cancel":
            for job in (self.current, self.current_read, *list(self.jobs.queue), *list(self.read_jobs.queue)):
                if job is not None and job.request.id == msg.target:
                    job.cancel.set()
                    if self.control is not None and job is self.current:
                        self.control.request_stop()
            self.send(p.ControlReply(parent=msg.id, action=action))
            return
        if action not in ("stop", "pause", "resume", "apply_advice"):
            self.send(p.error_reply(msg, f"unknown control action {action!r}"))
            return
        if self.control is None:
            self.send(p.error_reply(msg, f"nothing to {action}: no training is running"))
            return
        getattr(self.control, f"request_{action}")()
        self.send(p.ControlReply(parent=msg.id, action=action))

    # ---------------------------------------------------------------------------------------------- long jobs
    def _enqueue(self, msg: p.Message, run: Callable[[Job], None], read_only: bool = False) -> None:
        if self.shutdown.is_set():
            self.send(p.error_reply(msg, "the engine is shutting down"))
            return
        if not read_only and (self.current is not None or not self.jobs.empty()):
            busy = f"training run {self.training_run}" if self.training_run else "another job"
            self.send(p.error_reply(msg, f"the engine is busy with {busy}; wait for it or stop it first"))
            return
        (self.read_jobs if read_only else self.jobs).put(Job(msg, run))

    def _progress(self, msg: p.Message) -> Callable[[float, str], None]:
        last = [0.0]

        def progress(fraction: float, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] >= 0.1 or fraction >= 1.0:  # ~10 updates a second is plenty for a progress bar
                last[0] = now
                self.send(p.Progress(parent=msg.id, fraction=float(fraction), message=message))

        return progress

    # ------------------------------------------------------------------------------------------- job loops
    def _fail(self, request: p.Message, e: Exception) -> None:
        """Answer `request` with `e`: a user's error as it is, with the field it names; a bug's traceback goes to
        the log (engine.log) and its first line to the studio."""
        if not is_user_error(e):
            traceback.print_exc()
        field, fields = field_of(e)
        self.send(p.error_reply(request, user_text(e), field=field, fields=fields))

    def job_loop(self, jobs: queue.Queue, slot: str, busy_state: p.EngineState | None) -> None:
        while not self.shutdown.is_set():
            try:
                job = jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            setattr(self, slot, job)
            if busy_state:
                self.job_started = time.monotonic()
                self.set_state(busy_state)
            try:
                job.run(job)
            except Exception as e:
                self._fail(job.request, e)
            finally:
                setattr(self, slot, None)
                if busy_state:
                    self.set_state("idle")
                    if self.background is not None:  # the run ended with no window to come back to
                        self.request_shutdown()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="engine.worker", description="Transformer Studio engine process")
    ap.add_argument("--address", required=True)
    ap.add_argument("--workspace", required=True)
    args = ap.parse_args(argv)
    # Ctrl-C in a terminal goes to the whole process group; the studio decides whether to stop a run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The key comes on stdin, a pipe only the studio holds (an environment variable is readable in /proc).
    authkey = bytes.fromhex(sys.stdin.readline().strip() or os.environ.pop("STUDIO_AUTHKEY", ""))
    conn = Client(args.address, authkey=authkey or None)
    engine = Engine(conn, Path(args.workspace))
    signal.signal(signal.SIGTERM, lambda *_: engine.request_shutdown())
    if hasattr(signal, "SIGBREAK"):  # Windows: the studio's Ctrl+Break is its polite stop
        signal.signal(signal.SIGBREAK, lambda *_: engine.request_shutdown())

    reader = threading.Thread(target=engine.read_loop, name="reader", daemon=True)
    reader.start()
    try:
        engine.load_torch()
    except Exception as e:
        traceback.print_exc()
        engine.send(p.Log(level="error", message=f"the engine could not start: {user_text(e)}"))
        engine.outbox.close()
        return 1
    reads = threading.Thread(
        target=engine.job_loop, args=(engine.read_jobs, "current_read", None), name="reads", daemon=True
    )
    reads.start()
    engine.job_loop(engine.jobs, "current", "busy")
    if engine.background is not None:
        engine.background.close()
    reads.join(timeout=5)
    engine.set_state("stopped")
    engine.outbox.close()
    try:
        conn.close()
    except OSError:
        pass
    return 0


def exit_now(code: int) -> None:
    """End the process once everything is written, without the interpreter's teardown: measured here, unloading
    torch took 0.7 s idle and 1.3 s after a training, after the last byte had gone and the studio was waiting."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
