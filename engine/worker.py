"""The engine process: connects back to the studio, answers requests, runs long jobs, streams events.

    python -m engine.worker --address ADDR --workspace DIR      (authkey in env STUDIO_AUTHKEY, hex)

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
"""
from __future__ import annotations

import argparse
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
from engine import training_events as ev
from engine.config import ConfigError, RunConfig
from engine.errors import field_of, is_user_error, user_text
from engine.outbox import Outbox

ENGINE_VERSION = "0.1.0"
# The engine's own state while a run is in each training state (the heartbeat's `state`).
_ENGINE_STATE = {"starting": "training", "training": "training", "paused": "paused", "stopping": "training"}


class Job:
    def __init__(self, request: p.Message, run: Callable[["Job"], None]):
        self.request = request
        self.run = run
        self.cancel = threading.Event()

    def cancelled(self) -> bool:
        return self.cancel.is_set()


class Engine:
    def __init__(self, conn: Connection, workspace: Path):
        self.conn = conn
        self.workspace_path = Path(workspace)
        self.outbox = Outbox(conn, on_dead=self._studio_gone)
        self.jobs: queue.Queue[Job] = queue.Queue()
        self.read_jobs: queue.Queue[Job] = queue.Queue()
        self.current: Job | None = None
        self.current_read: Job | None = None
        self.control = None        # engine.train.Control of the running training
        self.training_run: int | None = None
        self.shutdown = threading.Event()
        self.ready = threading.Event()
        self._local = threading.local()
        self.device = None
        self.device_name = ""
        self.torch_version = ""

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

    def set_state(self, state: str, message: str = "") -> None:
        self.outbox.state = state
        self.send(p.Status(state=state, run=self.training_run, message=message))

    def _studio_gone(self) -> None:
        print("engine: studio connection closed; stopping", file=sys.stderr, flush=True)
        self.request_shutdown()

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
        while not self.shutdown.is_set():
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                self._studio_gone()
                return
            try:
                msgs = p.decode_batch(data)
            except p.ProtocolError as e:
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
            elif msg.kind_name.endswith("_request"):    # a newer studio's request: answer it, or it waits for ever
                self.send(p.error_reply(msg, f"this engine (protocol {p.PROTOCOL_VERSION}) does not handle "
                                             f"{msg.kind_name}; update the engine"))
            return
        handler(msg)

    # ------------------------------------------------------------------------------------------ quick requests
    def _handle_hello_request(self, msg: p.HelloRequest) -> None:
        if not p.compatible(msg.protocol_version):
            self.send(p.HelloReply(parent=msg.id, status="error", error=(
                f"studio speaks protocol {msg.protocol_version}, engine {p.PROTOCOL_VERSION}: update both")))
            return
        self.ready.wait()
        self.send(p.HelloReply(parent=msg.id, engine_version=ENGINE_VERSION, pid=os.getpid(),
                               device=self.device.type, device_name=self.device_name,
                               torch_version=self.torch_version, workspace=self.ws().summary()))
        self.send(p.Status(state=self.outbox.state, run=self.training_run))

    def _handle_shutdown_request(self, msg: p.ShutdownRequest) -> None:
        self.send(p.ShutdownReply(parent=msg.id))
        self.request_shutdown()

    def _handle_workspace_request(self, msg: p.WorkspaceRequest) -> None:
        if msg.path and Path(msg.path) != self.workspace_path:
            if self.current is not None:
                self.send(p.error_reply(msg, "finish or stop the running job before opening another workspace"))
                return
            self.workspace_path = Path(msg.path).expanduser()
            self.ws().ensure_sample_dataset()
        self.send(p.WorkspaceReply(parent=msg.id, workspace=self.ws().summary()))

    def _handle_dataset_preview_request(self, msg: p.DatasetPreviewRequest) -> None:
        ws = self.ws()
        self.send(p.DatasetPreviewReply(parent=msg.id, dataset=ws.dataset(msg.dataset),
                                        text=ws.dataset_preview(msg.dataset, msg.n_chars)))

    def _handle_delete_request(self, msg: p.DeleteRequest) -> None:
        ws = self.ws()
        if msg.item_kind == "run" and self.training_run is not None and ws.run(msg.ref)["id"] == self.training_run:
            self.send(p.error_reply(msg, "this run is training: stop it before deleting it"))
            return
        # What a running job reads cannot be deleted anyway: its run uses its dataset and tokenizer.
        self.send(p.DeleteReply(parent=msg.id, trash=ws.delete(msg.item_kind, msg.ref)))

    def _handle_rename_request(self, msg: p.RenameRequest) -> None:
        if msg.item_kind != "run":
            self.send(p.error_reply(msg, f"only runs can be renamed, not a {msg.item_kind}"))
            return
        # A quick write, answered here; the trainer never writes the name, so a training run can be renamed.
        self.send(p.RenameReply(parent=msg.id, row=self.ws().rename_run(msg.ref, msg.name)))

    def _handle_restore_request(self, msg: p.RestoreRequest) -> None:
        ws = self.ws()
        kind = ws.trash_entry(msg.trash_id)["kind"]
        self.send(p.RestoreReply(parent=msg.id, item_kind=kind, row=ws.restore(msg.trash_id)))

    def _handle_trash_request(self, msg: p.TrashRequest) -> None:
        ws = self.ws()
        emptied = ws.empty_trash() if msg.empty else 0
        self.send(p.TrashReply(parent=msg.id, rows=ws.trash(), emptied=emptied))

    def _handle_vocab_request(self, msg: p.VocabRequest) -> None:
        ws = self.ws()
        self.send(p.VocabReply(parent=msg.id, tokenizer=ws.tokenizer(msg.tokenizer),
                               rows=ws.vocab_rows(msg.tokenizer, msg.offset, msg.limit)))

    def _handle_tokenize_request(self, msg: p.TokenizeRequest) -> None:
        from engine.tokenizer import token_spans
        tok = self.ws().load_tokenizer(msg.tokenizer)
        self.send(p.TokenizeReply(parent=msg.id, spans=token_spans(tok, msg.text)))

    def _handle_metrics_request(self, msg: p.MetricsRequest) -> None:
        ws = self.ws()
        run = ws.run(msg.run)
        self.send(p.MetricsReply(parent=msg.id, run=run, rows=ws.metrics(run["id"])))

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
        if action not in ("stop", "pause", "resume"):
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

    def _handle_import_request(self, msg: p.ImportRequest) -> None:
        def run(job: Job) -> None:
            ds = self.ws().import_dataset([Path(x).expanduser() for x in msg.paths], msg.name, msg.val_fraction,
                                          progress=self._progress(msg), cancelled=job.cancelled,
                                          **_options(msg.options))
            self.send(p.ImportReply(parent=msg.id, dataset=ds))
        self._enqueue(msg, run)

    def _handle_tokenizer_train_request(self, msg: p.TokenizerTrainRequest) -> None:
        def run(job: Job) -> None:
            tok = self.ws().train_tokenizer(msg.dataset, msg.tokenizer_kind, msg.vocab_size, msg.name,
                                            progress=self._progress(msg), cancelled=job.cancelled,
                                            **_options(msg.options))
            self.send(p.TokenizerTrainReply(parent=msg.id, tokenizer=tok))
        self._enqueue(msg, run)

    # Looking at data and tokenizers reads files but writes nothing, so it runs beside training (in the
    # read-only side lane) and never waits for a long import to finish.
    def _handle_import_preview_request(self, msg: p.ImportPreviewRequest) -> None:
        def run(job: Job) -> None:
            from engine.data.cleaning import clean_preview, clean_records
            from engine.data.importers import preview_records
            opts = _options(msg.options)
            cleaning = opts.pop("cleaning", None)
            preview = preview_records([Path(x).expanduser() for x in msg.paths], n=max(1, int(msg.n)), **opts)
            records = preview["records"]
            self.send(p.ImportPreviewReply(parent=msg.id, preview=preview,
                                           cleaned=clean_records(records, cleaning),
                                           cleaning=clean_preview(records, cleaning)))
        self._enqueue(msg, run, read_only=True)

    def _handle_token_contexts_request(self, msg: p.TokenContextsRequest) -> None:
        def run(job: Job) -> None:
            from engine.tokenizer import display_token
            from engine.tokenizer.analysis import token_contexts
            ws = self.ws()
            row = ws.tokenizer(msg.tokenizer)
            contexts = token_contexts(ws, row["id"], msg.token_id, n=msg.n, width=msg.width)
            freq = ws.vocab_rows(row["id"], msg.token_id, 1)
            self.send(p.TokenContextsReply(parent=msg.id, contexts=contexts,
                                           token=display_token(ws.load_tokenizer(row["id"]), msg.token_id),
                                           frequency=int(freq[0][2]) if freq else 0))
        self._enqueue(msg, run, read_only=True)

    def _handle_doc_lengths_request(self, msg: p.DocLengthsRequest) -> None:
        def run(job: Job) -> None:
            from engine.tokenizer.analysis import doc_length_histogram
            self.send(p.DocLengthsReply(parent=msg.id, histogram=doc_length_histogram(
                self.ws(), msg.tokenizer, split=msg.split, bins=msg.bins)))
        self._enqueue(msg, run, read_only=True)

    def _handle_tokenizer_compare_request(self, msg: p.TokenizerCompareRequest) -> None:
        def run(job: Job) -> None:
            from engine.tokenizer.analysis import compare_tokenizers
            self.send(p.TokenizerCompareReply(parent=msg.id, result=compare_tokenizers(
                self.ws(), list(msg.tokenizers), text=msg.text, cancelled=job.cancelled)))
        self._enqueue(msg, run, read_only=True)

    def _handle_tokenizer_export_request(self, msg: p.TokenizerExportRequest) -> None:
        def run(job: Job) -> None:
            from engine.tokenizer.export import export_tokenizer
            if not str(msg.path).strip():
                raise ConfigError("choose where to export the tokenizer")
            out = export_tokenizer(self.ws(), msg.tokenizer, Path(msg.path).expanduser())
            self.send(p.TokenizerExportReply(parent=msg.id, path=str(out)))
        self._enqueue(msg, run, read_only=True)

    def _handle_train_request(self, msg: p.TrainRequest) -> None:
        self._enqueue(msg, self._train)

    def _train(self, job: Job) -> None:
        from engine.checkpoint import resumable_checkpoint
        from engine.run_setup import prepare_run
        from engine.train import Control, run_training
        msg: p.TrainRequest = job.request
        ws = self.ws()
        control = Control()
        self.control = control
        try:
            if msg.resume_run is not None:
                run = ws.run(msg.resume_run)
                if resumable_checkpoint(ws, run["id"]) is None:
                    raise ConfigError(f"run {run['id']} has no checkpoint to resume from; start a new run instead")
            else:
                cfg = RunConfig.from_dict(msg.config)
                run = prepare_run(ws, cfg, msg.name, on_event=self._train_event(msg, None), control=control)
            if control.stop_requested:
                self.send(p.TrainReply(parent=msg.id, status="error", error="cancelled before training started"))
                return
            self.training_run = run["id"]
            self.send(p.TrainReply(parent=msg.id, run=run))
            run_training(ws, run["id"], on_event=self._train_event(msg, run["id"]), control=control,
                         resume=msg.resume_run is not None)
        finally:
            self.control = None
            self.training_run = None

    def _train_event(self, msg: p.Message, run_id: int | None) -> ev.EventFn:
        """The training's events as protocol messages: broadcasts of the run, or of the request while preparing."""
        run = run_id or 0

        def on_event(event: ev.Event) -> None:
            match event:
                case ev.Status():
                    self.outbox.state = _ENGINE_STATE.get(event.state, "busy")
                    self.send(p.Status(state=event.state, run=run_id, step=int(event.step),
                                       max_iters=int(event.max_iters), message=str(event.message)))
                case ev.Metrics():
                    self.send(p.Metrics(run=run, rows=[event.payload()]))
                case ev.Evaluation():
                    self.send(p.Eval(run=run, step=int(event.step), train_loss=float(event.train_loss),
                                     val_loss=event.val_loss, elapsed_s=float(event.elapsed_s)))
                case ev.Progress():
                    self.send(p.Progress(parent=msg.id, fraction=float(event.fraction), message=str(event.message)))
                case ev.CheckpointSaved():
                    self.send(p.Log(parent=msg.id, level="info", message=f"checkpoint at step {event.step}"))
                case ev.AttentionSnapshot():
                    self.send(p.Attention(run=run, step=int(event.step), meta=event.meta, buffers=tuple(event.blobs)))
                case ev.Notice():
                    self.send(p.Log(parent=msg.id, level=event.level, message=str(event.message)))
        return on_event

    def _handle_generate_request(self, msg: p.GenerateRequest) -> None:
        def on_step(r: dict) -> None:
            self.send(p.Token(parent=msg.id, token_id=int(r["id"]), text=r["text"], prob=r.get("prob"),
                              entropy=r.get("entropy"), top=r.get("top") or []))

        def run(job: Job) -> None:
            from engine.run_generation import generate_text
            out = generate_text(
                self.ws(), msg.run, msg.prompt, max_new_tokens=msg.max_new_tokens, mode=msg.mode,
                temperature=msg.temperature, top_k=msg.top_k, top_p=msg.top_p, seed=msg.seed,
                beam_width=msg.beam_width, length_penalty=msg.length_penalty, details=msg.details,
                checkpoint=msg.checkpoint, on_step=on_step, should_stop=job.cancelled)
            self.send(p.GenerateReply(parent=msg.id, text=out["text"], n_tokens=out["n_tokens"],
                                      tokens_per_sec=out["tokens_per_sec"], stopped=out["stopped"],
                                      ended=out["ended"],
                                      prompt_tokens=out["prompt_tokens"], token_ids=out["token_ids"],
                                      unknown_chars=out["unknown_chars"]))
        self._enqueue(msg, run, read_only=True)

    def _handle_checkpoints_request(self, msg: p.CheckpointsRequest) -> None:
        from engine.checkpoint import list_checkpoints
        self.send(p.CheckpointsReply(parent=msg.id, rows=list_checkpoints(self.ws(), msg.run)))

    def _snapshot_steps(self, run_id: int) -> list:
        from engine.attention_probes import list_snapshots
        from engine.train import ATTENTION_DIR
        return list_snapshots(self.ws().run_dir(run_id) / ATTENTION_DIR)

    def _handle_attention_request(self, msg: p.AttentionRequest) -> None:
        from engine import attention_probes as ins
        if msg.text is not None:
            self._enqueue(msg, self._attention_of_text, read_only=True)
            return
        # A stored snapshot is a file read: answered here, at once.
        run = self.ws().run(msg.run)
        stored = self._snapshot_steps(run["id"])
        steps = [s for s, _ in stored]
        if not stored:
            raise ins.InspectError(f"run {run['id']} ({run['name']}) has no attention snapshots yet: they are "
                                   f"taken at step 0 and at every evaluation while Record attention is on "
                                   f"(train.probe_attention)")
        found = stored[-1] if msg.step is None else next((x for x in stored if x[0] == msg.step), None)
        if found is None:
            raise ins.InspectError(f"run {run['id']} has no attention snapshot at step {msg.step}; "
                                   f"it has steps {_steps_text(steps)}")
        meta, blobs = ins.load_snapshot(found[1])
        self.send(p.AttentionReply(parent=msg.id, run=run["id"], step=found[0], meta=meta, steps=steps,
                                   buffers=tuple(blobs)))

    def _attention_of_text(self, job: Job) -> None:
        from engine import attention_probes as ins
        from engine.run_generation import load_model_for_run
        msg: p.AttentionRequest = job.request
        ws = self.ws()
        run = ws.run(msg.run)
        model, tok, meta = load_model_for_run(ws, run["id"], "auto", msg.checkpoint)
        snapshot, heads = ins.probe_model(model, tok, [msg.text], max_tokens=msg.max_tokens)
        step = int(meta.get("step") or 0)
        out, blobs = ins.encode_snapshot(snapshot, heads, step=step)
        out.update(source="text", checkpoint=meta.get("checkpoint"))
        self.send(p.AttentionReply(parent=msg.id, run=run["id"], step=step, meta=out,
                                   steps=[s for s, _ in self._snapshot_steps(run["id"])], buffers=tuple(blobs)))

    def _handle_token_attention_request(self, msg: p.TokenAttentionRequest) -> None:
        def run(job: Job) -> None:
            from engine import attention_probes as ins
            from engine.run_generation import load_model_for_run
            model, tok, _ = load_model_for_run(self.ws(), msg.run, "auto", msg.checkpoint)
            row, keys = ins.token_attention(model, list(msg.ids), msg.position)
            self.send(p.TokenAttentionReply(parent=msg.id, tokens=ins.token_strings(tok, keys),
                                            shape=list(row.shape),
                                            buffers=(row.astype("<f2").tobytes(),)))
        self._enqueue(msg, run, read_only=True)

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

    def job_loop(self, jobs: queue.Queue, slot: str, busy_state: str | None) -> None:
        while not self.shutdown.is_set():
            try:
                job = jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            setattr(self, slot, job)
            if busy_state:
                self.set_state(busy_state)
            try:
                job.run(job)
            except Exception as e:
                self._fail(job.request, e)
            finally:
                setattr(self, slot, None)
                if busy_state:
                    self.set_state("idle")


def _options(options) -> dict:
    """Request options as keyword arguments; a non-dict is a studio bug reported as one line."""
    if not options:
        return {}
    if not isinstance(options, dict):
        raise ConfigError(f"options must be a JSON object, not {type(options).__name__}")
    return {str(k): v for k, v in options.items()}


def _steps_text(steps: list[int]) -> str:
    if len(steps) > 8:
        return f"{', '.join(map(str, steps[:3]))}, ..., {', '.join(map(str, steps[-3:]))}"
    return ", ".join(map(str, steps))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="engine.worker", description="Transformer Studio engine process")
    ap.add_argument("--address", required=True)
    ap.add_argument("--workspace", required=True)
    args = ap.parse_args(argv)
    # Ctrl-C in a terminal goes to the whole process group; the studio decides whether to stop a run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    authkey = bytes.fromhex(os.environ.pop("STUDIO_AUTHKEY", ""))
    conn = Client(args.address, authkey=authkey or None)
    engine = Engine(conn, Path(args.workspace))
    signal.signal(signal.SIGTERM, lambda *_: engine.request_shutdown())
    if hasattr(signal, "SIGBREAK"):   # Windows: the studio's Ctrl+Break is its polite stop
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
    reads = threading.Thread(target=engine.job_loop, args=(engine.read_jobs, "current_read", None),
                           name="reads", daemon=True)
    reads.start()
    engine.job_loop(engine.jobs, "current", "busy")
    reads.join(timeout=5)
    engine.set_state("stopped")
    engine.outbox.close()
    try:
        conn.close()
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
