"""The engine's request handlers for runs: training, generation, checkpoints, metrics and attention (a mixin of
engine.worker.Engine).

Training goes to the main lane and its events become protocol broadcasts; generation, the attention of a text
and a token's attention row go to the read-only side lane; checkpoints, metrics and stored attention snapshots
are answered at once on the reader thread. Engine (engine/worker.py) finds each by its name, `_handle_<kind>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine import protocol as p
from engine import training_events as ev
from engine.config import ConfigError, RunConfig

if TYPE_CHECKING:
    from engine.worker import Job

# The engine's own state while a run is in each training state (the heartbeat's `state`).
_ENGINE_STATE = {"starting": "training", "training": "training", "paused": "paused", "stopping": "training"}


class ModelHandlers:
    """Requests about runs and their models; uses Engine's ws(), send(), _enqueue(), control and training_run."""

    def _handle_metrics_request(self, msg: p.MetricsRequest) -> None:
        ws = self.ws()
        run = ws.run(msg.run)
        self.send(p.MetricsReply(parent=msg.id, run=run, rows=ws.metrics(run["id"])))

    def _handle_train_request(self, msg: p.TrainRequest) -> None:
        self._enqueue(msg, self._train)

    def _train(self, job: Job) -> None:
        from engine.checkpoint import resumable_checkpoint
        from engine.run_setup import prepare_run
        from engine.train import Control, run_training

        msg: p.TrainRequest = job.request
        ws = self.ws()
        control = Control()
        control.auto_apply_advice = False  # a divergence pauses with its advice: the user applies it or not
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
            # Taken before the reply, so a run another process trains is refused in the reply's words.
            lease = ws.take_lease(run["id"])
            try:
                self.training_run = run["id"]
                self.send(p.TrainReply(parent=msg.id, run=ws.run(run["id"])))
                run_training(
                    ws,
                    run["id"],
                    on_event=self._train_event(msg, run["id"]),
                    control=control,
                    resume=msg.resume_run is not None,
                    lease=lease,
                )
            finally:
                ws.drop_lease(run["id"], lease)  # already dropped unless run_training refused to start
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
                    self.send(
                        p.Status(
                            state=event.state,
                            engine_state="busy",  # the run holds the work lane until its job ends ("idle" follows)
                            run_state=event.state,
                            run=run_id,
                            step=int(event.step),
                            max_iters=int(event.max_iters),
                            message=str(event.message),
                            advice=event.advice,
                        )
                    )
                case ev.Metrics():
                    self.send(p.Metrics(run=run, rows=[event.payload()]))
                case ev.Evaluation():
                    self.send(
                        p.Eval(
                            run=run,
                            step=int(event.step),
                            train_loss=float(event.train_loss),
                            val_loss=event.val_loss,
                            elapsed_s=float(event.elapsed_s),
                            metrics={str(k): v if isinstance(v, list) else float(v) for k, v in event.metrics.items()},
                        )
                    )
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
            self.send(
                p.Token(
                    parent=msg.id,
                    token_id=int(r["id"]),
                    text=r["text"],
                    prob=r.get("prob"),
                    entropy=r.get("entropy"),
                    top=r.get("top") or [],
                )
            )

        def run(job: Job) -> None:
            from engine.run_generation import generate_text

            out = generate_text(
                self.ws(),
                msg.run,
                msg.prompt,
                max_new_tokens=msg.max_new_tokens,
                mode=msg.mode,
                temperature=msg.temperature,
                top_k=msg.top_k,
                top_p=msg.top_p,
                seed=msg.seed,
                beam_width=msg.beam_width,
                length_penalty=msg.length_penalty,
                details=msg.details,
                checkpoint=msg.checkpoint,
                on_step=on_step,
                should_stop=job.cancelled,
            )
            self.send(
                p.GenerateReply(
                    parent=msg.id,
                    text=out["text"],
                    n_tokens=out["n_tokens"],
                    tokens_per_sec=out["tokens_per_sec"],
                    stopped=out["stopped"],
                    ended=out["ended"],
                    prompt_tokens=out["prompt_tokens"],
                    token_ids=out["token_ids"],
                    unknown_chars=out["unknown_chars"],
                )
            )

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
            raise ins.InspectError(
                f"run {run['id']} ({run['name']}) has no attention snapshots yet: they are "
                f"taken at step 0 and at every evaluation while Record attention is on "
                f"(train.probe_attention)"
            )
        found = stored[-1] if msg.step is None else next((x for x in stored if x[0] == msg.step), None)
        if found is None:
            raise ins.InspectError(
                f"run {run['id']} has no attention snapshot at step {msg.step}; it has steps {_steps_text(steps)}"
            )
        meta, blobs = ins.load_snapshot(found[1])
        self.send(
            p.AttentionReply(parent=msg.id, run=run["id"], step=found[0], meta=meta, steps=steps, buffers=tuple(blobs))
        )

    def _attention_of_text(self, job: Job) -> None:
        from engine import attention_probes as ins
        from engine.objectives.base import decoder_start_id
        from engine.run_generation import load_run

        msg: p.AttentionRequest = job.request
        ws = self.ws()
        run = ws.run(msg.run)
        loaded = load_run(ws, run["id"], "auto", msg.checkpoint)
        model, tok, meta = loaded.model, loaded.tok, loaded.meta
        # An encoder-decoder's decoder reads msg.target (None: the text itself) behind the run's start token.
        snapshot, heads = ins.probe_model(
            model,
            tok,
            [msg.text],
            max_tokens=msg.max_tokens,
            targets=[msg.target],
            start_id=decoder_start_id(loaded.specials),
        )
        step = int(meta.get("step") or 0)
        out, blobs = ins.encode_snapshot(snapshot, heads, step=step)
        out.update(source="text", checkpoint=meta.get("checkpoint"))
        self.send(
            p.AttentionReply(
                parent=msg.id,
                run=run["id"],
                step=step,
                meta=out,
                steps=[s for s, _ in self._snapshot_steps(run["id"])],
                buffers=tuple(blobs),
            )
        )

    def _handle_token_attention_request(self, msg: p.TokenAttentionRequest) -> None:
        def run(job: Job) -> None:
            from engine import attention_probes as ins
            from engine.run_generation import load_model_for_run

            model, tok, _ = load_model_for_run(self.ws(), msg.run, "auto", msg.checkpoint)
            row, keys = ins.token_attention(model, list(msg.ids), msg.position)
            self.send(
                p.TokenAttentionReply(
                    parent=msg.id,
                    tokens=ins.token_strings(tok, keys),
                    shape=list(row.shape),
                    buffers=(row.astype("<f2").tobytes(),),
                )
            )

        self._enqueue(msg, run, read_only=True)


def _steps_text(steps: list[int]) -> str:
    if len(steps) > 8:
        return f"{', '.join(map(str, steps[:3]))}, ..., {', '.join(map(str, steps[-3:]))}"
    return ", ".join(map(str, steps))
