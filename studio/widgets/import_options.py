"""The import options form of the data panel: format, columns, what a document is, what to do with bad input,
cleaning, split and name.

`ImportOptionsForm.options()` gives only what the user changed from the engine's defaults, as the `options`
dict of an import_request / import_preview_request (engine.data.importers.ImportOptions fields), so an import
with nothing touched is the plain import it always was. The values each control offers are engine/choices.py's
(the first of each is the engine's default); only their words are here.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.choices import (
    BAD_RECORD_CHOICES,
    DECODE_CHOICES,
    DEFAULT_GLOBS,
    DOC_UNITS,
    IMPORT_FORMATS,
    NORMAL_FORMS,
    REGEX_ACTIONS,
    TABULAR_FORMATS,
)
from studio.state.import_files import guess_format
from studio.widgets.form_helpers import MessageLine, choice_combo, set_invalid

# The engine's choices (engine/choices.py) in the form's words.
FORMAT_LABELS = {"txt": "Plain text", "csv": "CSV", "tsv": "TSV", "jsonl": "JSONL", "parquet": "Parquet"}
DOC_UNIT_LABELS = {"file": "the whole file", "line": "each line", "paragraph": "each paragraph"}
DECODE_LABELS = {"error": "stop with an error", "latin-1": "decode it as Latin-1", "skip": "skip the file"}
BAD_RECORD_LABELS = {"error": "stop with an error", "skip": "skip and count them"}
REGEX_ACTION_LABELS = {
    "drop_lines": "drop matching lines",
    "drop_docs": "drop matching documents",
    "keep_docs": "keep only matching documents",
}
FORMAT_CHOICES = ((None, "Auto (by extension)"), *((f, FORMAT_LABELS.get(f, f)) for f in IMPORT_FORMATS))
MAX_CHARS_LIMIT = 100_000_000


def labelled(values: tuple[str, ...], labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(value, label) pairs for a combo, in the engine's order."""
    return tuple((v, labels.get(v, v)) for v in values)


def split_patterns(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class ImportOptionsForm(QWidget):
    """Every import option as a control; `changed` fires on any edit (the panel debounces its preview)."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.detected_format: str | None = None  # what the engine's preview says the files are
        self.guessed_format: str | None = None  # what the extensions say, until the engine answers
        self.has_folder = False
        self.column_types: dict = {}
        self._build()
        self._update_visibility()

    # ------------------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 4, 0)
        v.addWidget(self._build_source())
        v.addWidget(self._build_problems())
        v.addWidget(self._build_cleaning())
        v.addWidget(self._build_dataset())
        v.addStretch(1)

    def _form(self, title: str) -> tuple[QGroupBox, QFormLayout]:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        return box, form

    def _choice_row(self, form: QFormLayout, label: str, choices, tip: str) -> QComboBox:
        """A combo of (value, label) choices in a row of `form`; choosing one is an edit (`changed`)."""
        combo = choice_combo(choices, tip)
        combo.currentIndexChanged.connect(self.changed)
        form.addRow(label, combo)
        return combo

    def _build_source(self) -> QWidget:
        box, form = self._form("What to read")
        self.source_form = form
        self.fmt_combo = choice_combo(
            FORMAT_CHOICES,
            "How to read the files. Auto goes by each file's extension (.txt, .csv, .tsv, "
            ".jsonl, .parquet; anything else is read as plain text). A folder is searched for "
            "files of the chosen format.",
        )
        self.fmt_combo.currentIndexChanged.connect(self._on_format)
        form.addRow("Format:", self.fmt_combo)

        self.column_combo = QComboBox()
        self.column_combo.setEditable(True)
        self.column_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.column_combo.lineEdit().setPlaceholderText("automatic (a column named “text”)")
        self.column_combo.setToolTip(
            "The column (CSV, TSV, Parquet) or field (JSONL) that holds the text to learn from. For JSONL you "
            "can type a dotted path to a nested field, e.g. meta.body. Left empty, a column named “text” (or "
            "the only text column) is taken."
        )
        self.column_combo.setMinimumWidth(220)
        self.column_combo.currentTextChanged.connect(self.changed)
        form.addRow("Text column:", self.column_combo)

        self.label_combo = QComboBox()
        self.label_combo.addItem("none", None)
        self.label_combo.setToolTip(
            "Optional: a column kept with each document as its label: a category or a rating to train a "
            "classifier on (objective Classification), or the response to each prompt of the text column "
            "(objective Instruction tuning). “none” keeps only the text."
        )
        self.label_combo.setMinimumWidth(220)
        self.label_combo.currentIndexChanged.connect(self.changed)
        form.addRow("Label column:", self.label_combo)

        self.delimiter_edit = QLineEdit()
        self.delimiter_edit.setMaxLength(1)
        self.delimiter_edit.setMaximumWidth(60)
        self.delimiter_edit.setPlaceholderText(",")
        self.delimiter_edit.setToolTip(
            "The one character between CSV fields. Empty: a comma for CSV, a tab for "
            "TSV. Use ; for files saved by spreadsheets in many European locales."
        )
        self.delimiter_edit.textChanged.connect(self.changed)
        form.addRow("Delimiter:", self.delimiter_edit)

        self.doc_unit_combo = self._choice_row(
            form,
            "Document is:",
            labelled(DOC_UNITS, DOC_UNIT_LABELS),
            "What one document is in a plain text file. Documents are kept apart in the dataset (a blank line "
            "between them; once tokenized, the tokenizer's end-of-text token) and are what duplicate and length "
            "filters act on. Each line suits one sentence or "
            "one record per line; each paragraph splits at blank lines.",
        )

        self.include_edit = QLineEdit()
        self.include_edit.setToolTip(
            "Only files in the folder whose name or path matches one of these patterns, comma separated "
            "(e.g. *.md, notes/*.txt). Empty: files of the chosen format (*.txt for Auto)."
        )
        self.include_edit.textChanged.connect(self.changed)
        form.addRow("Include:", self.include_edit)
        self.exclude_edit = QLineEdit()
        self.exclude_edit.setPlaceholderText("nothing")
        self.exclude_edit.setToolTip(
            "Leave out files in the folder matching any of these patterns, comma "
            "separated (e.g. drafts/*, *.log). Hidden files are always left out."
        )
        self.exclude_edit.textChanged.connect(self.changed)
        form.addRow("Exclude:", self.exclude_edit)
        return box

    def _build_problems(self) -> QWidget:
        box, form = self._form("When the input has problems")
        self.decode_combo = self._choice_row(
            form,
            "If a file is not UTF-8:",
            labelled(DECODE_CHOICES, DECODE_LABELS),
            "What to do with a file that is not UTF-8 text (UTF-16/32 with a byte-order mark are fine). "
            "Latin-1 never fails but turns other encodings into wrong characters; skipping leaves the file out. "
            "Either way the file is named in the warnings.",
        )
        self.bad_record_combo = self._choice_row(
            form,
            "Bad records:",
            labelled(BAD_RECORD_CHOICES, BAD_RECORD_LABELS),
            "What to do with records that cannot be read: a malformed JSONL line, a CSV row with the wrong "
            "number of fields, a value that is not text. Stopping names their line numbers; skipping imports "
            "the rest and shows how many were left out.",
        )
        return box

    def _build_cleaning(self) -> QWidget:
        box, form = self._form("Cleaning")
        box.setToolTip(
            "Optional steps run on every document on its way in, in the order listed. The preview "
            "shows what each does before you import."
        )
        self.normalize_combo = self._choice_row(
            form,
            "Unicode normalization:",
            ((None, "none"), *((f, f) for f in NORMAL_FORMS)),
            "Unicode normalization. NFC joins letters and accents written as two characters into one, so the "
            "same word is always spelled the same way. NFKC also folds look-alikes (ﬁ → fi, full-width letters, "
            "superscripts) - good for web text, lossy for maths.",
        )

        def check(text: str, tip: str) -> QCheckBox:
            c = QCheckBox(text)
            c.setToolTip(tip)
            c.toggled.connect(self.changed)
            form.addRow(c)
            return c

        self.strip_control_check = check(
            "Strip control characters",
            "Remove invisible control characters (NUL, escape codes, stray byte-order marks) except tabs and "
            "line breaks.",
        )
        self.collapse_check = check(
            "Collapse whitespace",
            "Turn runs of spaces and tabs into one space, trim each line and keep at most one blank line in a "
            "row. Code and poetry lose their indentation.",
        )
        self.lowercase_check = check(
            "Lowercase",
            "Lower-case all text. A smaller vocabulary and faster learning, but the model never writes capitals.",
        )
        self.dedupe_lines_check = check(
            "Drop duplicate lines",
            "Remove a line that appeared before anywhere in the corpus (boilerplate, headers, signatures). "
            "Blank lines are kept. Repeated choruses or dialogue lines go too.",
        )
        self.dedupe_docs_check = check(
            "Drop duplicate documents",
            "Remove a document identical (after the steps above) to one kept before. Duplicates make the model "
            "memorise and make the validation loss look better than it is.",
        )

        form.addRow("Document length:", self._build_lengths())
        self._build_regex(form, box)
        return box

    def _build_lengths(self) -> QWidget:
        lengths = QWidget()
        h = QHBoxLayout(lengths)
        h.setContentsMargins(0, 0, 0, 0)
        self.min_chars_spin = QSpinBox()
        self.max_chars_spin = QSpinBox()
        for spin, tip in (
            (
                self.min_chars_spin,
                "Drop documents shorter than this many characters (after cleaning). 0 keeps them all. "
                "Around 20-200 removes empty or one-word records; too high drops real text.",
            ),
            (
                self.max_chars_spin,
                "Drop documents longer than this many characters (after cleaning). 0: no limit. Too "
                "low throws away your longest, often best, documents.",
            ),
        ):
            spin.setRange(0, MAX_CHARS_LIMIT)
            spin.setSpecialValueText("no limit")
            spin.setGroupSeparatorShown(True)
            spin.setToolTip(tip)
            spin.setMinimumWidth(100)
            spin.valueChanged.connect(self.changed)
        h.addWidget(QLabel("from"))
        h.addWidget(self.min_chars_spin)
        h.addWidget(QLabel("to"))
        h.addWidget(self.max_chars_spin)
        h.addStretch(1)
        lengths.setToolTip("Keep only documents whose length in characters is in this range; 0 means no limit.")
        return lengths

    def _build_regex(self, form: QFormLayout, box: QGroupBox) -> None:
        self.regex_edit = QLineEdit()
        self.regex_edit.setPlaceholderText("a Python regular expression, e.g. ^Chapter \\d+")
        self.regex_edit.setToolTip(
            "A regular expression (Python syntax) searched in each line. What happens "
            "to a match is chosen below. Empty: no filter."
        )
        self.regex_edit.textChanged.connect(self._on_regex)
        self.regex_label = QLabel("Regex filter:")
        form.addRow(self.regex_label, self.regex_edit)
        self.regex_action_combo = self._choice_row(
            form,
            "",
            labelled(REGEX_ACTIONS, REGEX_ACTION_LABELS),
            "What the regex filter does: remove the lines that match (page numbers, headers), remove whole "
            "documents with a matching line (spam, a language you do not want), or keep only documents with a "
            "matching line.",
        )
        self.regex_error = MessageLine(box)
        form.addRow(self.regex_error)

    def _build_dataset(self) -> QWidget:
        box, form = self._form("The dataset")
        self.name_edit = QLineEdit()
        self.name_edit.setMinimumWidth(200)
        self.name_edit.setToolTip("The dataset's name in this workspace. Defaults to the file or folder name.")
        self.name_edit.setPlaceholderText("dataset name")
        form.addRow("Name:", self.name_edit)
        self.val_spin = QSpinBox()
        self.val_spin.setRange(0, 50)
        self.val_spin.setValue(10)
        self.val_spin.setSuffix(" %")
        self.val_spin.setMinimumWidth(90)
        self.val_spin.setToolTip(
            "Validation share, 0–50 %: text held out to measure how well the model "
            "generalises. 10 % is usual; 0 % means no validation loss; much more leaves "
            "less to learn from."
        )
        form.addRow("Validation:", self.val_spin)

        self.split_tail_radio = QRadioButton("the last part of the text (as nanoGPT)")
        self.split_tail_radio.setToolTip(
            "Hold out the last N % of the characters. Validation text is then "
            "unlike anything seen in training, a fair test; a corpus sorted by topic "
            "or date makes it a harder one."
        )
        self.split_docs_radio = QRadioButton("random whole documents, seed")
        self.split_docs_radio.setToolTip(
            "Hold out whole documents chosen at random (about N % of the text). "
            "Better for many short documents of mixed kinds; the seed makes the "
            "choice repeatable."
        )
        self.split_tail_radio.setChecked(True)
        self._split_group = QButtonGroup(self)
        self._split_group.addButton(self.split_tail_radio)
        self._split_group.addButton(self.split_docs_radio)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2_147_483_647)
        self.seed_spin.setToolTip(
            "The seed of the random choice of validation documents: the same seed picks the same documents again."
        )
        self.seed_spin.setEnabled(False)
        self.split_docs_radio.toggled.connect(self.seed_spin.setEnabled)
        self.split_docs_radio.toggled.connect(self.changed)
        self.seed_spin.valueChanged.connect(self.changed)
        docs_row = QWidget()
        h = QHBoxLayout(docs_row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.split_docs_radio)
        h.addWidget(self.seed_spin)
        h.addStretch(1)
        form.addRow("Held out:", self.split_tail_radio)
        form.addRow("", docs_row)
        return box

    # ------------------------------------------------------------------------------------------- reactions
    def _on_format(self) -> None:
        self._update_visibility()
        self.changed.emit()

    def _on_regex(self) -> None:
        error = self.regex_error_text()
        set_invalid(self.regex_edit, bool(error), self.regex_label)
        self.regex_error.show_message(error, "error")
        self.changed.emit()

    def regex_error_text(self) -> str:
        pattern = self.regex_edit.text()
        if not pattern:
            return ""
        try:
            re.compile(pattern)
        except re.error as e:
            return f"Not a valid regular expression: {e}"
        return ""

    def effective_format(self) -> str | None:
        """The chosen format, or the one the files turned out to be; "mixed" or None when unknown."""
        return self.fmt_combo.currentData() or self.detected_format or self.guessed_format

    def _update_visibility(self) -> None:
        fmt = self.effective_format()
        tabular = fmt in TABULAR_FORMATS or fmt == "mixed"
        form = self.source_form
        form.setRowVisible(self.column_combo, tabular)
        form.setRowVisible(self.label_combo, tabular)
        form.setRowVisible(self.delimiter_edit, fmt in ("csv", "tsv"))
        form.setRowVisible(self.doc_unit_combo, fmt in (None, "txt", "mixed"))
        form.setRowVisible(self.include_edit, self.has_folder)
        form.setRowVisible(self.exclude_edit, self.has_folder)
        globs = DEFAULT_GLOBS.get(self.fmt_combo.currentData() or "txt", ["*.txt"])
        self.include_edit.setPlaceholderText(", ".join(globs))
        self.delimiter_edit.setPlaceholderText("tab" if fmt == "tsv" else ",")

    # ------------------------------------------------------------------------------------------- the files
    def set_paths(self, paths: list[str]) -> None:
        """New files chosen: forget the columns of the last ones, keep the cleaning and problem choices."""
        self.has_folder = any(Path(x).is_dir() for x in paths)
        kinds = {guess_format(x) for x in paths}
        self.guessed_format = kinds.pop() if len(kinds) == 1 else "mixed"
        self.detected_format = None
        self.column_types = {}
        for w in (self.column_combo, self.label_combo, self.include_edit, self.exclude_edit, self.delimiter_edit):
            w.blockSignals(True)
        self.column_combo.clear()
        self.column_combo.setEditText("")
        while self.label_combo.count() > 1:
            self.label_combo.removeItem(1)
        self.label_combo.setCurrentIndex(0)
        self.include_edit.clear()
        self.exclude_edit.clear()
        self.delimiter_edit.clear()
        for w in (self.column_combo, self.label_combo, self.include_edit, self.exclude_edit, self.delimiter_edit):
            w.blockSignals(False)
        self._update_visibility()

    def set_detected(self, fmt: str | None, columns: list, column_types: dict | None = None) -> None:
        """What the engine's preview found: the files' format and their columns (fills the two combos)."""
        self.detected_format = fmt
        self.column_types = dict(column_types or {})
        columns = [str(c) for c in columns or []]
        have = [self.column_combo.itemText(i) for i in range(self.column_combo.count())]
        if columns != have:
            text = self.column_combo.currentText()
            label = self.label_combo.currentData()
            for w in (self.column_combo, self.label_combo):
                w.blockSignals(True)
            self.column_combo.clear()
            while self.label_combo.count() > 1:
                self.label_combo.removeItem(1)
            for c in columns:
                tip = self._column_tip(c)
                self.column_combo.addItem(c)
                self.column_combo.setItemData(self.column_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
                self.label_combo.addItem(c, c)
                self.label_combo.setItemData(self.label_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
            self.column_combo.setEditText(text)
            i = self.label_combo.findData(label) if label is not None else 0
            self.label_combo.setCurrentIndex(max(0, i))
            for w in (self.column_combo, self.label_combo):
                w.blockSignals(False)
        self._update_visibility()

    def _column_tip(self, column: str) -> str:
        kind = self.column_types.get(column)
        return f"{column}: {kind}" if kind else column

    # ------------------------------------------------------------------------------------------- the values
    def cleaning(self) -> dict:
        """The cleaning steps switched on (a CleaningConfig dict with only the non-default keys)."""
        c: dict = {}
        if self.normalize_combo.currentData():
            c["normalize"] = self.normalize_combo.currentData()
        for key, box in (
            ("strip_control", self.strip_control_check),
            ("collapse_whitespace", self.collapse_check),
            ("lowercase", self.lowercase_check),
            ("dedupe_lines", self.dedupe_lines_check),
            ("dedupe_docs", self.dedupe_docs_check),
        ):
            if box.isChecked():
                c[key] = True
        if self.regex_edit.text():
            c["regex"] = self.regex_edit.text()
            if self.regex_action_combo.currentData() != REGEX_ACTIONS[0]:
                c["regex_action"] = self.regex_action_combo.currentData()
        if self.min_chars_spin.value():
            c["min_chars"] = self.min_chars_spin.value()
        if self.max_chars_spin.value():
            c["max_chars"] = self.max_chars_spin.value()
        return c

    def options(self, for_preview: bool = False) -> dict:
        """The import options the user set (defaults left out); hidden rows do not apply and are not sent.

        for_preview: an invalid regex is left out, so the preview still shows the records (the regex line says
        what is wrong); an import sends it and the engine refuses it with its own message."""
        o: dict = {}
        fmt = self.fmt_combo.currentData()
        if fmt:
            o["fmt"] = fmt
        eff = self.effective_format()
        if eff in TABULAR_FORMATS or eff == "mixed":
            column = self.column_combo.currentText().strip()
            if column:
                o["column"] = column
            if self.label_combo.currentData() is not None:
                o["label_column"] = self.label_combo.currentData()
        if eff in ("csv", "tsv") and self.delimiter_edit.text():
            o["delimiter"] = self.delimiter_edit.text()
        if eff in (None, "txt", "mixed") and self.doc_unit_combo.currentData() != DOC_UNITS[0]:
            o["doc_unit"] = self.doc_unit_combo.currentData()
        if self.has_folder:
            if split_patterns(self.include_edit.text()):
                o["include"] = split_patterns(self.include_edit.text())
            if split_patterns(self.exclude_edit.text()):
                o["exclude"] = split_patterns(self.exclude_edit.text())
        if self.decode_combo.currentData() != DECODE_CHOICES[0]:
            o["on_decode_error"] = self.decode_combo.currentData()
        if self.bad_record_combo.currentData() != BAD_RECORD_CHOICES[0]:
            o["on_bad_record"] = self.bad_record_combo.currentData()
        cleaning = self.cleaning()
        if for_preview and "regex" in cleaning and self.regex_error_text():
            cleaning.pop("regex")
            cleaning.pop("regex_action", None)
        if cleaning:
            o["cleaning"] = cleaning
        if self.split_docs_radio.isChecked():
            o["split"] = "documents"
            o["seed"] = self.seed_spin.value()
        return o

    def val_fraction(self) -> float:
        return self.val_spin.value() / 100

    def set_format(self, fmt: str | None) -> None:
        self.fmt_combo.setCurrentIndex(max(0, self.fmt_combo.findData(fmt)) if fmt else 0)
