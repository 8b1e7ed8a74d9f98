"""Objective panel: choose what the model learns to predict. Causal language modelling is the one there is now;
the others are shown, greyed out, so a user sees where the studio is going and what the choice means."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from engine.config import OBJECTIVES
from studio.widgets.form_helpers import PanelHeader, muted_color
from studio.widgets.token_spans import PASTELS, SPAN_TEXT

# (config name, label, explanation, available)
CHOICES = (
    (
        "causal_lm",
        "Causal language modelling",
        "Predict the next token from the ones before it — how GPT models learn. The model never sees what comes "
        "after, so once trained it can write text one token at a time.",
        True,
    ),
    (
        "masked_lm",
        "Masked language modelling",
        "Hide some tokens and predict them from both sides, as BERT does. Good for understanding text, not for "
        "writing it. Coming later.",
        False,
    ),
    (
        "prefix_lm",
        "Prefix language modelling",
        "Read a prefix with attention in both directions, then write the rest left to right. Coming later.",
        False,
    ),
    (
        "span_corruption",
        "Span corruption",
        "Replace spans of text with placeholders and learn to fill them in, as T5 does. Coming later.",
        False,
    ),
)
EXAMPLE = ("The", "cat", "sat", "on", "the", "mat")


def _chip(text: str, color: str, bold: bool = False) -> str:
    weight = "font-weight:bold;" if bold else ""
    return f'<span style="background-color:{color}; color:{SPAN_TEXT}; {weight}">&nbsp;{text}&nbsp;</span>'


def example_html(muted: str) -> str:
    """Each prefix of a sentence with the next token, the target, highlighted: what one training text teaches."""
    rows = []
    for n in range(1, 4 + 1):
        context = " ".join(_chip(w, PASTELS[2]) for w in EXAMPLE[:n])
        rows.append(
            f"<tr><td align='right'>{context}</td><td>&nbsp;&nbsp;→&nbsp;&nbsp;</td>"
            f"<td>{_chip(EXAMPLE[n], PASTELS[0], bold=True)}</td></tr>"
        )
    return (
        "<table cellspacing='4'>" + "".join(rows) + "</table>"
        f"<p style='color:{muted}'>Blue: what the model has read. Orange: the token it must predict (the target). "
        "In one training step it makes this prediction at every position of the context at once; a causal mask "
        "stops each position from peeking at the tokens after it.</p>"
    )


class ObjectivePanel(QWidget):
    """Bound to session.config.objective.name."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.buttons: dict[str, QRadioButton] = {}
        outer = QVBoxLayout(self)
        outer.addWidget(
            PanelHeader(
                "Choose what the model learns",
                "The objective is the task the model practises on your text millions of times. It decides what the "
                "trained model is good at.",
            )
        )
        # a scroll area, so the wrapped explanations are never clipped in a small window
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        outer.addWidget(scroll, 1)
        body = QWidget()
        scroll.setWidget(body)
        root = QVBoxLayout(body)
        root.setContentsMargins(0, 0, 0, 0)

        box = QGroupBox("Objective")
        bv = QVBoxLayout(box)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        for name, label, text, available in CHOICES:
            available = available and name in OBJECTIVES
            radio = QRadioButton(label if available else f"{label} (coming later)")
            radio.setEnabled(available)
            radio.setToolTip(text)
            radio.setProperty("objective", name)
            radio.clicked.connect(lambda _checked=False, n=name: self.choose(n))
            self.group.addButton(radio)
            self.buttons[name] = radio
            explain = QLabel(text)
            explain.setWordWrap(True)
            explain.setEnabled(available)
            explain.setToolTip(text)
            row = QVBoxLayout()
            row.setSpacing(1)
            row.addWidget(radio)
            indent = QHBoxLayout()
            indent.addSpacing(24)
            indent.addWidget(explain, 1)
            row.addLayout(indent)
            bv.addLayout(row)
            bv.addSpacing(6)
        root.addWidget(box)

        self.example_box = QGroupBox("What one sentence teaches")
        ev = QVBoxLayout(self.example_box)
        self.example = QLabel(example_html(muted_color(self).name()))
        self.example.setTextFormat(Qt.TextFormat.RichText)
        self.example.setWordWrap(True)
        self.example.setToolTip("Causal language modelling turns every text into many next-token questions.")
        ev.addWidget(self.example)
        root.addWidget(self.example_box)
        self.status = QLabel()
        root.addWidget(self.status)
        root.addStretch(1)

        session.configChanged.connect(self._show_config)
        self._show_config()

    def changeEvent(self, event):
        # the example's grey note is baked into its HTML: redo it when the theme (light/dark) changes
        if event.type() == QEvent.Type.PaletteChange and hasattr(self, "example"):
            self.example.setText(example_html(muted_color(self).name()))
        super().changeEvent(event)

    def choose(self, name: str) -> None:
        if name not in OBJECTIVES:
            return  # a placeholder for a later objective
        self.session.update_config("objective", name=name)
        self._show_config()

    def selected(self) -> str | None:
        b = self.group.checkedButton()
        return b.property("objective") if b else None

    def _show_config(self) -> None:
        name = self.session.config.objective.name
        button = self.buttons.get(name) if name in OBJECTIVES else None
        if button is not None:
            button.setChecked(True)
            label = next(lab for n, lab, _, _ in CHOICES if n == name)
            self.status.setText(f"Training will use: <b>{label}</b>.")
        else:
            self.group.setExclusive(False)
            for b in self.buttons.values():
                b.setChecked(False)
            self.group.setExclusive(True)
            self.status.setText(
                f"The config asks for an objective this studio does not know ({name!r}); choose one above."
            )
