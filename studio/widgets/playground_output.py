"""The Playground's output: one pane per model, with the run and checkpoint that write (a RunChooser), the text in
which each written token can be clicked, and a line of statistics. What the pane holds is a GeneratedText
(studio/state/playground.py); the pane paints it."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontDatabase, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QComboBox, QFrame, QHBoxLayout, QLabel, QSizePolicy, QTextEdit, QVBoxLayout, QWidget

from studio import theme
from studio.run_names import run_line
from studio.state.playground import GeneratedText, checkpoint_label, run_label, token_tooltip
from studio.widgets.elided_combo import ElidedComboBox

# Confidence colours, low to high (Okabe-Ito vermillion, yellow, sky blue: apart for colour-blind readers too).
CONFIDENCE_STOPS = [(0.0, QColor("#d55e00")), (0.5, QColor("#f0e442")), (1.0, QColor("#56b4e9"))]


def confidence_color(prob: float, alpha: int = 110) -> QColor:
    """A background for a token the model gave probability `prob` (0..1)."""
    prob = min(1.0, max(0.0, float(prob)))
    for (x0, c0), (x1, c1) in zip(CONFIDENCE_STOPS, CONFIDENCE_STOPS[1:]):
        if prob <= x1:
            f = (prob - x0) / (x1 - x0)
            c = QColor(
                round(c0.red() + f * (c1.red() - c0.red())),
                round(c0.green() + f * (c1.green() - c0.green())),
                round(c0.blue() + f * (c1.blue() - c0.blue())),
            )
            c.setAlpha(alpha)
            return c
    return QColor(CONFIDENCE_STOPS[-1][1])


def confidence_legend() -> str:
    """The legend under 'Colour by confidence': a few probabilities in their colours."""
    return " ".join(
        f'<span style="background-color:{confidence_color(x, 255).name()}; color:#000">&nbsp;{int(100 * x)}%&nbsp;'
        "</span>"
        for x in (0.05, 0.3, 0.5, 0.7, 0.95)
    )


def _accent_background() -> QTextCharFormat:
    accent = QColor(theme.ACCENT)
    accent.setAlpha(60)
    fmt = QTextCharFormat()
    fmt.setBackground(accent)
    return fmt


class TokenText(QTextEdit):
    """Read-only text in which each generated token can be clicked."""

    clicked = Signal(int)  # document position of the character clicked

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


class RunChooser(QWidget):
    """The run that writes and which of its checkpoints: the latest, or an earlier one."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loaded_run = None  # the run whose checkpoints the checkpoint list holds
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.run_combo = ElidedComboBox("The trained run that writes the text.")
        self.run_combo.setMinimumContentsLength(18)
        lay.addWidget(self.run_combo, 1)
        self.checkpoint_combo = QComboBox()
        self.checkpoint_combo.setToolTip(
            "Which saved checkpoint of the run writes: the latest, or an earlier one "
            "to see what the model could do at that point of its training."
        )
        self.checkpoint_combo.addItem("latest", None)
        # Its items change with the run: sized once for "latest", "step 2,000, val 1.23" would be cut.
        theme.fit_to_contents(self.checkpoint_combo)
        lay.addWidget(self.checkpoint_combo)

    def run_id(self):
        return self.run_combo.currentData() if self.run_combo.count() else None

    def checkpoint(self):
        return self.checkpoint_combo.currentData()

    def set_runs(self, runs: list[dict]) -> None:
        """Fill the run list (no signal: the caller then selects the run it wants)."""
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in runs:
            self.run_combo.addItem(run_label(run), run.get("id"))
            self.run_combo.setItemData(self.run_combo.count() - 1, run_line(run), Qt.ItemDataRole.ToolTipRole)
        self.run_combo.blockSignals(False)

    def select_run(self, run_id) -> None:
        i = self.run_combo.findData(run_id)
        if i >= 0:
            self.run_combo.setCurrentIndex(i)

    def update_run(self, run: dict) -> None:
        """A run's steps or status changed while it trains: its line follows."""
        i = self.run_combo.findData(run.get("id"))
        if i >= 0:
            self.run_combo.setItemText(i, run_label(run))
            self.run_combo.setItemData(i, run_line(run), Qt.ItemDataRole.ToolTipRole)

    def reset_checkpoints(self) -> None:
        """A new run: only 'latest' until its checkpoints are known. The checkpoint chosen stays for the same run."""
        run_id = self.run_id()
        if self.loaded_run != run_id or self.checkpoint() is None:
            self.checkpoint_combo.clear()
            self.checkpoint_combo.addItem("latest", None)
        self.loaded_run = run_id

    def set_checkpoints(self, rows: list[dict], prefer_first: bool = False) -> None:
        """The run's checkpoints (a CheckpointsReply's rows); 'latest' stays first, the choice is kept."""
        keep = self.checkpoint()
        combo = self.checkpoint_combo
        combo.clear()
        combo.addItem("latest", None)
        for row in rows:
            combo.addItem(checkpoint_label(row), row.get("name"))
            combo.setItemData(combo.count() - 1, str(row.get("name")), Qt.ItemDataRole.ToolTipRole)
        if prefer_first and combo.count() > 2:
            combo.setCurrentIndex(1)  # the earliest: early vs late is the telling comparison
        elif keep is not None and combo.findData(keep) >= 0:
            combo.setCurrentIndex(combo.findData(keep))


class OutputPane(QFrame):
    """One model's output: the run and checkpoint that write (its own chooser, or one the panel shows above
    every mode), the text, and its clickable tokens."""

    tokenClicked = Signal(object, int)  # this pane, token index

    def __init__(self, title: str, parent=None, chooser: RunChooser | None = None):
        super().__init__(parent)
        self.title = title
        self.text = GeneratedText()
        self.colour_by_confidence = True
        self.echo = True  # the prompt is shown before the text (a decoder continues it; an encoder-decoder does not)
        self.own_chooser = chooser is None
        self.chooser = chooser if chooser is not None else RunChooser()
        # Side by side (Compare), two panes share the width equally, whatever their heads hold.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(self._build_head(title))
        self.output = TokenText()
        self.output.setToolTip(
            "The prompt (plain) followed by what the model wrote (coloured). Click a written token "
            "to see its probability, the alternatives and where the model looked."
        )
        self.output.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.output.clicked.connect(self._on_char_clicked)
        lay.addWidget(self.output, 1)
        self.stats_label = theme.description_label("")
        lay.addWidget(self.stats_label)

    def _build_head(self, title: str) -> QHBoxLayout:
        head = QHBoxLayout()
        self.title_label = QLabel(f"<b>{title}</b>")
        head.addWidget(self.title_label)
        if self.own_chooser:
            head.addWidget(self.chooser, 1)
        else:
            head.addStretch(1)
        return head

    # The text's state, as the pane's own attributes (the panel and its tests read them here).
    request = property(lambda self: self.text.request)
    tokens = property(lambda self: self.text.tokens)
    prompt_tokens = property(lambda self: self.text.prompt_tokens)
    token_ids = property(lambda self: self.text.token_ids)
    generated = property(lambda self: self.text.generated)
    selected = property(lambda self: self.text.selected)
    # The run and checkpoint, as before the chooser was its own widget.
    run_combo = property(lambda self: self.chooser.run_combo)
    checkpoint_combo = property(lambda self: self.chooser.checkpoint_combo)
    loaded_run = property(lambda self: self.chooser.loaded_run)

    def run_id(self):
        return self.chooser.run_id()

    def checkpoint(self):
        return self.chooser.checkpoint()

    def set_runs(self, runs: list[dict]) -> None:
        self.chooser.set_runs(runs)

    def select_run(self, run_id) -> None:
        self.chooser.select_run(run_id)

    def update_run(self, run: dict) -> None:
        self.chooser.update_run(run)

    def reset_checkpoints(self) -> None:
        self.chooser.reset_checkpoints()

    def set_checkpoints(self, rows: list[dict], prefer_first: bool = False) -> None:
        self.chooser.set_checkpoints(rows, prefer_first)

    # ------------------------------------------------------------------------------------------------ text
    def start(self, prompt: str) -> None:
        self.output.clear()
        self.text.start()
        self.stats_label.setText(self.text.stats)
        if self.echo:
            self._insert(prompt, QTextCharFormat())

    def _insert(self, text: str, fmt: QTextCharFormat) -> tuple[int, int]:
        cursor = self.output.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        start = cursor.position()
        cursor.insertText(text, fmt)
        self.output.setTextCursor(cursor)
        return start, cursor.position()

    def token_format(self, token: dict, selected: bool = False) -> QTextCharFormat:
        prob = token.get("prob")
        if self.colour_by_confidence and prob is not None:
            fmt = QTextCharFormat()
            fmt.setBackground(confidence_color(prob))
        else:
            fmt = _accent_background()
            fmt.setFontWeight(QFont.Weight.DemiBold)
        if selected:
            fmt.setFontUnderline(True)
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.SingleUnderline)
            fmt.setFontWeight(QFont.Weight.Bold)
        fmt.setToolTip(token_tooltip(token))
        return fmt

    def queue(self, msg) -> None:
        """A streamed Token message, painted at the next flush."""
        self.text.pending.append(msg)

    def flush(self) -> None:
        """Paint the tokens streamed since the last flush (the panel calls this on its timer)."""
        tokens = self.text.take_pending()
        if not tokens:
            return
        for token in tokens:
            token["start"], token["end"] = self._insert(token["text"], self.token_format(token))
            self.text.written(token)
        self.output.ensureCursorVisible()

    def finish(self, reply) -> None:
        """The reply to this pane's generation: paint what is left, and say how it went."""
        self.flush()
        if self.text.finish(reply):
            # Text that came without streamed tokens (an older engine): shown whole, highlighted, not clickable.
            self._insert(reply.text, _accent_background())
        self.stats_label.setText(self.text.stats)

    def recolour(self) -> None:
        for i in range(len(self.tokens)):
            self._format_token(i)

    def _format_token(self, i: int) -> None:
        token = self.tokens[i]
        cursor = QTextCursor(self.output.document())
        cursor.setPosition(token["start"])
        cursor.setPosition(token["end"], QTextCursor.MoveMode.KeepAnchor)
        cursor.setCharFormat(self.token_format(token, selected=i == self.selected))

    def token_at(self, position: int) -> int | None:
        return self.text.token_at(position)

    def select(self, index: int | None) -> None:
        old, self.text.selected = self.text.selected, index
        for i in (old, index):
            if i is not None and 0 <= i < len(self.tokens):
                self._format_token(i)

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
        return self.text.attention_query(index)
