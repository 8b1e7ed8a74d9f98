"""`studio-engine objectives` and `studio-engine sample-batch`: what each pre-training objective is, and what one
does to a batch of the user's text.

    studio-engine objectives
    studio-engine sample-batch [CONFIG.json|-] [--preset NAME] [--set section.key=value ...] [--seed S] [-n N]

A sample batch is printed one sequence a line, as the Objective panel draws it: ⟨…⟩ the tokens the model predicts
(they carry loss), [MASK]→⟨x⟩ a token shown as [MASK] (or another token) where x was, ~…~ deleted tokens, «…»
moved ones, a superscript the place in a permutation LM's order; encoder-decoder objectives get an `input:` and a
`target:` line. engine/cli.py registers the commands with add_commands.
"""

from __future__ import annotations

import argparse
import dataclasses

from engine.objectives.catalog import GROUPS, METRIC_LABELS, OBJECTIVE_CATALOG, ObjectiveInfo
from engine.format import lower_first

_WORKSPACE_HELP = "the workspace folder (default: the studio's own, or $STUDIO_WORKSPACE)"
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
# What each way of showing a token means, for the legend under a batch.
_LEGEND = {
    "loss": "⟨x⟩ predicted (carries loss)",
    "shown": "a→⟨x⟩ a shown where x was, x predicted",
    "deleted": "~x~ deleted",
    "moved": "«x» moved",
    "order": "⟨x⟩ⁿ predicted n-th in the order",
    "hidden": "⟨x⟩ on a target line: what the input hid (the decoder predicts every target token)",
    "prefix": "│ ends the prefix, read in both directions",
}
_WRAP = {"loss": "⟨{}⟩", "deleted": "~{}~", "moved": "«{}»", "hidden": "⟨{}⟩"}


def add_commands(sub) -> None:
    """Register `objectives` and `sample-batch` on studio-engine's subparsers."""
    p = sub.add_parser(
        "objectives", help="list the pre-training objectives: the architectures they train, options and metrics"
    )
    p.set_defaults(func=cmd_objectives)
    p = sub.add_parser(
        "sample-batch",
        help="print one batch as a config's objective builds it, the corrupted and predicted tokens marked",
    )
    p.add_argument("config", nargs="?", metavar="CONFIG", help="a run config JSON file, or - for stdin")
    p.add_argument("--preset", help="start from a preset instead of a file (default: the default preset)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override one config value")
    p.add_argument("--workspace", metavar="DIR", help=_WORKSPACE_HELP)
    p.add_argument("--seed", type=int, default=0, help="another seed draws another batch (default 0)")
    p.add_argument("-n", type=int, default=4, help="how many sequences (default 4)")
    p.add_argument("--max-tokens", type=int, default=48, help="cut each sequence to this many tokens (0: whole)")
    p.set_defaults(func=cmd_sample_batch)


# ------------------------------------------------------------------------------------------------ objectives


def cmd_objectives(args) -> int:
    defaults = _option_defaults()
    for group, title in GROUPS.items():
        print(f"{title}:")
        for info in (o for o in OBJECTIVE_CATALOG.values() if o.group == group):
            for line in _objective_lines(info, defaults):
                print(line)
        print()
    print(
        "Choose one with --set objective.name=NAME (and a model.arch it trains); set an option with --set objective.KEY=VALUE"
    )
    return 0


def _objective_lines(info: ObjectiveInfo, defaults: dict) -> list[str]:
    options = "  ".join(f"{key}={defaults[key]}" for key in info.options) or "none"
    metrics = ", ".join(lower_first(METRIC_LABELS[m]) for m in info.metrics)
    width = max(map(len, OBJECTIVE_CATALOG))
    lines = [
        f"  {info.name:<{width}}  {info.label}",
        f"      trains   {', '.join(info.archs)}",
        f"      options  {options}",
        f"      metrics  {metrics}",
    ]
    needs = [_need(n) for n in info.needs] + (["segments (model.n_segments=2)"] if info.needs_segments else [])
    if needs:
        lines.append(f"      needs    {', '.join(needs)}")
    return lines


def _need(role: str) -> str:
    from engine.choices import ROLE_TOKENS, SENTINELS

    return f"<extra_id_0> … <extra_id_{SENTINELS - 1}>" if role == "sentinel" else ROLE_TOKENS.get(role, role)


def _option_defaults() -> dict[str, str]:
    """objective.* defaults as --set takes them (JSON: true/false, numbers; text as it is)."""
    from engine.config import ObjectiveConfig

    out = {}
    for f in dataclasses.fields(ObjectiveConfig):
        value = getattr(ObjectiveConfig(), f.name)
        if value is None:  # a choice with no default: the run to learn from
            out[f.name] = "RUN"
            continue
        out[f.name] = (
            "true"
            if value is True
            else "false"
            if value is False
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )
    return out


# ---------------------------------------------------------------------------------------------- sample-batch


def cmd_sample_batch(args) -> int:
    from engine.cli_commands import open_workspace

    cfg = _config(args)
    ws = open_workspace(args)
    from engine.objectives.sample_view import sample_batch

    shown = sample_batch(ws, cfg, n=args.n, seed=args.seed, max_tokens=args.max_tokens)
    encdec = cfg.model.arch == "encoder-decoder"
    used: set[str] = set()
    for i, row in enumerate(shown["rows"], 1):
        for line in _row_lines(i, row, encdec, used):
            print(line)
    info = OBJECTIVE_CATALOG[shown["objective"]]
    print()
    print("; ".join([f"{info.label} ({info.name})", *(_LEGEND[k] for k in _LEGEND if k in used)]))
    if shown["note"]:
        print(f"note: {shown['note']}")
    return 0


def _config(args):
    """The run config of CONFIG or --preset (the default preset when neither is given), with --set applied."""
    from engine.cli_commands import UsageError
    from engine.cli_training import _load_config
    from engine.config import DEFAULT_PRESET

    if not args.config and not args.preset:
        args = argparse.Namespace(**{**vars(args), "preset": DEFAULT_PRESET})
    if args.config and args.preset:
        raise UsageError("give a CONFIG file or --preset, not both")
    return _load_config(args)


def _row_lines(i: int, row: dict, encdec: bool, used: set[str]) -> list[str]:
    target = row.get("target")
    if encdec or (target is not None and len(target) != len(row["input"])):
        lines = [f"{i}  input:  {_text(row['input'], used)}"]
        if target is not None:
            lines.append(f"   target: {_text(target, used, target_side=True)}")
    else:
        lines = [f"{i}  {_text(row['input'], used, aligned=target)}"]
    if row.get("label"):
        lines.append(f"   label:  {row['label']}")
    return lines


def _text(spans: list[dict], used: set[str], *, aligned: list[dict] | None = None, target_side: bool = False) -> str:
    """The spans as one line: runs of tokens shown the same way share one pair of brackets."""
    pieces: list[tuple[str | None, str]] = []  # (style, text); a None style stands alone
    for p, span in enumerate(spans):
        if p and spans[p - 1].get("mark") == "prefix" and span.get("mark") != "prefix":
            pieces.append(("prefix", "│"))
        text = _readable(span["text"])
        original = _readable(aligned[p]["text"]) if aligned is not None and p < len(aligned) else text
        style = _style(span, target_side)
        if style == "loss" and original != text:
            pieces.append(("shown", f"{text}→⟨{original}⟩"))
        elif style == "loss" and span.get("order") is not None:
            pieces.append(("order", f"⟨{text}⟩{str(span['order']).translate(_SUPERSCRIPT)}"))
        else:
            pieces.append((style, text))
    out, k = [], 0
    while k < len(pieces):
        style, text = pieces[k]
        k += 1
        if style in _WRAP:
            while k < len(pieces) and pieces[k][0] == style:
                text += pieces[k][1]
                k += 1
            text = _WRAP[style].format(text)
        if style:
            used.add(style)
        out.append(text)
    return "".join(out)


def _style(span: dict, target_side: bool) -> str | None:
    mark = span.get("mark")
    if mark in ("deleted", "moved"):
        return mark
    if target_side:  # every target token carries loss: mark what the input hid instead
        return "hidden" if mark == "masked" else None
    return "loss" if span.get("loss") else None


def _readable(text: str) -> str:
    """A token's display text on one terminal line: spaces as spaces, a newline stays ⏎."""
    return text.replace("␣", " ")
