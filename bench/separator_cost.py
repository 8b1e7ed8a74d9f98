"""What ending every document with the end-of-text token costs when a tokenizer encodes a dataset.

    .venv/bin/python bench/separator_cost.py --size-mb 32 --repeats 3

A generated corpus (bench/import_bench.py's generator: a blank line every ~150 words) is imported with one
document per paragraph, a byte-level BPE tokenizer is trained on its first 16 MiB, and then train.txt is encoded
three ways, taking turns so a busy machine slows all alike:
- **docs**: `encode_to_memmap` with the dataset's document starts and `<|endoftext|>` (what the workspace does);
- **plain**: `encode_to_memmap` without them (the blank line stays, as before documents got the token);
- **raw**: `Tokenizer.encode_batch` on the same text in memory, 64k lines a call (the peer of import_bench.py).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_bench import MiB, generate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tmp", default=None)
    args = ap.parse_args()

    from engine import tokenizer as tk
    from engine.store import Workspace

    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="sep-bench-") as d:
        d = Path(d)
        corpus = d / "corpus.txt"
        size = generate(corpus, args.size_mb)
        ws = Workspace(d / "ws")
        ds = ws.import_dataset([corpus], "corpus", doc_unit="paragraph")
        train_txt, _ = ws.dataset_files(ds["id"])
        starts = ws.document_spans(ds["id"], "train")[1:, 0]
        sample = d / "sample.txt"
        with open(train_txt, "rb") as src, open(sample, "wb") as dst:
            dst.write(src.read(16 * MiB))
        tok = tk.train_tokenizer("bytebpe", 4096, [sample])
        eot = tok.token_to_id(tk.EOT)
        lines = train_txt.read_text(encoding="utf-8").splitlines(keepends=True)
        n_bytes = train_txt.stat().st_size
        print(
            f"{size / MiB:.0f} MiB generated; train.txt {n_bytes / MiB:.1f} MiB, {len(starts) + 1:,} documents",
            flush=True,
        )

        times: dict[str, list[float]] = {"docs": [], "plain": [], "raw": []}
        tokens: dict[str, int] = {}
        order = ["docs", "plain", "raw"]
        for r in range(args.repeats):
            for side in order[r % 3 :] + order[: r % 3]:
                t0 = time.perf_counter()
                if side == "raw":
                    n = sum(
                        len(e.ids)
                        for j in range(0, len(lines), 65536)
                        for e in tok.encode_batch(lines[j : j + 65536], add_special_tokens=False)
                    )
                else:
                    n = tk.encode_to_memmap(
                        tok,
                        train_txt,
                        d / f"{side}.bin",
                        doc_starts=starts if side == "docs" else None,
                        sep_id=eot if side == "docs" else None,
                    )[0]
                times[side].append(time.perf_counter() - t0)
                tokens[side] = n
            print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
        ids = np.fromfile(d / "docs.bin", dtype="uint16")
        n_eot = int(np.count_nonzero(ids == eot))

    med = {k: float(np.median(v)) for k, v in times.items()}
    print()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(
        f"| encode {n_bytes / MiB:.1f} MiB, {len(starts) + 1:,} documents, median of {args.repeats} "
        f"| time | MiB/s | tokens |"
    )
    print("|---|---|---|---|")
    for k, label in (
        ("docs", "ours, documents ended by `<|endoftext|>`"),
        ("plain", "ours, no document tokens"),
        ("raw", "raw `encode_batch`"),
    ):
        print(f"| {label} | {med[k]:.1f} s | {n_bytes / MiB / med[k]:.2f} | {tokens[k]:,} |")
    print(
        f"docs / raw throughput: {med['raw'] / med['docs']:.2f}; docs / plain: {med['plain'] / med['docs']:.2f}; "
        f"{n_eot:,} end-of-text tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
