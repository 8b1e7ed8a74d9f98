"""Objective panel: choose what the model learns, from every objective the engine trains, grouped by what it
asks of the model (engine.objectives.catalog GROUPS), each with its two plain sentences and its paper; set the
chosen one's options; and see "What the model sees", a real batch of the dataset as the objective builds it.

Bound to session.config.objective. Choosing an objective the current architecture cannot train switches the
architecture to the objective's natural one (and gives pair tasks their segments), says so in a line at the top
and offers to undo it. Option edits are written once the whole config validates, as the Model panel does.
The words and rules are studio/state/objective.py's; the options form is studio/widgets/objective_options.py,
the batch studio/widgets/sample_batch_view.py.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from engine.config import ConfigError
from engine.objectives.catalog import OBJECTIVE_CATALOG, ObjectiveInfo
from studio.state.objective import (
    ARCH_WORDS,
    Before,
    choose,
    grouped,
    teacher_choices,
    trains_words,
    with_defaults,
)
from studio.widgets.form_helpers import PanelHeader
from studio.widgets.objective_options import ObjectiveOptions
from studio.widgets.sample_batch_view import SampleBatchBox


class ObjectivePanel(QWidget):
    """Bound to session.config.objective (and, when a choice needs it, model.arch / model.n_segments)."""

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.buttons: dict[str, QRadioButton] = {}
        self.before: Before | None = None  # what the last model-changing choice replaced (for Undo)
        outer = QVBoxLayout(self)
        outer.addWidget(
            PanelHeader(
                "Choose what the model learns",
                "The objective is the task the model practises on your text millions of times. It decides what the "
                "trained model is good at, and which architecture it needs.",
            )
        )
        # what the last choice changed in the model, with Undo: outside the scroll area, always in view
        self.switch_note = QLabel()
        self.switch_note.setWordWrap(True)
        self.switch_note.setTextFormat(Qt.TextFormat.RichText)
        self.switch_note.linkActivated.connect(lambda _link: self.undo_switch())
        self.switch_note.hide()
        outer.addWidget(self.switch_note)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._build_choices())
        # the options beside the batch they change
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(6, 0, 0, 0)
        self.options = ObjectiveOptions(self._options_changed, self.restore_defaults)
        rv.addWidget(self.options)
        self.sample = SampleBatchBox(session)
        rv.addWidget(self.sample, 1)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 5)
        outer.addWidget(splitter, 1)
        self.options.teacher_choices = lambda: teacher_choices(self.session.workspace.get("runs", []))
        session.configChanged.connect(self._show_config)
        session.workspaceChanged.connect(self._on_workspace)
        self._show_config()

    # ------------------------------------------------------------------------------------------------- layout
    def _build_choices(self) -> QScrollArea:
        # a scroll area, so the wrapped explanations are never clipped in a small window
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setMinimumWidth(340)
        body = QWidget()
        scroll.setWidget(body)
        root = QVBoxLayout(body)
        root.setContentsMargins(0, 0, 6, 0)
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        for label, infos in grouped():
            box = QGroupBox(label)
            bv = QVBoxLayout(box)
            for info in infos:
                bv.addLayout(self._entry(info))
            root.addWidget(box)
        self.status = QLabel()
        self.status.setWordWrap(True)
        root.addWidget(self.status)
        root.addStretch(1)
        return scroll

    def _entry(self, info: ObjectiveInfo) -> QVBoxLayout:
        """One objective: its radio button, its two sentences and, smaller, its paper and what it trains."""
        radio = QRadioButton(info.label)
        radio.setToolTip(info.teaches)
        radio.setProperty("objective", info.name)
        radio.clicked.connect(lambda _checked=False, n=info.name: self.choose(n))
        self.group.addButton(radio)
        self.buttons[info.name] = radio
        teaches = QLabel(info.teaches)
        teaches.setWordWrap(True)
        source = QLabel(f"{info.paper} · {trains_words(info)}")
        source.setWordWrap(True)
        source.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        small = source.font()
        small.setPointSizeF(small.pointSizeF() * 0.9)
        source.setFont(small)
        row = QVBoxLayout()
        row.setSpacing(1)
        row.addWidget(radio)
        for label in (teaches, source):
            indent = QHBoxLayout()
            indent.addSpacing(24)
            indent.addWidget(label, 1)
            row.addLayout(indent)
        row.addSpacing(6)
        return row

    # ------------------------------------------------------------------------------------------------ choosing
    def choose(self, name: str) -> None:
        """Train with objective `name`; an architecture it cannot train is switched (and the switch told)."""
        if name not in OBJECTIVE_CATALOG:
            return
        before = self.session.config
        cfg, note = choose(before, name)
        if note:
            self.before = Before.of(before)
            self.switch_note.setText(f"{note}. <a href='undo'>Undo</a>")
            self.switch_note.setToolTip("Undo puts the objective and the architecture back as they were.")
        else:
            self.before = None
        self.switch_note.setVisible(bool(note))
        if cfg.to_dict() != before.to_dict():
            self.session.set_config(cfg)
        self._show_config()

    def undo_switch(self) -> None:
        """The objective, architecture and segments as they were before the last choice that changed them."""
        if self.before is None:
            return
        cfg = self.before.restore(self.session.config)
        self.before = None
        self.switch_note.hide()
        self.session.set_config(cfg)

    def selected(self) -> str | None:
        b = self.group.checkedButton()
        return b.property("objective") if b else None

    # ------------------------------------------------------------------------------------------------ options
    def _options_changed(self) -> None:
        cfg = self.session.config.copy()
        for key, value in self.options.values().items():
            setattr(cfg.objective, key, None if key == "teacher_run" and value == "" else value)
        try:
            cfg.validate(need_data=False)
        except ConfigError as e:
            self.options.error_line.show_message(e.message + " — not applied until fixed.", "error")
            self.options.mark({k.split(".", 1)[1] for k in e.fields if k.startswith("objective.")})
            return
        self._clear_option_error()
        if cfg.to_dict() != self.session.config.to_dict():
            self.session.set_config(cfg)

    def _on_workspace(self, *_) -> None:
        self.options.refresh_teachers()

    def restore_defaults(self) -> None:
        self._clear_option_error()
        self.session.set_config(with_defaults(self.session.config, self.session.config.objective.name))

    def _clear_option_error(self) -> None:
        self.options.error_line.clear_message()
        self.options.mark(set())

    # ------------------------------------------------------------------------------------------------ showing
    def _show_config(self) -> None:
        cfg = self.session.config
        name = cfg.objective.name
        info = OBJECTIVE_CATALOG.get(name)
        if info is None:
            self.group.setExclusive(False)
            for b in self.buttons.values():
                b.setChecked(False)
            self.group.setExclusive(True)
            self.status.setText(
                f"The config asks for an objective this studio does not know ({name!r}); choose one above."
            )
        else:
            self.buttons[name].setChecked(True)
            self.status.setText(
                f"Training will use: <b>{info.label}</b> on {ARCH_WORDS.get(cfg.model.arch, cfg.model.arch)}; its loss "
                f"is over {info.loss_over}."
            )
        if name != self.options.name or not self.options.error_line.text():
            self._clear_option_error()  # a half-typed impossible value stays until it is fixed
            self.options.show_objective(cfg)
