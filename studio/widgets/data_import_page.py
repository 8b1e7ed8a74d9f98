"""The Data panel's import page: what was chosen, a warning line, the import options on the left and the records
the engine would read on the right, then Import, Back, and the progress of a running import with Cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio import theme
from studio.widgets.form_helpers import MessageLine
from studio.widgets.import_options import ImportOptionsForm
from studio.widgets.import_preview import ImportPreviewView


class ImportPage(QWidget):
    """The widgets of the import page; the panel connects them and decides what they show."""

    def __init__(self, parent=None):
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.setContentsMargins(0, 0, 0, 0)
        self.preview_info = QLabel()
        self.preview_info.setWordWrap(True)
        self.preview_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.preview_info)
        self.preview_warning = MessageLine(self)
        v.addWidget(theme.reserve_space(self.preview_warning, lines=2))
        v.addWidget(self._build_split(), 1)
        v.addLayout(self._build_buttons())
        self.progress_label = QLabel()
        self.progress_label.hide()
        v.addWidget(theme.reserve_space(self.progress_label, lines=1))

    def _build_split(self) -> QSplitter:
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        self.options = ImportOptionsForm()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.options)
        scroll.setMinimumWidth(self.options.minimumSizeHint().width() + 24)
        split.addWidget(scroll)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        self.preview_status = QLabel()
        self.preview_status.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        rv.addWidget(self.preview_status)
        self.preview_view = ImportPreviewView()
        rv.addWidget(self.preview_view, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([430, 720])
        return split

    def _build_buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.import_button = theme.make_primary(QPushButton("Import"))
        self.import_button.setShortcut(QKeySequence("Ctrl+I"))
        self.import_button.setToolTip(
            "Import the chosen files with these options as a new dataset (Ctrl+I). The "
            "engine checks every byte and says exactly what it refuses and why."
        )
        self.discard_button = QPushButton("Back")
        self.discard_button.setToolTip("Forget the chosen files and go back to the datasets (Esc).")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setToolTip("How far the import has got.")
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the import; nothing is added to the workspace.")
        self.cancel_button.hide()
        row.addWidget(self.import_button)
        row.addWidget(self.discard_button)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        row.addStretch(0)
        return row

    def set_importing(self, busy: bool) -> None:
        for w in (self.import_button, self.discard_button, self.options):
            w.setEnabled(not busy)
        self.progress_bar.setVisible(busy)
        self.progress_label.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.progress_label.clear()

    def start_progress(self) -> None:
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")

    def show_progress(self, fraction: float, line: str) -> None:
        """fraction < 0: the engine cannot tell how far it is (a busy bar)."""
        if fraction < 0:
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(round(1000 * min(1.0, fraction))))
            if self.cancel_button.isEnabled():
                self.progress_bar.setFormat(f"{100 * fraction:.0f} %")
        if line:
            self.progress_label.setText(line)
