"""`studio-engine`'s commands that load torch: train (with its lines of progress), generate, attention and
checkpoints. Mistakes are found before torch is imported where they can be (seconds), config mistakes before
the workspace is opened.
"""

from __future__ import annotations

import os
import signal
import threading
import sys
from pathlib import Path

from engine import training_events as ev
from engine.cli_commands import PROG, Progress, UsageError, err, loss_text, open_workspace, row_ref, when
from engine.config import ConfigError, RunConfig, preset, unknown_prompt_message
from engine.format import human_count, human_duration, lower_first
from engine.objectives.catalog import METRIC_LABELS


def _parent_ref(assignments: list[str]) -> str | None:
    """The run `--set train.init_from.run=R` (or `train.init_from=R`) names, or None."""
    for item in assignments:
        key, _, value = item.partition("=")
        if key.strip() in ("train.init_from.run", "train.init_from") and value.strip():
            return value.strip()
    return None


def _load_config(args, open_ws=None) -> RunConfig:
    """The config a command trains or shows: CONFIG, --preset, or (for train with --set train.init_from.run=R
    alone) run R's own config, so fine-tuning a run needs no file; then the --set overrides."""
    if args.config and args.preset:
        raise UsageError("give a CONFIG file or --preset, not both")
    if args.preset:
        cfg = preset(args.preset)
    elif args.config == "-":
        cfg = RunConfig.from_json(sys.stdin.read())
    elif args.config:
        path = Path(args.config).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileNotFoundError(2, "no such config file", str(path)) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not a text (JSON) file") from None
        cfg = RunConfig.from_json(text)
    elif open_ws is not None and (ref := _parent_ref(args.set or [])) is not None:
        parent = open_ws().run(ref)
        cfg = RunConfig.from_dict(parent.get("config") or {})
        cfg.train.init_from = type(cfg.train.init_from)()
    else:
        raise UsageError("give a CONFIG.json file (or - for stdin), --preset NAME, or --resume RUN")
    cfg = cfg.with_overrides(args.set or [])
    try:
        cfg.validate()
    except ConfigError as e:
        if str(e).startswith("data.dataset"):
            raise ConfigError(f"{e}; pass --set data.dataset=ID (see {PROG} datasets)") from None
        raise
    return cfg


class _TrainPrinter:
    """Training events as lines: one per evaluation on stdout, the rest on stderr."""

    def __init__(self):
        self.tokens_per_sec = None
        self.progress = Progress()
        self.tty = sys.stderr.isatty()
        self.last_state = None
        self.confusion = None  # the last evaluation's, for a classification run

    def __call__(self, event: ev.Event) -> None:
        match event:
            case ev.Progress():
                self.progress(event.fraction, event.message)
            case ev.Metrics():
                self.tokens_per_sec = event.tokens_per_sec
                if self.tty:
                    sys.stderr.write(
                        f"\rstep {event.step}: loss {event.loss:.4f}, lr {event.lr:.2e}, "
                        f"{human_count(event.tokens_per_sec or 0)} tok/s, "
                        f"ETA {human_duration(event.eta_s)}   "
                    )
                    sys.stderr.flush()
            case ev.Evaluation():
                self.confusion = event.metrics.get("val_confusion", self.confusion)
                self.clear_line()
                speed = f" ({human_count(self.tokens_per_sec)} tok/s)" if self.tokens_per_sec else ""
                print(
                    f"step {event.step}: train loss {event.train_loss:.4f}, val loss {event.val_loss:.4f}{speed}"
                    + "".join(f", {part}" for part in metric_words(event.metrics, "val")),
                    flush=True,
                )
                for line in sample_lines(event.metrics.get("val_samples") or []):
                    print(line, flush=True)
            case ev.Notice():
                self.clear_line()
                err(f"{'warning: ' if event.level == 'warning' else ''}{event.message}")
            case ev.Status():
                self.status(event.state, event.message)

    def clear_line(self) -> None:
        """Wipe the step line a terminal shows, so the next line starts clean."""
        if self.tty:
            sys.stderr.write("\r" + " " * 79 + "\r")

    def status(self, state: str, message: str) -> None:
        if state == self.last_state and state not in ("training",):
            return
        self.last_state = state
        if state == "failed":
            err(f"error: training failed: {message}")
        elif state in ("training", "paused", "stopped", "finished"):
            err(f"{state}: {message}")


def metric_words(metrics: dict, split: str) -> list[str]:
    """A split's objective metrics in words, in the catalog's order: "val perplexity 11.5", "val masked-token
    accuracy 41.2 %". They follow the speed on the evaluation line, so the line of a run without them, and every
    reader of "val loss X", stays as it was."""
    parts = []
    for key, label in METRIC_LABELS.items():
        value = metrics.get(f"{split}_{key}")
        if value is None:
            continue
        if key == "perplexity":
            shown = _perplexity_text(value)
        elif key in ("kl", "ref_kl"):
            shown = f"{value:.4f}"
        elif key == "reward":
            shown = f"{value:.3f}"
        elif key == "entropy":
            shown = f"{value:.3f} nats"
        elif key == "macro_f1":
            shown = f"{value:.3f}"
        else:
            shown = f"{100 * value:.1f} %"
        parts.append(f"{split} {lower_first(label)} {shown}")
    return parts


def sample_lines(samples: list[dict], n: int = 2) -> list[str]:
    """A REINFORCE evaluation's first samples: '  reward 1.00: "the prompt" → " what it wrote"'."""
    return [f"  reward {s['reward']:.2f}: {_quoted(s['prompt'])} → {_quoted(s['text'])}" for s in samples[:n]]


def _quoted(text: str) -> str:
    return '"' + text.replace("\n", "⏎") + '"'


def confusion_table(matrix: list[list[int]], classes: list[str]) -> str:
    """The validation confusion matrix as text: a row per true class, a column per predicted one."""
    names = [str(c) for c in classes] or [str(i) for i in range(len(matrix))]
    corner = "true \\ predicted"
    first = max(len(corner), *(len(n) for n in names))
    width = max(*(len(n) for n in names), *(len(f"{v:,}") for row in matrix for v in row))
    head = corner.ljust(first) + "".join(f"  {n:>{width}}" for n in names)
    rows = [names[i].ljust(first) + "".join(f"  {v:>{width},}" for v in row) for i, row in enumerate(matrix)]
    return "\n".join(["confusion matrix on the validation split:", head, *rows])


def _perplexity_text(value: float) -> str:
    """Three significant digits below 1,000 (5.12, 11.5, 312), whole numbers with separators above."""
    return f"{value:.3g}" if value < 1000 else f"{value:,.0f}"


def _run_with_checkpoint(ws, run_ref: str, resumable: bool = False) -> dict:
    run = ws.run(row_ref(run_ref))
    rows = ws.checkpoints(run["id"])
    if resumable:  # weights-only checkpoints (step-N) cannot resume a run; engine.checkpoint.resumable_checkpoint
        rows = [r for r in rows if Path(r["path"]).name == "latest.json"]
    if not rows:
        from engine.checkpoint import CheckpointError

        raise CheckpointError(
            f"run {run['id']} ({run['name']}) has no checkpoint {'to resume from' if resumable else 'yet'}"
        )
    return run


def cmd_train(args) -> int:
    # Mistakes are found before torch is imported (seconds), and config mistakes before the workspace is opened.
    if args.resume is not None:
        if args.config or args.preset or args.set:
            raise UsageError("--resume continues a run with its own config: leave out CONFIG, --preset and --set")
        cfg = None
    else:
        opened: list = []  # the workspace, opened once: for a parent's config first, else after the config

        def workspace():
            if not opened:
                opened.append(open_workspace(args))
            return opened[0]

        cfg = _load_config(args, workspace)
    ws = opened[0] if cfg is not None and opened else open_workspace(args)
    if cfg is None:
        resumed = _run_with_checkpoint(ws, args.resume, resumable=True)
    else:
        ws.dataset(cfg.data.dataset)

    from engine.run_setup import prepare_run
    from engine.train import Control

    printer = _TrainPrinter()
    control = Control()

    interrupts = []

    def on_signal(signum, frame):
        interrupts.append(signum)
        if len(interrupts) > 1:
            # Checkpoints and rows are written atomically, so quitting mid-step loses only the step itself.
            err("\nquitting now: the last checkpoint is kept, and Resume continues from it")
            os._exit(128 + signum)
        control.request_stop()
        err("\nstopping after this step (a checkpoint will be written; Ctrl-C again to quit at once)")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if cfg is None:
            run = resumed
        else:
            # A Ctrl-C during preparation cancels the tokenizer training; after it, the run stops at step 0.
            run = prepare_run(ws, cfg, args.name, on_event=printer, control=control)
        err(
            f"run {run['id']} ({run['name']}): {'resuming' if cfg is None else 'training'} to step {run['max_iters']:,}"
        )
        state = _train_in_thread(ws.path, run["id"], printer, control, resume=cfg is None)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if printer.confusion:
        classes = ws.run(run["id"])["config"]["objective"]["classes"]
        print(confusion_table(printer.confusion, classes), flush=True)
    print(run["id"], flush=True)
    return 1 if state == "failed" else 0


def _train_in_thread(path, run_id: int, printer, control, resume: bool) -> str:
    """run_training in a thread of its own: Python runs signal handlers only in the main thread and between
    bytecodes, so a main thread that only waits answers Ctrl-C and SIGTERM at once, even inside a step that
    takes minutes. The thread opens its own Workspace (a sqlite3 connection belongs to its thread)."""
    from engine.store import Workspace
    from engine.train import run_training

    outcome: list = []

    def work() -> None:
        try:
            with Workspace(path) as ws:
                outcome.append(run_training(ws, run_id, on_event=printer, control=control, resume=resume))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=work, name="training", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.1)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def cmd_generate(args) -> int:
    if args.max_new_tokens < 0:
        raise UsageError("--max-new-tokens cannot be negative")
    from engine.generate import check_settings

    check_settings(
        mode=args.mode,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        beam_width=args.beam_width,
        length_penalty=args.length_penalty,
    )
    ws = open_workspace(args)
    run = _run_with_checkpoint(ws, args.run)
    from engine.run_generation import generate_text, load_model_for_run

    # Fails before the prompt is echoed; the model stays cached for generate_text.
    load_model_for_run(ws, run["id"], args.device, args.checkpoint)
    # An encoder-decoder reads the prompt and writes its own text: on a line of its own, not as a continuation.
    seq2seq = ((run.get("config") or {}).get("model") or {}).get("arch") == "encoder-decoder"
    stop = []
    old = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    out = sys.stdout

    def on_token(token_id: int, piece: str) -> None:
        out.write(piece)
        out.flush()

    try:
        out.write(args.prompt + ("\n" if seq2seq else ""))
        if args.mode == "beam":
            out.flush()
            err(f"searching with {args.beam_width} beams; the text comes when the search is done")
        result = generate_text(
            ws,
            run["id"],
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            mode=args.mode,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
            beam_width=args.beam_width,
            length_penalty=args.length_penalty,
            checkpoint=args.checkpoint,
            on_token=on_token,
            should_stop=lambda: bool(stop),
            device=args.device,
        )
    finally:
        signal.signal(signal.SIGINT, old)
    out.write("\n")
    out.flush()
    unknown = unknown_prompt_message(result.get("unknown_chars") or [])
    if unknown:
        err(f"warning: {unknown}")
    err(
        f"{result['n_tokens']} tokens, {result['tokens_per_sec']:.0f} tokens/s, checkpoint {result['checkpoint']} "
        f"(step {result['step']})"
        + (" (stopped)" if result["stopped"] else "")
        + (" (the model ended the text)" if result.get("ended") else "")
    )
    return 0


def cmd_attention(args) -> int:
    if args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")
    out = Path(args.out).expanduser()
    if out.suffix != ".npz":
        raise UsageError("--out must name an .npz file")
    if not out.parent.is_dir():
        raise FileNotFoundError(2, "no such folder", str(out.parent))
    ws = open_workspace(args)
    run = _run_with_checkpoint(ws, args.run)
    from engine.attention_probes import attention_extra_for_text, attention_for_text, save_npz
    from engine.run_generation import load_model_for_run

    model, tok, meta = load_model_for_run(ws, run["id"], args.device, args.checkpoint)
    attn, tokens = attention_for_text(model, tok, args.text, max_tokens=args.max_tokens)
    # An encoder-decoder's decoder self-attention and cross-attention go beside its encoder's (empty otherwise).
    extra = attention_extra_for_text(model, tok, args.text, max_tokens=args.max_tokens)
    path = save_npz(out, attn, tokens, extra=extra)
    L, H, T, _ = attn.shape
    err(
        f"attention of {T} tokens, {L} layer(s) x {H} head(s), checkpoint {meta['checkpoint']} "
        f"(step {meta.get('step')}); arrays: attn [layer, head, query, key], tokens"
    )
    print(path)
    return 0


def cmd_checkpoints(args) -> int:
    ws = open_workspace(args)
    from engine.checkpoint import list_checkpoints

    rows = list_checkpoints(ws, row_ref(args.run))
    if not rows:
        err("no checkpoints yet")
    for r in rows:
        print(f"{r['name']:<16}  step {r['step']:>8,}  val {loss_text(r['val_loss'])}  {when(r['created'])}")
    return 0
