"""Playground: write a prompt and watch a trained model continue it, token by token; click a token to see how sure
the model was, what else it considered, and where it looked; compare two checkpoints side by side."""
from __future__ import annotations

import math
import random

import numpy as np
from PySide6.QtCore import QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QFont, QFontDatabase, QKeySequence, QPainter, QPalette, QShortcut,
                           QTextCharFormat, QTextCursor)
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QHBoxLayout, QLabel,
                               QPlainTextEdit, QPushButton, QSizePolicy, QSpinBox, QSplitter, QTextBrowser,
                               QTextEdit, QVBoxLayout, QWidget)

from engine import protocol as p
from engine.config import unknown_prompt_message
from studio import theme
from studio.run_names import run_line
from studio.widgets.elided_combo import ElidedComboBox
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded

FLUSH_MS = 33   # streamed tokens are painted at most ~30 times a second
MODES = [("sample", "Sampling"), ("greedy", "Greedy"), ("beam", "Beam search")]
# Confidence colours, low to high (Okabe-Ito vermillion, yellow, sky blue: apart for colour-blind readers too).
CONFIDENCE_STOPS = [(0.0, QColor("#d55e00")), (0.5, QColor("#f0e442")), (1.0, QColor("#56b4e9"))]


def run_label(run: dict) -> str:
    return run_line(run, best=False)


def confidence_color(prob: float, alpha: int = 110) -> QColor:
    """A background for a token the model gave probability `prob` (0..1)."""
    prob = min(1.0, max(0.0, float(prob)))
    for (x0, c0), (x1, c1) in zip(CONFIDENCE_STOPS, CONFIDENCE_STOPS[1:]):
        if prob <= x1:
            f = (prob - x0) / (x1 - x0)
            c = QColor(round(c0.red() + f * (c1.red() - c0.red())), round(c0.green() + f * (c1.green() - c0.green())),
                       round(c0.blue() + f * (c1.blue() - c0.blue())))
            c.setAlpha(alpha)
            return c
    return QColor(CONFIDENCE_STOPS[-1][1])


def visible(text: str) -> str:
    """A token as a person can read it in a list: spaces and line breaks shown."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def prompt_placeholder(text: str, max_words: int = 4, max_chars: int = 32) -> str:
    """'The start of a text, e.g. First Citizen:' from the first words of a dataset's first line of text."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    words = []
    for word in line.split():
        if words and (len(words) == max_words or len(" ".join(words + [word])) > max_chars):
            break
        words.append(word[:max_chars])
    example = " ".join(words)
    return f"The start of a text, e.g. {example}" if example else "The start of a text"


# ------------------------------------------------------------------------------------------------ the output

class TokenText(QTextEdit):
    """Read-only text in which each generated token can be clicked."""

    clicked = Signal(int)    # document position of the character clicked

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor)

    def char_at(self, pos) -> int:
        """Index of the character under a viewport point (cursorForPosition gives the nearest gap instead)."""
        cursor = self.cursorForPosition(pos)
        at = cursor.position()
        if at > 0 and pos.x() < self.cursorRect(cursor).x():
            at -= 1
        return at

    def mouseReleaseEvent(self, event) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and not self.textCursor().hasSelection():
            self.clicked.emit(self.char_at(event.position().toPoint()))


class OutputPane(QFrame):
    """One model's output: the run and checkpoint that write, the text, and its clickable tokens."""

    tokenClicked = Signal(object, int)   # this pane, token index

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = title
        self.request: str | None = None
        self.tokens: list[dict] = []          # {"id", "text", "prob", "entropy", "top", "start", "end"}
        self.prompt_tokens: list[dict] = []   # from the reply: [{"id", "text"}]
        self.token_ids: list[int] = []
        self.generated = ""
        self.pending: list = []               # Token messages not painted yet
        self.selected: int | None = None
        self.colour_by_confidence = True
        self.loaded_run = None                # the run whose checkpoints the checkpoint list holds
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        self.title_label = QLabel(f"<b>{title}</b>")
        head.addWidget(self.title_label)
        self.run_combo = ElidedComboBox("The trained run that writes the text.")
        self.run_combo.setMinimumContentsLength(18)
        head.addWidget(self.run_combo, 1)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip("Which saved checkpoint of the run writes: the latest, or an earlier one "
                                         "to see what the model could do at that point of its training.")
        self.checkpoint_combo.addItem("latest", None)
        # Its items change with the run: sized once for "latest", "step 2,000, val 1.23" would be cut.
        theme.fit_to_contents(self.checkpoint_combo)
        head.addWidget(self.checkpoint_combo)
        lay.addLayout(head)
        self.output = TokenText()
        self.output.setToolTip("The prompt (plain) followed by what the model wrote (coloured). Click a written token "
                               "to see its probability, the alternatives and where the model looked.")
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.output.clicked.connect(self._on_char_clicked)
        lay.addWidget(self.output, 1)
        self.stats_label = theme.description_label("")
        lay.addWidget(self.stats_label)

    def run_id(self):
        return self.run_combo.currentData() if self.run_combo.count() else None

    def checkpoint(self):
        return self.checkpoint_combo.currentData()

    # ------------------------------------------------------------------------------------------------ text
    def start(self, prompt: str) -> None:
        self.output.clear()
        self.tokens, self.prompt_tokens, self.token_ids, self.pending = [], [], [], []
        self.generated = ""
        self.selected = None
        self._insert(prompt, QTextCharFormat())

    def _insert(self, text: str, fmt: QTextCharFormat) -> tuple[int, int]:
        cursor = self.output.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        start = cursor.position()
        cursor.insertText(text, fmt)
        self.output.setTextCursor(cursor)
        return start, cursor.position()

    def token_format(self, token: dict, selected: bool = False) -> QTextCharFormat:
        fmt = QTextCharFormat()
        prob = token.get("prob")
        if self.colour_by_confidence and prob is not None:
            fmt.setBackground(confidence_color(prob))
        else:
            accent = QColor(theme.ACCENT)
            accent.setAlpha(60)
            fmt.setBackground(accent)
            fmt.setFontWeight(QFont.Weight.DemiBold)
        if selected:
            fmt.setFontUnderline(True)
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
            fmt.setFontWeight(QFont.Weight.Bold)
        fmt.setToolTip(self._tooltip(token))
        return fmt

    @staticmethod
    def _tooltip(token: dict) -> str:
        if token.get("prob") is None:
            return "Click for details."
        return f"probability {100 * token['prob']:.1f} % — click for the alternatives"

    def flush(self) -> None:
        """Paint the tokens streamed since the last flush (the panel calls this on its timer)."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        for msg in pending:
            token = {"id": int(msg.token_id), "text": msg.text, "prob": msg.prob, "entropy": msg.entropy,
                     "top": list(msg.top or [])}
            token["start"], token["end"] = self._insert(msg.text, self.token_format(token))
            self.tokens.append(token)
            self.generated += msg.text
        self.output.ensureCursorVisible()

    def add_text(self, text: str) -> None:
        """Text that came without streamed tokens (an older engine): shown whole, highlighted, not clickable."""
        self.generated = text
        accent = QColor(theme.ACCENT)
        accent.setAlpha(60)
        fmt = QTextCharFormat()
        fmt.setBackground(accent)
        self._insert(text, fmt)

    def recolour(self) -> None:
        cursor = QTextCursor(self.output.document())
        for i, token in enumerate(self.tokens):
            cursor.setPosition(token["start"])
            cursor.setPosition(token["end"], QTextCursor.MoveMode.KeepAnchor)
            cursor.setCharFormat(self.token_format(token, selected=i == self.selected))

    def token_at(self, position: int) -> int | None:
        for i, token in enumerate(self.tokens):
            if token["start"] <= position < token["end"]:
                return i
        return None

    def select(self, index: int | None) -> None:
        old, self.selected = self.selected, index
        cursor = QTextCursor(self.output.document())
        for i in (old, index):
            if i is not None and 0 <= i < len(self.tokens):
                token = self.tokens[i]
                cursor.setPosition(token["start"])
                cursor.setPosition(token["end"], QTextCursor.MoveMode.KeepAnchor)
                cursor.setCharFormat(self.token_format(token, selected=i == index))

    def _on_char_clicked(self, position: int) -> None:
        index = self.token_at(position)
        if index is not None:
            self.tokenClicked.emit(self, index)

    def token_center(self, index: int):
        """Where token `index` is on screen, in viewport coordinates (for tests and demos)."""
        token = self.tokens[index]
        cursor = QTextCursor(self.output.document())
        cursor.setPosition(token["start"])
        left = self.output.cursorRect(cursor)
        cursor.setPosition(token["end"])
        right = self.output.cursorRect(cursor)
        x = (left.left() + right.left()) // 2 if right.top() == left.top() else left.left() + 3
        return QPoint(x, left.center().y())

    def attention_query(self, index: int) -> tuple[list[int], int] | None:
        """(ids, position) whose attention row shows where the model looked when it chose token `index`: the row
        of the position just before it, over the prompt and the tokens written before it."""
        if not self.prompt_tokens and not self.token_ids:
            return None
        ids = [int(t["id"]) for t in self.prompt_tokens] + [int(t) for t in self.token_ids[:index]]
        position = len(ids) - 1
        if position < 0:
            return None
        return ids, position


# --------------------------------------------------------------------------------------------- token details

class AlternativesBars(QWidget):
    """The model's top choices at one position as horizontal bars; the chosen token is highlighted."""

    ROW = 20

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[tuple[str, float]] = []
        self.chosen: str | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("What the model considered writing here, with the probability it gave each (temperature "
                        "1). The highlighted bar is the token that was written.")

    def set_rows(self, rows: list, chosen: str | None) -> None:
        self.rows = [(str(t), float(pr)) for t, pr in rows]
        # The engine names alternatives in their readable form (␣ for a space), the chosen token in raw text.
        self.chosen = visible(chosen) if chosen is not None else None
        self.setFixedHeight(max(1, len(self.rows)) * self.ROW + 4)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(260, max(1, len(self.rows)) * self.ROW + 4)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        fm = painter.fontMetrics()
        label_w = min(110, max([fm.horizontalAdvance(visible(t)) for t, _ in self.rows] + [30]) + 8)
        value_w = fm.horizontalAdvance("100.0 %") + 6
        bar_w = max(10, self.width() - label_w - value_w - 4)
        for i, (text, prob) in enumerate(self.rows):
            y = 2 + i * self.ROW
            chosen = visible(text) == self.chosen
            painter.setPen(pal.color(QPalette.ColorRole.WindowText))
            font = painter.font()
            font.setBold(chosen)
            painter.setFont(font)
            painter.drawText(0, y, label_w - 6, self.ROW, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(visible(text), Qt.TextElideMode.ElideRight, label_w - 6))
            color = QColor(theme.ACCENT) if chosen else pal.color(QPalette.ColorRole.Mid)
            painter.fillRect(label_w, y + 3, max(1, int(bar_w * prob)), self.ROW - 6, color)
            painter.drawText(label_w + bar_w + 4, y, value_w, self.ROW,
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, f"{100 * prob:.1f} %")
        painter.end()


class TokenDetails(QWidget):
    """What the model thought at one generated token."""

    attentionWanted = Signal()    # the layer or head changed: redraw from the cached reply

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 0, 0, 0)
        title = QLabel("<b>Token details</b>")
        lay.addWidget(title)
        self.token_label = QLabel("Click a written token to see what the model thought there.")
        self.token_label.setWordWrap(True)
        lay.addWidget(self.token_label)
        self.prob_label = QLabel("")
        self.prob_label.setToolTip("The probability the model gave this token (temperature 1, before top-k/top-p).")
        self.entropy_label = QLabel("")
        self.entropy_label.setWordWrap(True)
        self.entropy_label.setToolTip("Entropy of the model's choice here, in nats: 0 means it was sure; higher "
                                      "means it spread its bets over many tokens.")
        lay.addWidget(self.prob_label)
        lay.addWidget(self.entropy_label)
        lay.addWidget(QLabel("Alternatives"))
        self.bars = AlternativesBars()
        lay.addWidget(self.bars)
        lay.addSpacing(6)
        lay.addWidget(QLabel("<b>Where it looked</b> before writing this token"))
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Layer"))
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Which layer's attention to show (layer 0 reads the tokens first).")
        self.layer_combo.currentIndexChanged.connect(lambda *_: self.attentionWanted.emit())
        pick.addWidget(self.layer_combo)
        pick.addWidget(QLabel("Head"))
        self.head_combo = QComboBox()
        self.head_combo.setToolTip("One head, or the mean of all heads of the layer.")
        # Filled later: sized empty, it cut "mean of heads"; that item is always there, so room for it is reserved.
        self.head_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.head_combo.setMinimumContentsLength(len("mean of heads") + 1)
        self.head_combo.currentIndexChanged.connect(lambda *_: self.attentionWanted.emit())
        pick.addWidget(self.head_combo)
        pick.addStretch(1)
        lay.addLayout(pick)
        self.attention_text = QTextBrowser()
        self.attention_text.setToolTip("The prompt and the tokens written before this one; the stronger the colour, "
                                       "the more attention the model paid to that token when choosing this one.")
        self.attention_text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        lay.addWidget(self.attention_text, 1)
        self.strongest_label = QLabel("")
        self.strongest_label.setWordWrap(True)
        lay.addWidget(self.strongest_label)
        self.setMinimumWidth(260)

    def show_token(self, token: dict, index: int, n_tokens: int) -> None:
        self.token_label.setText(f"Token {index + 1} of {n_tokens}: <b>‘{_html(visible(token['text']))}’</b>"
                                 f" (id {token['id']})")
        prob, entropy = token.get("prob"), token.get("entropy")
        self.prob_label.setText(f"Probability: <b>{100 * prob:.1f} %</b>" if prob is not None else
                                "Probability: not sent by the engine")
        if entropy is not None:
            self.entropy_label.setText(f"Entropy: <b>{entropy:.2f} nats</b> — as unsure as a pick among about "
                                       f"{math.exp(entropy):.1f} equally likely tokens")
        else:
            self.entropy_label.setText("")
        self.bars.set_rows(token.get("top") or [], token["text"])
        self.attention_text.setHtml("")
        self.strongest_label.setText("")

    def set_shape(self, n_layer: int, n_head: int) -> None:
        if self.layer_combo.count() != n_layer:
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            for layer in range(n_layer):
                self.layer_combo.addItem(f"{layer}", layer)
            self.layer_combo.setCurrentIndex(n_layer - 1)
            self.layer_combo.blockSignals(False)
        if self.head_combo.count() != n_head + 1:
            self.head_combo.blockSignals(True)
            self.head_combo.clear()
            self.head_combo.addItem("mean of heads", -1)
            for h in range(n_head):
                self.head_combo.addItem(f"{h}", h)
            self.head_combo.blockSignals(False)

    def show_attention(self, tokens: list[str], weights: np.ndarray) -> None:
        """Colour each earlier token by the weight it got; list the strongest."""
        base = self.palette().color(QPalette.ColorRole.Highlight)
        hi = float(weights.max()) if weights.size else 1.0
        parts = []
        for t, w in zip(tokens, weights):
            alpha = 0.0 if hi <= 0 else float(w) / hi
            color = f"rgba({base.red()},{base.green()},{base.blue()},{alpha:.2f})"
            # Keys come as display tokens (␣ for a space): in running text a space reads better; a line break
            # keeps its ⏎ so that its colour shows.
            shown = _html(t.replace("␣", " ").replace("⏎", "⏎\n")).replace("\n", "<br>")
            parts.append(f'<span style="background-color:{color}" title="{float(w):.3f}">{shown}</span>')
        self.attention_text.setHtml("<div style='white-space: pre-wrap'>" + "".join(parts) + "</div>")
        order = np.argsort(-weights)[:5]
        self.strongest_label.setText("Strongest: " + ", ".join(
            f"‘{_html(visible(tokens[i]))}’ (#{i}) {float(weights[i]):.2f}" for i in order))

    def clear(self) -> None:
        self.token_label.setText("Click a written token to see what the model thought there.")
        self.prob_label.setText("")
        self.entropy_label.setText("")
        self.bars.set_rows([], None)
        self.attention_text.setHtml("")
        self.strongest_label.setText("")

    def show_note(self, text: str) -> None:
        self.attention_text.setHtml(f"<i>{_html(text)}</i>")
        self.strongest_label.setText("")

    def layer(self) -> int:
        return max(0, self.layer_combo.currentIndex())

    def head(self) -> int:
        data = self.head_combo.currentData()
        return -1 if data is None else int(data)


# ------------------------------------------------------------------------------------------------- the panel

class PlaygroundPanel(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self._flush_tokens)
        self._details_for: tuple[OutputPane, int] | None = None
        self._attention_cache: dict[tuple, p.TokenAttentionReply] = {}
        self.last_seed: int | None = None
        self._build()
        self._restore_settings()
        session.workspaceChanged.connect(self._fill_runs)
        session.runSelected.connect(self._on_run_selected)
        session.runUpdated.connect(self._on_run_updated)
        session.engineStateChanged.connect(self._on_engine_state)   # a bound method: disconnected when this panel goes
        self._fill_runs()

    # -------------------------------------------------------------------------- the first pane, as before
    @property
    def pane(self) -> OutputPane:
        return self.panes[0]

    @property
    def run_combo(self) -> QComboBox:
        return self.panes[0].run_combo

    @property
    def output(self) -> TokenText:
        return self.panes[0].output

    @property
    def stats_label(self) -> QLabel:
        return self.panes[0].stats_label

    @property
    def generated(self) -> str:
        return self.panes[0].generated

    @property
    def _request(self) -> str | None:
        return self.panes[0].request

    # ------------------------------------------------------------------------------------------ saved settings
    def _setting_widgets(self) -> dict:
        return {"mode": self.mode_combo, "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p,
                "beam_width": self.beam_width, "length_penalty": self.length_penalty, "max_new": self.max_new,
                "seed": self.seed, "confidence": self.confidence_box}

    def settings(self) -> dict:
        """The sampling settings and the prompt, as kept in the workspace."""
        out = {"prompt": self.prompt.toPlainText()}
        for key, w in self._setting_widgets().items():
            out[key] = w.currentData() if isinstance(w, QComboBox) else \
                w.isChecked() if isinstance(w, QCheckBox) else w.value()
        return out

    def _restore_settings(self) -> None:
        saved = self.session.ui("playground") or {}
        for key, w in self._setting_widgets().items():
            value = saved.get(key)
            if value is None:
                pass
            elif isinstance(w, QComboBox):
                i = w.findData(value)
                if i >= 0:
                    w.setCurrentIndex(i)
            elif isinstance(w, QCheckBox):
                w.setChecked(bool(value))
            elif isinstance(value, (int, float)):
                w.setValue(value)
        if isinstance(saved.get("prompt"), str):
            self.prompt.setPlainText(saved["prompt"])
        for w in self._setting_widgets().values():
            changed = w.currentIndexChanged if isinstance(w, QComboBox) else \
                w.toggled if isinstance(w, QCheckBox) else w.valueChanged
            changed.connect(self._save_settings)
        self.prompt.textChanged.connect(self._save_settings)

    def _save_settings(self, *_) -> None:
        self.session.set_ui("playground", self.settings())

    # --------------------------------------------------------------------------------------------------- build
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(PanelHeader(
            "Playground", "Give a trained model the start of a text and watch it write the rest, one token at a "
                          "time. Click a written token to see what the model was thinking there."))
        split = QSplitter(Qt.Orientation.Horizontal)

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(QLabel("Prompt"))
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText(prompt_placeholder(""))   # the selected run's own text, once known
        self.prompt.setToolTip("The text the model continues. It may be empty: the model then starts from nothing.")
        self.prompt.setMaximumHeight(90)
        self.prompt.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        ll.addWidget(self.prompt)
        outputs = QHBoxLayout()
        self.panes = [OutputPane("Output"), OutputPane("Compared with")]
        for pane in self.panes:
            pane.tokenClicked.connect(self.show_token_details)
            pane.run_combo.currentIndexChanged.connect(lambda *_, pane=pane: self._on_pane_run(pane))
            outputs.addWidget(pane, 1)
        self.panes[1].hide()
        ll.addLayout(outputs, 1)
        split.addWidget(left)

        settings = QWidget()
        side = QVBoxLayout(settings)
        side.setContentsMargins(6, 0, 6, 0)
        form = QFormLayout()
        self.mode_combo = QComboBox()
        for key, name in MODES:
            self.mode_combo.addItem(name, key)
        self.mode_combo.setToolTip("How the next token is chosen. Sampling draws at random from the likely tokens "
                                   "(varied text); greedy always takes the most likely (repeats itself); beam "
                                   "search keeps several candidate texts and returns the most likely whole text.")
        self.mode_combo.currentIndexChanged.connect(lambda *_: self._on_mode())
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 3.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.8)
        self.temperature.setToolTip("Randomness: below 1 picks likely tokens (safer, repetitive); above 1 is "
                                    "wilder. 0.7–1.0 usually reads best.")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 100000)
        self.top_k.setValue(40)
        self.top_k.setSpecialValueText("off")
        self.top_k.setToolTip("Sample only from the k most likely tokens (0 = off). 20–100 keeps text on track.")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.0, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(0.0)
        self.top_p.setSpecialValueText("off")
        self.top_p.setToolTip("Nucleus sampling: keep the smallest set of tokens whose probabilities add up to p "
                              "(0 = off). 0.9 is common.")
        self.beam_width = QSpinBox()
        self.beam_width.setRange(1, 32)
        self.beam_width.setValue(4)
        self.beam_width.setToolTip("How many candidate texts beam search keeps (1 is greedy). 3–8 is usual; more "
                                   "is slower and tends to give blander text.")
        self.length_penalty = QDoubleSpinBox()
        self.length_penalty.setRange(0.0, 3.0)
        self.length_penalty.setSingleStep(0.1)
        self.length_penalty.setValue(1.0)
        self.length_penalty.setToolTip("Beam scores are divided by length to this power: above 1 favours longer "
                                       "texts, below 1 shorter ones, 1 is neutral.")
        self.max_new = QSpinBox()
        self.max_new.setRange(1, 100000)
        self.max_new.setValue(300)
        self.max_new.setSingleStep(50)
        self.max_new.setToolTip("How many tokens to write. More takes longer; you can stop at any time.")
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2_000_000_000)
        self.seed.setValue(-1)
        self.seed.setSpecialValueText("random")
        self.seed.setToolTip("Fix the random seed to get the same text again for the same settings; "
                             "'random' gives a new text each time (in Compare mode both sides share one seed).")
        form.addRow("Mode", self.mode_combo)
        self._rows: dict[str, tuple[QLabel, QWidget]] = {}
        for key, label, widget in (("temperature", "Temperature", self.temperature), ("top_k", "Top-k", self.top_k),
                                   ("top_p", "Top-p", self.top_p), ("beam_width", "Beam width", self.beam_width),
                                   ("length_penalty", "Length penalty", self.length_penalty),
                                   ("max_new", "Max new tokens", self.max_new), ("seed", "Seed", self.seed)):
            lab = QLabel(label)
            form.addRow(lab, widget)
            self._rows[key] = (lab, widget)
        side.addLayout(form)
        self.compare_box = QCheckBox("Compare two models")
        self.compare_box.setToolTip("Write with two checkpoints (of one run or of two runs) side by side, from the "
                                    "same prompt with the same settings and seed.")
        self.compare_box.toggled.connect(self._on_compare)
        side.addWidget(self.compare_box)
        self.confidence_box = QCheckBox("Colour by confidence")
        self.confidence_box.setChecked(True)
        self.confidence_box.setToolTip("Colour each written token by the probability the model gave it: orange-red "
                                       "= unsure, yellow = in between, blue = sure.")
        self.confidence_box.toggled.connect(self._on_confidence)
        side.addWidget(self.confidence_box)
        self.legend = QLabel(" ".join(
            f'<span style="background-color:{confidence_color(x, 255).name()}; color:#000">&nbsp;{int(100 * x)}%&nbsp;'
            '</span>'
            for x in (0.05, 0.3, 0.5, 0.7, 0.95)))
        self.legend.setToolTip("Token colours: the probability the model gave each written token.")
        side.addWidget(self.legend)
        self.generate_button = theme.make_primary(QPushButton("Generate"))
        self.generate_button.setToolTip("Write a continuation of the prompt (Ctrl+Return).")
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop writing now (Esc); what was written so far stays.")
        self.stop_button.clicked.connect(self.stop)
        side.addWidget(self.generate_button)
        side.addWidget(self.stop_button)
        side.addStretch(1)
        split.addWidget(settings)

        self.details = TokenDetails()
        self.details.attentionWanted.connect(self._draw_token_attention)
        split.addWidget(self.details)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 0)
        split.setStretchFactor(2, 3)
        root.addWidget(split, 1)

        self.error_label = MessageLine()
        root.addWidget(self.error_label)

        esc = QShortcut(QKeySequence("Esc"), self)
        esc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        esc.activated.connect(self.stop)
        self._on_mode()
        self._update_buttons()

    def handle_ctrl_return(self) -> bool:
        """Ctrl+Return (the window routes it here while this panel is shown): write, as the Generate button."""
        if self.generate_button.isEnabled():
            self.generate()
        return True

    def _on_mode(self) -> None:
        mode = self.mode_combo.currentData()
        shown = {"sample": ("temperature", "top_k", "top_p", "seed"), "greedy": (),
                 "beam": ("beam_width", "length_penalty")}[mode]
        for key, (label, widget) in self._rows.items():
            on = key in shown or key == "max_new"
            label.setVisible(on)
            widget.setVisible(on)

    def _on_compare(self, on: bool) -> None:
        self.panes[1].setVisible(on)
        self.panes[0].title_label.setText("<b>Output</b>" if not on else "<b>A</b>")
        self.panes[1].title_label.setText("<b>B</b>")
        if on:
            a, b = self.panes
            i = b.run_combo.findData(a.run_id())
            if i >= 0:
                b.run_combo.setCurrentIndex(i)
            self._load_checkpoints(b, prefer_first=True)
        self._update_buttons()

    def _on_confidence(self, on: bool) -> None:
        for pane in self.panes:
            pane.colour_by_confidence = on
            pane.recolour()

    # ---------------------------------------------------------------------------------------------------- runs
    def _fill_runs(self, *_):
        runs = self.session.workspace.get("runs", [])
        for n, pane in enumerate(self.panes):
            current = pane.run_id()
            pane.run_combo.blockSignals(True)
            pane.run_combo.clear()
            for run in runs:
                pane.run_combo.addItem(run_label(run), run.get("id"))
                pane.run_combo.setItemData(pane.run_combo.count() - 1, run_line(run), Qt.ItemDataRole.ToolTipRole)
            pane.run_combo.blockSignals(False)
            want = current if current is not None else self._default_run_id()
            self._select_in_combo(pane.run_combo, want)
            if n == 0 or pane.isVisibleTo(self):
                self._load_checkpoints(pane)     # a run may have new checkpoints since
        self._update_buttons()
        self._update_prompt_placeholder()        # the combo kept its index, so no signal said the run is new

    def _on_run_updated(self, run: dict) -> None:
        """A run's steps or status changed while it trains: its line in both combos follows."""
        for pane in self.panes:
            i = pane.run_combo.findData(run.get("id"))
            if i >= 0:
                pane.run_combo.setItemText(i, run_label(run))
                pane.run_combo.setItemData(i, run_line(run), Qt.ItemDataRole.ToolTipRole)

    def _default_run_id(self):
        s = self.session
        if s.run is not None and int(s.run.get("step") or 0) > 0:
            return s.run.get("id")
        trained = [r for r in s.workspace.get("runs", []) if int(r.get("step") or 0) > 0]
        if trained:
            return trained[-1].get("id")
        return s.run.get("id") if s.run else None

    @staticmethod
    def _select_in_combo(combo: QComboBox, run_id) -> None:
        i = combo.findData(run_id)
        if i >= 0:
            combo.setCurrentIndex(i)

    def _on_run_selected(self, run) -> None:
        if run is not None:
            if self.run_combo.findData(run.get("id")) < 0:
                self._fill_runs()
            self._select_in_combo(self.run_combo, run.get("id"))

    def selected_run_id(self):
        return self.panes[0].run_id()

    def _on_pane_run(self, pane: OutputPane) -> None:
        self._load_checkpoints(pane)
        self._update_buttons()
        if pane is self.panes[0]:
            self._update_prompt_placeholder()

    def _update_prompt_placeholder(self) -> None:
        """An example prompt from the selected run's own dataset: how its text begins."""
        run_id = self.selected_run_id()
        run = next((r for r in (self.session.workspace or {}).get("runs", []) if r.get("id") == run_id), None)
        dataset = (run or {}).get("dataset_id")
        if dataset == getattr(self, "_placeholder_dataset", None):
            return                               # asked already (the workspace is re-read often while training)
        self._placeholder_dataset = dataset
        if dataset is None or self.session.engine_state in ("dead", "stopped"):
            self.prompt.setPlaceholderText(prompt_placeholder(""))
            return

        def done(reply):
            if not reply.ok:
                self._placeholder_dataset = None     # ask again next time
            elif self._placeholder_dataset == dataset:
                self.prompt.setPlaceholderText(prompt_placeholder(reply.text))
        self.session.request(p.DatasetPreviewRequest(dataset=dataset, n_chars=400), guarded(self, done))

    def _load_checkpoints(self, pane: OutputPane, prefer_first: bool = False) -> None:
        """Fill a pane's checkpoint list (CheckpointsRequest); 'latest' stays first."""
        run_id = pane.run_id()
        keep = pane.checkpoint() if pane.loaded_run == run_id else None
        pane.loaded_run = run_id
        if keep is None:
            pane.checkpoint_combo.clear()
            pane.checkpoint_combo.addItem("latest", None)
        if run_id is None or self.session.engine_state in ("dead", "stopped"):
            return

        def done(reply):
            if not reply.ok or pane.run_id() != run_id:
                return
            keep = pane.checkpoint()
            pane.checkpoint_combo.clear()
            pane.checkpoint_combo.addItem("latest", None)
            for row in reply.rows:
                val = row.get("val_loss")
                val = f", val {val:.2f}" if isinstance(val, (int, float)) else ""
                pane.checkpoint_combo.addItem(f"step {int(row.get('step') or 0):,}{val}", row.get("name"))
                pane.checkpoint_combo.setItemData(pane.checkpoint_combo.count() - 1, str(row.get("name")),
                                                  Qt.ItemDataRole.ToolTipRole)
            if prefer_first and pane.checkpoint_combo.count() > 2:
                pane.checkpoint_combo.setCurrentIndex(1)    # the earliest: early vs late is the telling comparison
            elif keep is not None and pane.checkpoint_combo.findData(keep) >= 0:
                pane.checkpoint_combo.setCurrentIndex(pane.checkpoint_combo.findData(keep))
        self.session.request(p.CheckpointsRequest(run=run_id), guarded(self, done))

    # ---------------------------------------------------------------------------------------------- generate
    def active_panes(self) -> list[OutputPane]:
        return self.panes if self.compare_box.isChecked() else self.panes[:1]

    def generate(self) -> None:
        if any(pane.request is not None for pane in self.panes):
            return
        panes = self.active_panes()
        if any(pane.run_id() is None for pane in panes):
            self._show_error("Train a model first: there is no run to generate with yet.")
            return
        self._clear_error()
        prompt = self.prompt.toPlainText()
        mode = self.mode_combo.currentData()
        seed = None if self.seed.value() < 0 else self.seed.value()
        if seed is None and len(panes) > 1 and mode == "sample":
            seed = random.randrange(2 ** 31)    # one seed for both sides, so only the model differs
        self._attention_cache.clear()
        self._details_for = None
        self.details.clear()
        for pane in panes:
            pane.start(prompt)
            msg = p.GenerateRequest(
                run=pane.run_id(), checkpoint=pane.checkpoint(), prompt=prompt, max_new_tokens=self.max_new.value(),
                mode=mode, temperature=self.temperature.value(), top_k=self.top_k.value() or None,
                top_p=self.top_p.value() or None, seed=seed, beam_width=self.beam_width.value(),
                length_penalty=self.length_penalty.value(), details=True)
            pane.stats_label.setText("Writing…")
            # guarded: a reply may come after this panel is gone.
            if pane is self.panes[0]:
                pane.request = self.session.request(msg, guarded(self, self._on_reply), guarded(self, self._on_event))
            else:
                pane.request = self.session.request(
                    msg, guarded(self, lambda r, pane=pane: self._on_pane_reply(pane, r)),
                    guarded(self, lambda m, pane=pane: self._on_pane_event(pane, m)))
        self.last_seed = seed
        self._update_buttons()

    def stop(self) -> None:
        for pane in self.panes:
            if pane.request is not None:
                self.session.cancel(pane.request)

    def _on_event(self, msg) -> None:
        self._on_pane_event(self.panes[0], msg)

    def _on_reply(self, reply) -> None:
        self._on_pane_reply(self.panes[0], reply)

    def _on_pane_event(self, pane: OutputPane, msg) -> None:
        if isinstance(msg, p.Token):
            pane.pending.append(msg)
            if not self._flush.isActive():
                self._flush.start()

    def _flush_tokens(self) -> None:
        for pane in self.panes:
            pane.flush()

    def _on_pane_reply(self, pane: OutputPane, reply) -> None:
        pane.request = None
        pane.flush()
        if reply.ok:
            if not pane.generated and reply.text:
                pane.add_text(reply.text)    # no tokens were streamed (an older engine): show the whole text
            pane.prompt_tokens = list(reply.prompt_tokens or [])
            pane.token_ids = [int(t) for t in (reply.token_ids or [t["id"] for t in pane.tokens])]
            end = " (stopped)" if reply.stopped else (" · the model ended the text" if reply.ended else "")
            n = reply.n_tokens
            stats = f"{n:,} token{'s' * (n != 1)} · {reply.tokens_per_sec:.1f} tok/s{end}"
            # Characters the vocabulary lacks read as [UNK]: say so, or the odd continuation looks like a bug.
            unknown = unknown_prompt_message(list(getattr(reply, "unknown_chars", None) or []))
            pane.stats_label.setText(f"{stats}\n{unknown}" if unknown else stats)
            if self._details_for is not None and self._details_for[0] is pane:
                self._request_token_attention()
        else:
            pane.stats_label.setText("")
            self._show_error(f"Could not generate: {reply.error}")
        self._update_buttons()

    # ------------------------------------------------------------------------------------------ token details
    def show_token_details(self, pane: OutputPane, index: int) -> None:
        """Show what the model thought at token `index` of `pane` (probability, alternatives, attention)."""
        for other in self.panes:
            if other is not pane:
                other.select(None)
        pane.select(index)
        self._details_for = (pane, index)
        self.details.show_token(pane.tokens[index], index, len(pane.tokens))
        self._request_token_attention()

    def _attention_key(self, pane: OutputPane, index: int):
        return (id(pane), pane.run_id(), pane.checkpoint(), index)

    def _request_token_attention(self) -> None:
        pane, index = self._details_for
        if pane.request is not None:
            self.details.show_note("Where the model looked is shown once the text is finished.")
            return
        query = pane.attention_query(index)
        if query is None:
            self.details.show_note("This is the first token: there was nothing before it to look at.")
            return
        key = self._attention_key(pane, index)
        if key in self._attention_cache:
            self._draw_token_attention()
            return
        ids, position = query
        self.details.show_note("Asking the model where it looked…")
        msg = p.TokenAttentionRequest(run=pane.run_id(), checkpoint=pane.checkpoint(), ids=ids, position=position)

        def done(reply):
            if not reply.ok:
                if self._details_for == (pane, index):
                    self.details.show_note(f"Could not get the attention: {reply.error}")
                return
            self._attention_cache[key] = reply
            if self._details_for == (pane, index):
                self._draw_token_attention()
        self.session.request(msg, guarded(self, done))

    def token_attention(self, reply) -> np.ndarray:
        """float32 [layer, head, keys] of a TokenAttentionReply."""
        L, H, n = (int(x) for x in reply.shape)
        return np.frombuffer(reply.buffers[0], dtype="<f2").reshape(L, H, n).astype(np.float32)

    def _draw_token_attention(self) -> None:
        if self._details_for is None:
            return
        reply = self._attention_cache.get(self._attention_key(*self._details_for))
        if reply is None:
            return
        try:
            weights = self.token_attention(reply)
        except (ValueError, IndexError):
            self.details.show_note("The engine's attention reply is damaged.")
            return
        self.details.set_shape(weights.shape[0], weights.shape[1])
        layer, head = self.details.layer(), self.details.head()
        row = weights[layer].mean(axis=0) if head < 0 else weights[layer, head]
        tokens = list(reply.tokens) if len(reply.tokens) == row.size else [f"#{i}" for i in range(row.size)]
        self.details.show_attention(tokens, row)

    # --------------------------------------------------------------------------------------------------- state
    def _on_engine_state(self, *_) -> None:
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = any(pane.request is not None for pane in self.panes)
        engine_ok = self.session.engine_state not in ("dead", "hung", "stopped")
        self.generate_button.setEnabled(not running and engine_ok and self.run_combo.count() > 0)
        self.stop_button.setEnabled(running)

    def _show_error(self, text: str) -> None:
        self.error_label.show_message(text, "error")

    def _clear_error(self) -> None:
        self.error_label.clear_message()
