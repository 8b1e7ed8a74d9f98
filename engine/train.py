"""The training loop: nanoGPT's train.py as plain functions that report events and obey a Control.

Everything a run needs is in the workspace: its RunConfig (the run row), its token memmaps (the tokenizer), its
checkpoints. It reports through `on_event(event)`, one typed event (engine/training_events.py) at a time; the
engine worker turns them into protocol messages and the CLI into lines of text. What the model learns is the
run's objective (engine/objectives/): it builds each batch from the split's TokenSource and computes the loss;
the model is the one build_model makes for model.arch, the optimizer and the learning-rate schedule come from
engine/optim.py. Its checkpoints are written and registered by engine/checkpoint.py, its metric rows and
attention snapshots by engine/training_records.py. A run is made first (its config checked, its vocabulary
found or trained, its row created) by engine/run_setup.py.

Evaluation averages the loss over fixed batches of each split, and the objective's statistics over the same
batches into its metrics ("val_perplexity" = exp(summed token loss / tokens), "val_masked_accuracy" = correct /
predicted, ...). It measures the plain loss, without label smoothing, so the validation losses of runs with and
without it can be read against each other; the training rows log the loss the optimizer minimised.

What a run keeps in run_dir (workspace/runs/<id>/):
    checkpoints/latest.*             the resumable checkpoint: weights, optimizer, RNG states (rewritten)
    checkpoints/step-NNNNNNNN.*      weights only, at step 0 and at each evaluation, for comparing steps in the
                                     playground; at most train.keep_checkpoints (0: none), evenly spaced (every
                                     evaluation, then every 2nd, 4th, ... as the run grows) and the newest
    attention/step-NNNNNNNN.npz      attention snapshots of the probe texts at step 0 and at each evaluation
                                     (train.probe_attention), see engine/attention_probes.py; a long run keeps
                                     about 60, log-spaced (engine/attention_snapshots.py thin_snapshots)
A weights-only checkpoint is the model's float32 weights, 4 bytes per parameter (3.2 MiB for the 0.8 M "baby",
so the default 10 of them take 32 MiB); a snapshot is L * H * T * (T + 1) bytes per probe (139 KiB for the
baby: two texts of 48 tokens and the 64-token induction probe). Every checkpoint file is registered in the
workspace's checkpoints table.

Resuming is exact on the CPU: a checkpoint carries the model, the optimizer, every global RNG and the state of
the generator that picks the training windows, so 10 steps + resume + 10 steps give the same losses as 20.
Looking at attention draws no random numbers and leaves the model's mode as it was, so it changes nothing in
the training either.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

import torch

from engine import training_events as ev
from engine.checkpoint import (
    CheckpointError,
    resumable_checkpoint,
)
from engine.config import RunConfig
from engine.control import Control
from engine.format import human_count, plural
from engine.health import MAX_ROLLBACKS, HealthGuard, Verdict, advise, applied
from engine.device import autocast_context, autocast_dtype, device_description, pick_device
from engine.errors import UserError, is_user_error, user_text
from engine.finetune import (
    find_parent,
    load_parent_weights,
    objective_config,
    prepare_for_finetune,
    trainable_words,
)
from engine.model import build_model
from engine.objectives.base import decoder_start_id
from engine.objectives.catalog import objective_info
from engine.objectives.registry import get_objective
from engine.optim import lr_at, make_optimizer
from engine.run_setup import check_device
from engine.store.leases import LeaseKeeper
from engine.training_checkpoints import CheckpointSteps
from engine.training_space import disk_full, hold_for_space, stop_held
from engine.training_records import ATTENTION_DIR, AttentionRecorder, MetricsBuffer, TokenSpeed, metric_values  # noqa: F401

# Tracebacks go here: to stderr in the worker (its log file) through logging's last-resort handler; the CLI
# silences this logger so a user sees one line, not a traceback.
log = logging.getLogger(__name__)
# Seeds of the generators that pick evaluation windows, offset from train.seed so evaluation never draws from
# the training stream, and fixed, so every evaluation scores the same windows and the curve shows learning only.
_EVAL_SEED_OFFSET = {"train": 1_000_003, "val": 2_000_003}


class TrainingError(UserError):
    """Training cannot go on for a reason a user can act on; the message says what to change."""


# The learning rate of a step under the run's schedule (engine/optim.py); the older name, kept for its callers.
get_lr = lr_at


# ------------------------------------------------------------------------------------------------- training


def run_training(
    ws,
    run_id: int,
    *,
    on_event: ev.EventFn,
    control: Control | None = None,
    resume: bool = False,
    lease: str | None = None,
) -> str:
    """Train run `run_id` to train.max_iters (from its latest checkpoint when `resume`), holding its lease
    (engine/store/leases.py; `lease`: a token the caller took already, dropped here at the end).

    Returns the final state: "finished", "stopped" or "failed". A failure never raises: it is reported as a
    "failed" status with a one-line message (a bug's traceback goes to the log, stderr). An unknown run, resume
    without a checkpoint or a run another process trains raise WorkspaceError / CheckpointError / RunBusyError
    before anything changes.
    """
    control = control or Control()
    run = ws.run(run_id)
    if resume and resumable_checkpoint(ws, run["id"]) is None:
        raise CheckpointError(f"run {run['id']} ({run['name']}) has no checkpoint to resume from")
    token = lease or ws.take_lease(run["id"])
    keeper = LeaseKeeper(ws.path / "workspace.db", run["id"], token).start()
    training = _Training(ws, run, ev.as_handler(on_event), control, resume, keeper)
    try:
        training.setup(resume)
        return training.loop()
    except KeyboardInterrupt:
        training.finish_abruptly("stopped", "interrupted")
        raise
    except Exception as e:
        line = _failure_line(e)
        # A user's error is one line in the log; a bug's traceback is what a developer needs.
        log.error("training run %s failed: %s", run_id, line, exc_info=not is_user_error(e))
        training.finish_abruptly("failed", line)
        return "failed"
    finally:
        training.release()
        keeper.stop()
        if not keeper.lost:
            with contextlib.suppress(Exception):
                ws.drop_lease(run["id"], token)


def _failure_line(e: BaseException) -> str:
    """The one line a failed run's status carries (engine/errors.py words it)."""
    return user_text(e).splitlines()[0]


class _Training(CheckpointSteps):
    """The state of one training session of a run; `loop` runs it."""

    def __init__(self, ws, run: dict, on_event: ev.EventFn, control: Control, resume: bool, keeper: LeaseKeeper):
        self.ws = ws
        self.keeper = keeper
        self.run = run
        self.run_id = run["id"]
        self.emit = on_event
        self.control = control
        self.cfg = RunConfig.from_dict(run["config"])
        self.tc = self.cfg.train
        self.mc = self.cfg.model
        # Until the checkpoint is loaded, a resumed run keeps what its row says (a failed set-up must not erase it).
        self.step = int(run.get("step") or 0) if resume else 0  # optimizer steps done
        self.best_val_loss: float | None = run.get("best_val_loss") if resume else None
        self.last_val: tuple[int, float] | None = None  # (step, val loss) of the latest evaluation
        self.last_ckpt_step: int | None = None
        self.unregistered: dict | None = None  # the last checkpoint, while a full database lacks its row
        self.holding = False  # the disk is full and the run waits for space (engine/training_space.py)
        self.elapsed_before = 0.0  # training seconds of earlier sessions (resume)
        self.session_start: float | None = None
        self.session_start_step = 0
        self.paused_s = 0.0
        self.device_desc = ""
        self.note = ""
        self.metrics = MetricsBuffer(ws, self.run_id)
        self.guard = HealthGuard(spikes=not objective_info(self.cfg.objective.name).needs_parent)
        self.rollbacks = 0
        self.model = self.optimizer = self.scaler = None
        self.run_dir = Path(ws.run_dir(self.run_id))
        self.attention = AttentionRecorder(ws, run, self.run_dir, on_event, self.tc.probe_attention)

    # ---------------------------------------------------------------------------------------------- reporting
    def status(self, state: str, message: str = "", advice: dict | None = None) -> None:
        self.emit(
            ev.Status(
                state=state,
                step=self.step,
                max_iters=self.tc.max_iters,
                message=message,
                device=self.device_desc,
                advice=advice,
            )
        )
        self.check_lease()
        self.ws.update_run(
            self.run_id,
            status=state,
            step=self.step,
            message=message,
            device=self.device_desc,
            best_val_loss=self.best_val_loss,
        )

    def check_lease(self) -> None:
        """Stop before writing anything once another process took the run over (this one's lease lapsed)."""
        if self.keeper.lost:
            raise TrainingError(
                "another process took this run over while this one was not renewing its claim "
                "(was the computer asleep?); this one stopped without writing more"
            )

    def elapsed(self) -> float:
        if self.session_start is None:
            return self.elapsed_before
        return self.elapsed_before + time.perf_counter() - self.session_start - self.paused_s

    def eta(self) -> float | None:
        steps = self.step - self.session_start_step
        if self.session_start is None or steps <= 0:
            return None
        per_step = (time.perf_counter() - self.session_start - self.paused_s) / steps
        return per_step * (self.tc.max_iters - self.step)

    # ------------------------------------------------------------------------------------------------- set-up
    def setup(self, resume: bool) -> None:
        tc, mc = self.tc, self.mc
        check_device(self.cfg)
        self.device = pick_device(tc.device)
        self.device_desc = device_description(self.device)
        self.status("starting", "loading the data")
        self.objective = get_objective(objective_config(self.cfg))
        self.load_sources()
        # Before step 0: a vocabulary without the special tokens the objective needs fails the run, saying which.
        self.objective.check(self.train_source)

        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.objective.attach(self.ws, self.device)  # distillation's teacher, REINFORCE's reference and reward
        torch.manual_seed(tc.seed)
        self.model = build_model(mc, self.vocab_size).to(self.device)
        # A resumed run's own checkpoint holds every weight: it never needs its parent (which may be deleted).
        parent = None if resume else find_parent(self.ws, tc)
        if parent is not None:
            load_parent_weights(self.model, parent, map_location=self.device)
        prepare_for_finetune(self.model, tc)
        self.model.train()
        self.optimizer = make_optimizer(self.model, tc, self.device.type)
        self.amp_dtype = autocast_dtype(self.device, tc.dtype)
        # Only float16 can underflow gradients; bfloat16 has float32's range and needs no scaler.
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.data_gen = torch.Generator().manual_seed(tc.seed)
        if resume:
            self.restore()

    def load_sources(self) -> None:
        """The train and val TokenSources; a validation text too short for one window is replaced by the
        training text, with a note saying so."""
        from engine.objectives.text_source import TokenSource

        tokenizer_id = self.run["tokenizer_id"]
        self.train_source = TokenSource.from_workspace(self.ws, tokenizer_id, "train")
        self.val_source = TokenSource.from_workspace(self.ws, tokenizer_id, "val")
        self.vocab_size = int(self.train_source.vocab_size)
        need = self.mc.block_size + 1
        n_train, n_val = len(self.train_source), len(self.val_source)
        if n_train < need:
            raise TrainingError(
                f"the training text has {n_train:,} tokens, fewer than "
                f"block_size + 1 = {need:,}: choose a shorter block_size or import more text"
            )
        if n_val < need:
            self.note = (
                f"the validation text has {n_val:,} tokens, fewer than block_size + 1, "
                f"so the validation loss is measured on training text"
            )
            self.val_source = self.train_source

    def release(self) -> None:
        on_gpu = getattr(self, "device", None) is not None and self.device.type == "cuda"
        self.model = self.optimizer = self.scaler = None
        if on_gpu:
            torch.cuda.empty_cache()

    # --------------------------------------------------------------------------------------------------- loop
    def loop(self) -> str:
        """Train to the end; a full disk pauses the run until there is space again (engine/training_space.py)."""
        while True:
            try:
                return self.steps()
            except Exception as e:
                if not disk_full(e):
                    raise
            if not hold_for_space(self):
                return stop_held(self)

    def steps(self) -> str:
        tc = self.tc
        about = f"{trainable_words(self.model, tc, human_count)} on {self.device_desc}"
        self.status("training", f"{about}; {self.note}" if self.note else about)
        if self.step == 0:
            # The untrained model, so the attention panel and the playground can show where learning began.
            self.attention.record(
                self.model, self.step, self.val_source.ids, decoder_start_id(self.val_source.specials)
            )
            self.keep_weights()
            self.checkpoint()  # something to go back to, should it diverge before the first interval
            if self.objective.info.needs_parent:  # REINFORCE: the reward it starts from, to read the rise against
                self.evaluate()
        if self.session_start is None:  # not again after a wait for disk space
            self.session_start = time.perf_counter()
            self.session_start_step = self.step
        speed = TokenSpeed()

        while self.step < tc.max_iters:
            if self.control.paused and not self.control.stop_requested:
                self.pause()
                speed.restart()
            if self.control.stop_requested:
                return self.stop()

            lr = lr_at(self.step, tc)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss, grad_norm, n_tokens = self.train_step()
            self.step += 1
            speed.tokens += n_tokens
            last = self.step == tc.max_iters
            evaluated = self.step % tc.eval_interval == 0 or last

            logged = self.step % tc.log_interval == 0 or self.step == 1 or last
            if logged or evaluated or self.step % tc.checkpoint_interval == 0:
                # .item() waits for the GPU, so it happens only on logging and checkpoint steps.
                lossf, normf = loss.item(), grad_norm.item()
                verdict = self.guard.observe(self.step, lossf, normf, logged=logged)
                outcome = self.diverged(verdict) if verdict is not None else "go on"
                if outcome == "stopped":
                    return outcome
                if outcome == "rolled back":
                    tc = self.tc  # the advice may have changed the settings
                    speed.restart()
                    continue
            if logged:
                seconds, tokens = speed.count_window()
                # The last line is what the run did on the whole, not its last few steps (the figure it ends on).
                if last:
                    seconds, tokens = speed.total_s, speed.total_tokens
                self.log_train(lossf, normf, lr, tokens / max(seconds, 1e-9))

            if evaluated:
                speed.count_window()  # the steps since the last log line count, the evaluation does not
                self.evaluate()
                self.attention.record(
                    self.model, self.step, self.val_source.ids, decoder_start_id(self.val_source.specials)
                )
                self.keep_weights()  # before `latest`, which thus stays the newest checkpoint of this step
            if evaluated or self.step % tc.checkpoint_interval == 0 or last:
                self.checkpoint()
            if evaluated or self.metrics.due():
                self.check_lease()
                self.metrics.flush()
                self.ws.update_run(self.run_id, step=self.step)
            if evaluated:
                speed.restart()  # a new window after the evaluation: its time is not training

        self.checkpoint()  # a no-op unless resumed at max_iters
        self.metrics.flush()
        self.status(
            "finished",
            f"finished {plural(self.step, 'step')}"
            + (f"; best validation loss {self.best_val_loss:.4f}" if self.best_val_loss is not None else ""),
        )
        return "finished"

    def log_train(self, loss: float, grad_norm: float, lr: float, tokens_per_sec: float) -> None:
        """A training row of the metrics (written in the next batch) and its Metrics event."""
        row = {
            "step": self.step,
            "split": "train",
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens_per_sec": tokens_per_sec,
            "elapsed_s": self.elapsed(),
        }
        self.metrics.add(row)
        self.emit(ev.Metrics(**{k: v for k, v in row.items() if k != "split"}, eta_s=self.eta()))

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One optimizer step over gradient_accumulation_steps micro-batches of the objective; returns the loss and
        the gradient norm (tensors) and the tokens the model read."""
        tc = self.tc
        accum = tc.gradient_accumulation_steps
        total = torch.zeros((), device=self.device)
        n_tokens = 0
        for _ in range(accum):
            batch = self.objective.batch(self.train_source, tc.batch_size, self.data_gen, self.device)
            n_tokens += batch.n_tokens
            with autocast_context(self.device, self.amp_dtype):
                out = self.objective.loss(self.model, batch, tc.label_smoothing)
                loss = out.loss / accum  # gradients of the micro-batches add up to the mean's gradient
            total += out.reported.detach() / accum
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        # With clipping off, an infinite limit still returns the norm (the gradients are scaled by exactly 1).
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), tc.grad_clip if tc.grad_clip > 0 else float("inf")
        )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, grad_norm, n_tokens

    @torch.no_grad()
    def evaluate(self) -> None:
        self.model.eval()
        losses, metrics = {}, {}
        for split, source in (("train", self.train_source), ("val", self.val_source)):
            losses[split], stats = self.evaluate_split(split, source)
            metrics.update(stats)
        self.model.train()
        train_loss, val_loss = losses["train"], losses["val"]
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
        self.last_val = (self.step, val_loss)
        elapsed = self.elapsed()
        self.metrics.add(
            {
                "step": self.step,
                "split": "val",
                "loss": val_loss,
                "lr": None,
                "grad_norm": None,
                "tokens_per_sec": None,
                "elapsed_s": elapsed,
                "metrics": metrics,
            }
        )
        self.ws.update_run(self.run_id, best_val_loss=self.best_val_loss)
        self.emit(
            ev.Evaluation(step=self.step, train_loss=train_loss, val_loss=val_loss, elapsed_s=elapsed, metrics=metrics)
        )

    def evaluate_split(self, split: str, source) -> tuple[float, dict[str, float]]:
        """The mean loss over eval_iters fixed batches of `source`, and the objective's metrics over them."""
        tc = self.tc
        # The same batches at every evaluation, so the curve shows learning only.
        gen = torch.Generator().manual_seed(tc.seed + _EVAL_SEED_OFFSET[split])
        total = torch.zeros((), device=self.device)
        n_batches = 0
        sums: dict[str, list[torch.Tensor]] = {}
        for batch in self.objective.eval_batches(source, tc.batch_size, tc.eval_iters, gen, self.device):
            with autocast_context(self.device, self.amp_dtype):
                out = self.objective.loss(self.model, batch, 0.0)
            total += out.reported.float()
            n_batches += 1
            for key, (part, count) in out.stats.items():
                zero = torch.zeros((), device=self.device)
                acc = sums.setdefault(key, [zero, zero])
                acc[0] = acc[0] + part.float()  # a count or a matrix (classification's confusion)
                acc[1] = acc[1] + count.float()
        metrics = metric_values(split, {k: (s.tolist(), c.item()) for k, (s, c) in sums.items()})
        metrics.update({f"{split}_{k}": v for k, v in self.objective.eval_extras(split).items()})
        return (total / max(1, n_batches)).item(), metrics

    def diverged(self, verdict: Verdict) -> str:
        """train.on_divergence (engine/health.py): "go on" (a spike, ignored), "rolled back" to the last good
        checkpoint (the advice applied by the CLI, or offered to the window while paused), or "stopped" there."""
        self.rollbacks += 1
        cuda_bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        advice = advise(self.tc, verdict, self.rollbacks, cuda_bf16)
        if self.tc.on_divergence == "ignore" and verdict.what == "spike":
            self.emit(ev.Notice("warning", f"{advice.text} (train.on_divergence is ignore: training goes on)"))
            return "go on"
        if resumable_checkpoint(self.ws, self.run_id) is None:
            raise TrainingError(f"{advice.text} There is no checkpoint to go back to yet: start a new run with that.")
        if self.tc.on_divergence == "ignore":
            raise TrainingError(f"{advice.text} The last good checkpoint is kept.")
        self.restore()
        self.metrics.rows = [r for r in self.metrics.rows if r["step"] <= self.step]
        self.guard.forget_after(self.step)
        message = f"{advice.text} Went back to step {self.step:,}, the last good checkpoint."
        if self.tc.on_divergence == "stop" or self.rollbacks > MAX_ROLLBACKS:
            self.status("stopped", message)
            return "stopped"
        if self.control.auto_apply_advice:
            self.apply_advice(advice)
            self.emit(ev.Notice("warning", f"{message} Applied the suggestion; training goes on."))
            return "rolled back"
        self.control.request_pause()
        self.wait_paused(message, {**advice.as_dict(self.step), "text": message})
        if self.control.stop_requested:
            return "rolled back"  # the loop's next turn stops at this good step
        if self.control.take_apply_advice():
            self.apply_advice(advice)
            self.status("training", f"resumed at step {self.step:,} with {advice.change_words}")
        else:
            self.status("training", f"resumed at step {self.step:,} as it was")
        return "rolled back"

    def apply_advice(self, advice) -> None:
        cfg = RunConfig.from_dict(applied(self.cfg.to_dict(), advice.changes))
        self.cfg, self.tc = cfg, cfg.train
        self.ws.update_run(self.run_id, config=cfg.to_dict())
        self.amp_dtype = autocast_dtype(self.device, self.tc.dtype)
        if (self.amp_dtype == torch.float16) != (self.scaler is not None):
            self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.guard.check_grads = self.scaler is None

    def pause(self) -> None:
        # The checkpoint comes first, so that once "paused" is seen the playground can load this very step.
        self.metrics.flush()
        self.checkpoint()
        self.wait_paused(f"paused at step {self.step:,}")
        if not self.control.stop_requested:
            self.status("training", f"resumed at step {self.step:,}")

    def wait_paused(self, message: str, advice: dict | None = None) -> None:
        self.status("paused", message, advice)
        t0 = time.perf_counter()
        while self.control.paused and not self.control.stop_requested:
            self.control.wait_while_paused(0.1)
        self.paused_s += time.perf_counter() - t0

    def stop(self) -> str:
        self.status("stopping", f"stopping at step {self.step:,}")
        self.metrics.flush()
        self.checkpoint()
        self.status("stopped", f"stopped at step {self.step:,}")
        return "stopped"

    def finish_abruptly(self, state: str, message: str) -> None:
        """Report a failure (or an interrupt) as well as the broken state allows; never raises. A run another
        process took over is only told (its row is the new owner's)."""
        if self.keeper.lost:
            self.emit(ev.Status(state=state, step=self.step, max_iters=self.tc.max_iters, message=message))
            return
        for action in (self.metrics.flush, lambda: self.status(state, message)):
            try:
                action()
            except Exception:
                log.error("could not record the end of run %s", self.run_id, exc_info=True)
