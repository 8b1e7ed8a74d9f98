"""The app's one shared state, given to every panel: workspace, selections, the RunConfig, and the engine.

Panels never talk to the engine directly: they call `session.request(msg, on_reply, on_event)` and listen to the
signals below. Broadcasts without a request are routed to statusReceived / metricsReceived / evalReceived /
attentionReceived, warning and error logs become `notice`, heartbeats only feed the hang detector in EngineClient.
"""
from __future__ import annotations

import os
import sys
from dataclasses import fields
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from engine import protocol as p
from engine.config import DEFAULT_PRESET, ConfigError, RunConfig, preset
from studio.engine_client import EngineClient
from studio.state import selections

APP_NAME = "TransformerStudio"
# A character vocabulary's size is unknown until it is trained; tinyshakespeare's 65 characters is a fair guess
# for estimates (the same guess as the Model panel's).
ASSUMED_CHAR_VOCAB = 65

# Engine Status.state -> the studio's engine state. Run outcomes (finished, stopped, failed) are followed by
# "idle" from the engine itself, so they do not change the engine state here.
_ENGINE_STATES = {"idle": "ready", "busy": "busy", "starting": "training", "training": "training",
                  "stopping": "training", "paused": "paused"}
_RUN_ENDED = ("finished", "stopped", "failed")
SAVE_DELAY_MS = 400    # selections are written this long after the last change (a slider drag writes once)


def default_workspace() -> Path:
    """STUDIO_WORKSPACE, else the per-user data folder (the same rule as the engine's CLI)."""
    env = os.environ.get("STUDIO_WORKSPACE")
    if env:
        return Path(env).expanduser()
    import platformdirs
    return platformdirs.user_data_path(APP_NAME) / "workspace"


def _call(fn: Callable | None, *args) -> None:
    """Run a panel's callback; a bug there is reported like any slot exception but never breaks dispatch."""
    if fn is None:
        return
    try:
        fn(*args)
    except Exception:
        sys.excepthook(*sys.exc_info())


class Session(QObject):
    workspaceChanged = Signal(dict)
    configChanged = Signal()
    engineStateChanged = Signal(str, str)
    datasetSelected = Signal(object)
    tokenizerSelected = Signal(object)
    runSelected = Signal(object)
    runUpdated = Signal(object)          # a run's row changed while it trains (step, status): every view of it updates
    statusReceived = Signal(object)
    metricsReceived = Signal(int, list)
    evalReceived = Signal(object)
    attentionReceived = Signal(object)   # engine.protocol.Attention: a training run's new snapshot (meta + buffers)
    notice = Signal(str, str)

    def __init__(self, workspace_path: str | None = None, parent=None):
        super().__init__(parent)
        self.workspace_path = str(Path(workspace_path).expanduser() if workspace_path else default_workspace())
        self.workspace: dict = {"path": self.workspace_path, "datasets": [], "tokenizers": [], "runs": []}
        self.config: RunConfig = preset(DEFAULT_PRESET)
        self.engine_state = "stopped"
        self.engine_detail = "not started"
        self.device_name = ""
        self.device = ""
        self.hello: p.HelloReply | None = None
        self.dataset: dict | None = None
        self.tokenizer: dict | None = None
        self.run: dict | None = None
        self.last_status: p.Status | None = None
        self.training_run: int | None = None   # the run the engine is training now, if any
        self._adopt_tokenizer: int | None = None
        self._pending: dict[str, tuple[p.Message, Callable | None, Callable | None]] = {}
        self._queue: list[p.Message] = []
        self.client = EngineClient(self)
        self.client.messagesReceived.connect(self._on_messages)
        self.client.engineReady.connect(self._on_ready)
        self.client.engineDied.connect(self._on_died)
        self.client.engineHung.connect(self._on_hung)
        self.client.stateChanged.connect(self._on_client_state)
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save_state)
        self._load_state()
        for sig in (self.configChanged, self.datasetSelected, self.tokenizerSelected, self.runSelected):
            sig.connect(self._schedule_save)

    # ------------------------------------------------------------------------------------------------ engine
    def start_engine(self) -> None:
        Path(self.workspace_path).mkdir(parents=True, exist_ok=True)
        self.client.start(self.workspace_path)

    def restart_engine(self) -> None:
        self._fail_pending("the engine is restarting")
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
                last = _ENGINE_STATES.get(self.last_status.state, "ready") if self.last_status else "ready"
                self._set_engine_state(last, self.device_name if last == "ready" else "")
        elif state in ("starting", "stopping", "stopped"):
            if state == "starting":
                self.hello = None
                self.last_status = None
            self._set_engine_state(state, detail)
        # dead and hung arrive through their own signals, with the reason

    def _on_ready(self, hello: p.HelloReply) -> None:
        self.hello = hello
        self.device_name = hello.device_name or hello.device
        self.device = hello.device
        if hello.workspace:
            self._apply_workspace(hello.workspace)
        last = _ENGINE_STATES.get(self.last_status.state) if self.last_status else None
        self._set_engine_state(last or "ready", self.device_name if last in (None, "ready") else "")
        queued, self._queue = self._queue, []
        for msg in queued:
            if p.too_old_for(msg.kind, hello.protocol_version):
                self._fail(msg.id, f"the engine is too old for this (it speaks protocol {hello.protocol_version})")
            elif not self.client.send(msg):
                self._fail(msg.id, "the engine is not running")

    def _on_died(self, reason: str) -> None:
        self.hello = None
        self.training_run = None
        self._set_engine_state("dead", reason)
        self.notice.emit("error", f"Engine stopped: {reason}")
        self._fail_pending(f"the engine stopped: {reason}")

    def _on_hung(self, reason: str) -> None:
        self._set_engine_state("hung", reason)
        self.notice.emit("warning", f"Engine not responding: {reason}")

    # ---------------------------------------------------------------------------------------------- requests
    def request(self, msg: p.Message, on_reply: Callable | None = None, on_event: Callable | None = None) -> str:
        """Send `msg` (queued until the engine is ready); on_reply gets its reply once, on_event its broadcasts."""
        self._pending[msg.id] = (msg, on_reply, on_event)
        if self.client.state in ("dead", "stopped"):
            reason = self.engine_detail or "it is not running"
            self._fail(msg.id, f"the engine is stopped ({reason}); restart it from the Engine menu")
        elif self.hello is None:
            self._queue.append(msg)
        elif p.too_old_for(msg.kind, self.hello.protocol_version):
            self._fail(msg.id, f"the engine is too old for this (it speaks protocol {self.hello.protocol_version}); "
                               "restart the studio to get an engine of the same version")
        elif not self.client.send(msg):
            self._fail(msg.id, "the engine is not running")
        return msg.id

    def cancel(self, request_id: str) -> None:
        queued = [m for m in self._queue if m.id == request_id]
        if queued:
            self._queue.remove(queued[0])
            self._fail(request_id, "cancelled")
            return
        self.request(p.ControlRequest(action="cancel", target=request_id))

    def control(self, action: str, on_reply: Callable | None = None) -> str:
        """stop | pause | resume the running training."""
        def done(reply):
            if not reply.ok:
                self.notice.emit("error", f"Could not {action} training: {reply.error}")
            _call(on_reply, reply)
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
            self.workspace_path = str(reply.workspace.get("path") or path)
            self.client.workspace = self.workspace_path
            self._clear_selection()
            self._load_state()
            self.configChanged.emit()
            self._apply_workspace(reply.workspace)
        self.request(p.WorkspaceRequest(path=path), done)

    def _on_workspace_reply(self, reply) -> None:
        if reply.ok:
            self._apply_workspace(reply.workspace)
        else:
            self.notice.emit("error", f"Could not read the workspace: {reply.error}")

    def _fail(self, request_id: str, error: str) -> None:
        entry = self._pending.pop(request_id, None)
        if entry is None:
            return
        msg, on_reply, _ = entry
        reply = p.error_reply(msg, error)
        if isinstance(reply, p.Reply):
            _call(on_reply, reply)

    def _fail_pending(self, error: str) -> None:
        self._queue.clear()
        for request_id in list(self._pending):
            self._fail(request_id, error)

    # ------------------------------------------------------------------------------------------------ routing
    def _on_messages(self, msgs: list) -> None:
        metrics: dict[int, list] = {}
        for msg in msgs:
            if isinstance(msg, p.Metrics):
                # One signal per run per batch: the training panel buffers them and redraws on its timer.
                metrics.setdefault(msg.run, []).extend(msg.rows)
                self._route_event(msg)
                continue
            if metrics:
                self._flush_metrics(metrics)
            self._dispatch(msg)
        if metrics:
            self._flush_metrics(metrics)

    def _flush_metrics(self, metrics: dict[int, list]) -> None:
        for run_id, rows in metrics.items():
            if rows:
                self._update_run_row(run_id, **_progress_of(rows))
            self.metricsReceived.emit(run_id, rows)
        metrics.clear()

    def _update_run_row(self, run_id: int, **values) -> None:
        """Keep the workspace's row of a training run (and the selection) live, so every view of it agrees."""
        rows = self.workspace.setdefault("runs", [])
        row = next((r for r in rows if r.get("id") == run_id), None)
        if row is None:
            return
        best = values.get("best_val_loss")
        if best is not None and isinstance(row.get("best_val_loss"), (int, float)):
            values["best_val_loss"] = min(best, row["best_val_loss"])
        changed = {k: v for k, v in values.items() if v is not None and row.get(k) != v}
        if not changed:
            return
        row.update(changed)
        if self.run is not None and self.run.get("id") == run_id:
            self.run = dict(self.run, **changed)
        self.runUpdated.emit(row)

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
                self._update_run_row(msg.run, best_val_loss=float(msg.val_loss))
            self.evalReceived.emit(msg)
        elif isinstance(msg, p.Attention):
            self.attentionReceived.emit(msg)
        elif isinstance(msg, p.Log):
            if msg.level in ("warning", "error"):
                self.notice.emit(msg.level, msg.message)
        self._route_event(msg)

    def _route_event(self, msg: p.Message) -> None:
        entry = self._pending.get(msg.parent) if msg.parent else None
        if entry is not None:
            _call(entry[2], msg)

    def _on_reply(self, reply: p.Reply) -> None:
        entry = self._pending.pop(reply.parent, None) if reply.parent else None
        if reply.ok:
            if isinstance(reply, p.TrainReply) and reply.run:
                self.training_run = reply.run.get("id")
                if self.tokenizer is None:
                    # The engine trained a vocabulary for this run: use it from now on (the next run reuses it).
                    self._adopt_tokenizer = reply.run.get("tokenizer_id")
                self._merge_run(reply.run)
                self.select_run(reply.run)
            if isinstance(reply, (p.ImportReply, p.TokenizerTrainReply, p.TrainReply, p.DeleteReply,
                                  p.RestoreReply)):
                self.refresh_workspace()
        if entry is not None:
            _call(entry[1], reply)
        elif not reply.ok:
            self.notice.emit("error", reply.error or f"{reply.kind} failed")

    def _on_status(self, st: p.Status) -> None:
        self.last_status = st
        state = _ENGINE_STATES.get(st.state)
        if st.state in ("training", "paused", "starting", "stopping") and st.run is not None:
            self.training_run = st.run
        if st.run is not None:
            status = "running" if st.state in ("starting", "training") else st.state
            if st.state == "stopping":
                status = None      # still the run's own status until the engine says how it ended
            self._update_run_row(st.run, step=st.step or None, status=status,
                                 max_iters=st.max_iters or None)
        if st.state in _RUN_ENDED and st.run is not None:
            self.training_run = None
            if st.state == "failed" and st.message:
                self.notice.emit("error", f"Run {st.run} failed: {st.message}")
            self.refresh_workspace()
        elif st.state == "idle":
            self.training_run = None
        if state is not None:
            self._set_engine_state(state, self.device_name if state == "ready" else st.message)
        self.statusReceived.emit(st)

    # ------------------------------------------------------------------------------------------------ workspace
    def _apply_workspace(self, summary: dict) -> None:
        self.workspace = {"path": summary.get("path", self.workspace_path), "datasets": summary.get("datasets", []),
                          "tokenizers": summary.get("tokenizers", []), "runs": summary.get("runs", [])}
        # Keep selections pointing at fresh rows; drop ones that are gone; pick sensible defaults so a newcomer
        # who only presses Train gets the sample dataset.
        old_dataset, old_tokenizer, old_run = self.dataset, self.tokenizer, self.run
        if self._restore is not None:
            self._restore_selections(self._restore)
            self._restore = None
            return
        self.dataset = self.find("datasets", self.dataset)
        self.tokenizer = self.find("tokenizers", self.tokenizer)
        self.run = self.find("runs", self.run)
        self.workspaceChanged.emit(self.workspace)
        if self.dataset is None and self.workspace["datasets"]:
            self.select_dataset(self._default_dataset())
        elif self.dataset is None and old_dataset is not None:
            self.dataset = old_dataset          # it was deleted: say so, so panels and the config forget it
            self.select_dataset(None)
        if self.tokenizer is None and old_tokenizer is not None:
            # Deleted (or gone with its dataset): fall back to the newest tokenizer of the dataset in use.
            own = [t for t in self.workspace["tokenizers"] if t.get("dataset_id") == _id(self.dataset)]
            self.tokenizer = old_tokenizer
            self.select_tokenizer(own[-1] if own else None)
        if self._adopt_tokenizer is not None and self.find("tokenizers", self._adopt_tokenizer):
            adopt, self._adopt_tokenizer = self._adopt_tokenizer, None
            if self.tokenizer is None:
                self.select_tokenizer(adopt)
        if self.run is None and self.workspace["runs"]:
            self.select_run(self.workspace["runs"][-1])
        elif self.run is None and old_run is not None:
            self.run = old_run                  # deleted, and no run is left: panels forget it
            self.select_run(None)

    # ------------------------------------------------------------------------------------------ saved selections
    def _load_state(self) -> None:
        """Read what was chosen in this workspace last time; applied once the engine has sent the workspace."""
        saved = selections.load(self.workspace_path)
        self.ui_state: dict = dict(saved.get("ui") or {})
        self._restore: dict | None = saved
        try:
            if isinstance(saved.get("config"), dict):
                self.config = RunConfig.from_dict(saved["config"])
        except (ConfigError, TypeError, ValueError, KeyError):
            self.config = preset(DEFAULT_PRESET)    # a file from an incompatible version: start from defaults

    def _restore_selections(self, saved: dict) -> None:
        """Select the saved dataset, tokenizer and run (each only if it still exists; defaults otherwise)."""
        self.workspaceChanged.emit(self.workspace)
        dataset = self.find("datasets", saved.get("dataset"))
        if dataset is None and self.workspace["datasets"]:
            dataset = self._default_dataset()
        self.select_dataset(dataset)
        tokenizer = self.find("tokenizers", saved.get("tokenizer"))
        if tokenizer is not None and tokenizer.get("dataset_id") == _id(self.dataset):
            self.select_tokenizer(tokenizer)
        elif self.config.tokenizer.tokenizer is not None and self.find("tokenizers",
                                                                       self.config.tokenizer.tokenizer) is None:
            self.select_tokenizer(None)     # the saved config named a tokenizer that is gone
        run = self.find("runs", saved.get("run"))
        if run is None and self.workspace["runs"]:
            run = self.workspace["runs"][-1]
        self.select_run(run)

    def ui(self, key: str, default=None):
        """A panel's saved setting in this workspace (playground settings, the page shown, ...)."""
        return self.ui_state.get(key, default)

    def set_ui(self, key: str, value) -> None:
        if self.ui_state.get(key) != value:
            self.ui_state[key] = value
            self._schedule_save()

    def _schedule_save(self, *_) -> None:
        self._save_timer.start()

    def save_state(self) -> bool:
        """Write the selections now (the app calls this on quit; changes are written on a short timer too)."""
        self._save_timer.stop()
        if self._restore is not None:
            return False    # the saved state has not been applied yet: do not overwrite it with defaults
        return selections.save(self.workspace_path, {
            "dataset": _id(self.dataset), "tokenizer": _id(self.tokenizer), "run": _id(self.run),
            "config": self.config.to_dict(), "ui": self.ui_state})

    def _default_dataset(self) -> dict:
        wanted = self.config.data.dataset
        for row in self.workspace["datasets"]:
            if wanted is not None and wanted in (row.get("id"), row.get("name")):
                return row
        return self.workspace["datasets"][-1]

    def find(self, kind: str, ref) -> dict | None:
        """The workspace's row of `kind` ("datasets", "tokenizers", "runs") for an id, a name or a row."""
        if ref is None:
            return None
        if isinstance(ref, dict):
            ref = ref.get("id")
        rows = self.workspace.get(kind, [])
        for row in rows:
            if row.get("id") == ref:
                return row
        if isinstance(ref, str):
            matches = [row for row in rows if row.get("name") == ref]
            if matches:
                return matches[-1]
        return None

    def _merge_run(self, run: dict) -> None:
        runs = self.workspace.setdefault("runs", [])
        for i, row in enumerate(runs):
            if row.get("id") == run.get("id"):
                runs[i] = run
                return
        runs.append(run)

    def _clear_selection(self) -> None:
        for attr, sig in (("dataset", self.datasetSelected), ("tokenizer", self.tokenizerSelected),
                          ("run", self.runSelected)):
            if getattr(self, attr) is not None:
                setattr(self, attr, None)
                sig.emit(None)

    def _resolve(self, kind: str, row_or_id) -> dict | None:
        if row_or_id is None:
            return None
        found = self.find(kind, row_or_id)
        if found is None and isinstance(row_or_id, dict):
            return row_or_id    # a row the workspace list does not hold yet (a fresh reply)
        if found is None:
            raise KeyError(f"no {kind[:-1]} {row_or_id!r} in this workspace")
        return found

    def select_dataset(self, row_or_id) -> None:
        row = self._resolve("datasets", row_or_id)
        changed = _id(row) != _id(self.dataset)
        self.dataset = row
        if self.config.data.dataset != _id(row):
            self.config.data.dataset = _id(row)
            self.configChanged.emit()
        if changed:
            self.datasetSelected.emit(row)
            # A tokenizer is trained on one dataset; follow the dataset to its newest tokenizer (or none).
            if self.tokenizer is not None and self.tokenizer.get("dataset_id") != _id(row):
                own = [t for t in self.workspace.get("tokenizers", []) if t.get("dataset_id") == _id(row)]
                self.select_tokenizer(own[-1] if own else None)

    def select_tokenizer(self, row_or_id) -> None:
        row = self._resolve("tokenizers", row_or_id)
        changed = _id(row) != _id(self.tokenizer)
        self.tokenizer = row
        tc = self.config.tokenizer
        new = (_id(row), row.get("kind", tc.kind), int(row.get("vocab_size", tc.vocab_size))) if row else \
            (None, tc.kind, tc.vocab_size)
        if (tc.tokenizer, tc.kind, tc.vocab_size) != new:
            tc.tokenizer, tc.kind, tc.vocab_size = new
            self.configChanged.emit()
        if changed:
            self.tokenizerSelected.emit(row)

    def select_run(self, row_or_id) -> None:
        row = self._resolve("runs", row_or_id)
        changed = _id(row) != _id(self.run)
        self.run = row
        if changed:
            self.runSelected.emit(row)

    # ------------------------------------------------------------------------------------------------ config
    def set_config(self, cfg: RunConfig) -> None:
        self.config = cfg
        self.configChanged.emit()

    def update_config(self, section: str, **values) -> None:
        if section not in RunConfig.SECTIONS:
            raise ConfigError(f"unknown config section {section!r}")
        part = getattr(self.config, section)
        names = {f.name for f in fields(part)}
        unknown = set(values) - names
        if unknown:
            raise ConfigError(f"unknown field(s) in {section}: {', '.join(sorted(unknown))}")
        changed = False
        for key, value in values.items():
            if getattr(part, key) != value:
                setattr(part, key, value)
                changed = True
        if changed:
            self.configChanged.emit()

    def estimated_vocab_size(self) -> tuple[int, bool]:
        """(vocabulary size for estimates, exact?): the tokenizer's when chosen, else a fair guess."""
        if self.vocab_size is not None:
            return self.vocab_size, True
        if self.config.tokenizer.kind == "char":
            return ASSUMED_CHAR_VOCAB, False
        return int(self.config.tokenizer.vocab_size), False

    @property
    def vocab_size(self) -> int | None:
        """The selected tokenizer's vocabulary size, when one is selected."""
        if self.tokenizer and self.tokenizer.get("vocab_size"):
            return int(self.tokenizer["vocab_size"])
        return None


def _progress_of(rows: list[dict]) -> dict:
    """The step and best validation loss that a batch of metric rows shows (for the run's row)."""
    step = max((int(r.get("step") or 0) for r in rows), default=None)
    vals = [float(r.get("val_loss", r.get("loss"))) for r in rows if r.get("split") == "val"
            and r.get("val_loss", r.get("loss")) is not None]
    return {"step": step, "best_val_loss": None} if not vals else {"step": step, "best_val_loss": min(vals)}


def _id(row: dict | None):
    return row.get("id") if row else None
