"""Benchmark: what watching attention costs a training run, side by side in one process.

    python bench/probe_overhead.py [--iters 500] [--eval-interval 100] [--eval-iters 5] [--repeats 5]
                                   [--threads N] [--corpus ../shared/data/tinyshakespeare.txt] [--out result.json]

nanoGPT's baby config (4 layers, 4 heads, 128 wide, context 64, batch 12, character tokens) on tinyshakespeare,
trained three ways, each `--repeats` times, the order rotating so that a busy spell of the machine does not
land on one side only:
    off          train.probe_attention false, train.keep_checkpoints 0: what training cost before
    probes       attention probes at step 0 and every evaluation (two validation texts + the induction probe,
                 computed on the inspect path, scored, stored as .npz)
    probes+keep  the defaults: probes, and a weights-only checkpoint per evaluation (keep_checkpoints 10)
Every variant evaluates (eval_iters batches) and writes its `latest` checkpoint at the same steps, so the
difference is the probes (and the kept weights). Reported: wall time of run_training per variant (median and
minimum over the repeats) and its overhead in percent against "off", the same for the process's CPU time
(less disturbed by other processes, best with --threads 1); and the added work timed inside the loop
(the "seconds" of each attention event, and the time spent writing kept weights), as a percentage of the "off"
wall time. The in-loop figure is the direct cost, steady whatever else the machine does; the wall-clock
comparison also catches indirect costs but moves by a few percent between identical runs on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
VARIANTS = {
    "off": {"probe_attention": False, "keep_checkpoints": 0},
    "probes": {"probe_attention": True, "keep_checkpoints": 0},
    "probes+keep": {"probe_attention": True, "keep_checkpoints": 10},
}


def _timed(cls, name: str, spent: list[float]) -> None:
    """Wrap method `name` of cls so that each call adds its seconds to spent (the bench only)."""
    original = getattr(cls, name)

    def wrapper(self, *a, **kw):
        t0 = time.perf_counter()
        try:
            return original(self, *a, **kw)
        finally:
            spent.append(time.perf_counter() - t0)

    setattr(cls, name, wrapper)


KEEP_SPENT: list[float] = []


def train_once(
    ws, dataset_id: int, tokenizer_id: int, iters: int, eval_interval: int, eval_iters: int, train_overrides: dict
) -> dict:
    from engine.config import preset
    from engine.run_setup import prepare_run
    from engine.train import run_training

    sets = [
        f"data.dataset={dataset_id}",
        f"tokenizer.tokenizer={tokenizer_id}",
        f"train.max_iters={iters}",
        f"train.lr_decay_iters={iters}",
        f"train.eval_interval={eval_interval}",
        f"train.eval_iters={eval_iters}",
        "train.log_interval=50",
        f"train.checkpoint_interval={iters}",
        "train.device=cpu",
    ]
    sets += [f"train.{k}={json.dumps(v)}" for k, v in train_overrides.items()]
    cfg = preset("baby").with_overrides(sets)
    run = prepare_run(ws, cfg)
    probes, rates = [], []

    def on_event(kind: str, d: dict) -> None:
        if kind == "attention":
            probes.append((d["step"], d["seconds"], sum(len(b) for b in d["blobs"])))
        elif kind == "metrics":
            rates.append(d["tokens_per_sec"])

    KEEP_SPENT.clear()
    t0, c0 = time.perf_counter(), time.process_time()
    state = run_training(ws, run["id"], on_event=on_event)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    keep_s = sum(KEEP_SPENT) if train_overrides.get("keep_checkpoints") else 0.0
    if state != "finished":
        raise SystemExit(f"training ended {state}: {ws.run(run['id'])['message']}")
    run_dir = Path(ws.run_dir(run["id"]))
    disk = {
        sub: sum(p.stat().st_size for p in (run_dir / sub).glob("*")) if (run_dir / sub).is_dir() else 0
        for sub in ("attention", "checkpoints")
    }
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "probe_s": sum(s for _, s, _ in probes),
        "keep_s": keep_s,
        "n_probes": len(probes),
        "first_probe_s": probes[0][1] if probes else None,
        "snapshot_bytes": probes[-1][2] if probes else 0,
        "disk_bytes": disk,
        "median_tokens_per_sec_logged": statistics.median(rates) if rates else None,
        "val_loss": ws.run(run["id"])["best_val_loss"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--eval-interval", type=int, default=100)
    ap.add_argument("--eval-iters", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if not args.corpus.exists():
        raise SystemExit(f"corpus not found: {args.corpus}")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from engine.store import Workspace
    from engine.train import _Training

    _timed(_Training, "keep_weights", KEEP_SPENT)

    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ds = ws.import_dataset([args.corpus], "shakespeare", 0.1)
        tok = ws.train_tokenizer(ds["id"], "char", 256)
        names = list(VARIANTS)
        for rep in range(args.repeats):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            for name in order:
                r = train_once(ws, ds["id"], tok["id"], args.iters, args.eval_interval, args.eval_iters, VARIANTS[name])
                results[name].append(r)
                print(
                    f"repeat {rep + 1}, {name:<12} {r['wall_s']:7.2f} s wall, {r['cpu_s']:7.2f} s CPU, "
                    f"probes {r['probe_s']:.3f} s "
                    f"({r['n_probes']}), kept weights {r['keep_s']:.3f} s, val {r['val_loss']:.4f}",
                    file=sys.stderr,
                    flush=True,
                )
        ws.close()

    tokens = args.iters * 12 * 64
    summary = {}
    base_med = statistics.median(r["wall_s"] for r in results["off"])
    base_min = min(r["wall_s"] for r in results["off"])
    base_cpu = statistics.median(r["cpu_s"] for r in results["off"])
    for name, runs in results.items():
        walls = [r["wall_s"] for r in runs]
        med, low = statistics.median(walls), min(walls)
        summary[name] = {
            "wall_s": walls,
            "wall_median_s": med,
            "wall_min_s": low,
            "tokens_per_sec_median": tokens / med,
            "overhead_pct_median": 100 * (med / base_med - 1),
            "overhead_pct_min": 100 * (low / base_min - 1),
            "cpu_s": [r["cpu_s"] for r in runs],
            "cpu_overhead_pct_median": 100 * (statistics.median(r["cpu_s"] for r in runs) / base_cpu - 1),
            "probe_s_per_run": statistics.median(r["probe_s"] for r in runs),
            "keep_s_per_run": statistics.median(r["keep_s"] for r in runs),
            "in_loop_pct_of_off_wall": 100 * statistics.median(r["probe_s"] + r["keep_s"] for r in runs) / base_med,
            "n_probes": runs[0]["n_probes"],
            "first_probe_s": runs[0]["first_probe_s"],
            "snapshot_bytes": runs[0]["snapshot_bytes"],
            "disk_bytes": runs[0]["disk_bytes"],
            "val_loss": [r["val_loss"] for r in runs],
        }
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__},"
        f" {torch.get_num_threads()} threads",
        "config": {
            "preset": "baby",
            "iters": args.iters,
            "eval_interval": args.eval_interval,
            "eval_iters": args.eval_iters,
            "repeats": args.repeats,
            "tokens_per_run": tokens,
        },
        "variants": summary,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
