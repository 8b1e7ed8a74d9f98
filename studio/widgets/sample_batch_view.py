""" "What the model sees": a real batch of the user's dataset as the chosen objective builds it, drawn as token
spans coloured by what the corruption did to each (masked, replaced, unchanged, placeholder, deleted - struck
through -, moved, prefix, kept), the positions that carry loss underlined in bold, the order a permutation LM
predicts them in as small raised numbers, the pair label of sentence-pair tasks, and for encoder-decoder
objectives the input and the target side by side; a legend names the marks the batch shows.

SampleBatchView only draws rows (the engine's SampleBatchReply.rows, engine/objectives/base.py describe());
SampleBatchBox asks the engine for them (p.SampleBatchRequest with the session's config), again ~300 ms after
the objective, its options, the dataset or the tokenizer change, and with a new seed on "Another sample"; while
there is no dataset or no engine it says why.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QTextBrowser, QToolTip, QVBoxLayout, QWidget

from engine import protocol as p
from engine.config import user_message
from studio.state.objective import (
    MARK_WORDS,
    SAMPLE_ROWS,
    SAMPLE_TOKENS,
    has_loss,
    has_target,
    marks_in,
    sample_key,
    why_no_sample,
)
from studio.widgets.form_helpers import guarded, monospace_font, muted_color
from studio.widgets.token_spans import SPAN_TEXT

# Light colours with dark text on them, so a span reads the same in light and dark themes; "kept" tokens keep
# the theme's own colours, so what the objective did stands out.
MARK_COLORS = {
    "masked": "#ffadad",
    "random": "#ffd6a5",
    "unchanged": "#fdffb6",
    "sentinel": "#d0bfff",
    "deleted": "#d9d9d9",
    "moved": "#9bf6ff",
    "prefix": "#bcd4ff",
    "prompt": "#e4dcf5",
    "special": "#c8e6c9",
    "pad": "#eeeeee",
}
DEBOUNCE_MS = 300
_VISIBLE = {"\n": "↵", "\t": "⇥", "\r": "␍"}


def _visible(text: str) -> str:
    for raw, shown in _VISIBLE.items():
        text = text.replace(raw, shown)
    return text


def _span_html(span: dict, rank: int | None = None) -> str:
    """One token; `rank`: its place among the predicted tokens in the factorization order (1 = first)."""
    mark, loss = str(span.get("mark") or "kept"), bool(span.get("loss"))
    style = []
    if mark in MARK_COLORS:
        style += [f"background-color:{MARK_COLORS[mark]}", f"color:{SPAN_TEXT}"]
    decorations = (["underline"] if loss else []) + (["line-through"] if mark == "deleted" else [])
    if decorations:
        style.append(f"text-decoration:{' '.join(decorations)}")
    if loss:
        style.append("font-weight:bold")
    tip = MARK_WORDS.get(mark, mark) + ("; predicted, carries loss" if loss else "")
    if rank is not None:
        tip += f"; predicted {_ordinal(rank)} of the tokens shown"
    text = html.escape(_visible(str(span.get("text", ""))))
    sup = f"<sup>{rank}</sup>" if rank is not None else ""
    # a zero-width space after each token: long rows of tokens wrap between tokens, not inside one
    return f'<span title="{html.escape(tip)}" style="{";".join(style)}">{text}</span>{sup}\u200b'


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _side_html(spans: list[dict]) -> str:
    # the predicted tokens of a permutation LM, ranked by their place in the order
    ordered = sorted((int(s["order"]), i) for i, s in enumerate(spans) if s.get("loss") and s.get("order") is not None)
    ranks = {i: r + 1 for r, (_, i) in enumerate(ordered)}
    return "".join(_span_html(s, ranks.get(i)) for i, s in enumerate(spans))


SIDE_TITLES = {
    "encoder-decoder": ("Input (the encoder reads)", "Target (the decoder writes)"),
    "": ("Input (the model reads)", "Target (what it must predict)"),
}


def rows_html(rows: list[dict], muted: str, arch: str = "") -> str:
    """The batch as HTML: one paragraph per sequence, or a table of input beside target."""
    two = has_target(rows)
    parts = []
    if two:
        left, right = SIDE_TITLES.get(arch, SIDE_TITLES[""])
        parts.append(
            "<table width='100%' cellspacing='0' cellpadding='4'><tr>"
            f"<td width='50%' style='color:{muted}'>{left}</td>"
            f"<td width='50%' style='color:{muted}'>{right}</td></tr>"
        )
    for i, row in enumerate(rows):
        label = row.get("label")
        head = f"<span style='color:{muted}'>{i + 1}</span>&nbsp; "
        if label:
            head += f"<b>{html.escape(str(label))}</b>&nbsp; "
        source, target = _side_html(row.get("input") or []), _side_html(row.get("target") or [])
        if two:
            parts.append(
                f"<tr><td width='50%' style='white-space:pre-wrap'>{head}{source}</td>"
                f"<td width='50%' style='white-space:pre-wrap'>{target}</td></tr>"
            )
        else:
            parts.append(f"<p style='white-space:pre-wrap; margin-bottom:8px'>{head}{source}</p>")
    if two:
        parts.append("</table>")
    return "".join(parts)


def legend_html(rows: list[dict]) -> str:
    chips = []
    for mark in marks_in(rows):
        words = html.escape(MARK_WORDS.get(mark, mark))
        if mark in MARK_COLORS:
            style = f"background-color:{MARK_COLORS[mark]}; color:{SPAN_TEXT}"
            if mark == "deleted":
                style += "; text-decoration:line-through"
            chips.append(f"<span style='{style}'>&nbsp;{words}&nbsp;</span>")
        else:
            chips.append(words)
    if has_loss(rows):
        chips.append("<b><u>underlined</u></b>: predicted, carries loss")
    if any(row.get("label") for row in rows):
        chips.append("<b>bold first</b>: the pair's label, what the model must tell")
    if any(span.get("order") is not None for row in rows for span in row.get("input") or []):
        chips.append("<sup>n</sup>: predicted n-th (the random order)")
    return " &nbsp; ".join(chips)


class SampleBatchView(QWidget):
    """Rows of a sample batch, drawn; or a line saying why there are none."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.message = QLabel()
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.text.setFont(monospace_font())
        self.text.viewport().installEventFilter(self)
        lay.addWidget(self.text, 1)
        self.legend = QLabel()
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.legend)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        lay.addWidget(self.note)
        lay.addStretch(0)
        self.rows: list[dict] = []
        self.show_message("")

    def show_rows(self, rows: list[dict], note: str = "", arch: str = "") -> None:
        """Draw `rows` (SampleBatchReply.rows) of a batch for a model of architecture `arch`."""
        self.rows = list(rows)
        self.message.hide()
        self.text.show()
        self.text.setHtml(rows_html(self.rows, muted_color(self).name(), arch))
        self.legend.setText(legend_html(self.rows))
        self.legend.setVisible(bool(self.rows))
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def show_message(self, text: str) -> None:
        """No batch (yet): say why, in place of the last one."""
        self.rows = []
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.text.clear()
        self.text.hide()
        self.legend.hide()
        self.note.hide()

    def plain_text(self) -> str:
        return self.text.toPlainText()

    def eventFilter(self, obj, event):
        # the span under the mouse says what happened to it (its title in the HTML)
        if obj is self.text.viewport() and event.type() == QEvent.Type.ToolTip:
            tip = self.text.cursorForPosition(event.pos()).charFormat().toolTip()
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.text)
            else:
                QToolTip.hideText()
            return True
        return super().eventFilter(obj, event)


class SampleBatchBox(QGroupBox):
    """ "What the model sees", kept in step with session.config: asks for a new batch when what it depends on
    changes (debounced), shows the newest reply only."""

    def __init__(self, session, parent=None):
        super().__init__("What the model sees", parent)
        self.session = session
        self.seed = 0
        self.pending: str | None = None  # the id of the request whose reply is awaited
        self.shown_key = ""  # the sample_key of the batch on screen (or being asked for)
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.status = QLabel()
        self.status.setWordWrap(True)
        top.addWidget(self.status, 1)
        self.another_button = QPushButton("Another sample")
        self.another_button.setToolTip("Draw other texts from the dataset, corrupted afresh.")
        self.another_button.clicked.connect(self.another)
        top.addWidget(self.another_button)
        lay.addLayout(top)
        self.view = SampleBatchView()
        lay.addWidget(self.view, 1)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.fetch)
        session.configChanged.connect(self.config_changed)
        session.engineStateChanged.connect(self._on_engine_state)  # a bound slot: disconnected when this goes
        self.config_changed()

    def _on_engine_state(self, *_) -> None:
        self.config_changed()

    def config_changed(self) -> None:
        """Ask again soon when the batch on screen no longer matches the config (or there is none)."""
        key = sample_key(self.session.config)
        if key != self.shown_key or not self.view.rows and self.pending is None:
            self.timer.start()

    def another(self) -> None:
        self.seed += 1
        self.fetch()

    def fetch(self) -> None:
        self.timer.stop()
        cfg = self.session.config
        why = why_no_sample(self.session.ready, cfg)
        self.another_button.setEnabled(not why)
        if why:
            self.pending, self.shown_key = None, ""
            self.status.setText("")
            self.view.show_message(why)
            return
        self.shown_key = sample_key(cfg)
        self.status.setText("Drawing a batch…")
        msg = p.SampleBatchRequest(config=cfg.to_dict(), n=SAMPLE_ROWS, seed=self.seed, max_tokens=SAMPLE_TOKENS)
        self.pending = msg.id
        self.session.request(msg, guarded(self, lambda reply, rid=msg.id: self._on_reply(rid, reply)))

    def _on_reply(self, request_id: str, reply) -> None:
        if request_id != self.pending:
            return  # an older request, overtaken by a newer one
        self.pending = None
        if not reply.ok:
            text, _ = user_message(reply.error or "no reason given")
            self.status.setText("")
            self.view.show_message(f"No sample batch: {text}")
            return
        n = len(reply.rows)
        self.status.setText(
            f"{n} text{'s' if n != 1 else ''} of the dataset as this objective gives them to the model."
        )
        self.view.show_rows(reply.rows, reply.note, self.session.config.model.arch)
