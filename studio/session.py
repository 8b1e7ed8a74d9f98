"""The app's link to the engine, given to every panel: requests, replies, broadcasts and the engine's state, as
Qt signals; and the workspace the panels read.

Panels never talk to the engine directly: they call `session.request(msg, on_reply, on_event)` and listen to the
signals below. Broadcasts without a request are routed to statusReceived / metricsReceived / evalReceived /
attentionReceived, warning and error logs become `notice`, heartbeats only feed the hang detector in EngineClient.

What the studio knows about the workspace (its lists, the selections, the RunConfig being edited, saved settings)
is a Qt-free WorkspaceState (studio/state/workspace.py); the Session forwards its reads and choices and turns its
events into the signals. The requests waiting for replies are studio/state/requests.py's.

Tests play the engine through the same doors the EngineClient uses: `deliver(msgs)`, `deliver_hello(hello)` and
`deliver_death(reason)`; `queued` shows the requests held back until the engine is ready.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal

from engine import protocol as p
from engine.config import RunConfig
from studio.engine_client import EngineClient
from studio.run_watch import RunWatch
from studio.state.requests import PendingRequests, call_safely
from studio.state.workspace import WorkspaceState

APP_NAME = "TransformerStudio"

# A Status's states -> the studio's engine state: a run in progress decides it; the engine's own state does when
# no run is. A run's outcome (finished, stopped, failed) is followed by "idle" from the engine itself, and the
# engine's "stopped" by the end of its process, so neither changes the engine state here.
_RUN_PHASES = {"starting": "training", "training": "training", "stopping": "training", "paused": "paused"}
_ENGINE_WORDS = {"idle": "ready", "busy": "busy"}


def _studio_state(status: p.Status) -> str | None:
    engine_state, run_state = p.status_states(status)
    if run_state is not None:
        return _RUN_PHASES.get(run_state)
    return _ENGINE_WORDS.get(engine_state or "")


# Replies after which the workspace's lists are read again.
_CHANGES_WORKSPACE = (p.ImportReply, p.TokenizerTrainReply, p.TrainReply, p.DeleteReply, p.RestoreReply)
SAVE_DELAY_MS = 400  # selections are written this long after the last change (a slider drag writes once)


def default_workspace() -> Path:
    """STUDIO_WORKSPACE, else the per-user data folder (the same rule as the engine's CLI)."""
    env = os.environ.get("STUDIO_WORKSPACE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_data_path(APP_NAME) / "workspace"


class Session(QObject):
    workspaceChanged = Signal(dict)
    configChanged = Signal()
    engineStateChanged = Signal(str, str)
    datasetSelected = Signal(object)
    tokenizerSelected = Signal(object)
    runSelected = Signal(object)
    runUpdated = Signal(object)  # a run's row changed while it trains (step, status): every view of it updates
    statusReceived = Signal(object)
    metricsReceived = Signal(int, list)
    evalReceived = Signal(object)
    attentionReceived = Signal(object)  # engine.protocol.Attention: a training run's new snapshot (meta + buffers)
    notice = Signal(str, str)
    reattached = Signal(int)  # the run an engine trained in the background, now followed live here again

    def __init__(self, workspace_path: str | None = None, parent=None):
        super().__init__(parent)
        path = str(Path(workspace_path).expanduser() if workspace_path else default_workspace())
        self.workspace_state = WorkspaceState(path, self._on_workspace_event)
        self.engine_state = "stopped"
        self.engine_detail = "not started"
        self.device_name = ""
        self.device = ""
        self.hello: p.HelloReply | None = None
        self.last_status: p.Status | None = None
        self.training_run: int | None = None  # the run the engine is training now, if any
        self.requests = PendingRequests()
        self.client = EngineClient(self)
        self.client.messagesReceived.connect(self.deliver)
        self.client.engineReady.connect(self.deliver_hello)
        self.client.engineDied.connect(self.deliver_death)
        self.client.engineHung.connect(self._on_hung)
        self.client.stateChanged.connect(self._on_client_state)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_state)
        for sig in (self.configChanged, self.datasetSelected, self.tokenizerSelected, self.runSelected):
            sig.connect(self._schedule_save)
        self.run_watch = RunWatch(self)  # runs other processes train, followed from the workspace
        self._reattaching = False
        self.reattached_run: int | None = None  # the run found training in the background at start-up

    # ------------------------------------------------------------------------------------------------ engine
    def start_engine(self) -> None:
        Path(self.workspace_path).mkdir(parents=True, exist_ok=True)
        self.client.start(self.workspace_path)

    def keep_training_in_background(self, timeout_s: float = 5.0) -> str | None:
        """Ask the engine to train on without this window (a detach request); None once it agreed, else why not.
        Waits in a local event loop, so the window keeps painting; for closing the window."""
        answer: list = []
        loop = QEventLoop()

        def done(reply) -> None:
            answer.append(reply)
            loop.quit()

        self.request(p.DetachRequest(), done)
        if not answer:
            QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()
        if not answer:
            return "the engine did not answer"
        return None if answer[0].ok else (answer[0].error or "the engine refused")

    def restart_engine(self) -> None:
        self.requests.fail_all("the engine is restarting")
        self.client.restart(self.workspace_path)

    @property
    def ready(self) -> bool:
        return self.hello is not None and self.engine_state not in ("dead", "hung", "stopped", "starting")

    @property
    def is_training(self) -> bool:
        return self.engine_state in ("training", "paused")

    def _set_engine_state(self, state: str, detail: str = "") -> None:
        if (state, detail) == (self.engine_state, self.engine_detail):
            return
        self.engine_state, self.engine_detail = state, detail
        self.engineStateChanged.emit(state, detail)

    def _on_client_state(self, state: str, detail: str) -> None:
        if state == "ready":
            # Engine-side states (busy, training) come from Status broadcasts; "ready" here only ends a hang.
            if self.engine_state == "hung" and self.hello is not None:
                last = (_studio_state(self.last_status) if self.last_status else None) or "ready"
                self._set_engine_state(last, self.device_name if last == "ready" else "")
        elif state in ("starting", "stopping", "stopped"):
            if state == "starting":
                self.hello = None
                self.last_status = None
            self._set_engine_state(state, detail)
            if state == "stopped":
                # The engine is gone and its connection closed: what it had not answered never will be, so say so
                # (as a death does), or the panels that asked would stay busy.
                self.requests.fail_all("the engine was stopped before it answered")
        # dead and hung arrive through their own signals, with the reason

    def deliver_hello(self, hello: p.HelloReply) -> None:
        """The engine answered the handshake: take its workspace, then send what was queued."""
        self.hello = hello
        self._reattaching = self.client.attached
        self.device_name = hello.device_name or hello.device
        self.device = hello.device
        if hello.workspace:
            self.apply_workspace(hello.workspace)
        last = _studio_state(self.last_status) if self.last_status else None
        self._set_engine_state(last or "ready", self.device_name if last in (None, "ready") else "")
        for msg in self.requests.take_queued():
            if p.too_old_for(msg.kind, hello.protocol_version):
                self.requests.fail(
                    msg.id, f"the engine is too old for this (it speaks protocol {hello.protocol_version})"
                )
            elif not self.client.send(msg):
                self.requests.fail(msg.id, "the engine is not running")

    def deliver_death(self, reason: str) -> None:
        """The engine is gone (`reason` in words): say so, and answer every pending request with an error."""
        self.hello = None
        self.training_run = None
        self._set_engine_state("dead", reason)
        self.notice.emit("error", f"Engine stopped: {reason}")
        self.requests.fail_all(f"the engine stopped: {reason}")

    def _on_hung(self, reason: str) -> None:
        self._set_engine_state("hung", reason)
        self.notice.emit("warning", f"Engine not responding: {reason}")

    # ---------------------------------------------------------------------------------------------- requests
    def request(self, msg: p.Message, on_reply: Callable | None = None, on_event: Callable | None = None) -> str:
        """Send `msg` (queued until the engine is ready); on_reply gets its reply once, on_event its broadcasts.

        The reply never comes before this returns: a request that fails at once (the engine is stopped, or died
        just now) is answered from the event loop, so a caller may keep the returned id and match replies to it."""
        if self.client.state in ("dead", "stopped"):
            reason = self.engine_detail or "it is not running"
            self._fail_soon(
                msg, on_reply, on_event, f"the engine is stopped ({reason}); restart it from the Engine menu"
            )
        elif self.hello is None:
            self.requests.add(msg, on_reply, on_event)
            self.requests.hold(msg)
        elif p.too_old_for(msg.kind, self.hello.protocol_version):
            self._fail_soon(
                msg,
                on_reply,
                on_event,
                f"the engine is too old for this (it speaks protocol {self.hello.protocol_version}); "
                "restart the studio to get an engine of the same version",
            )
        elif self.client.send(msg):  # a failed send reports the death at once; this request is not pending yet
            self.requests.add(msg, on_reply, on_event)
        else:  # the send found the engine gone (and reported its death): say what the other requests were told
            died = self.client.state == "dead" and self.engine_detail
            error = f"the engine stopped: {died}" if died else "the engine is not running"
            self._fail_soon(msg, on_reply, on_event, error)
        return msg.id

    def _fail_soon(self, msg: p.Message, on_reply, on_event, error: str) -> None:
        # Answered once the caller has returned: panels keep the id request() returns and ignore other replies.
        self.requests.add(msg, on_reply, on_event)
        QTimer.singleShot(0, self, lambda: self.requests.fail(msg.id, error))

    @property
    def queued(self) -> tuple[p.Message, ...]:
        """The requests held back until the engine is ready, oldest first."""
        return self.requests.queued

    def cancel(self, request_id: str) -> None:
        if self.requests.unqueue(request_id):
            self.requests.fail(request_id, "cancelled")
            return
        self.request(p.ControlRequest(action="cancel", target=request_id))

    def control(self, action: str, on_reply: Callable | None = None) -> str:
        """stop | pause | resume the running training."""

        def done(reply):
            if not reply.ok:
                self.notice.emit("error", f"Could not {action} training: {reply.error}")
            call_safely(on_reply, reply)

        return self.request(p.ControlRequest(action=action), done)

    def refresh_workspace(self) -> None:
        self.request(p.WorkspaceRequest(), self._on_workspace_reply)

    def open_workspace(self, path: str) -> None:
        path = str(Path(path).expanduser())

        def done(reply):
            if not reply.ok:
                self.notice.emit("error", f"Could not open workspace {path}: {reply.error}")
                return
            self.save_state()
            opened = str(reply.workspace.get("path") or path)
            self.client.workspace = opened
            self.workspace_state.reopen(opened)
            self.apply_workspace(reply.workspace)

        self.request(p.WorkspaceRequest(path=path), done)

    def _on_workspace_reply(self, reply) -> None:
        if reply.ok:
            self.apply_workspace(reply.workspace)
        else:
            self.notice.emit("error", f"Could not read the workspace: {reply.error}")

    # ------------------------------------------------------------------------------------------------ routing
    def deliver(self, msgs: list) -> None:
        """What one drain of the engine's connection brought, in order (the EngineClient's messagesReceived)."""
        metrics: dict[int, list] = {}
        for msg in msgs:
            if isinstance(msg, p.Metrics):
                # One signal per run per batch: the training panel buffers them and redraws on its timer.
                metrics.setdefault(msg.run, []).extend(msg.rows)
                self.requests.event(msg)
                continue
            if metrics:
                self._flush_metrics(metrics)
            self._dispatch(msg)
        if metrics:
            self._flush_metrics(metrics)

    def _flush_metrics(self, metrics: dict[int, list]) -> None:
        for run_id, rows in metrics.items():
            self.workspace_state.metrics_arrived(run_id, rows)
            self.metricsReceived.emit(run_id, rows)
        metrics.clear()

    def _dispatch(self, msg: p.Message) -> None:
        if isinstance(msg, p.Reply):
            self._on_reply(msg)
            return
        if isinstance(msg, p.Heartbeat):
            return
        if isinstance(msg, p.Status):
            self._on_status(msg)
        elif isinstance(msg, p.Eval):
            if msg.val_loss is not None:
                self.workspace_state.update_run(msg.run, best_val_loss=float(msg.val_loss))
            self.evalReceived.emit(msg)
        elif isinstance(msg, p.Attention):
            self.attentionReceived.emit(msg)
        elif isinstance(msg, p.Log):
            if msg.level in ("warning", "error"):
                self.notice.emit(msg.level, msg.message)
        self.requests.event(msg)

    def _on_reply(self, reply: p.Reply) -> None:
        entry = self.requests.pop(reply.parent)
        if reply.ok:
            if isinstance(reply, p.TrainReply) and reply.run:
                self.training_run = reply.run.get("id")
                self.workspace_state.run_started(reply.run)
            if isinstance(reply, _CHANGES_WORKSPACE):
                self.refresh_workspace()
        if entry is not None:
            call_safely(entry.on_reply, reply)
        elif not reply.ok:
            self.notice.emit("error", reply.error or f"{reply.kind} failed")

    def _on_status(self, st: p.Status) -> None:
        self.last_status = st
        engine_state, run_state = p.status_states(st)
        if run_state in p.RUN_STATES and st.run is not None:
            self.training_run = st.run
            if self._reattaching and run_state not in p.RUN_OUTCOMES:
                self._reattaching = False
                self.reattached_run = st.run
                self.reattached.emit(st.run)
        self.workspace_state.status_arrived(st.run, run_state, st.step, st.max_iters)
        if run_state in p.RUN_OUTCOMES and st.run is not None:
            self.training_run = None
            if run_state == "failed" and st.message:
                self.notice.emit("error", f"Run {st.run} failed: {st.message}")
            self.refresh_workspace()
        elif engine_state == "idle":
            self.training_run = None
        state = _studio_state(st)
        if state is not None:
            self._set_engine_state(state, self.device_name if state == "ready" else st.message)
        self.statusReceived.emit(st)

    # ------------------------------------------------------------------------------------------------ workspace
    def _on_workspace_event(self, event: str, value) -> None:
        """WorkspaceState's events, as the signals panels listen to (a changed setting is saved soon)."""
        if event == "ui":
            self._schedule_save()
        elif event == "config":
            self.configChanged.emit()
        else:
            {
                "workspace": self.workspaceChanged,
                "dataset": self.datasetSelected,
                "tokenizer": self.tokenizerSelected,
                "run": self.runSelected,
                "run_updated": self.runUpdated,
            }[event].emit(value)

    def apply_workspace(self, summary: dict) -> None:
        """Show the engine's workspace summary {"path", "datasets", "tokenizers", "runs"}; selections follow it."""
        self.workspace_state.apply_summary(summary)

    @property
    def workspace_path(self) -> str:
        return self.workspace_state.path

    @property
    def workspace(self) -> dict:
        """The engine's latest workspace summary (kept live while a run trains)."""
        return self.workspace_state.summary

    @property
    def config(self) -> RunConfig:
        """The RunConfig being edited (the Model, Objective and Train panels' forms)."""
        return self.workspace_state.config

    @property
    def dataset(self) -> dict | None:
        return self.workspace_state.dataset

    @property
    def tokenizer(self) -> dict | None:
        return self.workspace_state.tokenizer

    @property
    def run(self) -> dict | None:
        return self.workspace_state.run

    @property
    def vocab_size(self) -> int | None:
        """The selected tokenizer's vocabulary size, when one is selected."""
        return self.workspace_state.vocab_size

    def find(self, kind: str, ref) -> dict | None:
        """The workspace's row of `kind` ("datasets", "tokenizers", "runs") for an id, a name or a row."""
        return self.workspace_state.find(kind, ref)

    def select_dataset(self, row_or_id) -> None:
        self.workspace_state.select_dataset(row_or_id)

    def select_tokenizer(self, row_or_id) -> None:
        self.workspace_state.select_tokenizer(row_or_id)

    def select_run(self, row_or_id) -> None:
        self.workspace_state.select_run(row_or_id)

    def set_config(self, cfg: RunConfig) -> None:
        self.workspace_state.set_config(cfg)

    def update_config(self, section: str, **values) -> None:
        self.workspace_state.update_config(section, **values)

    def estimated_vocab_size(self) -> tuple[int, bool]:
        """(vocabulary size for estimates, exact?): the tokenizer's when chosen, else a fair guess."""
        return self.workspace_state.estimated_vocab_size()

    # ------------------------------------------------------------------------------------------ saved selections
    def ui(self, key: str, default=None):
        """A panel's saved setting in this workspace (playground settings, the page shown, ...)."""
        return self.workspace_state.ui(key, default)

    def set_ui(self, key: str, value) -> None:
        self.workspace_state.set_ui(key, value)

    def _schedule_save(self, *_) -> None:
        self._save_timer.start()

    def save_state(self) -> bool:
        """Write the selections now (the app calls this on quit; changes are written on a short timer too)."""
        self._save_timer.stop()
        return self.workspace_state.save()
