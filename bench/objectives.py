"""Benchmark: every pre-training objective on tinyshakespeare with the same model size, and the `transformers`
models of the same architecture trained on the same batches as throughput peers, in one run.

    python bench/objectives.py [--iters 500] [--peer-steps 40] [--threads 2] [--only masked_lm,denoising]
                               [--corpus ../shared/data/tinyshakespeare.txt] [--out bench/out/objectives.json]

Part 1 (the table): each objective trains through the real loop (engine.train.run_training) on the same
workspace: characters (each run's vocabulary adds the special tokens its objective needs), 4 layers, 4 heads,
128 wide, context 64, batch 12, AdamW 1e-3 with 50 warm-up steps, cosine to 1e-4. An encoder-decoder has 4
encoder and 4 decoder layers. Reported: training tokens/s (the run's own average), the final validation loss
and the objective's metric on the validation split (20 fixed batches).

Part 2 (the peers): for masked_lm (BertForMaskedLM), span_corruption (T5ForConditionalGeneration) and denoising
(BartForConditionalGeneration), the same objective's batches are drawn once; then our model and the peer of the
same shape (layers, heads, width, MLP 4x, no dropout) each take the same AdamW steps on them, alternating in
blocks of 10 so that load on the machine hits both alike. tokens/s counts input + target tokens. Needs
`transformers` (a test dependency).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import RunConfig  # noqa: E402
from engine.objectives.base import IGNORE, decoder_start_id  # noqa: E402
from engine.objectives.catalog import METRIC_LABELS, OBJECTIVE_CATALOG  # noqa: E402
from engine.objectives.registry import get_objective  # noqa: E402
from engine.objectives.text_source import TokenSource  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.run_setup import prepare_run  # noqa: E402
from engine.store import Workspace  # noqa: E402
from engine.train import run_training  # noqa: E402
from side_by_side import time_steps, timed_tokens  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
SHAPE = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0, "bias": False}


def config_for(name: str, dataset: int, iters: int) -> RunConfig:
    info = OBJECTIVE_CATALOG[name]
    model = dict(SHAPE, arch=info.archs[0])
    if info.needs_segments:
        model["n_segments"] = 2
    d = {
        "data": {"dataset": dataset},
        "tokenizer": {"kind": "char", "vocab_size": 256},
        "model": model,
        "objective": {"name": name},
        "train": {
            "batch_size": 12,
            "max_iters": iters,
            "learning_rate": 1e-3,
            "min_lr": 1e-4,
            "warmup_iters": 50,
            "lr_decay_iters": iters,
            "beta2": 0.99,
            "eval_interval": iters,
            "eval_iters": 20,
            "log_interval": 25,
            "probe_attention": False,
            "keep_checkpoints": 0,
        },
    }
    return RunConfig.from_dict(d)


def train_one(ws: Workspace, name: str, dataset: int, iters: int) -> dict:
    cfg = config_for(name, dataset, iters)
    run = prepare_run(ws, cfg, f"bench {name}")
    evals: list = []

    def on_event(e) -> None:
        if getattr(e, "kind", "") == "eval":
            evals.append(e)

    t0 = time.perf_counter()
    state = run_training(ws, run["id"], on_event=on_event)
    wall = time.perf_counter() - t0
    train_rows = [r for r in ws.metrics(run["id"], "train") if r.get("tokens_per_sec")]
    last = evals[-1] if evals else None
    metrics = dict(last.metrics) if last is not None else {}
    metric = next((m for m in OBJECTIVE_CATALOG[name].metrics if m != "perplexity"), "perplexity")
    return {
        "objective": name,
        "arch": cfg.model.arch,
        "state": state,
        "run": run["id"],
        "vocab_size": ws.run(run["id"])["config"]["tokenizer"]["vocab_size"],
        "tokens_per_sec": train_rows[-1]["tokens_per_sec"] if train_rows else None,
        "wall_s": wall,
        "val_loss": last.val_loss if last is not None else None,
        "metric": metric,
        "metric_value": metrics.get(f"val_{metric}"),
        "metrics": metrics,
    }


# ------------------------------------------------------------------------------------------------ the peers


def peer_model(name: str, vocab_size: int, specials: dict[str, int]):
    import transformers as tf

    E, L, H, T = SHAPE["n_embd"], SHAPE["n_layer"], SHAPE["n_head"], SHAPE["block_size"]
    if name == "masked_lm":
        cfg = tf.BertConfig(
            vocab_size=vocab_size, hidden_size=E, num_hidden_layers=L, num_attention_heads=H,
            intermediate_size=4 * E, max_position_embeddings=T, type_vocab_size=1,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        )  # fmt: skip
        return tf.BertForMaskedLM(cfg)
    start, pad = decoder_start_id(specials), specials.get("pad", 0)
    if name == "span_corruption":
        cfg = tf.T5Config(
            vocab_size=vocab_size, d_model=E, d_kv=E // H, d_ff=4 * E, num_layers=L, num_decoder_layers=L,
            num_heads=H, dropout_rate=0.0, decoder_start_token_id=start, pad_token_id=pad,
        )  # fmt: skip
        return tf.T5ForConditionalGeneration(cfg)
    cfg = tf.BartConfig(
        vocab_size=vocab_size, d_model=E, encoder_layers=L, decoder_layers=L, encoder_attention_heads=H,
        decoder_attention_heads=H, encoder_ffn_dim=4 * E, decoder_ffn_dim=4 * E, max_position_embeddings=T,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, decoder_start_token_id=start,
        pad_token_id=pad, scale_embedding=False,
    )  # fmt: skip
    return tf.BartForConditionalGeneration(cfg)


def peer_kwargs(batch) -> dict:
    inputs = batch.inputs
    kw = {"input_ids": inputs["idx"], "labels": batch.targets.masked_fill(batch.targets == IGNORE, -100)}
    if "tgt" in inputs:
        kw["decoder_input_ids"] = inputs["tgt"]
    padding = inputs.get("src_padding", inputs.get("key_padding"))
    if padding is not None:
        kw["attention_mask"] = padding.long()
    return kw


def compare_peer(ws: Workspace, result: dict, steps: int) -> dict:
    name = result["objective"]
    run = ws.run(result["run"])
    cfg = RunConfig.from_dict(run["config"])
    source = TokenSource.from_workspace(ws, run["tokenizer_id"], "train")
    objective = get_objective(cfg)
    gen = torch.Generator().manual_seed(0)
    batches = [objective.batch(source, cfg.train.batch_size, gen, torch.device("cpu")) for _ in range(steps)]
    n_tokens = timed_tokens(batches)

    torch.manual_seed(0)
    ours = build_model(cfg.model, source.vocab_size)
    peer = peer_model(name, source.vocab_size, source.specials)

    def our_step(b):
        return objective.loss(ours, b).loss

    def peer_step(b):
        return peer(**peer_kwargs(b)).loss

    sides = {"ours": (ours, our_step), "peer": (peer, peer_step)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, (m, _) in sides.items()}
    seconds = time_steps(sides, opts, batches)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_peer = sum(p.numel() for p in peer.parameters())
    return {
        "objective": name,
        "peer": type(peer).__name__,
        "params_ours": n_ours,
        "params_peer": n_peer,
        "tokens_per_sec_ours": n_tokens / seconds["ours"],
        "tokens_per_sec_peer": n_tokens / seconds["peer"],
        "ratio": seconds["peer"] / seconds["ours"],
    }


# -------------------------------------------------------------------------------------------------- report


def table(results: list[dict], peers: list[dict]) -> str:
    lines = [
        "| objective | architecture | tokens/s | val loss | metric |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        value = r["metric_value"]
        if value is None:
            shown = "—"
        elif r["metric"] == "perplexity":
            shown = f"perplexity {value:.2f}"
        else:
            shown = f"{METRIC_LABELS[r['metric']].lower()} {100 * value:.1f} %"
        loss = f"{r['val_loss']:.3f}" if r["val_loss"] is not None and math.isfinite(r["val_loss"]) else "—"
        tps = f"{r['tokens_per_sec'] / 1000:.1f} k" if r["tokens_per_sec"] else "—"
        lines.append(f"| {r['objective']} | {r['arch']} | {tps} | {loss} | {shown} |")
    if peers:
        lines += ["", "| objective | peer | params ours / peer | tokens/s ours | tokens/s peer | ratio |"]
        lines.append("|---|---|---|---|---|---|")
        for p in peers:
            lines.append(
                f"| {p['objective']} | {p['peer']} | {p['params_ours'] / 1e6:.2f} M / {p['params_peer'] / 1e6:.2f} M"
                f" | {p['tokens_per_sec_ours'] / 1000:.1f} k | {p['tokens_per_sec_peer'] / 1000:.1f} k"
                f" | {p['ratio']:.2f} × |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--peer-steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--only", default="", help="comma-separated objectives (default: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "objectives.json")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # Distillation needs a teacher run: bench/finetune.py measures it against the same student alone.
    names = [n for n in args.only.split(",") if n] or [n for n, i in OBJECTIVE_CATALOG.items() if not i.needs_teacher]
    results, peers = [], []
    with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws") as ws:
        ds = ws.import_dataset([args.corpus], "shakespeare", 0.1)
        for name in names:
            r = train_one(ws, name, ds["id"], args.iters)
            results.append(r)
            print(json.dumps(r), flush=True)
        for r in results:
            if r["objective"] in ("masked_lm", "span_corruption", "denoising"):
                p = compare_peer(ws, r, args.peer_steps)
                peers.append(p)
                print(json.dumps(p), flush=True)
    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "iters": args.iters,
        "results": results,
        "peers": peers,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(table(results, peers))


if __name__ == "__main__":
    main()
