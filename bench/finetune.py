"""Benchmark: after pre-training, on tinyshakespeare, in one run.

    python bench/finetune.py [--teacher-iters 300] [--student-iters 200] [--peer-steps 60] [--threads 1]
                             [--corpus ../shared/data/tinyshakespeare.txt] [--out bench/out/finetune.json]

Part 1 (LoRA against its peer): a decoder of 4 layers, 4 heads, 128 wide, context 64 (the baby preset's shape),
LoRA rank 8, alpha 16 on the attention matrices, against Hugging Face `peft`'s LoRA of the same rank on a
`transformers` GPT2LMHeadModel of the same shape (its attention's c_attn and c_proj). The same causal-LM batches,
AdamW 1e-3 on the trainable tensors only, alternating blocks of 10 steps so that load hits both sides alike;
the first 5 steps excluded. Full fine-tuning of our model on the same batches is timed beside them.

Part 2 (distillation at equal steps): a teacher of that shape trains --teacher-iters steps through the real
loop; then a student of 2 layers, 2 heads, 64 wide trains --student-iters steps twice from the same seed, once
distilled from the teacher (alpha 0.5, temperature 2) and once on the text alone. Reported: each one's validation
perplexity of the real next token (20 fixed batches) and the distilled student's KL to the teacher.

Needs `transformers` and `peft` (pip install -c constraints.txt -e ".[bench]").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.config import InitFrom, RunConfig, TrainConfig  # noqa: E402
from engine.finetune import prepare_for_finetune  # noqa: E402
from engine.model import build_model  # noqa: E402
from engine.objectives.registry import get_objective  # noqa: E402
from engine.objectives.text_source import TokenSource  # noqa: E402
from engine.run_setup import prepare_run  # noqa: E402
from engine.store import Workspace  # noqa: E402
from engine.train import run_training  # noqa: E402
from side_by_side import machine_info, time_steps, timed_tokens  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
TEACHER = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0, "bias": False}
STUDENT = {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 64, "dropout": 0.0, "bias": False}
RANK, ALPHA = 8, 16.0


def run_config(dataset: int, model: dict, iters: int, **objective) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": dataset},
            "tokenizer": {"kind": "char", "vocab_size": 256},
            "model": model,
            "objective": objective,
            "train": {"batch_size": 12, "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 50, "seed": 1,
                      "max_iters": iters, "lr_decay_iters": iters, "eval_interval": iters, "eval_iters": 20,
                      "log_interval": 50, "device": "cpu", "keep_checkpoints": 0, "probe_attention": False},
        }
    )  # fmt: skip


def train(ws: Workspace, cfg: RunConfig) -> dict:
    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=lambda e: None) == "finished", ws.run(run["id"])["message"]
    return {"run": run["id"], **ws.metrics(run["id"], "val")[-1]["metrics"]}


# --------------------------------------------------------------------------------------------- part 1: LoRA


def peft_peer(vocab_size: int):
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    E, L, H, T = TEACHER["n_embd"], TEACHER["n_layer"], TEACHER["n_head"], TEACHER["block_size"]
    gpt2 = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab_size,
            n_positions=T,
            n_embd=E,
            n_layer=L,
            n_head=H,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )  # fmt: skip
    )
    lora = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=["c_attn", "attn.c_proj"],
                      fan_in_fan_out=True)  # fmt: skip
    return get_peft_model(gpt2, lora)


def compare_lora(ws: Workspace, dataset: int, steps: int) -> dict:
    cfg = run_config(dataset, TEACHER, 1)
    tok = ws.find_or_train_tokenizer(dataset, "char", 256)
    source = TokenSource.from_workspace(ws, tok["id"], "train")
    objective = get_objective(cfg)
    gen = torch.Generator().manual_seed(0)
    batches = [objective.batch(source, 12, gen, torch.device("cpu")) for _ in range(steps)]
    n_tokens = timed_tokens(batches)
    torch.manual_seed(0)
    full = build_model(cfg.model, source.vocab_size)
    ours = build_model(cfg.model, source.vocab_size)
    prepare_for_finetune(ours, TrainConfig(finetune="lora", lora_rank=RANK, lora_alpha=ALPHA, init_from=InitFrom(1)))
    peer = peft_peer(source.vocab_size)
    sides = {
        "lora": (ours, lambda b: objective.loss(ours, b).loss),
        "peer": (peer, lambda b: peer(input_ids=b.inputs["idx"], labels=_gpt2_labels(b)).loss),
        "full": (full, lambda b: objective.loss(full, b).loss),
    }
    opts = {
        k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3) for k, (m, _) in sides.items()
    }
    seconds = time_steps(sides, opts, batches)
    trainable = {k: sum(p.numel() for p in m.parameters() if p.requires_grad) for k, (m, _) in sides.items()}
    return {
        "trainable": trainable,
        "tokens_per_sec": {k: n_tokens / s for k, s in seconds.items()},
        "ratio_vs_peer": seconds["peer"] / seconds["lora"],
        "lora_vs_full": seconds["full"] / seconds["lora"],
    }


def _gpt2_labels(batch) -> torch.Tensor:
    """GPT2LMHeadModel shifts its labels itself: the inputs are its labels (our targets are the inputs one place
    on), so it predicts the same tokens but the window's last."""
    return batch.inputs["idx"]


# ------------------------------------------------------------------------------------- part 2: distillation


def compare_distillation(ws: Workspace, dataset: int, teacher_iters: int, student_iters: int) -> dict:
    teacher = train(ws, run_config(dataset, TEACHER, teacher_iters))
    t0 = time.perf_counter()
    distilled = train(ws, run_config(dataset, STUDENT, student_iters, name="distillation",
                                     teacher_run=teacher["run"]))  # fmt: skip
    distilled["seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    alone = train(ws, run_config(dataset, STUDENT, student_iters))
    alone["seconds"] = time.perf_counter() - t0
    return {"teacher": teacher, "distilled": distilled, "alone": alone}


# -------------------------------------------------------------------------------------------------- report


def report(lora: dict, distill: dict, args) -> str:
    t, s = lora["trainable"], lora["tokens_per_sec"]
    lines = [
        "| side | trainable parameters | tokens/s |",
        "|---|---|---|",
        f"| ours, LoRA rank {RANK} on attention | {t['lora']:,} | {s['lora'] / 1e3:.1f} k |",
        f"| peft LoRA on GPT2LMHeadModel | {t['peer']:,} | {s['peer'] / 1e3:.1f} k |",
        f"| ours, full fine-tuning | {t['full']:,} | {s['full'] / 1e3:.1f} k |",
        "",
        f"LoRA ours / peft: {lora['ratio_vs_peer']:.2f} × the speed; LoRA / full: {lora['lora_vs_full']:.2f} ×.",
        "",
        f"| student ({args.student_iters} steps) | val perplexity | val KL to the teacher |",
        "|---|---|---|",
        f"| teacher ({args.teacher_iters} steps, 4L-128) | {distill['teacher']['val_perplexity']:.2f} | — |",
        f"| distilled (2L-64) | {distill['distilled']['val_perplexity']:.2f} | {distill['distilled']['val_kl']:.3f} |",
        f"| alone (2L-64) | {distill['alone']['val_perplexity']:.2f} | — |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher-iters", type=int, default=300)
    ap.add_argument("--student-iters", type=int, default=200)
    ap.add_argument("--peer-steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "finetune.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp, Workspace(Path(tmp) / "ws") as ws:
        ds = ws.import_dataset([args.corpus], "shakespeare", 0.1)["id"]
        lora = compare_lora(ws, ds, args.peer_steps)
        distill = compare_distillation(ws, ds, args.teacher_iters, args.student_iters)
    text = report(lora, distill, args)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    info = machine_info(args.threads)
    args.out.write_text(json.dumps({"lora": lora, "distillation": distill, "info": info}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
