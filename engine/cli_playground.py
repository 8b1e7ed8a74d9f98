"""`studio-engine`'s playground commands for runs that do not only continue a text: `fill-mask` (masked-LM
encoders), `infill` (span-corruption runs and masked-LM encoders), `score-pair` (runs trained with next-sentence
or sentence-order prediction) and `classify` (classification runs). engine/cli.py adds them with `add_commands`; text to text for encoder-decoder runs
is `generate`.

Each prints its answer on stdout (one line per blank, then the whole text; or the score in words) and which
checkpoint answered on stderr. Usage mistakes are found before torch is imported.
"""

from __future__ import annotations

import argparse

from engine.cli_commands import UsageError, err, open_workspace, row_ref

GAP = "[GAP]"  # the gap marker of `infill --text` (the Playground's Infill editor writes the same)
MAX_TOP_K = 50  # engine.playground_infer.MAX_TOP_K, without importing torch to check it


def add_commands(sub, common: argparse.ArgumentParser | None = None) -> None:
    """Add `fill-mask`, `infill` and `score-pair` to the subparsers `sub` (with the --workspace parent
    `common`, or a --workspace option of their own)."""
    p = _command(sub, common, "fill-mask", "the likeliest tokens for each [MASK] of a text (masked-LM runs)")
    p.add_argument("--text", required=True, help="the text, with [MASK] where a token is missing")
    p.add_argument("--top-k", type=int, default=5, help="candidates shown per mask")
    p.set_defaults(func=cmd_fill_mask)

    p = _command(sub, common, "infill", "fill the [GAP]s of a text (span-corruption and masked-LM runs)")
    p.add_argument("--text", required=True, help=f"the text, with {GAP} where the model should write")
    p.add_argument("--max-new-tokens", type=int, default=32, help="at most this many tokens per gap")
    p.add_argument("--gap-tokens", type=int, default=3, help="masked-LM runs: tokens per gap")
    p.add_argument("--mode", choices=("greedy", "sample"), default="greedy")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=cmd_infill)

    p = _command(sub, common, "score-pair", "how likely B follows A, or A and B are in order (NSP / SOP runs)")
    p.add_argument("--a", required=True, metavar="TEXT", help="the first text")
    p.add_argument("--b", required=True, metavar="TEXT", help="the second text")
    p.set_defaults(func=cmd_score_pair)

    p = _command(sub, common, "classify", "each class's probability for a text (classification runs)")
    p.add_argument("--text", required=True, help="the text to classify")
    p.set_defaults(func=cmd_classify)

    p = _command(sub, common, "prompt-eval", "classify a labelled dataset by prompting a causal-LM run (no training)")
    p.add_argument("--dataset", required=True, help="a dataset imported with a label column (id or name)")
    p.add_argument("--template", required=True, help=r"the prompt, with {text} where each text goes (\n: a new line)")
    p.add_argument("--verbalizer", required=True, help="a word per label: pos=good,neg=bad")
    p.add_argument("--shots", type=int, default=0, help="examples of the training split put before each prompt")
    p.add_argument("--seed", type=int, default=0, help="which examples are drawn")
    p.set_defaults(func=cmd_prompt_eval)


def _command(sub, common, name: str, what: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, parents=[common] if common is not None else [], help=what)
    if common is None:
        p.add_argument("--workspace", metavar="DIR", help="the workspace folder")
    p.add_argument("--run", required=True, help="run id or name")
    p.add_argument("--checkpoint", help="a checkpoint name (see the checkpoints command; default: the newest)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    return p


def _answered_by(out: dict) -> None:
    err(f"checkpoint {out.get('checkpoint')} (step {out.get('step')})")


def cmd_fill_mask(args) -> int:
    if not 1 <= args.top_k <= MAX_TOP_K:
        raise UsageError(f"--top-k must be between 1 and {MAX_TOP_K}")
    ws = open_workspace(args)
    run = ws.run(row_ref(args.run))
    from engine.playground_infer import fill_mask, mask_lines

    out = fill_mask(ws, run["id"], args.text, args.top_k, args.checkpoint, device=args.device)
    for line in mask_lines(out["masks"]):
        print(line)
    print(out["text"])
    _answered_by(out)
    return 0


def cmd_infill(args) -> int:
    segments = args.text.split(GAP)
    if len(segments) < 2:
        raise UsageError(f"--text has no {GAP}: put {GAP} where the model should write")
    if args.max_new_tokens < 1 or args.gap_tokens < 1:
        raise UsageError("--max-new-tokens and --gap-tokens must be at least 1")
    ws = open_workspace(args)
    run = ws.run(row_ref(args.run))
    from engine.playground_infer import infill

    out = infill(
        ws,
        run["id"],
        segments,
        max_new_tokens=args.max_new_tokens,
        gap_tokens=args.gap_tokens,
        mode=args.mode,
        temperature=args.temperature,
        seed=args.seed,
        checkpoint=args.checkpoint,
        device=args.device,
    )
    for n, fill in enumerate(out["fills"], 1):
        print(f"{GAP} {n}: {fill!r}")
    print(out["text"])
    _answered_by(out)
    return 0


def cmd_score_pair(args) -> int:
    if not args.a.strip() or not args.b.strip():
        raise UsageError("--a and --b each need some text")
    ws = open_workspace(args)
    run = ws.run(row_ref(args.run))
    from engine.playground_infer import score_pair

    out = score_pair(ws, run["id"], args.a, args.b, args.checkpoint, device=args.device)
    print(out["words"])
    _answered_by(out)
    return 0


def cmd_classify(args) -> int:
    if not args.text.strip():
        raise UsageError("--text needs some text")
    ws = open_workspace(args)
    run = ws.run(row_ref(args.run))
    from engine.infer_classify import class_lines, classify

    out = classify(ws, run["id"], args.text, args.checkpoint, device=args.device)
    print("\n".join(class_lines(out)))
    if out["cut"]:
        err(f"the text was cut to the model's context ({out['n_tokens']} tokens)")
    _answered_by(out)
    return 0


def cmd_prompt_eval(args) -> int:
    if "{text}" not in args.template:
        raise UsageError("--template needs {text} where each text goes")
    ws = open_workspace(args)
    run = ws.run(row_ref(args.run))
    from engine.cli_training import confusion_table
    from engine.prompt_eval import prompt_eval

    out = prompt_eval(
        ws, run["id"], row_ref(args.dataset), args.template.replace("\\n", "\n"), args.verbalizer, args.shots,
        args.seed, args.checkpoint, device=args.device,
    )  # fmt: skip
    print(
        f"prompting ({out['shots']} shots): val accuracy {100 * out['class_accuracy']:.1f} %, "
        f"val macro-F1 {out['macro_f1']:.3f} ({out['n_texts']:,} texts, {out['seconds']:.1f} s)"
    )
    print(confusion_table(out["confusion"], out["classes"]))
    return 0
