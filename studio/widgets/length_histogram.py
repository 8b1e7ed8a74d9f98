"""How long the dataset's documents are in tokens: a bar chart of a doc_lengths_reply histogram, a line of
statistics under it, and how many documents the model's context length would cut."""

from __future__ import annotations

import bisect

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine import protocol as p
from engine.format import plural
from studio import theme
from studio.widgets.form_helpers import guarded

SPLITS = (("train", "Training text"), ("val", "Validation text"))
HISTOGRAM_BINS = 30


def longer_than(hist: dict, limit: int) -> tuple[float, bool]:
    """(how many documents are longer than `limit` tokens, exact?) from a histogram's counts and edges.

    Whole bins above the limit count fully; the bin the limit falls in counts in proportion to the part of
    it above the limit (lengths spread evenly inside a bin), so the answer is then an estimate.
    """
    lengths = hist.get("lengths")
    if lengths:  # the engine's sorted sample: an exact count
        return float(len(lengths) - bisect.bisect_right(lengths, limit)), True
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts or len(edges) != len(counts) + 1:
        return 0.0, True
    if limit >= int(hist.get("max", 0)):
        return 0.0, True
    if limit < int(hist.get("min", 0)):
        return float(sum(counts)), True
    total, exact = 0.0, True
    for c, lo, hi in zip(counts, edges, edges[1:]):
        if lo > limit:
            total += c
        elif hi > limit and c:
            total += c * (hi - limit) / (hi - lo) if hi > lo else 0.0
            exact = False
    return total, exact


def stats_text(hist: dict, block_size: int | None) -> str:
    n, sampled = int(hist.get("n_docs", 0)), int(hist.get("sampled", 0))
    if not sampled:
        return "This part of the dataset has no documents."
    docs = plural(sampled, "document") if sampled == n else f"{plural(sampled, 'document')} sampled of {n:,}"
    text = (
        f"{docs} · mean {hist.get('mean', 0):,.1f} · median {hist.get('median', 0):,.0f} · "
        f"95th percentile {hist.get('p95', 0):,.0f} · longest {plural(int(hist.get('max', 0)), 'token')}"
    )
    if block_size:
        over, exact = longer_than(hist, int(block_size))
        share = 100.0 * over / sampled
        count = f"{over:,.0f}" if exact else f"about {over:,.0f}"
        text += (
            f"<br>{count} of {plural(sampled, 'document')} ({share:.0f} %) "
            f"{'is' if sampled == 1 else 'are'} longer than the model's context length of "
            f"{plural(int(block_size), 'token')} (Model panel)"
        )
        if over:
            text += f": the model never sees {'it' if over == 1 else 'them'} whole"
    return text


class LengthHistogram(QWidget):
    """Bar chart of document lengths with a train/validation choice and a statistics line."""

    splitChanged = Signal(str)  # "train" | "val"

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Documents of the"))
        self.split_combo = QComboBox()
        for key, label in SPLITS:
            self.split_combo.addItem(label, key)
        self.split_combo.setToolTip(
            "Which part of the dataset to measure: the text the model trains on, or the held-out text used to check it."
        )
        self.split_combo.currentIndexChanged.connect(lambda _: self.splitChanged.emit(self.split()))
        row.addWidget(self.split_combo)
        self.note = QLabel("")
        self.note.setToolTip("What the chart shows, or why it is empty.")
        row.addWidget(self.note, 1)
        lay.addLayout(row)

        self.plot = pg.PlotWidget()
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "document length (tokens)")
        item.setLabel("left", "documents")
        item.showGrid(x=False, y=True, alpha=0.15)
        item.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMinimumHeight(160)
        self.plot.setToolTip(
            "How many documents have each length, counted in tokens of the tokenizer in use. "
            "The dashed line is the model's context length: documents to its right are longer "
            "than what the model sees at once."
        )
        self.bars = pg.BarGraphItem(
            x0=[],
            x1=[],
            height=[],
            brush=pg.mkBrush(theme.TRAIN_COLOR),
            pen=pg.mkPen(self.palette().color(self.backgroundRole()), width=1),
        )
        item.addItem(self.bars)
        self.context_line = pg.InfiniteLine(
            angle=90,
            movable=False,
            pen=pg.mkPen(theme.VAL_COLOR, width=2, style=Qt.PenStyle.DashLine),
            label="context",
            labelOpts={"position": 0.9, "color": theme.VAL_COLOR},
        )
        self.context_line.hide()
        item.addItem(self.context_line)
        lay.addWidget(self.plot, 1)

        self.stats = QLabel("")
        self.stats.setWordWrap(True)
        self.stats.setToolTip(
            "Mean, median, 95th percentile and longest document length, in tokens. Pick a "
            "context length (Model panel) that most documents fit in, or accept that long "
            "ones are seen in pieces."
        )
        lay.addWidget(self.stats)
        self._hist: dict = {}
        self._block_size: int | None = None

    def split(self) -> str:
        return self.split_combo.currentData()

    def set_loading(self, text: str = "measuring…") -> None:
        self.note.setText(text)

    def set_message(self, text: str) -> None:
        """Empty the chart and say why (no tokenizer, an error)."""
        self._hist = {}
        self.bars.setOpts(x0=[], x1=[], height=[])
        self.context_line.hide()
        self.note.setText("")
        self.stats.setText(text)

    def set_histogram(self, hist: dict, block_size: int | None = None) -> None:
        self._hist = dict(hist or {})
        if block_size is not None:
            self._block_size = int(block_size)
        counts, edges = self._hist.get("counts") or [], self._hist.get("edges") or []
        if len(edges) == len(counts) + 1 and counts:
            # Lengths that are all alike give bins a token wide: widen them for the eye (centres stay put), or a
            # single bar at 80,000 tokens would not be seen.
            span = max(edges[-1], self._block_size or 0, 1)
            half = [max((b - a) / 2, span / 300) for a, b in zip(edges, edges[1:])]
            mids = [(a + b) / 2 for a, b in zip(edges, edges[1:])]
            self.bars.setOpts(
                x0=[m - h for m, h in zip(mids, half)], x1=[m + h for m, h in zip(mids, half)], height=counts
            )
        else:
            self.bars.setOpts(x0=[], x1=[], height=[])
        self.note.setText("")
        self._update_context()
        self.plot.getPlotItem().enableAutoRange()

    def set_block_size(self, block_size: int | None) -> None:
        self._block_size = int(block_size) if block_size else None
        self._update_context()

    def bar_heights(self) -> list[float]:
        return [float(h) for h in (self.bars.opts.get("height") if self.bars.opts.get("height") is not None else [])]

    def histogram(self) -> dict:
        return dict(self._hist)

    def _update_context(self) -> None:
        if not self._hist:
            return
        if self._block_size:
            # shown first: pyqtgraph does not redraw the label of a hidden line
            self.context_line.show()
            self.context_line.setValue(self._block_size)
            self.context_line.label.setFormat(f"context {self._block_size:,}")
        else:
            self.context_line.hide()
        self.stats.setText(stats_text(self._hist, self._block_size))


class DocLengthsView(LengthHistogram):
    """LengthHistogram for the session's tokenizer: asks the engine (doc_lengths_request) only while shown, once
    per tokenizer and split, and marks the Model panel's context length (session.config.model.block_size)."""

    lengthsShown = Signal(int)  # documents counted in the histogram now shown

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._tokenizer: dict | None = None
        self._stale = True
        self._request_id: str | None = None
        self.splitChanged.connect(lambda _: self.set_tokenizer(self._tokenizer))
        session.configChanged.connect(self._on_config)  # a bound method: disconnected when this view goes

    def block_size(self) -> int | None:
        try:
            return int(self.session.config.model.block_size)
        except (AttributeError, TypeError, ValueError):
            return None

    def _on_config(self) -> None:
        self.set_block_size(self.block_size())

    def set_tokenizer(self, tokenizer: dict | None) -> None:
        """Measure with this tokenizer now if the chart is on screen, else when it is next shown."""
        self._tokenizer = tokenizer
        self._stale = True
        self._request_id = None
        if not tokenizer:
            self.set_message("No tokenizer yet: train one to see document lengths in tokens.")
            self._stale = False
        elif self.isVisible():
            self.request_lengths()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale and self._tokenizer:
            self.request_lengths()

    def request_lengths(self) -> str | None:
        t = self._tokenizer
        self._stale = False
        if not t:
            return None
        self.set_loading()
        self._request_id = self.session.request(
            p.DocLengthsRequest(tokenizer=t.get("id", t.get("name")), split=self.split(), bins=HISTOGRAM_BINS),
            on_reply=guarded(self, self._on_reply),
        )
        return self._request_id

    def _on_reply(self, reply) -> None:
        if reply.parent != self._request_id:
            return  # asked for another tokenizer or split since
        if not reply.ok:
            self.set_message(f"Could not measure the documents: {reply.error}")
            return
        self.set_histogram(reply.histogram, self.block_size())
        self.lengthsShown.emit(int(reply.histogram.get("sampled", 0)))
