"""`studio-engine`: everything the studio can start, from a terminal.

    studio-engine import PATH [--name N] [--val-fraction F]
    studio-engine tokenizer train --dataset D --kind char|bytebpe --vocab-size V [--name N]
    studio-engine config show [--preset NAME] [--set section.key=value ...]  |  config presets
    studio-engine train CONFIG.json|- [--preset NAME] [--set section.key=value ...] [--name N]  |  train --resume RUN
    studio-engine generate --run R [--checkpoint C] [--prompt P] [--max-new-tokens N] [--mode sample|greedy|beam]
                           [--temperature T] [--top-k K] [--top-p P] [--seed S] [--beam-width W] [--length-penalty L]
    studio-engine attention --run R [--checkpoint C] --text T --out FILE.npz [--max-tokens N]
    studio-engine objectives  |  sample-batch [CONFIG.json|-] [--preset NAME] [--set section.key=value ...] [--seed S]
                           [-n N] [--max-tokens N]
    studio-engine fill-mask --run R --text "To be or not to [MASK]" [--top-k K]  |  score-pair --run R --a A --b B
    studio-engine infill --run R --text "a [GAP] b"
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
import sys
import traceback

from engine.cli_commands import (
    CLEAN_STEPS,
    PROG,
    UsageError,
    cmd_config_presets,
    cmd_config_show,
    cmd_datasets,
    cmd_delete,
    cmd_import,
    cmd_restore,
    cmd_runs,
    cmd_runs_rename,
    cmd_tokenizer_compare,
    cmd_tokenizer_export,
    cmd_tokenizer_train,
    cmd_tokenizers,
    cmd_trash,
    err,
)
from engine.cli_objectives import add_commands as add_objective_commands
from engine.cli_playground import add_commands as add_playground_commands
from engine.cli_training import cmd_attention, cmd_checkpoints, cmd_generate, cmd_train
from engine.config import DEFAULT_PRESET, ConfigError
from engine.errors import user_text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


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

    _add_import_command(sub, common)
    _add_tokenizer_commands(sub, common)
    _add_config_commands(sub, common)
    _add_training_commands(sub, common)
    _add_workspace_commands(sub, common)
    add_objective_commands(sub)
    add_playground_commands(sub, common)
    return ap


def _add_import_command(sub, common: argparse.ArgumentParser) -> None:
    """The `import` command and its options."""
    p = sub.add_parser("import", parents=[common], help="import text files or folders as a dataset")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--name")
    p.add_argument(
        "--val-fraction", type=float, default=0.1, help="the fraction of the text kept for validation (default 0.1)"
    )
    p.add_argument(
        "--format",
        choices=("txt", "csv", "tsv", "jsonl", "parquet"),
        help="the input format (default: from the file extension)",
    )
    p.add_argument("--column", help="the text column (CSV/TSV/Parquet) or field (JSONL; dotted paths allowed)")
    p.add_argument("--label-column", help="a label column to keep for later fine-tuning")
    p.add_argument(
        "--split",
        choices=("tail", "documents"),
        help="validation = the last part of the text (tail, as nanoGPT) or random documents",
    )
    p.add_argument("--seed", type=int, help="the seed of the document split")
    p.add_argument(
        "--on-decode-error",
        choices=("error", "latin-1", "skip"),
        help="a file that is not UTF-8/UTF-16: stop, decode it as Latin-1, or skip it",
    )
    p.add_argument("--on-bad-record", choices=("error", "skip"), help="malformed JSONL/CSV records: stop or skip")
    p.add_argument(
        "--clean", action="append", metavar="STEPS", help="cleaning steps, comma-separated: " + ", ".join(CLEAN_STEPS)
    )
    p.add_argument("--min-chars", type=int, help="drop documents shorter than this")
    p.add_argument("--max-chars", type=int, help="drop documents longer than this")
    p.add_argument("--regex", help="a regex filter (drops matching lines; see --regex-action)")
    p.add_argument(
        "--regex-action",
        choices=("drop_lines", "drop_docs", "keep_docs"),
        help="what --regex does: drop matching lines (default), drop matching documents, or keep only "
        "matching documents",
    )
    p.add_argument(
        "--include",
        action="append",
        metavar="GLOB",
        help="in folders, import only files matching this pattern (repeatable; default *.txt)",
    )
    p.add_argument("--exclude", action="append", metavar="GLOB", help="in folders, leave out matching files")
    p.add_argument(
        "--doc-unit",
        choices=("file", "line", "paragraph"),
        help="one document per text file (default), per non-blank line, or per paragraph",
    )
    p.add_argument("--delimiter", help="the CSV delimiter (default: comma, tab for .tsv)")
    p.set_defaults(func=cmd_import)


def _add_tokenizer_commands(sub, common: argparse.ArgumentParser) -> None:
    """`tokenizer train | compare | export`."""
    p = sub.add_parser("tokenizer", help="tokenizer commands")
    tsub = p.add_subparsers(dest="tokenizer_command", metavar="COMMAND", parser_class=_Parser)
    tsub.required = True
    p = tsub.add_parser("train", parents=[common], help="train a tokenizer on a dataset")
    p.add_argument("--dataset", required=True, help="dataset id or name")
    p.add_argument("--kind", choices=("char", "bpe", "bytebpe", "wordpiece", "unigram"), default="char")
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--name")
    p.add_argument("--min-frequency", type=int, help="leave out pairs (or characters) seen fewer times")
    p.add_argument(
        "--normalizer",
        choices=("none", "nfc", "nfkc", "lowercase", "nfkc_lowercase", "bert"),
        help="how text is normalized before it is cut (default none)",
    )
    p.add_argument(
        "--pre-tokenizer",
        choices=("metaspace", "whitespace", "whitespace_split", "bert"),
        help="how text is cut into words first (bpe, wordpiece, unigram; default metaspace for bpe "
        "and unigram, whitespace for wordpiece)",
    )
    p.add_argument(
        "--special",
        action="append",
        metavar="ROLE=TOKEN",
        help="a special token (roles: pad, unk, bos, eos, mask, cls, sep); ROLE= removes a default; repeatable",
    )
    p.set_defaults(func=cmd_tokenizer_train)

    p = tsub.add_parser("compare", parents=[common], help="compare tokenizers on the same corpus and text")
    p.add_argument("tokenizers", nargs="+", metavar="TOKENIZER", help="tokenizer ids or names")
    p.add_argument("--text", help="a sample sentence to split with each (default: from the corpus)")
    p.set_defaults(func=cmd_tokenizer_compare)
    p = tsub.add_parser("export", parents=[common], help="write a tokenizer.json (or a folder for transformers)")
    p.add_argument("tokenizer", metavar="ID")
    p.add_argument("out", metavar="OUT", help="OUT.json for the tokenizer.json alone, else a folder")
    p.set_defaults(func=cmd_tokenizer_export)


def _add_config_commands(sub, common: argparse.ArgumentParser) -> None:
    """`config show | presets`."""
    p = sub.add_parser("config", help="show run configs and presets")
    csub = p.add_subparsers(dest="config_command", metavar="COMMAND", parser_class=_Parser)
    csub.required = True
    p = csub.add_parser("show", parents=[common], help="print a preset's full run config as JSON")
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE")
    p.set_defaults(func=cmd_config_show)
    p = csub.add_parser("presets", parents=[common], help="list the presets")
    p.set_defaults(func=cmd_config_presets)


def _add_training_commands(sub, common: argparse.ArgumentParser) -> None:
    """`train`, `generate`, `attention` and `checkpoints`: the commands that load torch."""
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
    p.add_argument(
        "--mode",
        choices=("sample", "greedy", "beam"),
        default="sample",
        help="sample (temperature, top-k, top-p), greedy (always the likeliest token) or beam search",
    )
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--beam-width", type=int, default=4, help="sequences beam search keeps (1 is greedy)")
    p.add_argument(
        "--length-penalty",
        type=float,
        default=1.0,
        help="beam search: above 0 favours longer endings, 0 compares raw log-probabilities",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "attention", parents=[common], help="save the attention weights of a text as FILE.npz (arrays attn and tokens)"
    )
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


def _add_workspace_commands(sub, common: argparse.ArgumentParser) -> None:
    """`delete`, `restore`, `trash` and the lists: `runs`, `datasets`, `tokenizers`."""
    p = sub.add_parser("delete", parents=[common], help="move a dataset, tokenizer or run to the trash (undo: restore)")
    p.add_argument("kind", choices=("dataset", "tokenizer", "run"))
    p.add_argument("ref", metavar="ID", help="its id or name")
    p.set_defaults(func=cmd_delete)
    p = sub.add_parser("restore", parents=[common], help="put a deleted dataset, tokenizer or run back")
    p.add_argument("trash_id", type=int, metavar="TRASH_ID", help="as `delete` printed, or from `trash`")
    p.set_defaults(func=cmd_restore)
    p = sub.add_parser("trash", parents=[common], help="list what was deleted (kept 30 days)")
    p.add_argument("--empty", action="store_true", help="delete everything in the trash for good")
    p.set_defaults(func=cmd_trash)

    for name, func, what in (
        ("runs", cmd_runs, "list runs (runs rename RUN NAME: rename one)"),
        ("datasets", cmd_datasets, "list datasets"),
        ("tokenizers", cmd_tokenizers, "list tokenizers"),
    ):
        p = sub.add_parser(name, parents=[common], help=what)
        p.set_defaults(func=func)
        if name == "runs":
            _add_runs_commands(p)


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


def _message(e: BaseException) -> str:
    """The error as the one line after `error: ` (engine/errors.py words it)."""
    return " ".join(user_text(e).split())


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
        err("error: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (| head): not an error worth a message.
        sys.stderr.close()
        return 1
    except BaseException as e:
        if debug:
            traceback.print_exc()
        code = 2 if isinstance(e, (ConfigError, UsageError)) else 1
        err(f"error: {_message(e)}")
        return code


if __name__ == "__main__":
    sys.exit(main())
