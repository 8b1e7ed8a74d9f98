"""The Playground's pages for runs that do not just continue a text: Fill mask, Infill, Score a pair and Classify, and the
row of mode buttons that shows only the modes the selected run supports.

Each page is a view: it builds the request its button sends (`message`), says why it cannot ask yet
(`refusal`) and paints the reply (`show_reply`); the Playground panel sends and routes (studio/panels/
playground.py). The words are studio/state/playground_modes.py's, tested without a window."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from studio import theme
from studio.state import playground_modes as pm
from studio.widgets.form_helpers import MessageLine, guarded, monospace_font
from studio.widgets.playground_details import AlternativesBars


class ModeBar(QWidget):
    """One checkable button per mode the run supports (hidden when it supports only one)."""

    modeChosen = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        self.buttons: dict[str, QPushButton] = {}
        for key, label in pm.MODE_LABELS.items():
            button = QPushButton(label)
            button.setCheckable(True)
            button.setToolTip(pm.MODE_TIPS[key])
            button.setProperty("mode", key)
            self.group.addButton(button)
            self.buttons[key] = button
            lay.addWidget(button)
        self.group.buttonClicked.connect(self._on_clicked)
        self.modes: list[str] = []

    def set_modes(self, modes: list[str], current: str | None) -> None:
        """Show these modes' buttons, in this order (the run's own mode first), `current` pressed."""
        if modes != self.modes:
            lay = self.layout()
            for n, key in enumerate([*modes, *(k for k in self.buttons if k not in modes)]):
                lay.removeWidget(self.buttons[key])
                lay.insertWidget(n, self.buttons[key])
        self.modes = list(modes)
        for key, button in self.buttons.items():
            button.setVisible(key in modes and len(modes) > 1)
            button.setChecked(key == current)

    def _on_clicked(self, button: QAbstractButton) -> None:
        self.modeChosen.emit(str(button.property("mode")))


def _text_edit(tip: str, placeholder: str, height: int | None = None) -> QPlainTextEdit:
    edit = QPlainTextEdit()
    edit.setFont(monospace_font())
    edit.setToolTip(tip)
    edit.setPlaceholderText(placeholder)
    if height:
        edit.setMaximumHeight(height)
    return edit


def _key(edit: QPlainTextEdit, keys: str, what: str, slot) -> QShortcut:
    """A key that works while `edit` has the focus (at once: a button's own shortcut clicks 100 ms later)."""
    shortcut = QShortcut(QKeySequence(keys), edit)
    shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
    shortcut.setWhatsThis(what)  # the Keyboard shortcuts page lists it in these words
    shortcut.activated.connect(slot)
    return shortcut


def _result_view(tip: str) -> QTextBrowser:
    view = QTextBrowser()
    view.setFont(monospace_font())
    view.setToolTip(tip)
    return view


class ModePage(QWidget):
    """What the three pages share: a primary button that asks the model (one question at a time), a line that says
    how it went, and the settings kept in the workspace."""

    changed = Signal()  # something kept in the workspace changed
    askPressed = Signal()
    busyChanged = Signal()
    failed_words = "Could not ask the model"

    def __init__(self, button_text: str, button_tip: str, parent=None):
        super().__init__(parent)
        self.request: str | None = None  # the question the model has not answered yet
        self.ask_button = theme.make_primary(QPushButton(button_text))
        self.ask_button.setToolTip(button_tip)
        self.ask_button.clicked.connect(self.askPressed.emit)
        self.status_label = theme.description_label("")
        self.error_label = MessageLine()

    def refusal(self) -> str:
        return ""

    def message(self, run, checkpoint) -> p.Message:
        raise NotImplementedError

    def ask(self, session, run, checkpoint) -> None:
        """Send this page's question about checkpoint `checkpoint` of run `run`; the reply is painted here."""
        if self.request is not None:
            return
        why = self.refusal()
        if why:
            self.status_label.setText("")
            self.error_label.show_message(why, "warning")
            return
        self.start()
        msg = self.message(run, checkpoint)
        # Kept before sending: the Session may answer at once (the engine has just died), and that answer must
        # find the request it ends, or the page would stay busy.
        self.request = msg.id
        self.busyChanged.emit()
        session.request(msg, guarded(self, lambda reply, rid=msg.id: self._on_reply(rid, reply)))

    def _on_reply(self, request_id: str, reply) -> None:
        if request_id != self.request:
            return
        self.request = None
        if reply.ok:
            self.show_reply(reply)
        else:
            self.show_error(f"{self.failed_words}: {reply.error}")
        self.busyChanged.emit()

    def start(self) -> None:
        self.error_label.clear_message()
        self.status_label.setText("Asking the model…")

    def show_error(self, text: str) -> None:
        self.status_label.setText("")
        self.error_label.show_message(text, "error")

    def show_reply(self, reply) -> None:
        raise NotImplementedError

    def values(self) -> dict:
        return {}

    def restore(self, saved: dict) -> None:
        pass


class FillMaskPage(ModePage):
    """Type a text with [MASK] (or select characters and press Ctrl+M): the model's best guesses per blank."""

    def __init__(self, parent=None):
        super().__init__("Fill", "Ask the model for its best guesses at every [MASK] (Ctrl+Return).", parent)
        self.failed_words = "Could not fill the blanks"
        self.masks: list[dict] = []
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        left = QVBoxLayout()
        left.addWidget(QLabel("Text with blanks"))
        self.edit = _text_edit(
            "Write [MASK] where a word is missing, or select characters and press Ctrl+M.",
            "e.g. To be or not to [MASK], that is the question",
            110,
        )
        self.edit.textChanged.connect(lambda *_: self.changed.emit())
        left.addWidget(self.edit)
        left.addLayout(self._build_row())
        left.addWidget(self.error_label)  # under the button that asked, where the eye is
        left.addWidget(QLabel("Filled in"))
        self.result = _result_view("The text with each blank filled by the model's best guess (numbered).")
        left.addWidget(self.result, 1)
        left.addWidget(self.status_label)
        lay.addLayout(left, 3)
        lay.addWidget(self._build_guesses(), 2)

    def _build_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.mask_button = QPushButton("Mask selection")
        self.mask_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the text keeps its selection and focus
        self.mask_button.setToolTip("Turn the selected characters into [MASK] (Ctrl+M in the text).")
        self.mask_button.clicked.connect(self.mask_selection)
        _key(self.edit, "Ctrl+M", "Turn the selected characters into [MASK]", self.mask_selection)
        row.addWidget(self.mask_button)
        row.addWidget(QLabel("Guesses per blank"))
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 50)
        self.top_k.setValue(5)
        self.top_k.setToolTip("How many of the model's best guesses to list for each blank.")
        self.top_k.valueChanged.connect(lambda *_: self.changed.emit())
        row.addWidget(self.top_k)
        row.addStretch(1)
        row.addWidget(self.ask_button)
        return row

    def _build_guesses(self) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(6, 0, 0, 0)
        lay.addWidget(QLabel("<b>Best guesses</b> for each blank"))
        self.guesses = QWidget()
        self.guesses_layout = QVBoxLayout(self.guesses)
        self.guesses_layout.setContentsMargins(0, 0, 0, 0)
        self.guesses_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.guesses)
        lay.addWidget(scroll, 1)
        box.setMinimumWidth(260)
        return box

    def mask_selection(self) -> None:
        """The selected characters (or the cursor's place) become [MASK]."""
        cursor = self.edit.textCursor()
        text, at = pm.mask_selection(self.edit.toPlainText(), cursor.selectionStart(), cursor.selectionEnd())
        self.edit.setPlainText(text)
        cursor = self.edit.textCursor()
        cursor.setPosition(at)
        self.edit.setTextCursor(cursor)
        self.edit.setFocus()

    def refusal(self) -> str:
        return pm.fill_mask_refusal(self.edit.toPlainText())

    def message(self, run, checkpoint) -> p.Message:
        self._asked = self.edit.toPlainText()
        return p.FillMaskRequest(run=run, checkpoint=checkpoint, text=self._asked, top_k=self.top_k.value())

    def show_reply(self, reply) -> None:
        self.masks = list(reply.masks or [])
        self.result.setHtml(pm.fill_mask_html(getattr(self, "_asked", self.edit.toPlainText()), self.masks))
        while self.guesses_layout.count() > 1:
            item = self.guesses_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.bars: list[AlternativesBars] = []
        for n, mask in enumerate(self.masks):
            rows = pm.candidate_rows(mask)
            bars = AlternativesBars()
            bars.setToolTip("The model's best guesses for this blank, with the probability it gave each.")
            bars.set_rows(rows, rows[0][0] if rows else None)
            self.guesses_layout.insertWidget(2 * n, QLabel(pm.mask_heading(n)))
            self.guesses_layout.insertWidget(2 * n + 1, bars)
            self.bars.append(bars)
        self.status_label.setText(f"The model read {len(reply.tokens or [])} tokens." if reply.tokens else "")

    def values(self) -> dict:
        return {"text": self.edit.toPlainText(), "top_k": self.top_k.value()}

    def restore(self, saved: dict) -> None:
        if isinstance(saved.get("text"), str):
            self.edit.setPlainText(saved["text"])
        if isinstance(saved.get("top_k"), int):
            self.top_k.setValue(saved["top_k"])


class InfillPage(ModePage):
    """Mark gaps in a text (Gap, Ctrl+G); the model writes what goes in each, highlighted in the text."""

    def __init__(self, parent=None):
        super().__init__("Fill gaps", "Ask the model to write what goes in each gap (Ctrl+Return).", parent)
        self.failed_words = "Could not fill the gaps"
        self.fills: list[str] = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Text with gaps"))
        self.edit = _text_edit(
            f"Put the cursor where text is missing and press Gap (Ctrl+G); a gap shows as {pm.GAP}.",
            f"e.g. ROMEO: But soft, what light {pm.GAP} window breaks?",
            110,
        )
        self.edit.textChanged.connect(lambda *_: self.changed.emit())
        lay.addWidget(self.edit)
        lay.addLayout(self._build_row())
        lay.addWidget(self.error_label)
        lay.addWidget(QLabel("Filled in"))
        self.result = _result_view("The text with what the model wrote in each gap highlighted.")
        lay.addWidget(self.result, 1)
        self.fills_label = theme.description_label("")
        lay.addWidget(self.fills_label)
        lay.addWidget(self.status_label)

    def _build_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.gap_button = QPushButton("Gap")
        self.gap_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.gap_button.setToolTip("Insert a gap at the cursor; selected text becomes the gap (Ctrl+G in the text).")
        self.gap_button.clicked.connect(self.insert_gap)
        _key(self.edit, "Ctrl+G", "Insert a gap at the cursor", self.insert_gap)
        row.addWidget(self.gap_button)
        row.addWidget(QLabel("Mode"))
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Greedy", "greedy")
        self.mode_combo.addItem("Sampling", "sample")
        self.mode_combo.setToolTip("Greedy writes the most likely fill; sampling draws one at random.")
        self.mode_combo.currentIndexChanged.connect(self._on_mode)
        row.addWidget(self.mode_combo)
        self.temperature_label = QLabel("Temperature")
        row.addWidget(self.temperature_label)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.05, 3.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(0.8)
        self.temperature.setToolTip("Randomness of sampling: below 1 is safer, above 1 wilder.")
        self.temperature.valueChanged.connect(lambda *_: self.changed.emit())
        row.addWidget(self.temperature)
        row.addWidget(QLabel("Tokens per gap"))
        self.max_new = QSpinBox()
        self.max_new.setRange(1, 512)
        self.max_new.setValue(32)
        self.max_new.setToolTip("The most tokens the model may write into one gap.")
        self.max_new.valueChanged.connect(lambda *_: self.changed.emit())
        row.addWidget(self.max_new)
        row.addStretch(1)
        row.addWidget(self.ask_button)
        self._on_mode()
        return row

    def _on_mode(self, *_) -> None:
        sampling = self.mode_combo.currentData() == "sample"
        self.temperature_label.setVisible(sampling)
        self.temperature.setVisible(sampling)
        self.changed.emit()

    def insert_gap(self) -> None:
        self.edit.textCursor().insertText(pm.GAP)
        self.edit.setFocus()

    def refusal(self) -> str:
        return pm.infill_refusal(self.edit.toPlainText())

    def message(self, run, checkpoint) -> p.Message:
        self.segments = pm.split_gaps(self.edit.toPlainText())
        return p.InfillRequest(
            run=run,
            checkpoint=checkpoint,
            segments=self.segments,
            max_new_tokens=self.max_new.value(),
            mode=self.mode_combo.currentData(),
            temperature=self.temperature.value(),
        )

    def show_reply(self, reply) -> None:
        self.fills = [str(f) for f in (reply.fills or [])]
        self.result.setHtml(pm.infill_html(self.segments, self.fills))
        self.fills_label.setText(pm.fills_text(self.fills))
        self.status_label.setText("")

    def values(self) -> dict:
        return {
            "text": self.edit.toPlainText(),
            "mode": self.mode_combo.currentData(),
            "temperature": self.temperature.value(),
            "max_new": self.max_new.value(),
        }

    def restore(self, saved: dict) -> None:
        if isinstance(saved.get("text"), str):
            self.edit.setPlainText(saved["text"])
        i = self.mode_combo.findData(saved.get("mode"))
        if i >= 0:
            self.mode_combo.setCurrentIndex(i)
        for key in ("temperature", "max_new"):
            if isinstance(saved.get(key), (int, float)):
                getattr(self, key).setValue(saved[key])


class PairPage(ModePage):
    """Two texts, A and B: how likely B follows A (next-sentence prediction) or A and B are in order (sentence
    order), in words and as a bar."""

    def __init__(self, parent=None):
        super().__init__("Score", "Ask the model about the two texts (Ctrl+Return).", parent)
        self.failed_words = "Could not score the pair"
        self.task = "nsp"
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.question = QLabel(f"<b>{pm.pair_question(self.task)}</b>")
        lay.addWidget(self.question)
        lay.addWidget(QLabel("A"))
        self.a_edit = _text_edit("The first text.", "e.g. The sun had set over the hills.", 90)
        lay.addWidget(self.a_edit)
        lay.addWidget(QLabel("B"))
        self.b_edit = _text_edit("The second text.", "e.g. Soon it was dark in the valley.", 90)
        lay.addWidget(self.b_edit)
        for edit in (self.a_edit, self.b_edit):
            edit.textChanged.connect(lambda *_: self.changed.emit())
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.ask_button)
        lay.addLayout(row)
        self.answer_label = theme.title_label("")
        lay.addWidget(self.answer_label)
        self.bar = AlternativesBars(plain=True)
        self.bar.setToolTip("The model's probability for the answer above.")
        self.bar.setMaximumWidth(640)  # a bar across the whole window is hard to read against its number
        lay.addWidget(self.bar)
        self.words_label = QLabel("")
        self.words_label.setWordWrap(True)
        lay.addWidget(self.words_label)
        lay.addWidget(self.status_label)
        lay.addWidget(self.error_label)
        lay.addStretch(1)

    def set_task(self, task: str) -> None:
        self.task = task
        self.question.setText(f"<b>{pm.pair_question(task)}</b>")

    def refusal(self) -> str:
        return pm.pair_refusal(self.a_edit.toPlainText(), self.b_edit.toPlainText())

    def message(self, run, checkpoint) -> p.Message:
        return p.ScorePairRequest(
            run=run, checkpoint=checkpoint, a=self.a_edit.toPlainText(), b=self.b_edit.toPlainText()
        )

    def show_reply(self, reply) -> None:
        task = reply.task or self.task
        answer = pm.pair_answer(task, reply.prob)
        self.answer_label.setText(answer)
        label = answer.split(":")[0]
        self.bar.set_rows([(label, float(reply.prob))], label)
        self.words_label.setText(reply.words if reply.words and reply.words != answer else "")
        self.status_label.setText("")

    def values(self) -> dict:
        return {"a": self.a_edit.toPlainText(), "b": self.b_edit.toPlainText()}

    def restore(self, saved: dict) -> None:
        for key, edit in (("a", self.a_edit), ("b", self.b_edit)):
            if isinstance(saved.get(key), str):
                edit.setPlainText(saved[key])


class ClassifyPage(ModePage):
    """A text: the class the model names for it, and every class's probability as a bar."""

    def __init__(self, parent=None):
        super().__init__("Classify", "Ask the model which class the text belongs to (Ctrl+Return).", parent)
        self.failed_words = "Could not classify the text"
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("Text"))
        self.edit = _text_edit("The text the model reads whole.", "e.g. What a wonderful, moving film.", 110)
        self.edit.textChanged.connect(lambda *_: self.changed.emit())
        lay.addWidget(self.edit)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.ask_button)
        lay.addLayout(row)
        lay.addWidget(self.error_label)
        self.answer_label = theme.title_label("")
        lay.addWidget(self.answer_label)
        self.bars = AlternativesBars(plain=True)
        self.bars.setToolTip("The probability the model gives each class, the likeliest first.")
        self.bars.setMaximumWidth(640)
        lay.addWidget(self.bars)
        lay.addWidget(self.status_label)
        lay.addStretch(1)

    def refusal(self) -> str:
        return pm.classify_refusal(self.edit.toPlainText())

    def message(self, run, checkpoint) -> p.Message:
        return p.ClassifyRequest(run=run, checkpoint=checkpoint, text=self.edit.toPlainText())

    def show_reply(self, reply) -> None:
        rows = pm.class_rows(reply.classes)
        self.answer_label.setText(pm.class_answer(rows))
        self.bars.set_rows(rows, rows[0][0] if rows else None)
        self.status_label.setText(pm.classify_status(int(reply.n_tokens or 0), bool(reply.cut)))

    def values(self) -> dict:
        return {"text": self.edit.toPlainText()}

    def restore(self, saved: dict) -> None:
        if isinstance(saved.get("text"), str):
            self.edit.setPlainText(saved["text"])
