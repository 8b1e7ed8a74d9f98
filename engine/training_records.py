"""What a training session records as it goes, besides its checkpoints: metric rows and attention snapshots.

engine/train.py's loop hands them over and goes on: `MetricsBuffer` batches the metric rows on their way to
SQLite (one write per second, not one per step), `AttentionRecorder` stores the attention of a few probe texts
under the run's attention/ folder (engine/attention_probes.py) and reports each snapshot as an event. Neither
draws random numbers nor leaves the model in another mode, so recording changes nothing in the training.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from engine import training_events as ev

log = logging.getLogger(__name__)
ATTENTION_DIR = "attention"  # under run_dir: attention/step-NNNNNNNN.npz
METRICS_FLUSH_S = 1.0


class MetricsBuffer:
    """Metric rows on their way to SQLite, written in batches at least every METRICS_FLUSH_S."""

    def __init__(self, ws, run_id: int):
        self.ws = ws
        self.run_id = run_id
        self.rows: list[dict] = []
        self.last_flush = time.monotonic()

    def add(self, row: dict) -> None:
        self.rows.append(row)

    def due(self) -> bool:
        return time.monotonic() - self.last_flush >= METRICS_FLUSH_S

    def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            self.ws.add_metrics(self.run_id, rows)
        self.last_flush = time.monotonic()


class AttentionRecorder:
    """Attention of the probe texts at a step: stored under run_dir/attention and sent as an AttentionSnapshot.

    The texts are chosen once per session, from the validation text. Watching must never end a training: a
    failure turns the recorder off for this session, with a warning.
    """

    def __init__(self, ws, run: dict, run_dir: Path, emit: ev.EventFn, enabled: bool):
        self.ws = ws
        self.run = run
        self.folder = Path(run_dir) / ATTENTION_DIR
        self.emit = emit
        self.enabled = enabled
        self.texts: list[str] | None = None
        self._tokenizer = None

    def record(self, model, step: int, val_data) -> None:
        if not self.enabled:
            return
        from engine import attention_probes as ins

        t0 = time.perf_counter()
        try:
            tok = self.tokenizer()
            if self.texts is None:
                self.texts = ins.default_probe_texts(tok, val_data.array())
            snapshot, heads = ins.probe_model(model, tok, self.texts)
            meta, blobs = ins.encode_snapshot(snapshot, heads, step=step)
            meta.update(source="training", checkpoint=None)
            path = ins.save_snapshot(self.folder, step, meta, blobs)
        except Exception as e:
            log.warning("attention probes of run %s failed", self.run["id"], exc_info=True)
            self.enabled = False
            self.emit(ev.Notice("warning", f"attention is not recorded for the rest of this session: {e}"))
            return
        self.emit(
            ev.AttentionSnapshot(step=step, meta=meta, blobs=blobs, path=str(path), seconds=time.perf_counter() - t0)
        )

    def tokenizer(self):
        if self._tokenizer is None:
            from engine.tokenizer import load_tokenizer

            self._tokenizer = load_tokenizer(self.ws.tokenizer_path(self.run["tokenizer_id"]))
        return self._tokenizer
