"""How long the studio takes to show one attention snapshot, side by side with two peers in the same run.

    .venv/bin/python bench/gui_render.py [--layers 12 --heads 12 --tokens 128 --repeats 15]

"Show" = decode the engine's bytes (float16, lower triangle) + set every thumbnail of the model view + the large
heatmap of one head + paint both (offscreen, synchronous repaint). Each repeat gets a new snapshot (a new step),
so nothing is served from a cache. Peers, each drawing the same L x H grid from the same decoded array:
  - naive pyqtgraph: one PlotItem + ImageItem per head (setImage on each, then repaint);
  - matplotlib (if installed; pip install matplotlib): one imshow per head in a subplot grid, set_data + draw
    (Agg canvas). Artists are created once, outside the timing, so both peers are timed updating, like ours.
Prints the medians and ratios; --markdown prints a table row for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

# Untimed repeats first. Fonts and caches are built on the first paint; and on this VM, memory the process has
# never touched costs ~2.5 ms per MiB the first time (measured: decoding one 256-token snapshot took 95 ms while
# the process grew, 15 ms once it stopped growing), so each path runs until its caches are full.
WARMUP = 6


def make_attention(L: int, H: int, T: int, seed: int) -> np.ndarray:
    """Causal attention with some sharp heads (a previous-token diagonal) and some diffuse ones."""
    rng = np.random.default_rng(seed)
    a = np.tril(rng.random((L, H, T, T), dtype=np.float32) ** 6)
    idx = np.arange(1, T)
    a[:, ::3, idx, idx - 1] += 4.0
    return a / a.sum(-1, keepdims=True)


def encode(attn: np.ndarray, step: int) -> tuple[dict, list[bytes]]:
    """The engine's snapshot format (engine.attention_probes.encode_snapshot), without importing torch."""
    L, H, T, _ = attn.shape
    r, c = np.tril_indices(T)
    blob = np.ascontiguousarray(attn.astype("<f2")[..., r, c]).tobytes()
    names = ["previous-token", "first-token", "self", "local", "induction", "mixed"]
    labels = [
        [{"label": names[(la + h) % 6], "score": 0.5, "explanation": "", "scores": {}} for h in range(H)]
        for la in range(L)
    ]
    meta = {
        "format": 1,
        "step": step,
        "dtype": "<f2",
        "probes": [
            {
                "kind": "text",
                "text": "x" * T,
                "tokens": [f"t{i}" for i in range(T)],
                "ids": list(range(T)),
                "n_dropped": 0,
                "chars_cut": 0,
                "shape": [L, H, T, T],
                "layout": "tril",
                "nbytes": len(blob),
            }
        ],
        "heads": {"scores": {}, "labels": labels},
    }
    return meta, [blob]


def timed(fn, repeats: int) -> list[float]:
    out = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def bench_studio(app, snapshots, T: int, repeats: int) -> list[float]:
    from engine import protocol as p
    from studio.panels.attention import AttentionPanel
    from studio.session import Session

    session = Session(str(Path("/tmp") / "gui-render-bench-ws"))  # no engine: the bench plays its messages
    session._on_messages([p.Status(state="idle")])
    session._apply_workspace({"path": "/tmp", "datasets": [], "tokenizers": [], "runs": []})
    panel = AttentionPanel(session)
    panel.resize(1600, 1000)
    panel.cap_spin.setValue(min(T, 256))  # the large heatmap shows every token
    panel.show()
    panel.history.run = 1
    app.processEvents()

    def show(i):
        meta, blobs = snapshots[i % len(snapshots)]
        session._on_messages([p.Attention(run=1, step=1000 + i, meta=meta, buffers=tuple(blobs))])
        panel.render_now()  # decode + summaries + thumbnails + heatmap
        panel.grid.repaint()
        panel.heatmap.viewport().repaint()

    for i in range(WARMUP):
        show(-1 - i)  # warm-up: see WARMUP
    result = timed(show, repeats)
    assert panel.grid.n_layer == snapshots[0][0]["probes"][0]["shape"][0]
    panel.close()
    return result


def decode_plain(meta, blobs) -> np.ndarray:
    from studio.state.attention import decode_probes

    return decode_probes(meta, blobs)[0].attn


def bench_naive_pyqtgraph(app, snapshots, repeats: int) -> list[float]:
    import pyqtgraph as pg

    L, H = snapshots[0][0]["probes"][0]["shape"][:2]
    win = pg.GraphicsLayoutWidget()
    win.resize(1600, 1000)
    cmap = pg.colormap.get("inferno")
    images = []
    for la in range(L):
        for h in range(H):
            plot = win.addPlot(row=la, col=h)
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            plot.invertY(True)
            img = pg.ImageItem(axisOrder="row-major")
            img.setColorMap(cmap)
            plot.addItem(img)
            images.append(img)
    win.show()
    app.processEvents()

    def show(i):
        attn = decode_plain(*snapshots[i % len(snapshots)])
        for la in range(L):
            for h in range(H):
                images[la * H + h].setImage(attn[la, h], levels=(0.0, 1.0), autoLevels=False)
        win.viewport().repaint()

    for i in range(WARMUP):
        show(i)
    result = timed(show, repeats)
    win.close()
    return result


def bench_matplotlib(snapshots, repeats: int) -> list[float] | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    L, H, T, _ = snapshots[0][0]["probes"][0]["shape"]
    fig, axes = plt.subplots(L, H, figsize=(16, 10), dpi=100)
    axes = np.atleast_2d(axes)
    artists = []
    for la in range(L):
        for h in range(H):
            ax = axes[la, h]
            ax.set_axis_off()
            artists.append(ax.imshow(np.zeros((T, T)), cmap="inferno", vmin=0, vmax=1, interpolation="nearest"))

    def show(i):
        attn = decode_plain(*snapshots[i % len(snapshots)])
        for la in range(L):
            for h in range(H):
                artists[la * H + h].set_data(attn[la, h])
        fig.canvas.draw()

    for i in range(2):
        show(i)
    result = timed(show, repeats)
    plt.close(fig)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from studio import theme

    theme.apply_theme(app)

    L, H, T = args.layers, args.heads, args.tokens
    snapshots = [encode(make_attention(L, H, T, seed), 100 * seed) for seed in range(3)]
    ours = bench_studio(app, snapshots, T, args.repeats)
    naive = bench_naive_pyqtgraph(app, snapshots, args.repeats)
    mpl = bench_matplotlib(snapshots, max(3, args.repeats // 3))

    med = statistics.median
    rows = [("Transformer Studio (HeadGrid mosaic + heatmap)", ours), ("pyqtgraph, one ImageItem per head", naive)]
    if mpl is not None:
        rows.append(("matplotlib imshow grid (Agg)", mpl))
    print(
        f"{L} layers x {H} heads x {T} tokens, {platform.python_version()}, "
        f"{os.cpu_count()} cores, offscreen; median of {args.repeats} (matplotlib: {max(3, args.repeats // 3)})"
    )
    for name, times in rows:
        ratio = med(times) / med(ours)
        print(f"  {name:50s} {med(times):8.1f} ms   (min {min(times):.1f}, max {max(times):.1f})   {ratio:5.1f} x ours")
    if mpl is None:
        print("  matplotlib not installed: pip install matplotlib into .venv to compare with it")
    if args.markdown:
        cells = " | ".join(f"{med(t):.1f} ms" for _, t in rows)
        print(f"| {L}×{H}×{T} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
