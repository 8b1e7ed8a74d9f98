"""Architecture panel: design the model (and its training schedule) from a preset, with live size estimates.

Every field writes to the session's RunConfig, but only once the whole config validates: while a value is
impossible (n_embd not divisible by n_head, RoPE with an odd head size, min_lr above lr, ...) the message is shown
in red, the field is marked, and session.config keeps its last valid value, so Train never starts with it.
"""
from __future__ import annotations

import re

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QKeySequence, QPainter, QPainterPath, QPalette, QPen, QShortcut
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QVBoxLayout, QWidget)

from engine.config import (PRESETS, ConfigError, ModelConfig, RunConfig, flops_per_token,
                           human_bytes, human_count, memory_estimate, param_count, preset)
from studio.widgets.form_helpers import (BoundedDoubleSpinBox, BoundedSpinBox, MessageLine, PanelHeader, RangeHint,
                                         SciSpinBox, disclosure_button, error_color, field_with_hint, human_flops,
                                         muted_color, set_invalid)

ASSUMED_CHAR_VOCAB = 65   # tinyshakespeare's character count: a fair guess before a tokenizer exists
CUSTOM = "custom"
INT_MAX = 2_000_000_000

# (section, field, label, kind, options, tooltip). kind: int (lo, hi, step) | float (lo, hi, step, decimals)
# | sci (lo, hi) | bool | choice ((value, label), ...)
MODEL_FIELDS = (
    ("model", "n_layer", "Layers", "int", (1, 256, 1),
     "How many transformer blocks are stacked, usually 2–12 here. More layers learn more complex patterns but "
     "train slower; each adds the same number of parameters."),
    ("model", "n_head", "Attention heads", "int", (1, 256, 1),
     "How many attention heads each layer has, usually 2–16. Each head looks at the text in its own way; the "
     "width must be a multiple of the number of heads, so that each head gets an equal share."),
    ("model", "n_embd", "Width", "int", (1, 65536, 32),
     "The size of each token's vector, usually 64–768 here. Wider models learn more but the cost grows with the "
     "square of the width; too wide for a small text mostly memorises it."),
    ("model", "block_size", "Context length", "int", (2, 1 << 20, 32),
     "How many tokens the model can look back at, usually 64–1024. Longer context sees more but memory and time "
     "grow with it (attention with its square)."),
    ("model", "dropout", "Dropout", "float", (0.0, 0.9, 0.05, 2),
     "Randomly silences this fraction of activations while training, 0–0.2 is usual. Helps against memorising a "
     "small text; too high and the model learns slowly. 0 for tiny runs."),
    ("model", "bias", "Bias terms", "bool", None,
     "Add bias vectors to the linear layers and norms. GPT-2 had them; modern models leave them out (slightly "
     "faster, about as good)."),
    ("model", "pos_encoding", "Positions", "choice",
     (("learned", "Learned"), ("sinusoidal", "Sinusoidal"), ("rope", "RoPE")),
     "How the model knows where each token is. Learned: a trained vector per position (GPT-2). Sinusoidal: fixed "
     "waves (original Transformer). RoPE: rotates queries and keys (LLaMA); needs an even head size."),
    ("model", "norm", "Normalisation", "choice", (("layernorm", "LayerNorm"), ("rmsnorm", "RMSNorm")),
     "How activations are kept at a steady scale. LayerNorm (GPT-2) or RMSNorm (LLaMA; a little simpler)."),
    ("model", "mlp", "MLP", "choice", (("gelu", "GELU"), ("swiglu", "SwiGLU")),
     "The feed-forward part of each block. GELU: two matrices (GPT-2). SwiGLU: three smaller gated ones "
     "(LLaMA), the same parameter count."),
    ("model", "tie_embeddings", "Tie embeddings", "bool", None,
     "Use the same matrix to read tokens in and to score the next token. Saves vocab × width parameters; "
     "usual for small models."),
)
TRAIN_FIELDS = (
    ("train", "batch_size", "Batch size", "int", (1, 65536, 1),
     "Sequences per step, usually 8–64. Bigger gives smoother learning but needs more memory; too big runs out "
     "of memory."),
    ("train", "max_iters", "Training steps", "int", (1, INT_MAX, 100),
     "How many optimisation steps to train for. A few hundred show something on the sample text; thousands "
     "for a real corpus. Longer than needed starts to memorise (watch the validation loss)."),
    ("train", "learning_rate", "Learning rate", "sci", (1e-7, 1.0),
     "How big each update step is, around 1e-4 to 3e-3 for small models. Too high and the loss jumps or "
     "explodes; too low and learning is slow."),
    ("train", "min_lr", "Final learning rate", "sci", (0.0, 1.0),
     "The learning rate at the end of the cosine decay, usually a tenth of the learning rate. Must not be "
     "above the learning rate."),
    ("train", "warmup_iters", "Warm-up steps", "int", (0, INT_MAX, 10),
     "Steps over which the learning rate rises from 0 at the start, usually 1–5 % of the steps. Keeps the first "
     "updates from wrecking the fresh model."),
    ("train", "gradient_accumulation_steps", "Gradient accumulation", "int", (1, 4096, 1),
     "Add up gradients over this many batches before one update: a bigger effective batch without the memory. "
     "1 means off; it makes each step this many times slower."),
    ("train", "eval_interval", "Evaluate every", "int", (1, INT_MAX, 50),
     "Measure training and validation loss every this many steps. Often enough to see the curves; each "
     "evaluation costs a little time."),
    ("train", "grad_clip", "Gradient clipping", "float", (0.0, 1000.0, 0.1, 2),
     "Limit the gradient's size to this value, usually 1.0, so one bad batch cannot derail training. 0 turns "
     "clipping off."),
    ("train", "weight_decay", "Weight decay", "float", (0.0, 10.0, 0.01, 3),
     "Pulls weights gently towards zero, usually 0.1. Helps against memorising; too high and the model cannot "
     "learn."),
    ("train", "seed", "Random seed", "int", (0, 2**31 - 1, 1),
     "Fixes the random start and data order, so a run can be repeated exactly. Change it to see how much "
     "results vary by chance."),
)
ADVANCED_FIELDS = (
    ("train", "lr_decay_iters", "Decay steps", "int", (1, INT_MAX, 100),
     "Steps over which the learning rate decays to its final value, usually the same as training steps "
     "(it follows them when they were equal)."),
    ("train", "beta1", "Adam β1", "float", (0.0, 0.999, 0.01, 3),
     "AdamW's momentum for the gradient, usually 0.9. Must be below 1."),
    ("train", "beta2", "Adam β2", "float", (0.0, 0.9999, 0.01, 4),
     "AdamW's momentum for the gradient's square, 0.95–0.999. Lower reacts faster to changes; below 1."),
    ("train", "eval_iters", "Evaluation batches", "int", (1, 1 << 20, 10),
     "Batches averaged for each loss evaluation, usually 10–200. More gives a steadier number but takes longer."),
    ("train", "log_interval", "Log every", "int", (1, INT_MAX, 10),
     "Send the training loss to the plot every this many steps."),
    ("train", "checkpoint_interval", "Checkpoint every", "int", (1, INT_MAX, 100),
     "Save the model every this many steps, so a run can be resumed after a stop or crash. Saving takes a "
     "moment for big models."),
    ("train", "device", "Device", "choice", (("auto", "Automatic"), ("cpu", "CPU"), ("cuda", "GPU (CUDA)")),
     "Where to train. Automatic uses the GPU when there is one."),
    ("train", "dtype", "Precision", "choice",
     (("auto", "Automatic"), ("float32", "float32"), ("bfloat16", "bfloat16"), ("float16", "float16")),
     "Number format for training. Automatic picks bfloat16 on GPUs that support it, else float32. Lower "
     "precision is faster and smaller but can be less stable."),
)
ALL_FIELDS = MODEL_FIELDS + TRAIN_FIELDS + ADVANCED_FIELDS


def matching_preset(cfg: RunConfig) -> str:
    """The preset whose model and training sections equal cfg's, or CUSTOM."""
    for name in PRESETS:
        ref = preset(name)
        if ref.model == cfg.model and ref.train == cfg.train:
            return name
    return CUSTOM


def fields_in_message(message: str) -> list[tuple[str, str]]:
    """The config fields a ConfigError message names ('model.n_embd (...) must be divisible by model.n_head')."""
    found = [(s, f) for s, f in re.findall(r"\b(model|train|tokenizer|objective)\.(\w+)", message)]
    if "RoPE" in message and ("model", "pos_encoding") not in found:
        found += [("model", "pos_encoding"), ("model", "n_head"), ("model", "n_embd")]
    return found


# --------------------------------------------------------------------------------------------- block diagram

class ArchitectureDiagram(QWidget):
    """Embedding → N × [Norm → Attention → Norm → MLP] → Norm → LM head, redrawn from a ModelConfig."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ModelConfig()
        self.vocab_size = ASSUMED_CHAR_VOCAB
        self.problem = ""     # why the model in the form cannot be built; then no model is drawn
        self.setMinimumSize(250, self._content_height())
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip("The model drawn from the settings: each token passes through the embedding, then N "
                        "identical blocks (each adds attention and MLP results to a running residual stream), "
                        "then a final norm and the LM head that scores every possible next token.")

    def _content_height(self) -> int:
        # 9 rows of boxes, the block frame's title and bottom margin, and a little air
        return 9 * (self.fontMetrics().height() + 10 + 12) + 14 + 10 + 4

    def sizeHint(self):
        return QSize(280, self._content_height())

    def set_model(self, m: ModelConfig, vocab_size: int) -> None:
        self.model, self.vocab_size, self.problem = m, vocab_size, ""
        self.update()

    def set_problem(self, message: str) -> None:
        """Draw no model, only why there is none: a diagram of an impossible model (3 heads × 42 for a width
        of 128) would show something the trainer never builds."""
        self.problem = message
        self.update()

    def boxes(self) -> list[tuple[str, str]]:
        """The diagram's boxes as (role, text), top to bottom (none while the model is impossible); also what
        tests read."""
        if self.problem:
            return []
        m = self.model
        norm = {"layernorm": "LayerNorm", "rmsnorm": "RMSNorm"}.get(m.norm, m.norm)
        pos = {"learned": "+ learned positions", "sinusoidal": "+ sinusoidal positions",
               "rope": "(RoPE in attention)"}.get(m.pos_encoding, m.pos_encoding)
        mlp = {"gelu": "GELU", "swiglu": "SwiGLU"}.get(m.mlp, m.mlp)
        head_dim = m.n_embd // m.n_head if m.n_head else 0
        return [
            ("io", "tokens (ids)"),
            ("embed", f"Token embedding {self.vocab_size:,} × {m.n_embd} {pos}"),
            ("norm", norm),
            ("attn", f"Causal self-attention: {m.n_head} heads × {head_dim}"),
            ("norm", norm),
            ("mlp", f"MLP ({mlp}, {m.n_embd} → {m.mlp_hidden} → {m.n_embd})"),
            ("norm", f"Final {norm}"),
            ("head", f"LM head {m.n_embd} → {self.vocab_size:,}" + (" (tied)" if m.tie_embeddings else "")),
            ("io", "next-token probabilities"),
        ]

    def paintEvent(self, _event):
        qp = QPainter(self)
        qp.setRenderHint(QPainter.RenderHint.Antialiasing)
        if self.problem:
            self._paint_problem(qp)
            qp.end()
            return
        # Copies: the palette and its colours come back as references into the widget, which a palette change
        # while painting would leave dangling.
        pal = QPalette(self.palette())
        text = QColor(pal.color(QPalette.ColorRole.WindowText))
        base = QColor(pal.color(QPalette.ColorRole.Base))
        line = QColor(pal.color(QPalette.ColorRole.Mid))
        accents = {"embed": QColor(80, 140, 255), "attn": QColor(255, 150, 40), "mlp": QColor(60, 190, 110),
                   "head": QColor(170, 110, 255), "norm": QColor(150, 150, 150)}
        fm = self.fontMetrics()
        bh = fm.height() + 10
        gap = 12
        w = self.width() - 20
        x = 10.0
        y = 6.0
        boxes = self.boxes()
        block_top = block_bottom = 0.0
        centers = []
        for i, (role, label) in enumerate(boxes):
            if i == 2:
                y += 14  # room for the block frame's title
                block_top = y - 20
            inner = 2 <= i <= 5
            rx = x + (12 if inner else 0)
            rw = w - (24 if inner else 0)
            rect = QRectF(rx, y, rw, bh)
            if role == "io":
                qp.setPen(muted_color(self))
                qp.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
            else:
                fill = QColor(accents.get(role, line))
                fill.setAlpha(55)
                path = QPainterPath()
                path.addRoundedRect(rect, 5, 5)
                qp.fillPath(path, base)
                qp.fillPath(path, fill)
                qp.setPen(QPen(accents.get(role, line), 1.2))
                qp.drawPath(path)
                qp.setPen(text)
                qp.drawText(rect.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignCenter,
                            fm.elidedText(label, Qt.TextElideMode.ElideRight, int(rw - 12)))
            centers.append((rect.center().x(), rect.top(), rect.bottom()))
            if i == 5:
                block_bottom = y + bh + 8
                y += 10
            y += bh + gap
        # arrows between consecutive boxes
        qp.setPen(QPen(line, 1.2))
        for (cx, _, bottom), (_, top, _) in zip(centers, centers[1:]):
            qp.drawLine(QPointF(cx, bottom + 1), QPointF(cx, top - 2))
            qp.drawLine(QPointF(cx, top - 2), QPointF(cx - 3, top - 6))
            qp.drawLine(QPointF(cx, top - 2), QPointF(cx + 3, top - 6))
        # the repeated block
        frame = QRectF(x + 2, block_top, w - 4, block_bottom - block_top)
        pen = QPen(line, 1.2, Qt.PenStyle.DashLine)
        qp.setPen(pen)
        qp.drawRoundedRect(frame, 7, 7)
        f = QFont(self.font())
        f.setBold(True)
        qp.setFont(f)
        qp.setPen(text)
        qp.drawText(QRectF(frame.left() + 8, frame.top() + 2, frame.width() - 16, 18),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    f"× {self.model.n_layer} block{'s' if self.model.n_layer != 1 else ''}")
        qp.end()

    def _paint_problem(self, qp: QPainter) -> None:
        area = QRectF(self.rect()).adjusted(12, 12, -12, -12)
        pen = QPen(error_color(self), 1.2, Qt.PenStyle.DashLine)
        qp.setPen(pen)
        qp.drawRoundedRect(area, 7, 7)
        qp.setPen(QColor(self.palette().color(QPalette.ColorRole.WindowText)))
        qp.drawText(area.adjusted(14, 14, -14, -14), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                    f"No model to draw: {self.problem}.\n\nFix the marked field and the diagram comes back.")


# ------------------------------------------------------------------------------------------------------ panel

class ArchitecturePanel(QWidget):
    """Pick a preset, adjust the model and the training schedule, and see what it will cost."""

    configApplied = Signal()   # a valid form was written to session.config

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.fields: dict[tuple[str, str], QWidget] = {}
        self.labels: dict[tuple[str, str], QLabel] = {}
        self.hints: dict[tuple[str, str], RangeHint] = {}
        self.undo_stack: list[tuple[RunConfig, str]] = []
        self.error: str = ""
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
        root.addWidget(PanelHeader(
            "Design your model",
            "Start from a preset, then change the shape of the transformer and how it is trained. The size, "
            "compute and memory estimates update as you type."))

        row = QHBoxLayout()
        row.addWidget(QLabel("Preset:"))
        self.preset_combo = QComboBox()
        for name, spec in PRESETS.items():
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, spec["description"],
                                          Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.addItem("custom", CUSTOM)
        self.preset_combo.setItemData(self.preset_combo.count() - 1, "Your own settings (no preset matches).",
                                      Qt.ItemDataRole.ToolTipRole)
        self.preset_combo.setToolTip("A ready-made model and schedule to start from. Choosing one replaces the "
                                     "fields below (Ctrl+Z undoes it). 'baby' trains in minutes on a CPU.")
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
        root.addLayout(row)
        self.undo_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Undo), self)
        self.undo_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.undo_shortcut.activated.connect(self.undo_preset)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        root.addWidget(scroll, 1)
        body = QWidget()
        scroll.setWidget(body)
        grid = QGridLayout(body)
        grid.setContentsMargins(0, 0, 0, 0)

        left = QVBoxLayout()
        model_box = QGroupBox("Model")
        model_box.setLayout(self._form(MODEL_FIELDS))
        left.addWidget(model_box)
        train_box = QGroupBox("Training schedule")
        tv = QVBoxLayout(train_box)
        tv.addLayout(self._form(TRAIN_FIELDS))
        self.advanced = QWidget()
        self.advanced.setLayout(self._form(ADVANCED_FIELDS))
        self.advanced_toggle = disclosure_button(
            "Advanced", "Show the less common settings: decay length, Adam betas, evaluation, logging, "
                        "checkpoints, device and precision.", self.advanced)
        tv.addWidget(self.advanced_toggle)
        tv.addWidget(self.advanced)
        left.addWidget(train_box)
        left.addStretch(1)

        right = QVBoxLayout()
        est_box = QGroupBox("Estimates")
        ef = QFormLayout(est_box)
        ef.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.params_label = QLabel()
        self.flops_label = QLabel()
        self.memory_label = QLabel()
        self.tokens_label = QLabel()
        self.vocab_note = QLabel()
        self.vocab_note.setWordWrap(True)
        self.vocab_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        big = self.params_label.font()
        big.setPointSizeF(big.pointSizeF() * 1.25)
        big.setBold(True)
        self.params_label.setFont(big)
        for label, widget, tip in (
                ("Parameters:", self.params_label, "Trainable numbers in the model. nanoGPT's baby model has about "
                                                   "0.8 M; GPT-2 small 124 M."),
                ("Compute:", self.flops_label, "Floating-point operations to train on one token (forward and "
                                               "backward, about 6 per parameter plus attention)."),
                ("Memory:", self.memory_label, "Rough memory to train: weights, gradients, AdamW state and "
                                               "activations. Hover for the breakdown."),
                ("Tokens per step:", self.tokens_label, "Batch size × context length × gradient accumulation: "
                                                        "how much text one optimisation step sees.")):
            name = QLabel(label)
            name.setToolTip(tip)
            widget.setToolTip(tip)
            widget.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            ef.addRow(name, widget)
        ef.addRow(self.vocab_note)
        right.addWidget(est_box)
        diag_box = QGroupBox("Architecture")
        dv = QVBoxLayout(diag_box)
        self.diagram = ArchitectureDiagram()
        dv.addWidget(self.diagram)
        right.addWidget(diag_box)
        right.addStretch(1)

        # outside the scroll area, so the reason an edit is refused is always in view
        self.error_line = MessageLine(self)
        root.addWidget(self.error_line)

        grid.addLayout(left, 0, 0)
        grid.addLayout(right, 0, 1)
        grid.setColumnStretch(0, 3)
        grid.setColumnStretch(1, 2)

    def _form(self, specs) -> QFormLayout:
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        # Only the fields with a range hint beside them (Expanding) take the row's width; the rest keep theirs.
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        for section, name, label, kind, opts, tip in specs:
            w = self._make_field(kind, opts)
            # The config key is for people who write configs or use the CLI; the label is what the form says.
            tip = f"{tip}\n\nIn a config file or on the command line: {section}.{name}"
            w.setToolTip(tip)
            w.setObjectName(f"{section}.{name}")
            if name == "seed" and isinstance(w, QSpinBox):
                w.setGroupSeparatorShown(False)   # an identifier, not a quantity
            w.setMinimumWidth(130)
            self.fields[(section, name)] = w
            lab = QLabel(label + ":")
            lab.setToolTip(tip)
            lab.setBuddy(w)
            self.labels[(section, name)] = lab
            if isinstance(w, (BoundedSpinBox, BoundedDoubleSpinBox)):
                row, self.hints[(section, name)] = field_with_hint(w, label)
                form.addRow(lab, row)
            else:
                form.addRow(lab, w)
        return form

    def _make_field(self, kind: str, opts) -> QWidget:
        if kind == "int":
            w = BoundedSpinBox()
            w.setRange(opts[0], opts[1])
            w.setSingleStep(opts[2])
            w.setGroupSeparatorShown(True)
            w.valueChanged.connect(self._on_field_changed)
        elif kind == "float":
            w = BoundedDoubleSpinBox()
            w.setRange(opts[0], opts[1])
            w.setSingleStep(opts[2])
            w.setDecimals(opts[3])
            w.valueChanged.connect(self._on_field_changed)
        elif kind == "sci":
            w = SciSpinBox(opts[0], opts[1])
            w.valueChanged.connect(self._on_field_changed)
        elif kind == "bool":
            w = QCheckBox()
            w.toggled.connect(self._on_field_changed)
        else:
            w = QComboBox()
            for value, label in opts:
                w.addItem(label, value)
            w.currentIndexChanged.connect(self._on_field_changed)
        return w

    # ----------------------------------------------------------------------------------------- form <-> config
    def write_form(self, cfg: RunConfig) -> None:
        self._loading = True
        try:
            for (section, name), w in self.fields.items():
                value = getattr(getattr(cfg, section), name)
                if isinstance(w, QCheckBox):
                    w.setChecked(bool(value))
                elif isinstance(w, QComboBox):
                    i = w.findData(value)
                    if i < 0:   # a value this GUI has no label for (a newer config): show it as it is
                        w.addItem(str(value), value)
                        i = w.count() - 1
                    w.setCurrentIndex(i)
                else:
                    w.setValue(value)
            self._last_values = self.form_values()
        finally:
            self._loading = False
        self._clear_error()

    def form_values(self) -> dict[tuple[str, str], object]:
        out = {}
        for key, w in self.fields.items():
            if isinstance(w, QCheckBox):
                out[key] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[key] = w.currentData()
            elif isinstance(w, QDoubleSpinBox):
                out[key] = float(w.value())
            else:
                out[key] = int(w.value())
        return out

    def form_config(self) -> RunConfig:
        """session.config with the form's model and training values."""
        cfg = self.session.config.copy()
        for (section, name), value in self.form_values().items():
            setattr(getattr(cfg, section), name, value)
        return cfg

    def _on_field_changed(self, *_) -> None:
        if self._loading:
            return
        values = self.form_values()
        changed = [k for k, v in values.items() if self._last_values.get(k) != v]
        # The decay usually spans the whole run: keep it in step with the steps when the two were equal.
        old_iters = self._last_values.get(("train", "max_iters"))
        if ("train", "max_iters") in changed and self._last_values.get(("train", "lr_decay_iters")) == old_iters:
            self._loading = True
            self.fields[("train", "lr_decay_iters")].setValue(values[("train", "max_iters")])
            self._loading = False
        self._last_values = self.form_values()
        self.apply_form(changed)

    def apply_form(self, changed: list[tuple[str, str]] | None = None) -> bool:
        """Validate the form; write it to session.config when valid, else show why. Returns validity."""
        cfg = self.form_config()
        self._update_estimates(cfg)
        try:
            cfg.validate(need_data=False)
        except ConfigError as e:
            self._show_error(e, changed or [])
            return False
        self._clear_error()
        if cfg.to_dict() != self.session.config.to_dict():
            self._applying = True
            try:
                self.session.set_config(cfg)
            finally:
                self._applying = False
            self.configApplied.emit()
        self._sync_preset_combo()
        return True

    def _show_error(self, error: ConfigError, changed: list[tuple[str, str]]) -> None:
        self.error = error.message
        keys = [tuple(k.split(".", 1)) for k in error.keys]
        self.error_line.show_message(error.message + " — not applied until fixed.", "error",
                                     detail=f"Config: {', '.join(error.keys)}" if error.keys else "")
        bad = [k for k in keys or fields_in_message(str(error)) if k in self.fields] \
            or [k for k in changed if k in self.fields]
        for key, w in self.fields.items():
            set_invalid(w, key in bad, self.labels.get(key))

    def _clear_error(self) -> None:
        self.error = ""
        self.error_line.clear_message()
        for key, w in self.fields.items():
            set_invalid(w, False, self.labels.get(key))

    def invalid_fields(self) -> list[tuple[str, str]]:
        return [k for k, w in self.fields.items() if w.property("invalid")]

    def _on_config_changed(self) -> None:
        if self._applying:
            return
        cfg = self.session.config
        # Another part of the app changed the model or schedule (a run's config, the CLI file...): show it.
        # Changes elsewhere (data, tokenizer) leave a half-typed form alone.
        current = {k: getattr(getattr(cfg, k[0]), k[1]) for k in self.fields}
        if current != self._applied_values():
            self.write_form(cfg)
            self._sync_preset_combo()
        self._update_estimates()

    def _on_tokenizer_selected(self, _row) -> None:
        self._update_estimates()

    def _applied_values(self) -> dict:
        if self.error:   # the form holds an unapplied edit; compare with what was last valid instead
            return {k: getattr(getattr(self._valid_cfg, k[0]), k[1]) for k in self.fields}
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
        before = self.session.config.copy()
        cfg = preset(name)
        cfg.data = before.data
        cfg.objective = before.objective
        if before.tokenizer.tokenizer is not None:
            cfg.tokenizer = before.tokenizer   # a tokenizer the user picked beats the preset's kind
        self.undo_stack.append((before, matching_preset(before)))
        self.undo_button.setEnabled(True)
        self.write_form(cfg)
        self._applying = True
        try:
            self.session.set_config(cfg)
        finally:
            self._applying = False
        self._sync_preset_combo()
        self._update_estimates()
        self.configApplied.emit()

    def undo_preset(self) -> None:
        if not self.undo_stack:
            return
        before, _name = self.undo_stack.pop()
        # keep selections made since (a dataset or tokenizer picked after the preset change)
        before.data = self.session.config.data
        before.tokenizer = self.session.config.tokenizer if self.session.config.tokenizer.tokenizer is not None \
            else before.tokenizer
        self.write_form(before)
        self._applying = True
        try:
            self.session.set_config(before)
        finally:
            self._applying = False
        self.undo_button.setEnabled(bool(self.undo_stack))
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
        if name == CUSTOM:
            self.preset_description.setText("Your own settings.")
        else:
            self.preset_description.setText(PRESETS[name]["description"])

    def current_preset(self) -> str:
        return self.preset_combo.currentData()

    # ---------------------------------------------------------------------------------------------- estimates
    def vocab_for_estimates(self, cfg: RunConfig | None = None) -> tuple[int, str]:
        """(vocab size, where it comes from, in words)."""
        cfg = cfg or self.session.config
        tok = getattr(self.session, "tokenizer", None)
        if tok and tok.get("vocab_size"):
            return int(tok["vocab_size"]), (f"Vocabulary: {int(tok['vocab_size']):,} tokens, from tokenizer "
                                            f"“{tok.get('name', tok.get('id'))}”.")
        if cfg.tokenizer.kind == "char":
            return ASSUMED_CHAR_VOCAB, (f"Vocabulary assumed: {ASSUMED_CHAR_VOCAB} characters (as in Shakespeare). "
                                        f"Train a tokenizer for the exact count.")
        return int(cfg.tokenizer.vocab_size), (f"Vocabulary assumed: {cfg.tokenizer.vocab_size:,} tokens, the "
                                               f"byte-level BPE size to be trained.")

    def _update_estimates(self, cfg: RunConfig | None = None) -> None:
        """The estimates and the diagram of the form's model; while the model is impossible, neither is shown
        (they would describe a model the trainer refuses to build), only why."""
        cfg = cfg or self.form_config()
        m, t = cfg.model, cfg.train
        vocab, source = self.vocab_for_estimates(cfg)
        try:
            m.validate()
            problem = None
        except ConfigError as e:
            problem = e
        if problem is not None:
            for label in (self.params_label, self.flops_label, self.memory_label):
                label.setText("—")
                label.setToolTip("No estimate while the model cannot be built: " + problem.message)
            self.diagram.set_problem(problem.message)
            return
        if m.n_head < 1 or m.n_embd < 1:
            return
        n = param_count(m, vocab)
        self.params_label.setText(human_count(n))
        self.params_label.setToolTip(f"{n:,} trainable parameters")
        flops = flops_per_token(m, vocab)
        self.flops_label.setText(f"{human_flops(flops)}/token")
        tokens = t.batch_size * m.block_size * t.gradient_accumulation_steps
        self.flops_label.setToolTip(f"{flops:,} FLOP per token (forward + backward); one step of {tokens:,} tokens "
                                    f"is about {human_flops(flops * tokens)}")
        mem = memory_estimate(m, vocab, t.batch_size)
        self.memory_label.setText(f"≈ {human_bytes(mem['total'])}")
        self.memory_label.setToolTip(
            "Rough training memory (float32):\n"
            f"  weights      {human_bytes(mem['weights'])}\n"
            f"  gradients    {human_bytes(mem['gradients'])}\n"
            f"  AdamW state  {human_bytes(mem['optimizer'])}\n"
            f"  activations  {human_bytes(mem['activations'])}\n"
            "Activations grow with batch size and context length.")
        self.tokens_label.setText(f"{tokens:,}")
        self.vocab_note.setText(source)
        self.diagram.set_model(m, vocab)
