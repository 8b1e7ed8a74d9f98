"""The training loop: nanoGPT's train.py as plain functions that report events and obey a Control.

Everything a run needs is in the workspace: its RunConfig (the run row), its token memmaps (the tokenizer), its
checkpoints. Events are plain dicts handed to `on_event(kind, payload)`; the engine worker turns them into
protocol messages and the CLI into lines of text.

What a run keeps in run_dir (workspace/runs/<id>/):
    checkpoints/latest.*             the resumable checkpoint: weights, optimizer, RNG states (rewritten)
    checkpoints/step-NNNNNNNN.*      weights only, at step 0 and at each evaluation, for comparing steps in the
                                     playground; at most train.keep_checkpoints (0: none), evenly spaced (every
                                     evaluation, then every 2nd, 4th, ... as the run grows) and the newest
    attention/step-NNNNNNNN.npz      attention snapshots of the probe texts at step 0 and at each evaluation
                                     (train.probe_attention), see engine/attention_probes.py
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

import base64
import logging
import math
import re
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engine.checkpoint import (CheckpointError, load_checkpoint, read_checkpoint_meta, rng_state, save_checkpoint,
                               set_rng_state)
from engine.config import ConfigError, RunConfig, TrainConfig, human_count, plural, unknown_share_warning
from engine.device import autocast_context, autocast_dtype, device_description, pick_device
from engine.model import GPT

# Tracebacks go here: to stderr in the worker (its log file) through logging's last-resort handler; the CLI
# silences this logger so a user sees one line, not a traceback.
log = logging.getLogger(__name__)
EventFn = Callable[[str, dict], None]
CHECKPOINT_NAME = "latest"
ATTENTION_DIR = "attention"
_KEPT_NAME = re.compile(r"step-(\d+)")
METRICS_FLUSH_S = 1.0
# Seeds of the generators that pick evaluation windows, offset from train.seed so evaluation never draws from
# the training stream, and fixed, so every evaluation scores the same windows and the curve shows learning only.
_EVAL_SEED_OFFSET = {"train": 1_000_003, "val": 2_000_003}


class TrainingError(Exception):
    """Training cannot go on for a reason a user can act on; the message says what to change."""


# ------------------------------------------------------------------------------------------------- control

class Control:
    """Stop / pause / resume requests from another thread, read by the loop between optimizer steps."""

    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    def request_pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def request_resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = 0.1) -> None:
        """Block while paused, at most `timeout` seconds (None: until resumed); returns at once on stop."""
        self._running.wait(timeout)


# ------------------------------------------------------------------------------------------------ schedule

def get_lr(it: int, tc: TrainConfig) -> float:
    """Learning rate of optimizer step `it` (0-based): linear warm-up, cosine decay to min_lr, then min_lr."""
    if it < tc.warmup_iters:
        return tc.learning_rate * (it + 1) / (tc.warmup_iters + 1)
    if it > tc.lr_decay_iters or tc.lr_decay_iters <= tc.warmup_iters:
        return tc.min_lr
    ratio = (it - tc.warmup_iters) / (tc.lr_decay_iters - tc.warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 at the end of warm-up, 0 at lr_decay_iters
    return tc.min_lr + coeff * (tc.learning_rate - tc.min_lr)


# ---------------------------------------------------------------------------------------------------- data

class TokenData:
    """One split's token ids, read from its .bin file through a memmap."""

    def __init__(self, path, dtype: str):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        size = self.path.stat().st_size if self.path.is_file() else 0
        self.n_tokens = size // self.dtype.itemsize

    def array(self) -> np.ndarray:
        if self.n_tokens == 0:
            return np.zeros(0, dtype=self.dtype)  # np.memmap refuses an empty file
        # A fresh memmap per batch, as nanoGPT does: a long-lived one lets the process's memory grow.
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.n_tokens,))


def get_batch(data: TokenData, block_size: int, batch_size: int, generator: torch.Generator,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """batch_size random windows of block_size + 1 tokens: inputs x and next-token targets y, each (B, T)."""
    arr = data.array()
    ix = torch.randint(len(arr) - block_size, (batch_size,), generator=generator).tolist()
    x = torch.from_numpy(np.stack([arr[i:i + block_size] for i in ix]).astype(np.int64))  # (B, T)
    y = torch.from_numpy(np.stack([arr[i + 1:i + 1 + block_size] for i in ix]).astype(np.int64))  # (B, T)
    if device.type == "cuda":
        # Pinned memory lets the copy overlap with the GPU's work on the previous batch.
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def _generator_state(g: torch.Generator) -> str:
    return base64.b64encode(g.get_state().numpy().tobytes()).decode("ascii")


def _set_generator_state(g: torch.Generator, s: str) -> None:
    g.set_state(torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8))


# ------------------------------------------------------------------------------------------------ preparing

def check_device(cfg: RunConfig) -> None:
    """ConfigError when train.device / train.dtype cannot be had on this machine (cuda without a GPU, ...)."""
    try:
        autocast_dtype(pick_device(cfg.train.device), cfg.train.dtype)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"Device / Precision: {e}", "train.device", also=("train.dtype",)) from None


def prepare_run(ws, cfg: RunConfig, name: str | None = None, *, on_event: EventFn | None = None,
                control: Control | None = None) -> dict:
    """Check the config, find its dataset, find or train its tokenizer, and create the run row (returned).

    Raises ConfigError (before anything is written) for an impossible config, and WorkspaceError /
    TokenizerError for a missing dataset or tokenizer. The stored config names the dataset and tokenizer by id.
    """
    emit = on_event or (lambda kind, payload: None)
    cfg = cfg.copy().validate()
    check_device(cfg)
    ds = ws.dataset(cfg.data.dataset)
    tcfg = cfg.tokenizer
    need = cfg.model.block_size + 1
    # A character is at most one char token or four byte-level tokens, so a text this short is too short
    # whichever tokenizer comes; saying so now spares training a tokenizer for nothing.
    if (ds.get("train_chars") or 0) * 4 < need:
        raise ConfigError(_too_short(cfg, ds, f"{ds.get('train_chars') or 0:,} characters"), "model.block_size")
    chosen = tcfg.tokenizer not in (None, "")
    if chosen:
        tok = ws.tokenizer(tcfg.tokenizer)
        if tok["dataset_id"] != ds["id"]:
            raise ConfigError(f"the vocabulary {tok['name']!r} was trained on another dataset than "
                              f"{ds['name']!r}; choose a vocabulary of this dataset or let one be trained",
                              "tokenizer.tokenizer", also=("data.dataset",))
    else:
        def progress(fraction: float, message: str = "") -> None:
            emit("progress", {"fraction": float(fraction), "message": message})
        cancelled = (lambda: control.stop_requested) if control is not None else (lambda: False)
        tok = ws.find_or_train_tokenizer(ds["id"], tcfg.kind, tcfg.vocab_size, progress=progress,
                                         cancelled=cancelled)
    files = ws.token_files(tok["id"])
    n_train = TokenData(files["train"], files["dtype"]).n_tokens
    if n_train < need:
        raise ConfigError(_too_short(cfg, ds, f"{n_train:,} tokens"), "model.block_size")
    _report_vocabulary(emit, tok, ds, trained_here=not chosen)
    cfg.data.dataset = ds["id"]
    # The stored config describes the vocabulary the run really uses (not the size asked of a new one).
    cfg.tokenizer.tokenizer = tok["id"]
    cfg.tokenizer.kind = tok.get("kind", cfg.tokenizer.kind)
    cfg.tokenizer.vocab_size = int(tok.get("vocab_size") or cfg.tokenizer.vocab_size)
    m = cfg.model
    name = name or f"{ds['name']} {m.n_layer}L-{m.n_head}H-{m.n_embd}"
    return ws.create_run(name, cfg.to_dict(), ds["id"], tok["id"])


def _report_vocabulary(emit: EventFn, tok: dict, ds: dict, trained_here: bool) -> None:
    """Warn (a "warning" event: the studio's status bar, the CLI's stderr) when the run's vocabulary reads much
    of the text as [UNK]: the model would learn to write [UNK], with a validation loss that looks good."""
    warning = unknown_share_warning(tok.get("unk_share"), ds["name"], tok.get("unk_examples"))
    if warning:
        emit("warning", {"message": f"vocabulary {tok['name']!r}: {warning}"})
    elif trained_here:
        emit("info", {"message": f"trained the vocabulary {tok['name']!r} ({tok['vocab_size']:,} tokens) "
                                 f"for this run"})


def _too_short(cfg: RunConfig, ds: dict, size: str) -> str:
    return (f"Context length ({cfg.model.block_size:,}) is too long for dataset {ds['name']!r}: its training text "
            f"has {size}, fewer than the context length + 1; choose a shorter context length or import more text")


# ------------------------------------------------------------------------------------------------- training

def run_training(ws, run_id: int, *, on_event: EventFn, control: Control | None = None,
                 resume: bool = False) -> str:
    """Train run `run_id` to train.max_iters (from its latest checkpoint when `resume`).

    Returns the final state: "finished", "stopped" or "failed". A failure never raises: it is reported as a
    "failed" status with a one-line message (the traceback goes to stderr). An unknown run, or resume without a
    checkpoint, raises WorkspaceError / CheckpointError before anything changes.
    """
    control = control or Control()
    run = ws.run(run_id)
    if resume and resumable_checkpoint(ws, run["id"]) is None:
        raise CheckpointError(f"run {run['id']} ({run['name']}) has no checkpoint to resume from")
    training = _Training(ws, run, on_event, control, resume)
    try:
        training.setup(resume)
        return training.loop()
    except KeyboardInterrupt:
        training.finish_abruptly("stopped", "interrupted")
        raise
    except Exception as e:
        log.error("training run %s failed", run_id, exc_info=True)
        training.finish_abruptly("failed", readable_error(e))
        return "failed"
    finally:
        training.release()


def readable_error(e: BaseException) -> str:
    """One line a user can act on, for an exception raised while training."""
    text = str(e).strip()
    if isinstance(e, torch.cuda.OutOfMemoryError) or ("out of memory" in text and "CUDA" in text):
        return "out of GPU memory: reduce batch_size or block_size (or the model size)"
    if isinstance(e, MemoryError) or "can't allocate memory" in text:
        return "out of memory: reduce batch_size or block_size (or the model size)"
    first = text.splitlines()[0] if text else ""
    if isinstance(e, (ConfigError, TrainingError, CheckpointError)) or type(e).__name__ in (
            "WorkspaceError", "TokenizerError", "DataError"):
        return first or type(e).__name__
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


class _MetricsBuffer:
    """Metric rows on their way to SQLite, written in batches at least every METRICS_FLUSH_S."""

    def __init__(self, ws, run_id: int):
        self.ws = ws
        self.run_id = run_id
        self.rows: list[dict] = []
        self.last_flush = time.monotonic()

    def add(self, row: dict) -> None:
        self.rows.append(row)

    def due(self) -> bool:
        return time.monotonic() - self.last_flush >= METRICS_FLUSH_S

    def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            self.ws.add_metrics(self.run_id, rows)
        self.last_flush = time.monotonic()


class _Training:
    """The state of one training session of a run; `loop` runs it."""

    def __init__(self, ws, run: dict, on_event: EventFn, control: Control, resume: bool):
        self.ws = ws
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
        self.elapsed_before = 0.0          # training seconds of earlier sessions (resume)
        self.session_start: float | None = None
        self.session_start_step = 0
        self.paused_s = 0.0
        self.device_desc = ""
        self.note = ""
        self.metrics = _MetricsBuffer(ws, self.run_id)
        self.model = self.optimizer = self.scaler = None
        self.run_dir = Path(ws.run_dir(self.run_id))
        self.probe_texts: list[str] | None = None  # chosen once per session, from the validation text
        self.probing = self.tc.probe_attention
        self._tokenizer = None

    # ---------------------------------------------------------------------------------------------- reporting
    def status(self, state: str, message: str = "") -> None:
        self.emit("status", {"state": state, "step": self.step, "max_iters": self.tc.max_iters,
                             "message": message, "device": self.device_desc})
        self.ws.update_run(self.run_id, status=state, step=self.step, message=message, device=self.device_desc,
                           best_val_loss=self.best_val_loss)

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
        files = self.ws.token_files(self.run["tokenizer_id"])
        self.vocab_size = int(files["vocab_size"])
        self.train_data = TokenData(files["train"], files["dtype"])
        self.val_data = TokenData(files["val"], files["dtype"])
        need = mc.block_size + 1
        if self.train_data.n_tokens < need:
            raise TrainingError(f"the training text has {self.train_data.n_tokens:,} tokens, fewer than "
                                f"block_size + 1 = {need:,}: choose a shorter block_size or import more text")
        if self.val_data.n_tokens < need:
            self.note = (f"the validation text has {self.val_data.n_tokens:,} tokens, fewer than block_size + 1, "
                         f"so the validation loss is measured on training text")
            self.val_data = self.train_data

        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(tc.seed)
        self.model = GPT(mc, self.vocab_size).to(self.device)
        self.model.train()
        self.optimizer = self.model.configure_optimizer(tc.weight_decay, tc.learning_rate, (tc.beta1, tc.beta2),
                                                        self.device.type)
        self.amp_dtype = autocast_dtype(self.device, tc.dtype)
        # Only float16 can underflow gradients; bfloat16 has float32's range and needs no scaler.
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.data_gen = torch.Generator().manual_seed(tc.seed)
        if resume:
            self.restore()

    def restore(self) -> None:
        ck = resumable_checkpoint(self.ws, self.run_id)
        doc = load_checkpoint(ck["path"], self.model, self.optimizer, map_location=self.device)
        meta, extra = doc.get("meta") or {}, doc.get("extra") or {}
        self.step = int(meta["step"])
        self.best_val_loss = meta.get("best_val_loss")
        self.elapsed_before = float(extra.get("elapsed_s", 0.0))
        set_rng_state(extra["rng"])
        _set_generator_state(self.data_gen, extra["data_rng"])
        if self.scaler is not None and extra.get("scaler"):
            self.scaler.load_state_dict(extra["scaler"])
        self.last_ckpt_step = self.step
        # Rows logged after the checkpoint by the interrupted session would be logged again: drop them; so
        # would its attention snapshots and weights-only checkpoints.
        self.ws.delete_metrics(self.run_id, after_step=self.step)
        from engine.attention_probes import delete_snapshots_after
        delete_snapshots_after(self.run_dir / ATTENTION_DIR, self.step)
        _forget_checkpoints(self.ws, self.run_id, [c for c in list_checkpoints(self.ws, self.run_id)
                                                   if c["step"] > self.step and c["name"] != CHECKPOINT_NAME])

    def release(self) -> None:
        on_gpu = getattr(self, "device", None) is not None and self.device.type == "cuda"
        self.model = self.optimizer = self.scaler = None
        if on_gpu:
            torch.cuda.empty_cache()

    # --------------------------------------------------------------------------------------------------- loop
    def loop(self) -> str:
        tc = self.tc
        n_params = self.model.num_params()
        about = f"{human_count(n_params)} parameters on {self.device_desc}"
        self.status("training", f"{about}; {self.note}" if self.note else about)
        tokens_per_step = tc.batch_size * self.mc.block_size * tc.gradient_accumulation_steps
        if self.step == 0:
            # The untrained model, so the attention panel and the playground can show where learning began.
            self.probe()
            self.keep_weights()
        self.session_start = time.perf_counter()
        self.session_start_step = self.step
        # tokens/s measures training, not evaluation: a window of steps since the last log line, and the sums of
        # all windows of this session, which give the last line the run's average speed.
        window_start, window_steps = time.perf_counter(), 0
        trained_s, trained_steps = 0.0, 0

        while self.step < tc.max_iters:
            if self.control.paused and not self.control.stop_requested:
                self.pause()
                window_start, window_steps = time.perf_counter(), 0
            if self.control.stop_requested:
                return self.stop()

            lr = get_lr(self.step, tc)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            loss, grad_norm = self.train_step()
            self.step += 1
            window_steps += 1
            last = self.step == tc.max_iters
            evaluated = self.step % tc.eval_interval == 0 or last

            if self.step % tc.log_interval == 0 or self.step == 1 or last:
                # .item() waits for the GPU, so it happens only on logging steps.
                lossf, normf = loss.item(), grad_norm.item()
                if not math.isfinite(lossf):
                    raise TrainingError(f"the loss became {lossf} at step {self.step}: lower the Learning rate "
                                        f"or Gradient clipping, or use float32 Precision (train.learning_rate, "
                                        f"train.grad_clip, train.dtype)")
                now = time.perf_counter()
                trained_s, trained_steps = trained_s + now - window_start, trained_steps + window_steps
                # The last line is what the run did on the whole, not its last few steps (the figure it ends on).
                steps, seconds = (trained_steps, trained_s) if last else (window_steps, now - window_start)
                row = {"step": self.step, "split": "train", "loss": lossf, "lr": lr, "grad_norm": normf,
                       "tokens_per_sec": steps * tokens_per_step / max(seconds, 1e-9),
                       "elapsed_s": self.elapsed()}
                self.metrics.add(row)
                self.emit("metrics", {**{k: v for k, v in row.items() if k != "split"}, "eta_s": self.eta()})
                window_start, window_steps = now, 0

            if evaluated:
                now = time.perf_counter()     # the steps since the last log line count, the evaluation does not
                trained_s, trained_steps = trained_s + now - window_start, trained_steps + window_steps
                self.evaluate()
                self.probe()
                self.keep_weights()  # before `latest`, which thus stays the newest checkpoint of this step
            if evaluated or self.step % tc.checkpoint_interval == 0 or last:
                self.checkpoint()
            if evaluated or self.metrics.due():
                self.metrics.flush()
                self.ws.update_run(self.run_id, step=self.step)
            if evaluated:
                # A new window after the evaluation: its steps were counted above, its time is not training.
                window_start, window_steps = time.perf_counter(), 0

        self.checkpoint()  # a no-op unless resumed at max_iters
        self.metrics.flush()
        self.status("finished", f"finished {plural(self.step, 'step')}" + (
            f"; best validation loss {self.best_val_loss:.4f}" if self.best_val_loss is not None else ""))
        return "finished"

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over gradient_accumulation_steps micro-batches; returns (loss, grad norm) tensors."""
        tc = self.tc
        accum = tc.gradient_accumulation_steps
        total = torch.zeros((), device=self.device)
        for _ in range(accum):
            x, y = get_batch(self.train_data, self.mc.block_size, tc.batch_size, self.data_gen, self.device)
            with autocast_context(self.device, self.amp_dtype):
                _, loss = self.model(x, y)
                loss = loss / accum  # gradients of the micro-batches add up to the mean's gradient
            total += loss.detach()
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        # With clipping off, an infinite limit still returns the norm (the gradients are scaled by exactly 1).
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(),
                                                   tc.grad_clip if tc.grad_clip > 0 else float("inf"))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, grad_norm

    @torch.no_grad()
    def evaluate(self) -> None:
        tc = self.tc
        self.model.eval()
        losses = {}
        for split, data in (("train", self.train_data), ("val", self.val_data)):
            gen = torch.Generator().manual_seed(tc.seed + _EVAL_SEED_OFFSET[split])
            total = torch.zeros((), device=self.device)
            for _ in range(tc.eval_iters):
                x, y = get_batch(data, self.mc.block_size, tc.batch_size, gen, self.device)
                with autocast_context(self.device, self.amp_dtype):
                    _, loss = self.model(x, y)
                total += loss.float()
            losses[split] = (total / tc.eval_iters).item()
        self.model.train()
        train_loss, val_loss = losses["train"], losses["val"]
        if self.best_val_loss is None or val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
        self.last_val = (self.step, val_loss)
        elapsed = self.elapsed()
        self.metrics.add({"step": self.step, "split": "val", "loss": val_loss, "lr": None, "grad_norm": None,
                          "tokens_per_sec": None, "elapsed_s": elapsed})
        self.ws.update_run(self.run_id, best_val_loss=self.best_val_loss)
        self.emit("eval", {"step": self.step, "train_loss": train_loss, "val_loss": val_loss, "elapsed_s": elapsed})

    def checkpoint_meta(self) -> dict:
        return {"run_id": self.run_id, "step": self.step, "config": self.cfg.to_dict(),
                "vocab_size": self.vocab_size, "tokenizer_id": self.run["tokenizer_id"],
                "best_val_loss": self.best_val_loss}

    def step_val_loss(self) -> float | None:
        return self.last_val[1] if self.last_val and self.last_val[0] == self.step else None

    def checkpoint(self) -> None:
        if self.last_ckpt_step == self.step:
            return
        extra = {"rng": rng_state(), "data_rng": _generator_state(self.data_gen), "elapsed_s": self.elapsed()}
        if self.scaler is not None:
            extra["scaler"] = {k: v for k, v in self.scaler.state_dict().items()}
        info = save_checkpoint(self.run_dir / "checkpoints", CHECKPOINT_NAME, self.model, self.optimizer,
                               meta=self.checkpoint_meta(), extra=extra)
        self.ws.add_checkpoint(self.run_id, self.step, info["path"], info["sha256"], val_loss=self.step_val_loss())
        self.last_ckpt_step = self.step
        self.emit("checkpoint", {"step": self.step, "path": str(info["path"])})

    def keep_weights(self) -> None:
        """A weights-only checkpoint of this step, for the playground's comparisons (train.keep_checkpoints)."""
        keep = self.tc.keep_checkpoints
        if keep <= 0:
            return
        info = save_checkpoint(self.run_dir / "checkpoints", kept_checkpoint_name(self.step), self.model,
                               meta=self.checkpoint_meta())
        # A step done again (resumed from an earlier checkpoint) replaces its file: one row per file.
        self.ws.delete_checkpoints(self.run_id, [info["path"]])
        self.ws.add_checkpoint(self.run_id, self.step, info["path"], info["sha256"], val_loss=self.step_val_loss())
        kept = [c for c in list_checkpoints(self.ws, self.run_id) if _KEPT_NAME.fullmatch(c["name"])]
        _forget_checkpoints(self.ws, self.run_id, _thinned(kept, keep, self.tc.eval_interval))

    def probe(self) -> None:
        """Attention of the probe texts: stored under run_dir/attention and sent as an "attention" event.

        Watching must never end a training: a failure turns the probes off for this session, with a warning.
        """
        if not self.probing:
            return
        from engine import attention_probes as ins
        t0 = time.perf_counter()
        try:
            tok = self.tokenizer()
            if self.probe_texts is None:
                self.probe_texts = ins.default_probe_texts(tok, self.val_data.array())
            snapshot, heads = ins.probe_model(self.model, tok, self.probe_texts)
            meta, blobs = ins.encode_snapshot(snapshot, heads, step=self.step)
            meta.update(source="training", checkpoint=None)
            path = ins.save_snapshot(self.run_dir / ATTENTION_DIR, self.step, meta, blobs)
        except Exception as e:
            log.warning("attention probes of run %s failed", self.run_id, exc_info=True)
            self.probing = False
            self.emit("warning", {"message": f"attention is not recorded for the rest of this session: {e}"})
            return
        self.emit("attention", {"step": self.step, "meta": meta, "blobs": blobs, "path": str(path),
                                "seconds": time.perf_counter() - t0})

    def tokenizer(self):
        if self._tokenizer is None:
            from engine.tokenizer import load_tokenizer
            self._tokenizer = load_tokenizer(self.ws.tokenizer_path(self.run["tokenizer_id"]))
        return self._tokenizer

    def pause(self) -> None:
        # The checkpoint comes first, so that once "paused" is seen the playground can load this very step.
        self.metrics.flush()
        self.checkpoint()
        self.status("paused", f"paused at step {self.step:,}")
        t0 = time.perf_counter()
        while self.control.paused and not self.control.stop_requested:
            self.control.wait_while_paused(0.1)
        self.paused_s += time.perf_counter() - t0
        if not self.control.stop_requested:
            self.status("training", f"resumed at step {self.step:,}")

    def stop(self) -> str:
        self.status("stopping", f"stopping at step {self.step:,}")
        self.metrics.flush()
        self.checkpoint()
        self.status("stopped", f"stopped at step {self.step:,}")
        return "stopped"

    def finish_abruptly(self, state: str, message: str) -> None:
        """Report a failure (or an interrupt) as well as the broken state allows; never raises."""
        for action in (self.metrics.flush,
                       lambda: self.status(state, message)):
            try:
                action()
            except Exception:
                log.error("could not record the end of run %s", self.run_id, exc_info=True)


# ----------------------------------------------------------------------------------------------- checkpoints

def kept_checkpoint_name(step: int) -> str:
    return f"step-{int(step):08d}"


def checkpoint_name(path) -> str:
    """A checkpoint's name: its JSON file's name without ".json" ("latest", "step-00000250")."""
    name = Path(path).name
    return name[:-5] if name.endswith(".json") else name


def list_checkpoints(ws, run_ref) -> list[dict]:
    """The run's checkpoints on disk: [{"name", "step", "val_loss", "path", "created"}], oldest first.

    "latest" (the resumable one) is listed once, at the step it holds now; a file that is gone is left out.
    """
    run_id = ws.run(run_ref)["id"]
    newest: dict[str, dict] = {}
    for row in ws.checkpoints(run_id):  # by step, then id: a later row of one file replaces an earlier one
        newest[row["path"]] = row
    rows = [{"name": checkpoint_name(r["path"]), "step": int(r["step"]), "val_loss": r["val_loss"],
             "path": r["path"], "created": r["created"]} for r in newest.values() if Path(r["path"]).is_file()]
    return sorted(rows, key=lambda r: (r["step"], r["name"] == CHECKPOINT_NAME))


def find_checkpoint(ws, run_ref, name: str | None = None) -> dict:
    """The checkpoint row called `name` (None: the newest checkpoint) of a run; CheckpointError if none."""
    run = ws.run(run_ref)
    if name in (None, ""):
        ck = ws.latest_checkpoint(run["id"])
        if ck is None:
            raise CheckpointError(f"run {run['id']} ({run['name']}) has no checkpoint yet: train it first")
        return ck
    rows = list_checkpoints(ws, run["id"])
    for row in reversed(rows):
        if row["name"] == str(name).strip():
            return row
    names = ", ".join(r["name"] for r in rows) or "none yet"
    raise CheckpointError(f"run {run['id']} ({run['name']}) has no checkpoint {name!r}; it has: {names}")


def resumable_checkpoint(ws, run_id: int) -> dict | None:
    """The newest row of the run's "latest" checkpoint (weights-only checkpoints cannot resume a run)."""
    rows = [r for r in ws.checkpoints(run_id) if checkpoint_name(r["path"]) == CHECKPOINT_NAME]
    return rows[-1] if rows else None


def _thinned(kept: list[dict], keep: int, interval: int) -> list[dict]:
    """Which of `kept` (rows by step, the newest last) to remove so that at most `keep` remain, evenly spaced:
    the newest, and the steps before it at multiples of a stride, the evaluation interval times 1, 2, 4, ...,
    the smallest that fits. The stride only grows as the run does, so nothing removed is wanted later."""
    if not kept:
        return []
    if keep <= 1:
        return kept[:-1]
    newest = kept[-1]["step"]
    stride = max(1, int(interval))
    while -(-newest // stride) + 1 > keep:  # multiples of stride below the newest, and the newest
        stride *= 2
    return [r for r in kept[:-1] if r["step"] % stride]


def _forget_checkpoints(ws, run_id: int, rows: list[dict]) -> None:
    """Delete checkpoints' files (the JSON, their commit point, first) and their rows."""
    for row in rows:
        json_path = Path(row["path"])
        try:
            files = [f["file"] for f in (read_checkpoint_meta(json_path).get("files") or {}).values()]
        except CheckpointError:
            files = [f"{checkpoint_name(json_path)}.safetensors"]
        json_path.unlink(missing_ok=True)
        for f in files:
            (json_path.parent / f).unlink(missing_ok=True)
    ws.delete_checkpoints(run_id, [r["path"] for r in rows])


# ------------------------------------------------------------------------------------------------ generation

_cache_lock = threading.Lock()
_model_cache: dict = {}  # {(checkpoint path, sha256, device): (model, tokenizer, meta)}, the last few used
_MODEL_CACHE_SIZE = 3    # the playground compares two checkpoints; the third is the one training just wrote


def load_model_for_run(ws, run_ref, device="cpu", checkpoint: str | None = None):
    """(model in eval mode, tokenizer, checkpoint meta) from run `run_ref`'s checkpoint called `checkpoint`
    (see list_checkpoints; None: the newest)."""
    from engine.tokenizer import load_tokenizer

    run = ws.run(run_ref)
    ck = find_checkpoint(ws, run["id"], checkpoint)
    device = torch.device(pick_device(device) if isinstance(device, str) else device)
    key = (str(ck["path"]), ck.get("sha256"), str(device))
    with _cache_lock:
        if key in _model_cache:
            _model_cache[key] = _model_cache.pop(key)  # most recently used last
            return _model_cache[key]
    meta = read_checkpoint_meta(ck["path"]).get("meta") or {}
    cfg = RunConfig.from_dict(meta["config"])
    with _cache_lock:
        # Building a model draws its initial weights from the global RNG; a training paused in another thread
        # must continue with the random numbers it would have had.
        state = torch.get_rng_state()
        try:
            model = GPT(cfg.model, int(meta["vocab_size"]))
        finally:
            torch.set_rng_state(state)
    load_checkpoint(ck["path"], model, map_location="cpu")
    model.to(device).eval()
    tok = load_tokenizer(ws.tokenizer_path(meta.get("tokenizer_id", run["tokenizer_id"])))
    meta = {**meta, "checkpoint": checkpoint_name(ck["path"])}
    with _cache_lock:
        _model_cache[key] = (model, tok, meta)
        while len(_model_cache) > _MODEL_CACHE_SIZE:
            _model_cache.pop(next(iter(_model_cache)))
    return model, tok, meta


def _start_ids(tok, prompt: str) -> list[int]:
    if prompt:
        ids = tok.encode(prompt, add_special_tokens=False).ids
        if ids:
            return ids
    ids = tok.encode("\n", add_special_tokens=False).ids
    if len(ids) == 1 and tok.decode(ids) == "\n":
        return ids
    return [0]


class _StreamDecoder:
    """Turns token ids into text pieces that never split a character.

    Byte-level tokens can end in the middle of a UTF-8 character; decoding then gives U+FFFD, so a piece is
    held back until the character is complete. Decoding restarts after each line to keep the work per token small.
    """

    def __init__(self, tok):
        self.tok = tok
        self.ids: list[int] = []
        self.done = 0  # characters of decode(self.ids) already handed out

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tok.decode(self.ids, skip_special_tokens=False)
        if text.endswith("\ufffd"):
            return ""
        piece = text[self.done:]
        self.done = len(text)
        if text.endswith("\n") or len(self.ids) >= 256:
            self.ids, self.done = [], 0
        return piece

    def flush(self) -> str:
        text = self.tok.decode(self.ids, skip_special_tokens=False) if self.ids else ""
        piece = text[self.done:]
        self.ids, self.done = [], 0
        return piece


def _token_texts(tok, ids: list[int]) -> list[str]:
    """Each token's share of the decoded text (empty for a token that ends inside a character)."""
    decoder = _StreamDecoder(tok)
    texts = [decoder.push(i) for i in ids]
    if texts:
        texts[-1] += decoder.flush()
    return texts


def _readable_token(tok, token_id: int) -> str:
    from engine.tokenizer import display_token
    try:
        return display_token(tok, token_id)
    except Exception:  # an id the tokenizer lacks (a model with a larger vocabulary): show the number
        return f"<{token_id}>"


def generate_text(ws, run_ref, prompt: str, *, max_new_tokens: int, mode: str = "sample",
                  temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
                  seed: int | None = None, beam_width: int = 4, length_penalty: float = 1.0,
                  details: bool = False, checkpoint: str | None = None,
                  on_token: Callable[[int, str], None] | None = None,
                  on_step: Callable[[dict], None] | None = None,
                  should_stop: Callable[[], bool] | None = None, device="auto") -> dict:
    """Continue `prompt` with a checkpoint of the run (`checkpoint` a name from list_checkpoints; None: the
    newest), in mode "sample", "greedy" or "beam" (engine/generate.py; beam search stops a beam at the
    end-of-text token and hands its tokens over when the search is done).

    The text ends early ("ended" True) when the model writes the token that ends a document in its training
    data (the tokenizer's eos or sep token; engine.tokenizer.separator_id); that token is not part of the text.

    Returns {"text" (the continuation only), "n_tokens", "tokens_per_sec", "stopped", "ended", "prompt_tokens"
    ([{"id", "text"}] of the prompt the model saw: its last block_size tokens, or the newline it starts from
    when empty), "token_ids", "checkpoint", "step", "unknown_chars" (the prompt's characters that the
    vocabulary lacks, read as [UNK], each once)}.
    on_token(id, piece) is called as text becomes complete (a character split over byte tokens arrives with its
    last token). on_step(record) is called once per token, in order: {"id", "text"} with, when `details`,
    "prob", "entropy" (nats, temperature 1) and "top" ([[readable token, prob], ...] most likely first); the
    texts of all records join to the returned text, a token ending inside a character having text "" (such a
    record waits for the next token, so it can take the rest of the text should the generation end there).
    """
    from engine.generate import stream_steps
    from engine.tokenizer import separator_id, unknown_characters, unknown_id

    model, tok, meta = load_model_for_run(ws, run_ref, device, checkpoint)
    ids = _start_ids(tok, prompt)
    seen = ids[-model.cfg.block_size:]
    prompt_tokens = [{"id": int(i), "text": t} for i, t in zip(seen, _token_texts(tok, seen))]
    # The token that ends each document in the training data: when the model writes it, the text is finished.
    run_row = ws.run(run_ref)
    tok_row = ws.tokenizer(meta.get("tokenizer_id", run_row["tokenizer_id"]))
    eos_id = separator_id(tok, tok_row.get("spec"))
    unknown = unknown_characters(tok, prompt, unknown_id(tok, tok_row.get("spec")))
    steps = stream_steps(model, ids, max_new_tokens=max_new_tokens, mode=mode, temperature=temperature,
                         top_k=top_k, top_p=top_p, seed=seed, beam_width=beam_width,
                         length_penalty=length_penalty, eos_id=eos_id, details=details, should_stop=should_stop)
    decoder = _StreamDecoder(tok)
    pieces: list[str] = []
    token_ids: list[int] = []
    held: dict | None = None  # the record of a token whose text is not complete yet

    def emit(record: dict) -> None:
        if on_step is not None:
            on_step(record)
        if on_token is not None and record["text"]:
            on_token(record["id"], record["text"])

    t0 = time.perf_counter()
    ended = False
    for step in steps:
        if eos_id is not None and step.token == eos_id:
            ended = True
            break
        token_ids.append(step.token)
        piece = decoder.push(step.token)
        pieces.append(piece)
        record = {"id": step.token, "text": piece}
        if step.prob is not None:
            record.update(prob=step.prob, entropy=step.entropy,
                          top=[[_readable_token(tok, i), p] for i, p in step.top])
        if held is not None:
            emit(held)
            held = None
        if piece:
            emit(record)
        else:
            held = record
    tail = decoder.flush()
    pieces.append(tail)
    if held is not None:
        held["text"] += tail
        emit(held)
    dt = time.perf_counter() - t0
    n = len(token_ids)
    return {"text": "".join(pieces), "n_tokens": n, "tokens_per_sec": n / dt if dt > 0 else 0.0,
            "stopped": not ended and n < max_new_tokens and should_stop is not None and bool(should_stop()),
            "ended": ended,
            "prompt_tokens": prompt_tokens, "token_ids": token_ids, "checkpoint": meta.get("checkpoint"),
            "step": meta.get("step"), "unknown_chars": unknown}
