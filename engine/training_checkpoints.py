"""The training's checkpoints: the resumable `latest` (weights, optimizer, RNG states, the objective's state) at
each checkpoint interval, weights-only ones for the playground's comparisons, and resuming from `latest` (a mixin
of engine/train.py's _Training, which owns the state these methods read)."""

from __future__ import annotations

from engine import training_events as ev
from engine.checkpoint import (
    CHECKPOINT_NAME,
    forget_checkpoints_after,
    kept_checkpoint_name,
    load_checkpoint,
    resumable_checkpoint,
    resume_parts,
    rng_state,
    save_checkpoint,
    set_rng_state,
    thin_kept_checkpoints,
)
from engine.training_data import generator_state, set_generator_state
from engine.store.errors import WorkspaceFull
from engine.training_records import ATTENTION_DIR
from engine.training_space import UNWRITTEN, write_back_rows


class CheckpointSteps:
    """Writing and reading the run's checkpoints; `restore` also forgets what came after the checkpoint."""

    def restore(self) -> None:
        ck = resumable_checkpoint(self.ws, self.run_id)
        doc = load_checkpoint(ck["path"], self.model, self.optimizer, map_location=self.device)
        meta, extra = resume_parts(doc, ck["path"])
        self.step = int(meta["step"])
        self.best_val_loss = meta.get("best_val_loss")
        self.elapsed_before = float(extra.get("elapsed_s", 0.0))
        set_rng_state(extra["rng"])
        set_generator_state(self.data_gen, extra["data_rng"])
        self.objective.load_state_dict(extra.get("objective") or {})
        write_back_rows(self.ws, self.run_id, extra.get(UNWRITTEN) or [])  # what a full disk could not take
        if self.scaler is not None and extra.get("scaler"):
            self.scaler.load_state_dict(extra["scaler"])
        self.last_ckpt_step = self.step
        # Rows logged after the checkpoint by the interrupted session would be logged again: drop them; so
        # would its attention snapshots and weights-only checkpoints.
        self.ws.delete_metrics(self.run_id, after_step=self.step)
        from engine.attention_probes import delete_snapshots_after

        delete_snapshots_after(self.run_dir / ATTENTION_DIR, self.step)
        forget_checkpoints_after(self.ws, self.run_id, self.step)

    def checkpoint_meta(self) -> dict:
        return {
            "run_id": self.run_id,
            "step": self.step,
            "config": self.cfg.to_dict(),
            "vocab_size": self.vocab_size,
            "tokenizer_id": self.run["tokenizer_id"],
            "best_val_loss": self.best_val_loss,
        }

    def step_val_loss(self) -> float | None:
        return self.last_val[1] if self.last_val and self.last_val[0] == self.step else None

    def checkpoint(self) -> None:
        if self.last_ckpt_step == self.step:
            return
        self.check_lease()
        # The rows up to this step are durable before the checkpoint is: a kill after it loses none of them. With
        # the disk full (engine/training_space.py) they cannot be, so they travel inside the checkpoint instead.
        try:
            self.metrics.flush()
            self.ws.update_run(self.run_id, step=self.step)
        except WorkspaceFull:
            if not self.holding:
                raise
        extra = {"rng": rng_state(), "data_rng": generator_state(self.data_gen), "elapsed_s": self.elapsed()}
        extra["objective"] = self.objective.state_dict()
        if self.scaler is not None:
            extra["scaler"] = {k: v for k, v in self.scaler.state_dict().items()}
        if self.metrics.rows:
            extra[UNWRITTEN] = list(self.metrics.rows)
        info = save_checkpoint(
            self.run_dir / "checkpoints",
            CHECKPOINT_NAME,
            self.model,
            self.optimizer,
            meta=self.checkpoint_meta(),
            extra=extra,
        )
        self.last_ckpt_step = self.step
        self.unregistered = info  # until its row is in: a full database registers it on the next write-back
        self.register_checkpoint()
        self.emit(ev.CheckpointSaved(step=self.step, path=str(info["path"])))

    def register_checkpoint(self) -> None:
        """The row of the last `latest` written, if it is not in the database yet (its file resumes without it)."""
        info, self.unregistered = self.unregistered, None
        if info is None:
            return
        try:
            self.ws.add_checkpoint(
                self.run_id, self.last_ckpt_step, info["path"], info["sha256"], val_loss=self.step_val_loss()
            )
        except WorkspaceFull:
            self.unregistered = info
            if not self.holding:
                raise

    def keep_weights(self) -> None:
        """A weights-only checkpoint of this step, for the playground's comparisons (train.keep_checkpoints)."""
        keep = self.tc.keep_checkpoints
        if keep <= 0:
            return
        info = save_checkpoint(
            self.run_dir / "checkpoints", kept_checkpoint_name(self.step), self.model, meta=self.checkpoint_meta()
        )
        # A step done again (resumed from an earlier checkpoint) replaces its file: one row per file.
        self.ws.delete_checkpoints(self.run_id, [info["path"]])
        self.ws.add_checkpoint(self.run_id, self.step, info["path"], info["sha256"], val_loss=self.step_val_loss())
        thin_kept_checkpoints(self.ws, self.run_id, keep, self.tc.eval_interval)
