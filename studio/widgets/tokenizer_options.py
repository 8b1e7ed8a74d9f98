"""The "Train a tokenizer" form of the Vocabulary panel: kind, vocabulary size and the advanced options
(min frequency, normalizer, pre-tokenizer, special tokens), turned into a tokenizer_train_request's options.

The facts it needs about each kind (default special tokens, pre-tokenizers) are engine/choices.py's, their words
studio/state/tokenizer_choices.py's; the engine checks every combination again and its errors are shown as they
come.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.choices import DEFAULT_PRE_TOKENIZER, DEFAULT_SPECIALS, FIXED_PRE_TOKENIZER, SPECIAL_ROLES
from studio import theme
from studio.state.tokenizer_choices import KINDS, NORMALIZER_CHOICES, PRE_TOKENIZER_CHOICES, ROLE_TIPS
from studio.widgets.form_helpers import disclosure_button

VOCAB_TIPS = {
    "char": "An upper bound: the vocabulary is every distinct character of the text, up to this many (the rarest "
    "beyond it become [UNK]). English needs about 100; leave it high unless the text has thousands of "
    "rare symbols.",
    "bytebpe": "How many tokens byte-level BPE learns, from {min} (256 bytes and the special tokens) to 65,536. "
    "1,000–8,000 suits a few MB of text; too big for a small corpus gives rare tokens the model "
    "never learns well, and a bigger embedding and output layer.",
}
DEFAULT_VOCAB_TIP = (
    "How many tokens to learn, {min}–65,536 (the text's characters and the special tokens come "
    "first). 1,000–8,000 suits a few MB of text; too big for a small corpus gives rare tokens the "
    "model never learns well, and a bigger embedding and output layer."
)
MAX_VOCAB = 65536


class TokenizerOptionsForm(QGroupBox):
    """Kind, vocabulary size and advanced options; `request_fields()` gives what to send."""

    kindChanged = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Train a tokenizer", parent)
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.dataset_label = QLabel("—")
        self.dataset_label.setToolTip("The tokenizer is trained on the dataset selected in the Data panel.")
        form.addRow("Dataset:", self.dataset_label)

        kind_row = QHBoxLayout()
        self.kind_combo = QComboBox()
        for key, label, _ in KINDS:
            self.kind_combo.addItem(label, key)
        self.kind_combo.setMinimumWidth(150)
        self.kind_combo.setToolTip(
            "How text is cut into tokens. Character is simplest; the BPE kinds, WordPiece "
            "and Unigram make shorter sequences, so the model sees more text per step."
        )
        kind_row.addWidget(self.kind_combo)
        kind_row.addSpacing(12)
        self.vocab_label = QLabel("Vocabulary size:")
        kind_row.addWidget(self.vocab_label)
        self.vocab_spin = QSpinBox()
        self.vocab_spin.setRange(2, MAX_VOCAB)
        self.vocab_spin.setSingleStep(256)
        self.vocab_spin.setValue(2048)
        self.vocab_spin.setGroupSeparatorShown(True)
        self.vocab_spin.setMinimumWidth(100)
        self.vocab_label.setBuddy(self.vocab_spin)
        kind_row.addWidget(self.vocab_spin)
        kind_row.addStretch(1)
        form.addRow("Kind:", kind_row)
        self.kind_help = QLabel()
        self.kind_help.setWordWrap(True)
        form.addRow(self.kind_help)

        adv_row = QHBoxLayout()
        self.advanced = self._build_advanced()
        self.advanced_button = disclosure_button(
            "Advanced options",
            "Show or hide the finer settings: minimum frequency, text normalization, how text "
            "is cut into words, and the special tokens.",
            self.advanced,
        )
        adv_row.addWidget(self.advanced_button)
        self.advanced_summary = QLabel("")
        self.advanced_summary.setToolTip("The advanced options that differ from this kind's defaults.")
        adv_row.addWidget(self.advanced_summary, 1)
        form.addRow(adv_row)
        form.addRow(self.advanced)

        row = QHBoxLayout()
        self.train_button = theme.make_primary(QPushButton("Train tokenizer"))
        self.train_button.setToolTip(
            "Train a tokenizer of this kind on the selected dataset (Ctrl+T). Takes "
            "seconds for a few MB of text; runs in the engine, so the window stays "
            "responsive."
        )
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setToolTip("How far tokenizer training has got.")
        self.progress_bar.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop training the tokenizer; nothing is added.")
        self.cancel_button.hide()
        row.addWidget(self.train_button)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        row.addStretch(0)
        form.addRow(row)

        self.kind_combo.currentIndexChanged.connect(self._on_kind_changed)
        self._on_kind_changed()

    def _build_advanced(self) -> QWidget:
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(16, 0, 0, 0)
        self.min_freq_spin = QSpinBox()
        self.min_freq_spin.setRange(0, 1_000_000)
        self.min_freq_spin.setGroupSeparatorShown(True)
        self.min_freq_spin.setToolTip(
            "Pieces (or, for Character, characters) seen fewer times than this are not "
            "added, even if there is room. 0 or 1 keeps everything; 2–5 keeps typos and "
            "one-off names out of the vocabulary. Unigram has no such setting."
        )
        self.min_freq_spin.valueChanged.connect(self._update_summary)
        self.normalizer_combo = QComboBox()
        for key, label, tip in NORMALIZER_CHOICES:
            self.normalizer_combo.addItem(label, key)
            self.normalizer_combo.setItemData(self.normalizer_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.normalizer_combo.setToolTip(
            "How the text is tidied before it is cut: Unicode normal forms, lower "
            "case. Lower-casing makes the vocabulary smaller but the model can no "
            "longer write capitals."
        )
        self.normalizer_combo.currentIndexChanged.connect(self._update_summary)
        self.pre_tokenizer_combo = QComboBox()
        self.pre_tokenizer_combo.setToolTip(
            "How the text is cut into words before the tokenizer learns pieces of "
            "them; no token crosses a word boundary. Fixed for Character and "
            "byte-level BPE."
        )
        self.pre_tokenizer_combo.currentIndexChanged.connect(self._update_summary)
        row = QHBoxLayout()
        for label, widget in (
            ("Min frequency:", self.min_freq_spin),
            ("Normalizer:", self.normalizer_combo),
            ("Words:", self.pre_tokenizer_combo),
        ):
            lab = QLabel(label)
            lab.setBuddy(widget)
            lab.setToolTip(widget.toolTip())
            row.addWidget(lab)
            row.addWidget(widget)
            row.addSpacing(8)
        row.addStretch(1)
        lay.addLayout(row)
        specials = QLabel("Special tokens (empty = none):")
        specials.setToolTip(
            "Tokens with a job of their own, never cut and never learned from text. They take the "
            "first ids. Empty a field to leave that role out."
        )
        lay.addWidget(specials)
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        self.special_edits: dict[str, QLineEdit] = {}
        for i, role in enumerate(SPECIAL_ROLES):
            edit = QLineEdit()
            edit.setMinimumWidth(80)
            edit.setToolTip(f"The {role} token. {ROLE_TIPS[role]} Empty: no {role} token.")
            edit.setPlaceholderText("none")
            edit.textChanged.connect(self._on_specials_edited)
            lab = QLabel(f"{role}:")
            lab.setBuddy(edit)
            lab.setToolTip(edit.toolTip())
            r, c = i // 4, (i % 4) * 2
            grid.addWidget(lab, r, c, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(edit, r, c + 1)
            grid.setColumnStretch(c + 1, 1)
            self.special_edits[role] = edit
        self.defaults_button = QPushButton("Defaults")
        self.defaults_button.setToolTip("Put every advanced option back to this kind's standard set-up.")
        self.defaults_button.clicked.connect(self.reset_advanced)
        grid.addWidget(self.defaults_button, 1, 7)
        lay.addLayout(grid)
        return box

    # ------------------------------------------------------------------------------------------------ values
    def kind(self) -> str:
        return self.kind_combo.currentData()

    def vocab_size(self) -> int:
        return self.vocab_spin.value()

    def set_kind(self, kind: str) -> None:
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(kind))

    def special_tokens(self) -> dict[str, str]:
        """{role: token} as filled in (empty roles left out)."""
        return {r: e.text().strip() for r, e in self.special_edits.items() if e.text().strip()}

    def options(self) -> dict:
        """The options that differ from the kind's defaults (what a tokenizer_train_request's options hold)."""
        kind = self.kind()
        out: dict = {}
        if self.min_freq_spin.isEnabled() and self.min_freq_spin.value():
            out["min_frequency"] = self.min_freq_spin.value()
        if self.normalizer_combo.currentData() != "none":
            out["normalizer"] = self.normalizer_combo.currentData()
        pre = self.pre_tokenizer_combo.currentData()
        if pre and pre != DEFAULT_PRE_TOKENIZER[kind]:
            out["pre_tokenizer"] = pre
        defaults = DEFAULT_SPECIALS[kind]
        filled = self.special_tokens()
        changed = {r: filled.get(r) for r in SPECIAL_ROLES if filled.get(r) != defaults.get(r)}
        if changed:
            out["special_tokens"] = changed  # None removes a default role
        return out

    def set_busy(self, busy: bool) -> None:
        for w in (self.train_button, self.kind_combo, self.vocab_spin, self.advanced):
            w.setEnabled(not busy)
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")

    def reset_advanced(self) -> None:
        kind = self.kind()
        self.min_freq_spin.setValue(0)
        self.normalizer_combo.setCurrentIndex(0)
        self._fill_pre_tokenizers(kind)
        self._fill_specials(kind)
        self._update_summary()

    # ---------------------------------------------------------------------------------------------- internals
    def _on_kind_changed(self, *_) -> None:
        kind = self.kind()
        self.kind_help.setText(next(h for k, _, h in KINDS if k == kind))
        self.vocab_label.setText("At most:" if kind == "char" else "Vocabulary size:")
        self.min_freq_spin.setEnabled(kind != "unigram")
        self._fill_pre_tokenizers(kind)
        self._fill_specials(kind)
        self._update_vocab_range()
        self._update_summary()
        self.kindChanged.emit(kind)

    def _fill_pre_tokenizers(self, kind: str) -> None:
        combo = self.pre_tokenizer_combo
        combo.blockSignals(True)
        combo.clear()
        fixed = FIXED_PRE_TOKENIZER.get(kind)
        for key, label, tip in PRE_TOKENIZER_CHOICES:
            if (fixed and key == fixed) or (not fixed and key not in ("none", "bytelevel")):
                combo.addItem(label, key)
                combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(max(0, combo.findData(DEFAULT_PRE_TOKENIZER[kind])))
        combo.setEnabled(not fixed)
        combo.blockSignals(False)

    def _fill_specials(self, kind: str) -> None:
        for role, edit in self.special_edits.items():
            edit.blockSignals(True)
            edit.setText(DEFAULT_SPECIALS[kind].get(role, ""))
            edit.blockSignals(False)
        self._update_vocab_range()

    def _on_specials_edited(self, *_) -> None:
        self._update_vocab_range()
        self._update_summary()

    def _update_vocab_range(self) -> None:
        kind = self.kind()
        n = len(set(self.special_tokens().values()))
        low = 256 + n if kind == "bytebpe" else max(2, n + 1)
        self.vocab_spin.setRange(low, MAX_VOCAB)
        tip = VOCAB_TIPS.get(kind, DEFAULT_VOCAB_TIP).format(min=f"{low:,}")
        self.vocab_spin.setToolTip(tip)
        self.vocab_label.setToolTip(tip)

    def _update_summary(self, *_) -> None:
        names = {
            "min_frequency": "min frequency",
            "normalizer": "normalizer",
            "pre_tokenizer": "words",
            "special_tokens": "special tokens",
        }
        changed = [names[k] for k in self.options()]
        self.advanced_summary.setText(f"changed: {', '.join(changed)}" if changed else "(this kind's defaults)")
