"""Architecture panel: design the model (and its training schedule) from a preset, with live size estimates.

Every field writes to the session's RunConfig, but only once the whole config validates: while a value is
impossible (n_embd not divisible by n_head, RoPE with an odd head size, min_lr above lr, ...) the message is shown
in red, the fields the error names (its structured keys, never its text) are marked, and session.config keeps its
last valid value, so Train never starts with it.

The architecture decides which fields apply (Decoder layers for an encoder-decoder, Segments for an encoder;
the optimizer and schedule decide theirs): the others are greyed out with why. Choosing an architecture the
objective cannot train switches the objective to one that can, and says so.

The fields, presets, estimates and what applies are worked out without Qt in studio/state/model_form.py, the
diagram in studio/state/architecture_diagram.py; the widgets are studio/widgets/model_fields.py,
model_estimates.py and model_diagram.py.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from engine.config import PRESETS, ConfigError, RunConfig
from studio.state.model_form import (
    ADVANCED_FIELDS,
    ARCH_EXPLAINED,
    CONDITIONAL_FIELDS,
    CUSTOM,
    MODEL_FIELDS,
    TRAIN_FIELDS,
    FieldKey,
    PresetUndo,
    changed_fields,
    config_with,
    decay_follows_steps,
    error_keys,
    estimate,
    fit_objective,
    inapplicable,
    marked_fields,
    matching_preset,
    preset_description,
    vocab_for_estimates,
)
from studio.widgets.form_helpers import MessageLine, PanelHeader, disclosure_button
from studio.widgets.model_diagram import ArchitectureDiagram
from studio.widgets.model_estimates import EstimatesBox
from studio.widgets.model_fields import ConfigFields


class ArchitecturePanel(QWidget):
    """Pick a preset, adjust the model and the training schedule, and see what it will cost."""

    configApplied = Signal()  # a valid form was written to session.config

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.form = ConfigFields(self._on_field_changed)
        self.fields, self.labels, self.hints = self.form.fields, self.form.labels, self.form.hints
        self.undo_stack = PresetUndo()
        self.error: str = ""
        self._objective_by_arch: dict[str, str] = {}  # the objective last used on each architecture
        self._loading = False
        self._applying = False
        self._build()
        self.write_form(session.config)
        self._sync_preset_combo()
        self._update_estimates()
        session.configChanged.connect(self._on_config_changed)
        session.tokenizerSelected.connect(self._on_tokenizer_selected)

    # ------------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(
            PanelHeader(
                "Design your model",
                "Start from a preset, then change the shape of the transformer and how it is trained. The size, "
                "compute and memory estimates update as you type.",
            )
        )
        root.addLayout(self._build_presets())
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        root.addWidget(scroll, 1)
        body = QWidget()
        scroll.setWidget(body)
        grid = QGridLayout(body)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addLayout(self._build_fields(), 0, 0)
        grid.addLayout(self._build_estimates(), 0, 1)
        grid.setColumnStretch(0, 5)
        grid.setColumnStretch(1, 4)
        # outside the scroll area, so the reason an edit is refused is always in view
        self.error_line = MessageLine(self)
        root.addWidget(self.error_line)
        self.note_line = MessageLine(self)  # what else an edit changed (the objective)
        root.addWidget(self.note_line)

    def _build_presets(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Preset:"))
        self.preset_combo = QComboBox()
        for name, spec in PRESETS.items():
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(
                self.preset_combo.count() - 1, spec["description"], Qt.ItemDataRole.ToolTipRole
            )
        self.preset_combo.addItem("custom", CUSTOM)
        self.preset_combo.setItemData(
            self.preset_combo.count() - 1, "Your own settings (no preset matches).", Qt.ItemDataRole.ToolTipRole
        )
        self.preset_combo.setToolTip(
            "A ready-made model and schedule to start from. Choosing one replaces the "
            "fields below (Ctrl+Z undoes it). 'baby' trains in minutes on a CPU."
        )
        self.preset_combo.activated.connect(self._on_preset_chosen)
        row.addWidget(self.preset_combo)
        self.undo_button = QPushButton("Undo preset")
        self.undo_button.setToolTip("Go back to the settings before the last preset change (Ctrl+Z).")
        self.undo_button.setEnabled(False)
        self.undo_button.clicked.connect(self.undo_preset)
        row.addWidget(self.undo_button)
        self.preset_description = QLabel()
        self.preset_description.setWordWrap(True)
        row.addWidget(self.preset_description, 1)
        self.undo_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Undo), self)
        self.undo_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.undo_shortcut.activated.connect(self.undo_preset)
        return row

    def _build_fields(self) -> QVBoxLayout:
        left = QVBoxLayout()
        conditional = CONDITIONAL_FIELDS
        model_box = QGroupBox("Model")
        model_form = self.form.form(MODEL_FIELDS, conditional)
        # the chosen architecture in one line, under its field
        self.arch_explained = QLabel()
        self.arch_explained.setWordWrap(True)
        self.arch_explained.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.arch_explained.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        model_form.insertRow(1, self.arch_explained)  # spanning both columns: wrapped labels get the full width
        arch = self.fields[("model", "arch")]
        for i in range(arch.count()):
            arch.setItemData(i, ARCH_EXPLAINED.get(arch.itemData(i), ""), Qt.ItemDataRole.ToolTipRole)
        self.fields[("model", "n_decoder_layer")].setSpecialValueText("same as Layers")
        model_box.setLayout(model_form)
        left.addWidget(model_box)
        train_box = QGroupBox("Training schedule")
        tv = QVBoxLayout(train_box)
        tv.addLayout(self.form.form(TRAIN_FIELDS, conditional))
        self.advanced = QWidget()
        self.advanced.setLayout(self.form.form(ADVANCED_FIELDS, conditional))
        self.advanced_toggle = disclosure_button(
            "Advanced",
            "Show the less common settings: decay length, Adam betas, SGD momentum, evaluation, logging, "
            "checkpoints, device and precision.",
            self.advanced,
        )
        tv.addWidget(self.advanced_toggle)
        tv.addWidget(self.advanced)
        left.addWidget(train_box)
        left.addStretch(1)
        return left

    def _build_estimates(self) -> QVBoxLayout:
        right = QVBoxLayout()
        self.estimates = EstimatesBox()
        e = self.estimates
        self.params_label, self.flops_label, self.memory_label = e.params_label, e.flops_label, e.memory_label
        self.tokens_label, self.vocab_note = e.tokens_label, e.vocab_note
        right.addWidget(e)
        diag_box = QGroupBox("Architecture")
        dv = QVBoxLayout(diag_box)
        self.diagram = ArchitectureDiagram()
        dv.addWidget(self.diagram)
        right.addWidget(diag_box)
        right.addStretch(1)
        return right

    # ----------------------------------------------------------------------------------------- form <-> config
    def write_form(self, cfg: RunConfig) -> None:
        self._loading = True
        try:
            self.form.write(cfg)
            self._last_values = self.form_values()
        finally:
            self._loading = False
        self._clear_error()

    def form_values(self) -> dict[FieldKey, object]:
        return self.form.values()

    def form_config(self) -> RunConfig:
        """session.config with the form's model and training values."""
        return config_with(self.session.config, self.form_values())

    def _on_field_changed(self, *_) -> None:
        if self._loading:
            return
        values = self.form_values()
        changed = changed_fields(self._last_values, values)
        if decay_follows_steps(self._last_values, changed):
            self._loading = True
            self.fields[("train", "lr_decay_iters")].setValue(values[("train", "max_iters")])
            self._loading = False
        self._last_values = self.form_values()
        self.apply_form(changed)

    def apply_form(self, changed: list[FieldKey] | None = None) -> bool:
        """Validate the form; write it to session.config when valid, else show why. Returns validity. An
        architecture the objective cannot train switches the objective (the line under the form says so)."""
        cfg = self.form_config()
        if {("model", "arch"), ("model", "n_segments")} & set(changed or []):
            note = fit_objective(cfg, self.session.config, self._objective_by_arch)
            self.note_line.show_message(note, "note")
        self._update_estimates(cfg)
        try:
            cfg.validate(need_data=False)
        except ConfigError as e:
            self._show_error(e, changed or [])
            return False
        self._clear_error()
        if cfg.to_dict() != self.session.config.to_dict():
            self._set_session_config(cfg)
            self.configApplied.emit()
        self._sync_preset_combo()
        return True

    def _set_session_config(self, cfg: RunConfig) -> None:
        self._applying = True  # our own change: _on_config_changed leaves the form as it is
        try:
            self.session.set_config(cfg)
        finally:
            self._applying = False

    def _show_error(self, error: ConfigError, changed: list[FieldKey]) -> None:
        self.error = error.message
        keys = error_keys(error)
        self.error_line.show_message(
            error.message + " — not applied until fixed.", "error", detail=f"Config: {', '.join(keys)}" if keys else ""
        )
        self.form.mark(marked_fields(error, changed, self.fields))
        self._show_applicable()

    def _clear_error(self) -> None:
        self.error = ""
        self.error_line.clear_message()
        self.form.mark(())
        self._show_applicable()

    def _show_applicable(self) -> None:
        """Grey out what the form's config does not use; a field an error is about stays editable."""
        self.form.set_applicable(getattr(self, "_not_applying", {}), keep=self.form.invalid())

    def invalid_fields(self) -> list[FieldKey]:
        return self.form.invalid()

    def _on_config_changed(self) -> None:
        if self._applying:
            return
        # Another part of the app changed the model or schedule (a run's config, the CLI file...): show it.
        # Changes elsewhere (data, tokenizer) leave a half-typed form alone.
        if self.form.config_values(self.session.config) != self._applied_values():
            self.write_form(self.session.config)
            self._sync_preset_combo()
            self.note_line.clear_message()
        self._update_estimates()

    def _on_tokenizer_selected(self, _row) -> None:
        self._update_estimates()

    def _applied_values(self) -> dict:
        if self.error:  # the form holds an unapplied edit; compare with what was last valid instead
            return self.form.config_values(self._valid_cfg)
        return self.form_values()

    # ------------------------------------------------------------------------------------------------ presets
    def _on_preset_chosen(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name == CUSTOM:
            self._sync_preset_combo()
            return
        self.apply_preset(name)

    def apply_preset(self, name: str) -> None:
        """Fill the form from a preset (keeping the chosen dataset, tokenizer and objective); undoable."""
        cfg = self.undo_stack.apply(name, self.session.config)
        self.undo_button.setEnabled(True)
        self._show_config(cfg)
        self.note_line.show_message(self.undo_stack.note, "note")

    def undo_preset(self) -> None:
        cfg = self.undo_stack.undo(self.session.config)
        if cfg is None:
            return
        self.undo_button.setEnabled(bool(self.undo_stack))
        self._show_config(cfg)
        self.note_line.clear_message()

    def _show_config(self, cfg: RunConfig) -> None:
        """A preset change or its undo: the form, the session's config and the estimates all take `cfg`."""
        self.write_form(cfg)
        self._set_session_config(cfg)
        self._sync_preset_combo()
        self._update_estimates()
        self.configApplied.emit()

    def _sync_preset_combo(self) -> None:
        cfg = self.session.config
        self._valid_cfg = cfg.copy()
        name = matching_preset(cfg)
        self.preset_combo.blockSignals(True)
        self.preset_combo.setCurrentIndex(self.preset_combo.findData(name))
        self.preset_combo.blockSignals(False)
        self.preset_description.setText(preset_description(name))

    def current_preset(self) -> str:
        return self.preset_combo.currentData()

    # ---------------------------------------------------------------------------------------------- estimates
    def vocab_for_estimates(self, cfg: RunConfig | None = None) -> tuple[int, str]:
        """(vocab size, where it comes from, in words)."""
        return vocab_for_estimates(getattr(self.session, "tokenizer", None), cfg or self.session.config)

    def _update_estimates(self, cfg: RunConfig | None = None) -> None:
        """The estimates and the diagram of the form's model; while the model is impossible, neither is shown
        (they would describe a model the trainer refuses to build), only why."""
        cfg = cfg or self.form_config()
        self.arch_explained.setText(ARCH_EXPLAINED.get(cfg.model.arch, ""))
        self._not_applying = inapplicable(cfg)
        self._show_applicable()
        vocab, source = self.vocab_for_estimates(cfg)
        est = estimate(cfg, vocab)
        if est.problem:
            self.estimates.show_problem(est.problem)
            self.diagram.set_problem(est.problem)
            return
        self.estimates.show_estimates(est, source)
        self.diagram.set_model(cfg.model, vocab)
