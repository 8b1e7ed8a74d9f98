"""Export for the Attention panel: the model view, the heatmap and the head view as pictures (PNG, SVG) and the
weights on screen as a NumPy .npz file (plain arrays: it loads without pickle).

A mixin of AttentionPanel, so the panel keeps its export_* methods. It uses the panel's `grid`, `heatmap`,
`head_view`, `tabs`, `message`, `view` (its AttentionView), `render_now()` and `current_snapshot_and_probe()`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from studio.state.attention_view import npz_arrays
from studio.widgets.heatmap import write_svg


def _grab_png(widget):
    def write(target):
        if not widget.grab().save(target, "PNG"):
            raise OSError("the picture could not be written")

    return write


class AttentionExports:
    def export_menu(self) -> list:
        """The Export menu's entries ((label, action), None for a separator)."""
        # Lambdas: a menu action passes `checked`, which must not become the path.
        return [
            ("Model view as PNG…", lambda: self.export_grid_png()),
            ("Model view as SVG…", lambda: self.export_grid_svg()),
            ("Heatmap as PNG…", lambda: self.export_heatmap_png()),
            ("Heatmap as SVG…", lambda: self.export_heatmap_svg()),
            ("Head view as PNG…", lambda: self.export_head_view_png()),
            None,
            ("Weights as .npz…", lambda: self.export_npz()),
        ]

    def _ask_path(self, title: str, suffix: str, filt: str) -> str | None:
        snap, _ = self.current_snapshot_and_probe()
        name = f"attention-run{self.view.history.run}-step{snap.step if snap else 0}{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, title, str(Path.home() / name), filt)
        return path or None

    def _export(self, path, title, suffix, filt, write) -> str | None:
        if path is None:
            path = self._ask_path(title, suffix, filt)
            if path is None:
                return None
        self.render_now()
        try:
            write(str(path))
        except (OSError, ValueError) as e:
            self.message.show_message(f"Could not save {path}: {e}")
            return None
        self.message.show_message(f"Saved {path}", "info")
        return str(path)

    def export_grid_png(self, path: str | None = None) -> str | None:
        return self._export(path, "Save the model view", ".png", "PNG image (*.png)", _grab_png(self.grid))

    def export_grid_svg(self, path: str | None = None) -> str | None:
        return self._export(
            path,
            "Save the model view",
            ".svg",
            "SVG image (*.svg)",
            lambda target: write_svg(self.grid, target, self.grid.render_grid),
        )

    def export_heatmap_png(self, path: str | None = None) -> str | None:
        self.tabs.setCurrentIndex(0)
        return self._export(path, "Save the heatmap", ".png", "PNG image (*.png)", self.heatmap.export_png)

    def export_heatmap_svg(self, path: str | None = None) -> str | None:
        self.tabs.setCurrentIndex(0)
        return self._export(path, "Save the heatmap", ".svg", "SVG image (*.svg)", self.heatmap.export_svg)

    def export_head_view_png(self, path: str | None = None) -> str | None:
        self.tabs.setCurrentIndex(1)
        return self._export(path, "Save the head view", ".png", "PNG image (*.png)", _grab_png(self.head_view))

    def export_npz(self, path: str | None = None) -> str | None:
        """The weights of the text on screen: attn float32 [layer, head, query, key], tokens, ids, labels, step."""
        snap, probe = self.current_snapshot_and_probe()
        if probe is None:
            self.message.show_message("There is no attention on screen to save yet.", "warning")
            return None

        def write(target):
            arrays = npz_arrays(snap, probe, self.view.history.run, self.view.summaries(probe))
            with open(target, "wb") as f:
                np.savez(f, **arrays)

        return self._export(path, "Save the attention weights", ".npz", "NumPy arrays (*.npz)", write)
