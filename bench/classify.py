"""Benchmark: classification on real text, in one run.

    python bench/classify.py [--pretrain-iters 600] [--iters 600] [--peer-steps 60] [--threads 1]
                             [--corpus ../shared/data/tinyshakespeare.txt] [--out bench/out/classify.json]

The data: the speeches of two plays of tinyshakespeare (tools/plays_dataset.py: Coriolanus, Romeo and Juliet),
labelled by play, the speaker's name left out; 10 % of the speeches (seeded) for validation. The model: a decoder
of the baby preset's shape (4 layers, 4 heads, 128 wide, context 64, characters), pre-trained --pretrain-iters
steps on the whole corpus as causal LM.

Part 1, one table, every way this studio has of getting a classifier, through the real loop: from random weights;
fine-tuned from the pre-trained run (every weight, learning rate 3e-4); LoRA rank 8 on its attention (the new
head trains whole); prompt tuning, 16 soft-prompt vectors and the head (learning rate 0.03, as prompt tuning
needs); and prompting the pre-trained run without training (`prompt-eval`: "{text}\\nThis is from" and
the words Rome / Verona), zero-shot and with 4 examples. Each trains --iters steps of batch 12; reported:
validation accuracy and macro-F1 over every validation speech, trainable parameters, wall time.

Part 2, speed against a peer: our decoder classifier against `transformers`' GPT2ForSequenceClassification of the
same shape, on the same batches of the plays, AdamW 1e-3, alternating blocks of 10 steps so that load hits both
sides alike; the first 5 steps excluded. (The peer finds a text's last token from its pad id; the cost per step
does not depend on which token it reads.)

Needs `transformers` (pip install -c constraints.txt -e ".[bench]").
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from engine.config import RunConfig  # noqa: E402
from engine.finetune import build_run_model  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.objectives.registry import get_objective  # noqa: E402
from engine.objectives.text_source import TokenSource  # noqa: E402
from engine.prompt_eval import prompt_eval  # noqa: E402
from engine.run_setup import prepare_run  # noqa: E402
from engine.store import Workspace  # noqa: E402
from engine.train import run_training  # noqa: E402
from plays_dataset import speeches  # noqa: E402
from side_by_side import machine_info, time_steps, timed_tokens  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
MODEL = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0, "bias": False}
PLAYS = ["Coriolanus", "Romeo and Juliet"]
TEMPLATE, VERBALIZER = "{text}\nThis is from", "Coriolanus=Rome,Romeo and Juliet=Verona"


def config(dataset: int, iters: int, lr: float = 1e-3, **parts) -> RunConfig:
    d = {
        "data": {"dataset": dataset},
        "tokenizer": {"kind": "char", "vocab_size": 256},
        "model": dict(MODEL),
        "objective": {},
        "train": {"batch_size": 12, "learning_rate": lr, "min_lr": lr / 10, "warmup_iters": 20, "seed": 1,
                  "max_iters": iters, "lr_decay_iters": iters, "eval_interval": iters, "eval_iters": 20,
                  "log_interval": 50, "device": "cpu", "keep_checkpoints": 0, "probe_attention": False},
    }  # fmt: skip
    for section, values in parts.items():
        d[section].update(values)
    return RunConfig.from_dict(d)


def train(ws: Workspace, cfg: RunConfig) -> dict:
    t0 = time.perf_counter()
    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=lambda e: None) == "finished", ws.run(run["id"])["message"]
    stored = RunConfig.from_dict(ws.run(run["id"])["config"])
    model = build_run_model(build_model, stored, int(ws.token_files(run["tokenizer_id"])["vocab_size"]))
    return {
        "run": run["id"],
        "seconds": time.perf_counter() - t0,
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        **ws.metrics(run["id"], "val")[-1]["metrics"],
    }


def plays_dataset(ws: Workspace, corpus: Path, folder: Path) -> int:
    path = folder / "plays.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "play"])
        w.writerows(speeches(corpus.read_text(encoding="utf-8"), PLAYS))
    return ws.import_dataset([path], "plays", 0.1, label_column="play", split="documents", seed=1)["id"]


# ------------------------------------------------------------------------------------------ part 1: the table


def compare_ways(ws: Workspace, plays: int, lm_run: int, iters: int) -> dict:
    classify = {"name": "classification"}
    start = {"init_from": {"run": lm_run}}
    out = {
        "scratch": train(ws, config(plays, iters, objective=classify)),
        "full": train(ws, config(plays, iters, 3e-4, objective=classify, train=start)),
        "lora": train(ws, config(plays, iters, objective=classify, train={**start, "finetune": "lora"})),
        "prompt_tuning": train(
            ws, config(plays, iters, 0.03, objective=classify, train={**start, "finetune": "prompt_tuning"})
        ),
    }
    for shots in (0, 4):
        t0 = time.perf_counter()
        r = prompt_eval(ws, lm_run, plays, TEMPLATE, VERBALIZER, shots=shots, seed=1, device="cpu")
        out[f"prompt_{shots}"] = {
            "val_class_accuracy": r["class_accuracy"], "val_macro_f1": r["macro_f1"], "trainable": 0,
            "seconds": time.perf_counter() - t0, "n_texts": r["n_texts"],
        }  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------- part 2: the peer


def gpt2_peer(vocab_size: int, pad_id: int):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    return GPT2ForSequenceClassification(
        GPT2Config(
            vocab_size=vocab_size, n_positions=MODEL["block_size"], n_embd=MODEL["n_embd"], n_layer=MODEL["n_layer"],
            n_head=MODEL["n_head"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, num_labels=len(PLAYS),
            pad_token_id=pad_id, bos_token_id=pad_id, eos_token_id=pad_id,
        )
    )  # fmt: skip


def compare_peer(ws: Workspace, plays: int, steps: int) -> dict:
    cfg = config(plays, 1, objective={"name": "classification", "classes": sorted(PLAYS)})
    cfg.model.n_classes = len(PLAYS)
    tok = ws.find_or_train_tokenizer(plays, "char", 256)
    cfg.tokenizer.tokenizer = tok["id"]
    objective = get_objective(cfg)
    objective.read_dataset(ws, plays, ws.load_tokenizer(tok["id"]), tok["spec"])
    source = TokenSource.from_workspace(ws, tok["id"], "train")
    gen = torch.Generator().manual_seed(0)
    batches = [objective.batch(source, 12, gen, torch.device("cpu")) for _ in range(steps)]
    n_tokens = timed_tokens(batches)
    vocab = int(ws.token_files(tok["id"])["vocab_size"])
    torch.manual_seed(0)
    ours = build_model(cfg.model, vocab)
    peer = gpt2_peer(vocab, objective.pad_id)

    def peer_loss(b):
        return peer(input_ids=b.inputs["idx"], attention_mask=b.inputs["key_padding"].long(), labels=b.labels).loss

    sides = {"ours": (ours, lambda b: objective.loss(ours, b).loss), "peer": (peer, peer_loss)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, (m, _) in sides.items()}
    seconds = time_steps(sides, opts, batches)
    params = {k: sum(p.numel() for p in m.parameters()) for k, (m, _) in sides.items()}
    return {
        "params": params,
        "tokens_per_sec": {k: n_tokens / s for k, s in seconds.items()},
        "ratio": seconds["peer"] / seconds["ours"],
    }


# -------------------------------------------------------------------------------------------------- report


def report(ways: dict, lm: dict, peer: dict, args) -> str:
    names = {
        "scratch": "classifier from random weights",
        "full": "fine-tuned from the pre-trained run (every weight)",
        "lora": "LoRA rank 8 on attention + a new head",
        "prompt_tuning": "prompt tuning, 16 vectors + a new head (lr 0.03)",
        "prompt_0": "prompting the pre-trained run, zero-shot",
        "prompt_4": "prompting the pre-trained run, 4 examples",
    }
    lines = [
        f"| way ({args.iters} steps where it trains) | val accuracy | val macro-F1 | trainable parameters | time |",
        "|---|---|---|---|---|",
    ]
    for key, label in names.items():
        w = ways[key]
        lines.append(
            f"| {label} | {100 * w['val_class_accuracy']:.1f} % | {w['val_macro_f1']:.3f} | {w['trainable']:,} "
            f"| {w['seconds']:.0f} s |"
        )
    s, p = peer["tokens_per_sec"], peer["params"]
    lines += [
        "",
        f"Pre-training: {args.pretrain_iters} steps, val perplexity {lm['val_perplexity']:.2f}, {lm['seconds']:.0f} s.",
        "",
        "| side | parameters | tokens/s |",
        "|---|---|---|",
        f"| ours, decoder classifier | {p['ours']:,} | {s['ours'] / 1e3:.1f} k |",
        f"| GPT2ForSequenceClassification | {p['peer']:,} | {s['peer'] / 1e3:.1f} k |",
        "",
        f"ours / peer: {peer['ratio']:.2f} × the speed.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pretrain-iters", type=int, default=600)
    ap.add_argument("--iters", type=int, default=600)
    ap.add_argument("--peer-steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "classify.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws") as ws:
        corpus = ws.import_dataset([args.corpus], "shakespeare", 0.1)["id"]
        plays = plays_dataset(ws, args.corpus, Path(tmp))
        peer = compare_peer(ws, plays, args.peer_steps)
        lm = train(ws, config(corpus, args.pretrain_iters))
        ways = compare_ways(ws, plays, lm["run"], args.iters)
    text = report(ways, lm, peer, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    info = machine_info(args.threads)
    args.out.write_text(json.dumps({"ways": ways, "lm": lm, "peer": peer, "info": info}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
