"""`studio-engine`'s commands on the workspace: import, tokenizers, configs, and the lists of what is there
(runs, datasets, tokenizers, the trash), with the helpers every command uses. engine/cli.py parses the command
line and calls them; the commands that train or generate are in engine/cli_training.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.config import PRESETS, preset
from engine.errors import UserError

PROG = "studio-engine"


class UsageError(UserError):
    """Bad command-line usage; exit status 2."""


# ------------------------------------------------------------------------------------------------ helpers


def row_ref(text: str) -> int | str:
    """A command-line reference to a row: digits are an id, anything else a name."""
    text = text.strip()
    return int(text) if text.isdigit() else text


def open_workspace(args):
    from engine.store import Workspace

    path = args.workspace or getattr(args, "top_workspace", None) or Workspace.default_path()
    return Workspace(Path(path))


def err(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Progress:
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
        err(f"{pct}{message}")


def when(stamp) -> str:
    return str(stamp or "")[:16].replace("T", " ")


def loss_text(x) -> str:
    return "—" if x is None else f"{x:.4f}"


# ------------------------------------------------------------------------------------------------ commands


def cmd_import(args) -> int:
    paths = [Path(p).expanduser() for p in args.paths]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(2, "no such file or folder", str(p))
    ws = open_workspace(args)
    ds = ws.import_dataset(paths, args.name, args.val_fraction, progress=Progress(), **_import_options(args))
    print(
        f"dataset {ds['name']!r}: {ds['n_docs']:,} document(s), {ds['n_chars']:,} characters, {ds['n_lines']:,} lines"
    )
    print(f"train {ds['train_chars']:,} characters, validation {ds['val_chars']:,} characters")
    print(ds["id"])
    return 0


CLEAN_STEPS = {
    "nfc": ("normalize", "NFC"),
    "nfkc": ("normalize", "NFKC"),
    "strip-control": ("strip_control", True),
    "collapse-whitespace": ("collapse_whitespace", True),
    "lowercase": ("lowercase", True),
    "dedupe-lines": ("dedupe_lines", True),
    "dedupe-docs": ("dedupe_docs", True),
}


def _import_options(args) -> dict:
    """The import flags as Workspace.import_dataset keyword options (only those the user gave)."""
    opts = {
        k: v
        for k, v in {
            "fmt": args.format,
            "column": args.column,
            "label_column": args.label_column,
            "split": args.split,
            "seed": args.seed,
            "on_decode_error": args.on_decode_error,
            "on_bad_record": args.on_bad_record,
            "include": args.include,
            "exclude": args.exclude,
            "doc_unit": args.doc_unit,
            "delimiter": args.delimiter,
        }.items()
        if v is not None
    }
    cleaning: dict = {}
    for step in args.clean or []:
        for name in step.split(","):
            if name.strip() not in CLEAN_STEPS:
                raise UsageError(f"--clean: unknown step {name!r}; choose from {', '.join(CLEAN_STEPS)}")
            key, value = CLEAN_STEPS[name.strip()]
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

    ws = open_workspace(args)
    result = compare_tokenizers(ws, [row_ref(r) for r in args.tokenizers], text=args.text)
    print(f"{'tokenizer':<32} {'bytes/token':>11} {'tokens/word':>11} {'unk rate':>9} {'coverage':>9}")
    for row in result["rows"]:
        print(
            f"{str(row['tokenizer'])[:32]:<32} {row['bytes_per_token']:>11.2f} {row['tokens_per_word']:>11.2f} "
            f"{row['unk_rate']:>9.2%} {row['vocab_coverage']:>9.1%}"
        )
        split = row.get("sample_split") or []
        print("    " + " | ".join(str(t) for t in split[:40]))
    return 0


def cmd_tokenizer_export(args) -> int:
    from engine.tokenizer.export import export_tokenizer

    out = export_tokenizer(open_workspace(args), row_ref(args.tokenizer), Path(args.out).expanduser())
    print(out)
    return 0


def _spec_options(args) -> dict:
    """The tokenizer flags as Workspace.train_tokenizer spec options (only those the user gave)."""
    opts = {
        k: v
        for k, v in {
            "min_frequency": args.min_frequency,
            "normalizer": args.normalizer,
            "pre_tokenizer": args.pre_tokenizer,
        }.items()
        if v is not None
    }
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
    ws = open_workspace(args)
    tok = ws.train_tokenizer(
        row_ref(args.dataset), args.kind, args.vocab_size, args.name, progress=Progress(), **_spec_options(args)
    )
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


def cmd_runs(args) -> int:
    rows = open_workspace(args).runs()
    if not rows:
        err("no runs yet")
    for r in rows:
        print(
            f"{r['id']:>4}  {r['name']}  {r['status']}  step {r['step'] or 0}/{r['max_iters'] or 0}  "
            f"best val {loss_text(r['best_val_loss'])}  {when(r['created'])}"
            + (f"  (trained by {r['trainer']})" if r.get("trainer") else "")
        )
    return 0


def cmd_runs_rename(args) -> int:
    ws = open_workspace(args)
    old = ws.run(row_ref(args.run))
    row = ws.rename_run(old["id"], args.name)
    err(f"renamed run {row['id']} from {old['name']!r} to {row['name']!r}")
    print(row["id"])
    return 0


def cmd_datasets(args) -> int:
    rows = open_workspace(args).datasets()
    if not rows:
        err("no datasets yet")
    for d in rows:
        print(
            f"{d['id']:>4}  {d['name']}  {d['n_chars']:,} characters (train {d['train_chars']:,}, "
            f"val {d['val_chars']:,})  {when(d['created'])}"
        )
    return 0


def cmd_delete(args) -> int:
    entry = open_workspace(args).delete(args.kind, row_ref(args.ref))
    err(f"moved {entry['kind']} {entry['name']!r} to the trash; `studio-engine restore {entry['id']}` undoes it")
    print(entry["id"])
    return 0


def cmd_restore(args) -> int:
    ws = open_workspace(args)
    kind = ws.trash_entry(args.trash_id)["kind"]
    row = ws.restore(args.trash_id)
    err(f"restored {kind} {row['name']!r}")
    print(row["id"])
    return 0


def cmd_trash(args) -> int:
    ws = open_workspace(args)
    if args.empty:
        err(f"deleted {ws.empty_trash()} item(s) for good")
        return 0
    rows = ws.trash()
    if not rows:
        err("the trash is empty")
    for r in rows:
        print(f"{r['id']:>4}  {r['kind']:<9}  {r['name']}  (was id {r['item_id']})  deleted {when(r['deleted'])}")
    return 0


def cmd_tokenizers(args) -> int:
    rows = open_workspace(args).tokenizers()
    if not rows:
        err("no tokenizers yet")
    for t in rows:
        print(
            f"{t['id']:>4}  {t['name']}  {t['kind']}  {t['vocab_size']:,} tokens  dataset {t['dataset_id']}  "
            f"train {t['train_tokens']:,} / val {t['val_tokens']:,} tokens  {when(t['created'])}"
        )
    return 0
