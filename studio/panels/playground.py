"""Playground: write a prompt and watch a trained model continue it, token by token."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontDatabase, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QSpinBox, QTextEdit, QVBoxLayout, QWidget)

from engine import protocol as p
from studio import theme

FLUSH_MS = 33   # streamed tokens are painted at most ~30 times a second


def run_label(run: dict) -> str:
    step = int(run.get("step") or 0)
    best = run.get("best_val_loss")
    best = f", val {best:.3f}" if isinstance(best, (int, float)) else ""
    return f"#{run.get('id')} {run.get('name') or ''} — {run.get('status', '')}, {step:,} steps{best}"


class PlaygroundPanel(QWidget):
    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._request: str | None = None
        self._pending_text = ""
        self.generated = ""
        self._flush = QTimer(self)
        self._flush.setSingleShot(True)
        self._flush.setInterval(FLUSH_MS)
        self._flush.timeout.connect(self._flush_tokens)
        self._build()
        session.workspaceChanged.connect(self._fill_runs)
        session.runSelected.connect(self._on_run_selected)
        session.engineStateChanged.connect(lambda *_: self._update_buttons())
        self._fill_runs()

    # --------------------------------------------------------------------------------------------------- build
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(theme.panel_header(
            "Playground", "Give a trained model the start of a text and watch it write the rest, one token at a "
                          "time."))

        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        self.run_combo = QComboBox()
        self.run_combo.setToolTip("The trained run whose latest checkpoint writes the text.")
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.run_combo.currentIndexChanged.connect(lambda *_: self._update_buttons())
        top.addWidget(self.run_combo, 1)
        root.addLayout(top)

        body = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(QLabel("Prompt"))
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("The start of a text, e.g. ROMEO:")
        self.prompt.setToolTip("The text the model continues. It may be empty: the model then starts from nothing.")
        self.prompt.setMaximumHeight(110)
        left.addWidget(self.prompt)
        left.addWidget(QLabel("Output"))
        self.output = QTextEdit()
        self.output.setReadOnly(True)
        self.output.setToolTip("The prompt (plain) followed by what the model wrote (highlighted).")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.output.setFont(mono)
        self.prompt.setFont(mono)
        left.addWidget(self.output, 1)
        body.addLayout(left, 1)

        form = QFormLayout()
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
                             "'random' gives a new text each time.")
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-k", self.top_k)
        form.addRow("Top-p", self.top_p)
        form.addRow("Max new tokens", self.max_new)
        form.addRow("Seed", self.seed)
        side = QVBoxLayout()
        side.addLayout(form)
        self.generate_button = theme.make_primary(QPushButton("Generate"))
        self.generate_button.setToolTip("Write a continuation of the prompt (Ctrl+Enter).")
        self.generate_button.clicked.connect(self.generate)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop writing now (Esc); what was written so far stays.")
        self.stop_button.clicked.connect(self.stop)
        side.addWidget(self.generate_button)
        side.addWidget(self.stop_button)
        side.addStretch(1)
        body.addLayout(side)
        root.addLayout(body, 1)

        self.stats_label = theme.description_label("")
        self.error_label = QLabel("")
        self.error_label.setStyleSheet(theme.error_style())
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        root.addWidget(self.stats_label)
        root.addWidget(self.error_label)

        for seq in ("Ctrl+Return", "Ctrl+Enter"):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(self.generate)
        esc = QShortcut(QKeySequence("Esc"), self)
        esc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        esc.activated.connect(self.stop)
        self._update_buttons()

    # ---------------------------------------------------------------------------------------------------- runs
    def _fill_runs(self, *_):
        runs = self.session.workspace.get("runs", [])
        current = self.selected_run_id()
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for run in runs:
            self.run_combo.addItem(run_label(run), run.get("id"))
        self.run_combo.blockSignals(False)
        want = current if current is not None else self._default_run_id()
        self._select_in_combo(want)
        self._update_buttons()

    def _default_run_id(self):
        s = self.session
        if s.run is not None and int(s.run.get("step") or 0) > 0:
            return s.run.get("id")
        trained = [r for r in s.workspace.get("runs", []) if int(r.get("step") or 0) > 0]
        if trained:
            return trained[-1].get("id")
        return s.run.get("id") if s.run else None

    def _select_in_combo(self, run_id) -> None:
        i = self.run_combo.findData(run_id)
        if i >= 0:
            self.run_combo.setCurrentIndex(i)

    def _on_run_selected(self, run) -> None:
        if run is not None:
            if self.run_combo.findData(run.get("id")) < 0:
                self._fill_runs()
            self._select_in_combo(run.get("id"))

    def selected_run_id(self):
        return self.run_combo.currentData() if self.run_combo.count() else None

    # ---------------------------------------------------------------------------------------------- generate
    def generate(self) -> None:
        if self._request is not None:
            return
        run_id = self.selected_run_id()
        if run_id is None:
            self._show_error("Train a model first: there is no run to generate with yet.")
            return
        self._clear_error()
        prompt = self.prompt.toPlainText()
        self.output.clear()
        self._append(prompt, highlighted=False)
        self.generated = ""
        self._pending_text = ""
        msg = p.GenerateRequest(
            run=run_id, prompt=prompt, max_new_tokens=self.max_new.value(),
            temperature=self.temperature.value(), top_k=self.top_k.value() or None,
            top_p=self.top_p.value() or None, seed=None if self.seed.value() < 0 else self.seed.value())
        self.stats_label.setText("Writing…")
        self._request = self.session.request(msg, self._on_reply, self._on_event)
        self._update_buttons()

    def stop(self) -> None:
        if self._request is not None:
            self.session.cancel(self._request)

    def _on_event(self, msg) -> None:
        if isinstance(msg, p.Token):
            self._pending_text += msg.text
            if not self._flush.isActive():
                self._flush.start()

    def _flush_tokens(self) -> None:
        if self._pending_text:
            text, self._pending_text = self._pending_text, ""
            self.generated += text
            self._append(text, highlighted=True)

    def _on_reply(self, reply) -> None:
        self._request = None
        self._flush_tokens()
        if reply.ok:
            if not self.generated and reply.text:
                self.generated = reply.text     # no tokens were streamed (an older engine): show the whole text
                self._append(reply.text, highlighted=True)
            end = " (stopped)" if reply.stopped else ""
            self.stats_label.setText(f"{reply.n_tokens:,} tokens · {reply.tokens_per_sec:.1f} tok/s{end}")
        else:
            self.stats_label.setText("")
            self._show_error(f"Could not generate: {reply.error}")
        self._update_buttons()

    def _append(self, text: str, highlighted: bool) -> None:
        cursor = self.output.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        fmt = QTextCharFormat()
        if highlighted:
            accent = QColor(theme.ACCENT)
            accent.setAlpha(60)
            fmt.setBackground(accent)
            fmt.setFontWeight(QFont.Weight.DemiBold)
        cursor.insertText(text, fmt)
        self.output.setTextCursor(cursor)
        self.output.ensureCursorVisible()

    # --------------------------------------------------------------------------------------------------- state
    def _update_buttons(self) -> None:
        running = self._request is not None
        engine_ok = self.session.engine_state not in ("dead", "hung", "stopped")
        self.generate_button.setEnabled(not running and engine_ok and self.run_combo.count() > 0)
        self.stop_button.setEnabled(running)

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.show()

    def _clear_error(self) -> None:
        self.error_label.hide()
        self.error_label.setText("")
