"""Benchmark: nanoGPT's baby config on tinyshakespeare through the `studio-engine` CLI, side by side with a
Hugging Face `transformers` GPT-2 of the same shape trained by a plain loop on the same data, in one run.

    python bench/train_baby.py [--iters 2000] [--seeds 1337 1 2] [--corpus ../shared/data/tinyshakespeare.txt]
                               [--out bench/out/train_baby.json]

Both sides: character-level tokens, first 90 % train / last 10 % validation, 4 layers, 4 heads, 128 wide,
context 64, batch 12, AdamW lr 1e-3 -> 1e-4 cosine, warm-up 100, beta2 0.99, weight decay 0.1 on matrices,
grad clip 1.0, dropout 0, eval on 200 batches at the end. Each side runs in its own process so its peak RSS
is its own. Needs `pip install transformers` for the peer (a bench-only dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"

# Runs a module in this interpreter and reports its own peak RSS on exit (ru_maxrss is KiB on Linux).
RSS_WRAPPER = (
    "import atexit, resource, runpy, sys;"
    "atexit.register(lambda: sys.stderr.write('PEAK_RSS_KIB %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss));"
    "mod = sys.argv[1]; sys.argv = sys.argv[1:]; runpy.run_module(mod, run_name='__main__')"
)


def run_ours(corpus: Path, iters: int, ws: Path, seed: int = 1337, extra_sets: list[str] | None = None) -> dict:
    def cli(*args: str, capture_rss: bool = False) -> tuple[str, str]:
        cmd = [sys.executable, "-c", RSS_WRAPPER, "engine.cli", "--workspace", str(ws), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(f"studio-engine {' '.join(args)} failed:\n{out.stderr[-2000:]}")
        return out.stdout, out.stderr

    so, _ = cli("import", str(corpus), "--name", "shakespeare", "--val-fraction", "0.1")
    ds = so.strip().splitlines()[-1]
    so, _ = cli("tokenizer", "train", "--dataset", ds, "--kind", "char", "--vocab-size", "256")
    tok = so.strip().splitlines()[-1]
    sets = [
        f"data.dataset={ds}",
        f"tokenizer.tokenizer={tok}",
        f"train.max_iters={iters}",
        f"train.lr_decay_iters={iters}",
        f"train.eval_interval={iters}",
        "train.eval_iters=200",
        "train.log_interval=100",
        f"train.seed={seed}",
        *(extra_sets or []),
    ]
    args = ["train", "--preset", "baby"]
    for s in sets:
        args += ["--set", s]
    t0 = time.perf_counter()
    so, se = cli(*args)
    wall = time.perf_counter() - t0
    evals = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", so)
    step, train_loss, val_loss = evals[-1]
    rss = int(re.findall(r"PEAK_RSS_KIB (\d+)", se)[-1]) * 1024
    return {
        "val_loss": float(val_loss),
        "train_loss": float(train_loss),
        "wall_s": wall,
        "peak_rss": rss,
        "iters": int(step),
        "stdout_tail": so.strip().splitlines()[-3:],
    }


PEER = r"""
import json, math, sys, time
import numpy as np, torch
from transformers import GPT2Config, GPT2LMHeadModel
corpus, iters, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = open(corpus, encoding="utf-8").read()
chars = sorted(set(text)); stoi = {c: i for i, c in enumerate(chars)}
data = np.array([stoi[c] for c in text], dtype=np.uint16)
n = int(len(data) * 0.9); train, val = data[:n], data[n:]
torch.manual_seed(seed)
B, T = 12, 64
cfg = GPT2Config(vocab_size=len(chars), n_positions=T, n_embd=128, n_layer=4, n_head=4,
                 resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
model = GPT2LMHeadModel(cfg)
decay = [p for p in model.parameters() if p.dim() >= 2]; no_decay = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=1e-3, betas=(0.9, 0.99))
g = torch.Generator().manual_seed(seed)
def batch(split):
    d = train if split == "train" else val
    ix = torch.randint(len(d) - T - 1, (B,), generator=g)
    x = torch.stack([torch.from_numpy(d[i:i+T].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(d[i+1:i+1+T].astype(np.int64)) for i in ix])
    return x, y
def lr_at(it):
    if it < 100: return 1e-3 * (it + 1) / 101
    if it > iters: return 1e-4
    r = (it - 100) / (iters - 100); return 1e-4 + 0.5 * (1 + math.cos(math.pi * r)) * (1e-3 - 1e-4)
model.train(); t0 = time.perf_counter()
for it in range(iters):
    for gr in opt.param_groups: gr["lr"] = lr_at(it)
    x, y = batch("train")
    loss = model(input_ids=x, labels=None).logits
    loss = torch.nn.functional.cross_entropy(loss.view(-1, loss.size(-1)), y.view(-1))
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
train_s = time.perf_counter() - t0
model.eval(); losses = {}
with torch.no_grad():
    for split in ("train", "val"):
        ls = []
        for _ in range(200):
            x, y = batch(split); lg = model(input_ids=x).logits
            ls.append(torch.nn.functional.cross_entropy(lg.view(-1, lg.size(-1)), y.view(-1)).item())
        losses[split] = sum(ls) / len(ls)
print(json.dumps({"val_loss": losses["val"], "train_loss": losses["train"], "train_s": train_s,
                  "ms_per_iter": 1000 * train_s / iters, "tokens_per_sec": iters * B * T / train_s}))
"""


def run_peer(corpus: Path, iters: int, seed: int = 1337) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(PEER)
        script = f.name
    try:
        t0 = time.perf_counter()
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                RSS_WRAPPER.replace(
                    "runpy.run_module(mod, run_name='__main__')", "runpy.run_path(mod, run_name='__main__')"
                ),
                script,
                str(corpus),
                str(iters),
                str(seed),
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
    finally:
        os.unlink(script)
    if out.returncode != 0:
        raise SystemExit(f"peer failed:\n{out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall_s"] = wall
    res["peak_rss"] = int(re.findall(r"PEAK_RSS_KIB (\d+)", out.stderr)[-1]) * 1024
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[1337],
        help="train each side once per seed (the data order and the initial weights)",
    )
    ap.add_argument(
        "--ours-set",
        action="append",
        metavar="SECTION.KEY=VALUE",
        default=[],
        help="change our side's config (e.g. model.bias=true: the peer's GPT-2 has biases)",
    )
    ap.add_argument("--skip-peer", action="store_true", help="train our side only")
    args = ap.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"corpus not found: {args.corpus}")
    import torch

    runs = []
    for seed in args.seeds:
        # Ours and the peer take turns seed by seed, so a machine that gets busier slows both alike.
        with tempfile.TemporaryDirectory() as ws:
            ours = run_ours(args.corpus, args.iters, Path(ws), seed, args.ours_set)
        if args.skip_peer:
            print(f"seed {seed}: ours val {ours['val_loss']:.4f} ({ours['wall_s']:.0f} s)", file=sys.stderr, flush=True)
            runs.append({"seed": seed, "ours": ours})
            continue
        peer = run_peer(args.corpus, args.iters, seed)
        print(
            f"seed {seed}: ours val {ours['val_loss']:.4f} ({ours['wall_s']:.0f} s), "
            f"peer val {peer['val_loss']:.4f} ({peer['wall_s']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        runs.append({"seed": seed, "ours": ours, "peer": peer})
    if args.skip_peer:
        print(json.dumps(runs, indent=2))
        return
    ours, peer = runs[0]["ours"], runs[0]["peer"]

    def stats(side: str, key: str) -> dict:
        xs = [r[side][key] for r in runs]
        mean = sum(xs) / len(xs)
        sd = (sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
        return {"mean": mean, "sd": sd, "values": xs}

    tokens = args.iters * 12 * 64
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "iters": args.iters,
        "seeds": args.seeds,
        "ours": ours | {"tokens_per_sec_wall": tokens / ours["wall_s"]},
        "peer_transformers_gpt2": peer,
        "over_seeds": {
            "ours_val_loss": stats("ours", "val_loss"),
            "peer_val_loss": stats("peer", "val_loss"),
            "ours_wall_s": stats("ours", "wall_s"),
            "peer_wall_s": stats("peer", "wall_s"),
            "ours_peak_rss": stats("ours", "peak_rss"),
            "peer_peak_rss": stats("peer", "peak_rss"),
        },
        "ratios": {
            "wall_time_ours_over_peer": sum(r["ours"]["wall_s"] for r in runs) / sum(r["peer"]["wall_s"] for r in runs),
            "peak_rss_ours_over_peer": ours["peak_rss"] / peer["peak_rss"],
            "val_loss_ours_minus_peer": stats("ours", "val_loss")["mean"] - stats("peer", "val_loss")["mean"],
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
