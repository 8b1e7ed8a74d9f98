"""What a training session records as it goes, besides its checkpoints: metric rows and attention snapshots.

engine/train.py's loop hands them over and goes on: `MetricsBuffer` batches the metric rows on their way to
SQLite (one write per second, not one per step), `AttentionRecorder` stores the attention of a few probe texts
under the run's attention/ folder (engine/attention_probes.py) and reports each snapshot as an event. Neither
draws random numbers nor leaves the model in another mode, so recording changes nothing in the training.
`metric_values` turns an evaluation's summed statistics into the objective's metrics, `TokenSpeed` measures
the tokens per second the training rows log.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from engine import training_events as ev
from engine.attention_snapshots import thin_snapshots
from engine.objectives.catalog import METRIC_LABELS

log = logging.getLogger(__name__)
ATTENTION_DIR = "attention"  # under run_dir: attention/step-NNNNNNNN.npz
METRICS_FLUSH_S = 1.0


def metric_values(split: str, sums: dict[str, tuple]) -> dict:
    """The objective's metrics of a split from its summed statistics (LossOut.stats), in the catalog's order:
    "lm_loss" (summed token losses, tokens) gives "<split>_perplexity", an accuracy (correct, total)
    "<split>_<its name>" as a fraction, "confusion" (a matrix) accuracy, macro-F1 and the matrix. A statistic
    with nothing counted, or too large to write, is left out."""
    out: dict = {}
    if "confusion" in sums:
        out.update(confusion_metrics(split, sums["confusion"][0]))
    for key in METRIC_LABELS:
        if f"{split}_{key}" in out:
            continue
        part, count = sums.get("lm_loss" if key == "perplexity" else key, (0.0, 0.0))
        if not count > 0:
            continue
        value = part / count
        if key == "perplexity":
            if not value < 700:  # exp would overflow; such a model is at chance anyway
                continue
            value = math.exp(value)
        if math.isfinite(value):
            out[f"{split}_{key}"] = value
    return out


def confusion_metrics(split: str, confusion: list[list[float]]) -> dict:
    """Accuracy, macro-F1 and, for the validation split, the matrix itself ("val_confusion", whole counts; rows the
    true class, columns the predicted one) of a classification evaluation. Macro-F1 averages the F1 of every class that occurs in
    the split or is predicted there, so a class the split lacks neither helps nor hurts."""
    m = [[int(round(v)) for v in row] for row in confusion]
    total = sum(map(sum, m))
    if not total:
        return {}
    f1s = []
    for k in range(len(m)):
        tp, actual, predicted = m[k][k], sum(m[k]), sum(row[k] for row in m)
        if actual or predicted:
            f1s.append(2 * tp / (actual + predicted))
    out: dict = {
        f"{split}_class_accuracy": sum(m[k][k] for k in range(len(m))) / total,
        f"{split}_macro_f1": sum(f1s) / len(f1s),
    }
    if split == "val":
        out["val_confusion"] = m
    return out


class TokenSpeed:
    """Tokens per second of training, not evaluation: a window of steps since the last log line, and the sums
    of all windows of this session, which give the last line the run's average speed. The loop adds the tokens
    of each step to `tokens`."""

    def __init__(self):
        self.total_s, self.total_tokens = 0.0, 0
        self.restart()

    def restart(self) -> None:
        """A new window from now; what the old one held is not counted (a pause, an evaluation)."""
        self.start, self.tokens = time.perf_counter(), 0

    def count_window(self) -> tuple[float, int]:
        """Add the window so far to the sums and start a new one; (seconds, tokens) of the window."""
        now = time.perf_counter()
        seconds, tokens = now - self.start, self.tokens
        self.total_s, self.total_tokens = self.total_s + seconds, self.total_tokens + tokens
        self.start, self.tokens = now, 0
        return seconds, tokens


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
        """Write the rows; they stay here when the write fails (a full disk: WorkspaceFull), to be tried again."""
        if self.rows:
            self.ws.add_metrics(self.run_id, self.rows)  # one transaction: all of them, or none
            self.rows = []
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

    def record(self, model, step: int, val_ids, start_id: int | None = None) -> None:
        """Probe `model` at `step`; the texts come from `val_ids` (the validation split's token ids); `start_id`
        is the token an encoder-decoder's decoder starts from (base.decoder_start_id of the run's vocabulary)."""
        if not self.enabled:
            return
        from engine import attention_probes as ins

        t0 = time.perf_counter()
        try:
            tok = self.tokenizer()
            if self.texts is None:
                self.texts = ins.default_probe_texts(tok, val_ids)
            snapshot, heads = ins.probe_model(model, tok, self.texts, start_id=start_id)
            meta, blobs = ins.encode_snapshot(snapshot, heads, step=step)
            meta.update(source="training", checkpoint=None)
            path = ins.save_snapshot(self.folder, step, meta, blobs)
            thin_snapshots(self.folder)  # a long run keeps about MAX_SNAPSHOTS, log-spaced
        except Exception as e:
            log.warning("attention probes of run %s failed", self.run["id"], exc_info=True)
            self.enabled = False
            self.emit(self._off_notice(model, e))
            return
        self.emit(
            ev.AttentionSnapshot(step=step, meta=meta, blobs=blobs, path=str(path), seconds=time.perf_counter() - t0)
        )

    @staticmethod
    def _off_notice(model, e: Exception) -> ev.Notice:
        return ev.Notice("warning", f"attention is not recorded for the rest of this session: {e}")

    def tokenizer(self):
        if self._tokenizer is None:
            from engine.tokenizer import load_tokenizer

            self._tokenizer = load_tokenizer(self.ws.tokenizer_path(self.run["tokenizer_id"]))
        return self._tokenizer
