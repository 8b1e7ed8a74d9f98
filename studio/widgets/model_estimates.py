"""The Model panel's "Estimates" box: parameters, compute, memory and tokens per step of the form's model, in
words for people (the numbers come from studio/state/model_form.py's estimate())."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel

from engine.format import human_bytes, human_count, human_flops
from studio.state.model_form import Estimates

ROWS = (
    (
        "params_label",
        "Parameters:",
        "Trainable numbers in the model. nanoGPT's baby model has about 0.8 M; GPT-2 small 124 M.",
    ),
    (
        "flops_label",
        "Compute:",
        "Floating-point operations to train on one token (forward and backward, about 6 per parameter plus attention).",
    ),
    (
        "memory_label",
        "Memory:",
        "Rough memory to train: weights, gradients, AdamW state and activations. Hover for the breakdown.",
    ),
    (
        "tokens_label",
        "Tokens per step:",
        "Batch size × context length × gradient accumulation: how much text one optimisation step sees.",
    ),
)


class EstimatesBox(QGroupBox):
    """What the model in the form costs; while it cannot be built, only why there is no estimate."""

    def __init__(self, parent=None):
        super().__init__("Estimates", parent)
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for attr, label, tip in ROWS:
            value = QLabel()
            setattr(self, attr, value)
            name = QLabel(label)
            name.setToolTip(tip)
            value.setToolTip(tip)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(name, value)
        big = self.params_label.font()
        big.setPointSizeF(big.pointSizeF() * 1.25)
        big.setBold(True)
        self.params_label.setFont(big)
        self.vocab_note = QLabel()
        self.vocab_note.setWordWrap(True)
        self.vocab_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        form.addRow(self.vocab_note)

    def show_problem(self, problem: str) -> None:
        """No numbers: they would describe a model the trainer refuses to build."""
        for label in (self.params_label, self.flops_label, self.memory_label):
            label.setText("—")
            label.setToolTip("No estimate while the model cannot be built: " + problem)

    def show_estimates(self, est: Estimates, vocab_note: str) -> None:
        self.params_label.setText(human_count(est.params))
        self.params_label.setToolTip(f"{est.params:,} trainable parameters")
        flops, tokens = est.flops_per_token, est.tokens_per_step
        self.flops_label.setText(f"{human_flops(flops)}/token")
        self.flops_label.setToolTip(
            f"{flops:,} FLOP per token (forward + backward); one step of {tokens:,} tokens "
            f"is about {human_flops(flops * tokens)}"
        )
        mem = est.memory or {}
        self.memory_label.setText(f"≈ {human_bytes(mem['total'])}")
        self.memory_label.setToolTip(
            "Rough training memory (float32):\n"
            f"  weights      {human_bytes(mem['weights'])}\n"
            f"  gradients    {human_bytes(mem['gradients'])}\n"
            f"  AdamW state  {human_bytes(mem['optimizer'])}\n"
            f"  activations  {human_bytes(mem['activations'])}\n"
            "Activations grow with batch size and context length."
        )
        self.tokens_label.setText(f"{tokens:,}")
        self.vocab_note.setText(vocab_note)
