"""`studio-engine`: everything the studio can start, from a terminal.

    studio-engine import PATH [--name N] [--val-fraction F]
    studio-engine tokenizer train --dataset D --kind char|bytebpe --vocab-size V [--name N]
    studio-engine config show [--preset NAME] [--set section.key=value ...]  |  config presets
    studio-engine train CONFIG.json|- [--preset NAME] [--set section.key=value ...] [--name N]  |  train --resume RUN
    studio-engine generate --run R [--checkpoint C] [--prompt P] [--max-new-tokens N] [--mode sample|greedy|beam]
                           [--temperature T] [--top-k K] [--top-p P] [--seed S] [--beam-width W] [--length-penalty L]
    studio-engine attention --run R [--checkpoint C] --text T --out FILE.npz [--max-tokens N]
    studio-engine runs | datasets | tokenizers | checkpoints --run R
    studio-engine runs rename RUN NAME

Output is for people and scripts alike: a command that creates something prints its id as the last line of
stdout; progress goes to stderr; an error is one line `error: ...` on stderr with exit status 2 (usage or
config) or 1 (anything else), never a traceback (set STUDIO_ENGINE_DEBUG=1 to see one).

torch is imported only by the commands that train or generate, so the others answer at once.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from engine import training_events as ev
from engine.config import (DEFAULT_PRESET, PRESETS, ConfigError, RunConfig, human_count, human_duration, preset,
                           unknown_prompt_message)

PROG = "studio-engine"


class UsageError(Exception):
    """Bad command-line usage; exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


# ------------------------------------------------------------------------------------------------ helpers

def _ref(text: str) -> int | str:
    """A command-line reference to a row: digits are an id, anything else a name."""
    text = text.strip()
    return int(text) if text.isdigit() else text


def _workspace(args):
    from engine.store import Workspace
    path = args.workspace or getattr(args, "top_workspace", None) or Workspace.default_path()
    return Workspace(Path(path))


def _err(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


class _Progress:
    """Progress lines on stderr, at most a few a second."""

    def __init__(self):
        self.last_t = 0.0
        self.last_msg = None

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if message == self.last_msg and now - self.last_t < 0.5 and fraction < 1.0:
            return
        self.last_t, self.last_msg = now, message
        pct = f"{100 * fraction:3.0f}% " if fraction >= 0 else ""
        _err(f"{pct}{message}")


def _when(stamp) -> str:
    return str(stamp or "")[:16].replace("T", " ")


def _loss(x) -> str:
    return "—" if x is None else f"{x:.4f}"


# ------------------------------------------------------------------------------------------------ commands

def cmd_import(args) -> int:
    paths = [Path(p).expanduser() for p in args.paths]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(2, "no such file or folder", str(p))
    ws = _workspace(args)
    ds = ws.import_dataset(paths, args.name, args.val_fraction, progress=_Progress(), **_import_options(args))
    print(f"dataset {ds['name']!r}: {ds['n_docs']:,} document(s), {ds['n_chars']:,} characters, "
          f"{ds['n_lines']:,} lines")
    print(f"train {ds['train_chars']:,} characters, validation {ds['val_chars']:,} characters")
    print(ds["id"])
    return 0


_CLEAN_STEPS = {"nfc": ("normalize", "NFC"), "nfkc": ("normalize", "NFKC"), "strip-control": ("strip_control", True),
                "collapse-whitespace": ("collapse_whitespace", True), "lowercase": ("lowercase", True),
                "dedupe-lines": ("dedupe_lines", True), "dedupe-docs": ("dedupe_docs", True)}


def _import_options(args) -> dict:
    """The import flags as Workspace.import_dataset keyword options (only those the user gave)."""
    opts = {k: v for k, v in {"fmt": args.format, "column": args.column, "label_column": args.label_column,
                              "split": args.split, "seed": args.seed, "on_decode_error": args.on_decode_error,
                              "on_bad_record": args.on_bad_record, "include": args.include,
                              "exclude": args.exclude, "doc_unit": args.doc_unit,
                              "delimiter": args.delimiter}.items() if v is not None}
    cleaning: dict = {}
    for step in args.clean or []:
        for name in step.split(","):
            if name.strip() not in _CLEAN_STEPS:
                raise UsageError(f"--clean: unknown step {name!r}; choose from {', '.join(_CLEAN_STEPS)}")
            key, value = _CLEAN_STEPS[name.strip()]
            cleaning[key] = value
    if args.min_chars is not None:
        cleaning["min_chars"] = args.min_chars
    if args.max_chars is not None:
        cleaning["max_chars"] = args.max_chars
    if args.regex is not None:
        cleaning["regex"] = args.regex
        if args.regex_action is not None:
            cleaning["regex_action"] = args.regex_action
    elif args.regex_action is not None:
        raise UsageError("--regex-action needs --regex")
    if cleaning:
        opts["cleaning"] = cleaning
    return opts


def cmd_tokenizer_compare(args) -> int:
    from engine.tokenizer.analysis import compare_tokenizers
    ws = _workspace(args)
    result = compare_tokenizers(ws, [_ref(r) for r in args.tokenizers], text=args.text)
    print(f"{'tokenizer':<32} {'bytes/token':>11} {'tokens/word':>11} {'unk rate':>9} {'coverage':>9}")
    for row in result["rows"]:
        print(f"{str(row['tokenizer'])[:32]:<32} {row['bytes_per_token']:>11.2f} {row['tokens_per_word']:>11.2f} "
              f"{row['unk_rate']:>9.2%} {row['vocab_coverage']:>9.1%}")
        split = row.get("sample_split") or []
        print("    " + " | ".join(str(t) for t in split[:40]))
    return 0


def cmd_tokenizer_export(args) -> int:
    from engine.tokenizer.export import export_tokenizer
    out = export_tokenizer(_workspace(args), _ref(args.tokenizer), Path(args.out).expanduser())
    print(out)
    return 0


def _spec_options(args) -> dict:
    """The tokenizer flags as Workspace.train_tokenizer spec options (only those the user gave)."""
    opts = {k: v for k, v in {"min_frequency": args.min_frequency, "normalizer": args.normalizer,
                              "pre_tokenizer": args.pre_tokenizer}.items() if v is not None}
    specials = {}
    for item in args.special or []:
        role, sep, token = item.partition("=")
        if not sep:
            raise UsageError(f"--special takes ROLE=TOKEN (for example eos=</s>), not {item!r}")
        specials[role.strip()] = token or None
    if specials:
        opts["special_tokens"] = specials
    return opts


def cmd_tokenizer_train(args) -> int:
    if args.vocab_size < 2:
        raise UsageError("--vocab-size must be at least 2")
    ws = _workspace(args)
    tok = ws.train_tokenizer(_ref(args.dataset), args.kind, args.vocab_size, args.name, progress=_Progress(),
                             **_spec_options(args))
    print(f"tokenizer {tok['name']!r}: {tok['kind']}, {tok['vocab_size']:,} tokens")
    print(f"train {tok['train_tokens']:,} tokens, validation {tok['val_tokens']:,} tokens")
    print(tok["id"])
    return 0


def cmd_config_show(args) -> int:
    cfg = preset(args.preset).with_overrides(args.set or [])
    cfg.validate(need_data=False)
    print(cfg.to_json())
    return 0


def cmd_config_presets(args) -> int:
    width = max(map(len, PRESETS))
    for name, d in PRESETS.items():
        print(f"{name:<{width}}  {d.get('description', '')}")
    return 0


def _load_config(args) -> RunConfig:
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
        self.progress = _Progress()
        self.tty = sys.stderr.isatty()
        self.last_state = None

    def __call__(self, event: ev.Event) -> None:
        match event:
            case ev.Progress():
                self.progress(event.fraction, event.message)
            case ev.Metrics():
                self.tokens_per_sec = event.tokens_per_sec
                if self.tty:
                    sys.stderr.write(f"\rstep {event.step}: loss {event.loss:.4f}, lr {event.lr:.2e}, "
                                     f"{human_count(event.tokens_per_sec or 0)} tok/s, "
                                     f"ETA {human_duration(event.eta_s)}   ")
                    sys.stderr.flush()
            case ev.Evaluation():
                self.clear_line()
                speed = f" ({human_count(self.tokens_per_sec)} tok/s)" if self.tokens_per_sec else ""
                print(f"step {event.step}: train loss {event.train_loss:.4f}, val loss {event.val_loss:.4f}{speed}",
                      flush=True)
            case ev.Notice():
                self.clear_line()
                _err(f"{'warning: ' if event.level == 'warning' else ''}{event.message}")
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
            _err(f"error: training failed: {message}")
        elif state in ("training", "paused", "stopped", "finished"):
            _err(f"{state}: {message}")


def _run_with_checkpoint(ws, ref, resumable: bool = False) -> dict:
    run = ws.run(_ref(ref))
    rows = ws.checkpoints(run["id"])
    if resumable:  # weights-only checkpoints (step-N) cannot resume a run; engine.checkpoint.resumable_checkpoint
        rows = [r for r in rows if Path(r["path"]).name == "latest.json"]
    if not rows:
        from engine.checkpoint import CheckpointError
        raise CheckpointError(f"run {run['id']} ({run['name']}) has no checkpoint "
                              f"{'to resume from' if resumable else 'yet'}")
    return run


def cmd_train(args) -> int:
    # Mistakes are found before torch is imported (seconds), and config mistakes before the workspace is opened.
    if args.resume is not None:
        if args.config or args.preset or args.set:
            raise UsageError("--resume continues a run with its own config: leave out CONFIG, --preset and --set")
        cfg = None
    else:
        cfg = _load_config(args)
    ws = _workspace(args)
    if cfg is None:
        resumed = _run_with_checkpoint(ws, args.resume, resumable=True)
    else:
        ws.dataset(cfg.data.dataset)

    from engine.run_setup import prepare_run
    from engine.train import Control, run_training
    printer = _TrainPrinter()
    control = Control()

    interrupts = []

    def on_signal(signum, frame):
        interrupts.append(signum)
        if len(interrupts) > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt
        control.request_stop()
        _err("\nstopping after this step (a checkpoint will be written; Ctrl-C again to abort)")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if cfg is None:
            run = resumed
        else:
            # A Ctrl-C during preparation cancels the tokenizer training; after it, the run stops at step 0.
            run = prepare_run(ws, cfg, args.name, on_event=printer, control=control)
        _err(f"run {run['id']} ({run['name']}): {'resuming' if cfg is None else 'training'} to step "
             f"{run['max_iters']:,}")
        state = run_training(ws, run["id"], on_event=printer, control=control, resume=cfg is None)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    print(run["id"], flush=True)
    return 1 if state == "failed" else 0


def cmd_generate(args) -> int:
    if args.max_new_tokens < 0:
        raise UsageError("--max-new-tokens cannot be negative")
    from engine.generate import check_settings
    check_settings(mode=args.mode, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   beam_width=args.beam_width, length_penalty=args.length_penalty)
    ws = _workspace(args)
    run = _run_with_checkpoint(ws, args.run)
    from engine.run_generation import generate_text, load_model_for_run
    # Fails before the prompt is echoed; the model stays cached for generate_text.
    load_model_for_run(ws, run["id"], args.device, args.checkpoint)
    stop = []
    old = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    out = sys.stdout

    def on_token(token_id: int, piece: str) -> None:
        out.write(piece)
        out.flush()

    try:
        out.write(args.prompt)
        if args.mode == "beam":
            out.flush()
            _err(f"searching with {args.beam_width} beams; the text comes when the search is done")
        result = generate_text(ws, run["id"], args.prompt, max_new_tokens=args.max_new_tokens, mode=args.mode,
                               temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                               beam_width=args.beam_width, length_penalty=args.length_penalty,
                               checkpoint=args.checkpoint, on_token=on_token, should_stop=lambda: bool(stop),
                               device=args.device)
    finally:
        signal.signal(signal.SIGINT, old)
    out.write("\n")
    out.flush()
    unknown = unknown_prompt_message(result.get("unknown_chars") or [])
    if unknown:
        _err(f"warning: {unknown}")
    _err(f"{result['n_tokens']} tokens, {result['tokens_per_sec']:.0f} tokens/s, checkpoint {result['checkpoint']} "
         f"(step {result['step']})" + (" (stopped)" if result["stopped"] else "")
         + (" (the model ended the text)" if result.get("ended") else ""))
    return 0


def cmd_attention(args) -> int:
    if args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1")
    out = Path(args.out).expanduser()
    if out.suffix != ".npz":
        raise UsageError("--out must name an .npz file")
    if not out.parent.is_dir():
        raise FileNotFoundError(2, "no such folder", str(out.parent))
    ws = _workspace(args)
    run = _run_with_checkpoint(ws, args.run)
    from engine.attention_probes import attention_for_text, save_npz
    from engine.run_generation import load_model_for_run
    model, tok, meta = load_model_for_run(ws, run["id"], args.device, args.checkpoint)
    attn, tokens = attention_for_text(model, tok, args.text, max_tokens=args.max_tokens)
    path = save_npz(out, attn, tokens)
    L, H, T, _ = attn.shape
    _err(f"attention of {T} tokens, {L} layer(s) x {H} head(s), checkpoint {meta['checkpoint']} "
         f"(step {meta.get('step')}); arrays: attn [layer, head, query, key], tokens")
    print(path)
    return 0


def cmd_checkpoints(args) -> int:
    ws = _workspace(args)
    from engine.checkpoint import list_checkpoints
    rows = list_checkpoints(ws, _ref(args.run))
    if not rows:
        _err("no checkpoints yet")
    for r in rows:
        print(f"{r['name']:<16}  step {r['step']:>8,}  val {_loss(r['val_loss'])}  {_when(r['created'])}")
    return 0


def cmd_runs(args) -> int:
    rows = _workspace(args).runs()
    if not rows:
        _err("no runs yet")
    for r in rows:
        print(f"{r['id']:>4}  {r['name']}  {r['status']}  step {r['step'] or 0}/{r['max_iters'] or 0}  "
              f"best val {_loss(r['best_val_loss'])}  {_when(r['created'])}")
    return 0


def cmd_runs_rename(args) -> int:
    ws = _workspace(args)
    old = ws.run(_ref(args.run))
    row = ws.rename_run(old["id"], args.name)
    _err(f"renamed run {row['id']} from {old['name']!r} to {row['name']!r}")
    print(row["id"])
    return 0


def cmd_datasets(args) -> int:
    rows = _workspace(args).datasets()
    if not rows:
        _err("no datasets yet")
    for d in rows:
        print(f"{d['id']:>4}  {d['name']}  {d['n_chars']:,} characters (train {d['train_chars']:,}, "
              f"val {d['val_chars']:,})  {_when(d['created'])}")
    return 0


def cmd_delete(args) -> int:
    entry = _workspace(args).delete(args.kind, _ref(args.ref))
    _err(f"moved {entry['kind']} {entry['name']!r} to the trash; `studio-engine restore {entry['id']}` undoes it")
    print(entry["id"])
    return 0


def cmd_restore(args) -> int:
    ws = _workspace(args)
    kind = ws.trash_entry(args.trash_id)["kind"]
    row = ws.restore(args.trash_id)
    _err(f"restored {kind} {row['name']!r}")
    print(row["id"])
    return 0


def cmd_trash(args) -> int:
    ws = _workspace(args)
    if args.empty:
        _err(f"deleted {ws.empty_trash()} item(s) for good")
        return 0
    rows = ws.trash()
    if not rows:
        _err("the trash is empty")
    for r in rows:
        print(f"{r['id']:>4}  {r['kind']:<9}  {r['name']}  (was id {r['item_id']})  deleted {_when(r['deleted'])}")
    return 0


def cmd_tokenizers(args) -> int:
    rows = _workspace(args).tokenizers()
    if not rows:
        _err("no tokenizers yet")
    for t in rows:
        print(f"{t['id']:>4}  {t['name']}  {t['kind']}  {t['vocab_size']:,} tokens  dataset {t['dataset_id']}  "
              f"train {t['train_tokens']:,} / val {t['val_tokens']:,} tokens  {_when(t['created'])}")
    return 0


# ------------------------------------------------------------------------------------------------ parser

_WORKSPACE_HELP = "the workspace folder (default: the studio's own, or $STUDIO_WORKSPACE)"


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--workspace", metavar="DIR", help=_WORKSPACE_HELP)
    ap = _Parser(prog=PROG, description="Train small transformer language models on your own text.")
    # Accepted before the command too (studio-engine --workspace DIR runs); the command's own wins.
    ap.add_argument("--workspace", dest="top_workspace", metavar="DIR", help=argparse.SUPPRESS)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("import", parents=[common], help="import text files or folders as a dataset")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--name")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="the fraction of the text kept for validation (default 0.1)")
    p.add_argument("--format", choices=("txt", "csv", "tsv", "jsonl", "parquet"),
                   help="the input format (default: from the file extension)")
    p.add_argument("--column", help="the text column (CSV/TSV/Parquet) or field (JSONL; dotted paths allowed)")
    p.add_argument("--label-column", help="a label column to keep for later fine-tuning")
    p.add_argument("--split", choices=("tail", "documents"),
                   help="validation = the last part of the text (tail, as nanoGPT) or random documents")
    p.add_argument("--seed", type=int, help="the seed of the document split")
    p.add_argument("--on-decode-error", choices=("error", "latin-1", "skip"),
                   help="a file that is not UTF-8/UTF-16: stop, decode it as Latin-1, or skip it")
    p.add_argument("--on-bad-record", choices=("error", "skip"), help="malformed JSONL/CSV records: stop or skip")
    p.add_argument("--clean", action="append", metavar="STEPS",
                   help="cleaning steps, comma-separated: " + ", ".join(_CLEAN_STEPS))
    p.add_argument("--min-chars", type=int, help="drop documents shorter than this")
    p.add_argument("--max-chars", type=int, help="drop documents longer than this")
    p.add_argument("--regex", help="a regex filter (drops matching lines; see --regex-action)")
    p.add_argument("--regex-action", choices=("drop_lines", "drop_docs", "keep_docs"),
                   help="what --regex does: drop matching lines (default), drop matching documents, or keep only "
                        "matching documents")
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="in folders, import only files matching this pattern (repeatable; default *.txt)")
    p.add_argument("--exclude", action="append", metavar="GLOB", help="in folders, leave out matching files")
    p.add_argument("--doc-unit", choices=("file", "line", "paragraph"),
                   help="one document per text file (default), per non-blank line, or per paragraph")
    p.add_argument("--delimiter", help="the CSV delimiter (default: comma, tab for .tsv)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("tokenizer", help="tokenizer commands")
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="COMMAND", parser_class=_Parser)
    tsub.required = True
    p = tsub.add_parser("train", parents=[common], help="train a tokenizer on a dataset")
    p.add_argument("--dataset", required=True, help="dataset id or name")
    p.add_argument("--kind", choices=("char", "bpe", "bytebpe", "wordpiece", "unigram"), default="char")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--name")
    p.add_argument("--min-frequency", type=int, help="leave out pairs (or characters) seen fewer times")
    p.add_argument("--normalizer", choices=("none", "nfc", "nfkc", "lowercase", "nfkc_lowercase", "bert"),
                   help="how text is normalized before it is cut (default none)")
    p.add_argument("--pre-tokenizer", choices=("metaspace", "whitespace", "whitespace_split", "bert"),
                   help="how text is cut into words first (bpe, wordpiece, unigram; default metaspace for bpe "
                        "and unigram, whitespace for wordpiece)")
    p.add_argument("--special", action="append", metavar="ROLE=TOKEN",
                   help="a special token (roles: pad, unk, bos, eos, mask, cls, sep); ROLE= removes a default; "
                        "repeatable")
    p.set_defaults(func=cmd_tokenizer_train)

    p = tsub.add_parser("compare", parents=[common], help="compare tokenizers on the same corpus and text")
    p.add_argument("tokenizers", nargs="+", metavar="TOKENIZER", help="tokenizer ids or names")
    p.add_argument("--text", help="a sample sentence to split with each (default: from the corpus)")
    p.set_defaults(func=cmd_tokenizer_compare)
    p = tsub.add_parser("export", parents=[common], help="write a tokenizer.json (or a folder for transformers)")
    p.add_argument("tokenizer", metavar="ID")
    p.add_argument("out", metavar="OUT", help="OUT.json for the tokenizer.json alone, else a folder")
    p.set_defaults(func=cmd_tokenizer_export)

    p = sub.add_parser("config", help="show run configs and presets")
    csub = p.add_subparsers(dest="config_command", metavar="COMMAND", parser_class=_Parser)
    csub.required = True
    p = csub.add_parser("show", parents=[common], help="print a preset's full run config as JSON")
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    p.set_defaults(func=cmd_config_show)
    p = csub.add_parser("presets", parents=[common], help="list the presets")
    p.set_defaults(func=cmd_config_presets)

    p = sub.add_parser("train", parents=[common], help="train a model (Ctrl-C stops and checkpoints)")
    p.add_argument("config", nargs="?", metavar="CONFIG", help="a run config JSON file, or - for stdin")
    p.add_argument("--preset", help="start from a preset instead of a file")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one config value")
    p.add_argument("--name", help="the run's name")
    p.add_argument("--resume", metavar="RUN", help="continue run RUN from its latest checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", parents=[common], help="generate text with a run's checkpoint")
    p.add_argument("--run", required=True, help="run id or name")
    p.add_argument("--checkpoint", help="a checkpoint name (see the checkpoints command; default: the newest)")
    p.add_argument("--prompt", default="")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--mode", choices=("sample", "greedy", "beam"), default="sample",
                   help="sample (temperature, top-k, top-p), greedy (always the likeliest token) or beam search")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--beam-width", type=int, default=4, help="sequences beam search keeps (1 is greedy)")
    p.add_argument("--length-penalty", type=float, default=1.0,
                   help="beam search: above 0 favours longer endings, 0 compares raw log-probabilities")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("attention", parents=[common],
                       help="save the attention weights of a text as FILE.npz (arrays attn and tokens)")
    p.add_argument("--run", required=True, help="run id or name")
    p.add_argument("--checkpoint", help="a checkpoint name (default: the newest)")
    p.add_argument("--text", required=True, help="the text to look at (its last --max-tokens tokens)")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=cmd_attention)

    p = sub.add_parser("checkpoints", parents=[common], help="list a run's checkpoints")
    p.add_argument("--run", required=True, help="run id or name")
    p.set_defaults(func=cmd_checkpoints)

    p = sub.add_parser("delete", parents=[common],
                       help="move a dataset, tokenizer or run to the trash (undo: restore)")
    p.add_argument("kind", choices=("dataset", "tokenizer", "run"))
    p.add_argument("ref", metavar="ID", help="its id or name")
    p.set_defaults(func=cmd_delete)
    p = sub.add_parser("restore", parents=[common], help="put a deleted dataset, tokenizer or run back")
    p.add_argument("trash_id", type=int, metavar="TRASH_ID", help="as `delete` printed, or from `trash`")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("trash", parents=[common], help="list what was deleted (kept 30 days)")
    p.add_argument("--empty", action="store_true", help="delete everything in the trash for good")
    p.set_defaults(func=cmd_trash)

    for name, func, what in (("runs", cmd_runs, "list runs (runs rename RUN NAME: rename one)"),
                             ("datasets", cmd_datasets, "list datasets"),
                             ("tokenizers", cmd_tokenizers, "list tokenizers")):
        p = sub.add_parser(name, parents=[common], help=what)
        p.set_defaults(func=func)
        if name == "runs":
            _add_runs_commands(p)
    return ap


def _add_runs_commands(runs: argparse.ArgumentParser) -> None:
    """`runs` alone lists; `runs rename RUN NAME` renames."""
    rsub = runs.add_subparsers(dest="runs_command", metavar="rename", parser_class=_Parser)
    rsub.required = False
    p = rsub.add_parser("rename", help="give a run a new name")
    # SUPPRESS: without it, this parser's default would wipe out `runs --workspace DIR rename ...`.
    p.add_argument("--workspace", metavar="DIR", default=argparse.SUPPRESS, help=_WORKSPACE_HELP)
    p.add_argument("run", metavar="RUN", help="run id or name")
    p.add_argument("name", metavar="NAME", help="the new name (quote it if it has spaces)")
    p.set_defaults(func=cmd_runs_rename)


# ------------------------------------------------------------------------------------------------ errors

def _user_error_types() -> tuple[type[BaseException], ...]:
    """The error classes whose message is meant for the user, from the modules loaded so far
    (a module that was never imported cannot have raised its error)."""
    names = {"engine.store": "WorkspaceError", "engine.data.importers": "DataError",
             "engine.data.errors": "DataError", "engine.tokenizer": "TokenizerError",
             "engine.checkpoint": "CheckpointError", "engine.train": "TrainingError",
             "engine.attention_probes": "InspectError", "engine.generate": "GenerationError"}
    return tuple(getattr(sys.modules[m], n) for m, n in names.items()
                 if m in sys.modules and hasattr(sys.modules[m], n))


def _message(e: BaseException) -> str:
    if isinstance(e, FileNotFoundError) and e.filename:
        return f"{e.strerror or 'no such file or folder'}: {e.filename}"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    text = " ".join(str(e).split()) if str(e).strip() else ""
    if isinstance(e, (ConfigError, UsageError, *_user_error_types())):
        return text or type(e).__name__
    if isinstance(e, MemoryError):
        return "out of memory"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def main(argv: list[str] | None = None) -> int:
    debug = bool(os.environ.get("STUDIO_ENGINE_DEBUG"))
    if not debug:
        logging.getLogger("engine").addHandler(logging.NullHandler())
        logging.getLogger("engine").propagate = False
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as e:  # --help
        return int(e.code or 0) if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        _err("error: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error worth a message.
        sys.stderr.close()
        return 1
    except BaseException as e:
        if debug:
            traceback.print_exc()
        code = 2 if isinstance(e, (ConfigError, UsageError)) else 1
        _err(f"error: {_message(e)}")
        return code


if __name__ == "__main__":
    sys.exit(main())
