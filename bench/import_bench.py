"""Benchmark: importing a corpus and encoding it with byte-level BPE, against raw `tokenizers.encode_batch` on the
same text in the same run; and the peak memory of importing a large corpus.

    python bench/import_bench.py [--size-mb 200] [--rss-size-mb 1024] [--vocab 4096] [--out docs/BENCHMARKS.md]

1. Generates a corpus (Zipf-distributed made-up words, sentences, lines, blank-line separated documents, a few
   non-ASCII characters), `--size-mb` MiB.
2. Imports it into a fresh workspace (Workspace.import_dataset, defaults: one document per file, tail split).
3. Trains a byte-level BPE tokenizer on the first 16 MiB, then encodes the dataset's train.txt and val.txt with
   engine.tokenizer.encode_to_memmap (what Workspace.train_tokenizer does), and, for comparison, the same text
   held in memory with one `encode_batch` call per 64k lines (the raw library, no file reading, no writing).
   The two take turns on the same 8 MiB pieces, so other work on the machine slows both alike.
   Goal: ours >= 0.85x the raw throughput.
4. Imports a `--rss-size-mb` corpus in a child process and reports its peak RSS (goal: well under 1 GiB for
   1 GiB), with and without line de-duplication.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 1 << 20


def generate(path: Path, size_mb: float, seed: int = 0) -> int:
    """Write about size_mb MiB of text; returns its size in bytes."""
    import itertools
    from operator import itemgetter

    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    lengths = rng.integers(1, 11, size=8000)
    base = ["".join(rng.choice(letters, size=n)) for n in lengths]
    base[:6] = ["the", "of", "and", "to", "a", "in"]
    base += ["café", "naïve", "Zürich", "日本", "emoji🙂"]
    zipf = 1.0 / np.arange(1, len(base) + 1)
    # Each word also comes with a full stop, a comma, or capitalised (less often).
    words = base + [w + "." for w in base] + [w + "," for w in base] + [w.capitalize() for w in base]
    p = np.concatenate([zipf * 0.82, zipf * 0.08, zipf * 0.06, zipf * 0.04])
    p /= p.sum()
    seps = ("\n\n", "\n", " ")  # ~12 words a line, ~150 a document
    target = int(size_mb * MiB)
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        while written < target:
            n = 1_000_000
            chosen = itemgetter(*rng.choice(len(words), size=n, p=p))(words)
            gaps = itemgetter(*np.digitize(rng.random(n), [1 / 150, 1 / 12]))(seps)
            block = "".join(itertools.chain.from_iterable(zip(chosen, gaps))).rstrip(" ") + "\n"
            f.write(block)
            written += len(block.encode("utf-8"))
    return path.stat().st_size


def peak_rss_mib() -> float:
    # VmHWM starts afresh at exec; ru_maxrss would include the parent's peak (Linux carries it over a fork).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_import(corpus: str, ws_path: str, options: str) -> None:
    from engine.store import Workspace

    t0 = time.perf_counter()
    with Workspace(Path(ws_path)) as ws:
        ds = ws.import_dataset([Path(corpus)], "big", **json.loads(options))
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - t0,
                "peak_rss_mib": peak_rss_mib(),
                "n_docs": ds["n_docs"],
                "n_bytes": ds["n_bytes"],
            }
        )
    )


def rss_run(corpus: Path, ws: Path, options: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child-import", str(corpus), str(ws), json.dumps(options)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if out.returncode:
        raise SystemExit(f"child import failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=200)
    ap.add_argument("--rss-size-mb", type=float, default=1024)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--tmp", default=None, help="folder for the generated corpora and workspaces")
    ap.add_argument("--out", default=None, help="append a Markdown section with the results to this file")
    ap.add_argument("--child-import", nargs=3, metavar=("CORPUS", "WORKSPACE", "OPTIONS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_import:
        child_import(*args.child_import)
        return

    from engine import tokenizer as tk
    from engine.store import Workspace

    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="import-bench-") as d:
        d = Path(d)
        corpus = d / "corpus.txt"
        t0 = time.perf_counter()
        size = generate(corpus, args.size_mb)
        print(f"generated {size / MiB:.0f} MiB in {time.perf_counter() - t0:.1f} s", flush=True)

        ws = Workspace(d / "ws")
        t0 = time.perf_counter()
        ds = ws.import_dataset([corpus], "corpus")
        t_import = time.perf_counter() - t0
        results["import"] = {"mib": size / MiB, "seconds": t_import, "mib_per_s": size / MiB / t_import}
        print(f"import: {t_import:.1f} s, {size / MiB / t_import:.1f} MiB/s", flush=True)

        sample = d / "sample.txt"
        with open(corpus, "rb") as src, open(sample, "wb") as dst:
            dst.write(src.read(16 * MiB))
        t0 = time.perf_counter()
        tok = tk.train_tokenizer("bytebpe", args.vocab, [sample])
        results["train_16mib_s"] = time.perf_counter() - t0
        print(
            f"trained byte-level BPE ({tok.get_vocab_size()}) on 16 MiB in {results['train_16mib_s']:.1f} s", flush=True
        )

        # Ours and raw take turns on the same 8 MiB pieces of the dataset, so a machine busy with other work
        # slows both alike.
        train_txt, val_txt = ws.dataset_files(ds["id"])
        pieces = split_file([train_txt, val_txt], d / "pieces", 8 * MiB)
        n_bytes = sum(p.stat().st_size for p in pieces)
        t_ours = t_raw = 0.0
        n_ours = n_raw = 0
        for i, piece in enumerate(pieces):
            lines = piece.read_text(encoding="utf-8").splitlines(keepends=True)
            for side in ("ours", "raw") if i % 2 == 0 else ("raw", "ours"):
                t0 = time.perf_counter()
                if side == "ours":
                    n_ours += tk.encode_to_memmap(tok, piece, d / "piece.bin")[0]
                    t_ours += time.perf_counter() - t0
                else:
                    for j in range(0, len(lines), 65536):
                        n_raw += sum(
                            len(e.ids) for e in tok.encode_batch(lines[j : j + 65536], add_special_tokens=False)
                        )
                    t_raw += time.perf_counter() - t0
            print(f"  piece {i + 1}/{len(pieces)}: ours {t_ours:.1f} s, raw {t_raw:.1f} s so far", flush=True)
        print(
            f"ours (encode_to_memmap): {t_ours:.1f} s, {n_bytes / MiB / t_ours:.2f} MiB/s, {n_ours:,} tokens",
            flush=True,
        )
        print(f"raw encode_batch: {t_raw:.1f} s, {n_bytes / MiB / t_raw:.2f} MiB/s, {n_raw:,} tokens", flush=True)
        results["encode"] = {
            "mib": n_bytes / MiB,
            "ours_s": t_ours,
            "raw_s": t_raw,
            "ours_tokens": n_ours,
            "raw_tokens": n_raw,
            "ratio": t_raw / t_ours,
            "end_to_end_ratio": t_raw / (t_ours + t_import),
        }
        print(
            f"ratio ours/raw throughput: {t_raw / t_ours:.3f} (import + encode: {t_raw / (t_ours + t_import):.3f})",
            flush=True,
        )
        shutil_rm(d / "pieces")
        ws.close()
        for p in d.glob("*.bin"):
            p.unlink()
        corpus.unlink()
        sample.unlink()

        big = d / "big.txt"
        t0 = time.perf_counter()
        big_size = generate(big, args.rss_size_mb, seed=1)
        print(f"generated {big_size / MiB:.0f} MiB in {time.perf_counter() - t0:.1f} s", flush=True)
        results["rss"] = {"mib": big_size / MiB}
        for label, options in (
            ("default", {}),
            ("dedupe_lines+collapse", {"cleaning": {"dedupe_lines": True, "collapse_whitespace": True}}),
            ("paragraph docs, split=documents", {"doc_unit": "paragraph", "split": "documents"}),
        ):
            r = rss_run(big, d / f"ws-{len(results['rss'])}", options)
            results["rss"][label] = r
            print(
                f"import {big_size / MiB:.0f} MiB ({label}): {r['seconds']:.1f} s, "
                f"{big_size / MiB / r['seconds']:.1f} MiB/s, peak RSS {r['peak_rss_mib']:.0f} MiB, "
                f"{r['n_docs']:,} documents",
                flush=True,
            )
            shutil_rm(d / f"ws-{len(results['rss']) - 1}")

    print(json.dumps(results, indent=2))
    if args.out:
        append_markdown(Path(args.out), results)


def split_file(paths: list[Path], folder: Path, size: int) -> list[Path]:
    """The files' bytes cut at line ends into pieces of about `size` bytes."""
    folder.mkdir()
    out: list[Path] = []
    buf = b""
    for p in paths:
        with open(p, "rb") as f:
            while True:
                block = f.read(size)
                if not block:
                    break
                buf += block
                cut = buf.rfind(b"\n", 0, size) + 1 if len(buf) >= size else 0
                if cut:
                    out.append(folder / f"{len(out):04d}.txt")
                    out[-1].write_bytes(buf[:cut])
                    buf = buf[cut:]
    if buf:
        out.append(folder / f"{len(out):04d}.txt")
        out[-1].write_bytes(buf)
    return out


def shutil_rm(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def append_markdown(path: Path, r: dict) -> None:
    e, imp = r["encode"], r["import"]
    lines = [
        "",
        f"## Import and byte-level BPE encoding ({time.strftime('%Y-%m-%d')}, `bench/import_bench.py`)",
        "",
        f"Machine: {r['machine']}, Python {r['python']}.",
        "",
        "| what | result |",
        "|---|---|",
        f"| import {imp['mib']:.0f} MiB of text (Workspace.import_dataset) | {imp['seconds']:.1f} s, "
        f"{imp['mib_per_s']:.1f} MiB/s |",
        f"| byte-level BPE encode, ours (encode_to_memmap, from the files) | {e['ours_s']:.1f} s, "
        f"{e['mib'] / e['ours_s']:.2f} MiB/s |",
        f"| byte-level BPE encode, raw `encode_batch` (text in memory) | {e['raw_s']:.1f} s, "
        f"{e['mib'] / e['raw_s']:.2f} MiB/s |",
        f"| ours / raw throughput (goal >= 0.85) | {e['ratio']:.3f} (import + encode: {e['end_to_end_ratio']:.3f}) |",
    ]
    for label, v in r["rss"].items():
        if isinstance(v, dict):
            lines.append(
                f"| import {r['rss']['mib']:.0f} MiB, {label}: peak RSS | {v['peak_rss_mib']:.0f} MiB "
                f"({v['seconds']:.1f} s, {r['rss']['mib'] / v['seconds']:.1f} MiB/s) |"
            )
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
