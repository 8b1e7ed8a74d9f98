"""The Data panel's details of the selected dataset: its numbers and how it was imported (the words come from
studio/state/data_details.py), its import warnings, and the beginning of its text."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from studio.state.data_details import DETAIL_ROWS, detail_texts, import_warnings_text
from studio.widgets.form_helpers import MessageLine, monospace_font


class DatasetDetails(QWidget):
    """Title, one line per DETAIL_ROWS entry, the warnings line and the text preview."""

    def __init__(self, parent=None):
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.details_title = QLabel("<b>No dataset selected</b>")
        v.addWidget(self.details_title)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.stats: dict[str, QLabel] = {}
        for key, label, tip in DETAIL_ROWS:
            value = QLabel("—")
            value.setWordWrap(True)  # the value wraps before its label is cut off in a narrow window
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setToolTip(tip)
            name = QLabel(label + ":")
            name.setToolTip(tip)
            form.addRow(name, value)
            self.stats[key] = value
        v.addLayout(form)
        self.details_warnings = MessageLine(self)
        v.addWidget(self.details_warnings)
        v.addWidget(QLabel("<b>Beginning of the text</b>"))
        self.dataset_preview = QPlainTextEdit()
        self.dataset_preview.setReadOnly(True)
        self.dataset_preview.setFont(monospace_font())
        self.dataset_preview.setToolTip(
            "The first few thousand characters of the selected dataset, as the model will see them."
        )
        v.addWidget(self.dataset_preview, 1)

    def show_dataset(self, ds: dict | None) -> None:
        if not ds:
            self.details_title.setText("<b>No dataset selected</b>")
            for label in self.stats.values():
                label.setText("—")
            self.details_warnings.clear_message()
            return
        self.details_title.setText(f"<b>{html.escape(str(ds.get('name', '')), quote=False)}</b>")
        for key, text in detail_texts(ds).items():
            self.stats[key].setText(text)
        self.stats["n_bytes"].setToolTip(f"{int(ds.get('n_bytes') or 0):,} bytes")
        warnings = (ds.get("stats") or {}).get("warnings") or []
        self.details_warnings.show_message(import_warnings_text(ds), "warning")
        self.details_warnings.setToolTip("\n".join(warnings))

    def show_text_failed(self, error: str) -> None:
        """Why the dataset's first characters could not be read, where they would be."""
        self.dataset_preview.setPlainText("")
        self.dataset_preview.setPlaceholderText(f"(could not load the text: {error})")
