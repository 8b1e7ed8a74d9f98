"""Data panel: bring your own text into the workspace, look at it before and after importing.

Choosing files opens the import page (studio/widgets/data_import_page.py): the options on the left, and on the
right the records the engine would read with them, before and after cleaning, asked for again ~300 ms after each
change. A quick look with the standard library (file count, size, the first 4 KB) fills the info line at once, so
a wrong file is noticed before the engine reads gigabytes; the import itself runs in the engine with progress
and Cancel. What the page shows is decided without Qt in studio/state/data_import.py, the details of a dataset
in studio/state/data_details.py.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from studio import theme
from studio.state.data_import import (
    PREVIEW_DELAY_MS,
    PREVIEW_RECORDS,
    ImportState,
    imported_message,
    preview_status,
    progress_line,
    quick_look_info,
)
from studio.state.import_files import FilePreview
from studio.widgets.data_details import DatasetDetails
from studio.widgets.data_import_page import ImportPage
from studio.widgets.data_table import DatasetTable
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded
from studio.widgets.undo_bar import UndoBar

FILE_FILTER = (
    "Text and data (*.txt *.md *.csv *.tsv *.jsonl *.json *.parquet);;Plain text (*.txt *.md *.text);;"
    "Tables (*.csv *.tsv *.parquet);;JSON lines (*.jsonl *.json *.ndjson);;All files (*)"
)


class DataPanel(QWidget):
    """Import text files or folders as datasets and inspect them."""

    importFinished = Signal(object)  # the new dataset row, or None when the import failed / was cancelled
    previewUpdated = Signal()  # the engine's preview of the chosen files is on screen

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.state = ImportState()
        self._text_request_id: str | None = None  # the dataset text on the details page
        self.error_box: QMessageBox | None = None
        self.setAcceptDrops(True)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self.request_preview)
        self._build()
        session.workspaceChanged.connect(self._on_workspace)
        session.datasetSelected.connect(self._on_dataset_selected)
        self._on_workspace(getattr(session, "workspace", None) or {})
        if getattr(session, "dataset", None):
            self._on_dataset_selected(session.dataset)

    # What the import page holds lives in self.state; these read it under the names the panel always had.
    preview = property(lambda self: self.state.preview)
    last_preview_reply = property(lambda self: self.state.last_preview_reply)
    import_request_id = property(lambda self: self.state.import_request_id)
    import_preview_request_id = property(lambda self: self.state.preview_request_id)

    # ------------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(
            PanelHeader(
                "Bring your text",
                "Import text files, tables (CSV, TSV, JSONL, Parquet) or a folder as a dataset, cleaned the way you "
                "choose. The model will learn to write text like it. You can also drop files here.",
            )
        )
        self.error_line = MessageLine(self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self._build_browse())
        self.stack.addWidget(self._build_import())
        root.addWidget(self.stack, 1)
        # Room for two lines kept: a message appearing must not move the buttons above it.
        root.addWidget(theme.reserve_space(self.error_line, lines=2))

    def _build_browse(self) -> QWidget:
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        left = QWidget()
        left.setMinimumWidth(340)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(QLabel("<b>Datasets in this workspace</b>"))
        self.dataset_table = DatasetTable()
        self.dataset_table.itemSelectionChanged.connect(self._on_table_selection)
        lv.addWidget(self.dataset_table, 1)
        lv.addLayout(self._build_browse_buttons())
        self.undo_bar = UndoBar(self.session, self.error_line, left)
        lv.addWidget(self.undo_bar)
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.dataset_table)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self.delete_selected)
        split.addWidget(left)
        self.details = DatasetDetails()
        self.details.setMinimumWidth(340)
        d = self.details
        self.details_title, self.stats, self.details_warnings = d.details_title, d.stats, d.details_warnings
        self.dataset_preview = d.dataset_preview
        split.addWidget(self.details)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([420, 620])
        return split

    def _build_browse_buttons(self) -> QHBoxLayout:
        buttons = QHBoxLayout()
        self.import_file_button = QPushButton("Import file…")
        self.import_file_button.setToolTip(
            "Choose one or more files to import: plain text (UTF-8, UTF-16 or "
            "UTF-32), CSV, TSV, JSONL or Parquet. You choose the options and see a "
            "preview before anything is imported."
        )
        self.import_file_button.clicked.connect(self.choose_files)
        self.import_folder_button = QPushButton("Import folder…")
        self.import_folder_button.setToolTip(
            "Choose a folder: its files and those of its sub-folders are "
            "imported (.txt unless you choose a format or patterns). Hidden "
            "files are skipped."
        )
        self.import_folder_button.clicked.connect(self.choose_folder)
        buttons.addWidget(self.import_file_button)
        buttons.addWidget(self.import_folder_button)
        buttons.addStretch(1)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip(
            "Move the selected dataset to the workspace's trash (Del). Undo puts it back; "
            "a dataset that tokenizers or runs were made from cannot be deleted before "
            "them."
        )
        self.delete_button.clicked.connect(self.delete_selected)
        self.delete_button.setEnabled(False)
        buttons.addWidget(self.delete_button)
        return buttons

    def _build_import(self) -> QWidget:
        page = self.import_page = ImportPage()
        self.options = page.options
        self.options.changed.connect(self._on_options_changed)
        self.name_edit, self.val_spin = self.options.name_edit, self.options.val_spin
        self.preview_info, self.preview_warning = page.preview_info, page.preview_warning
        self.preview_status, self.preview_view = page.preview_status, page.preview_view
        self.preview_text = page.preview_view.raw_text
        self.import_button, self.discard_button = page.import_button, page.discard_button
        self.progress_bar, self.cancel_button = page.progress_bar, page.cancel_button
        self.progress_label = page.progress_label
        self.import_button.clicked.connect(self.start_import)
        self.discard_button.clicked.connect(self.discard_preview)
        self.cancel_button.clicked.connect(self.cancel_import)
        return page

    # -------------------------------------------------------------------------------------- choosing files
    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import files", str(Path.home()), FILE_FILTER)
        if paths:
            self.preview_paths(paths)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a folder", str(Path.home()))
        if path:
            self.preview_paths([path])

    def preview_paths(self, paths: list[str]) -> FilePreview:
        """Open the import page for `paths`: options, a quick look now, the engine's records shortly after."""
        paths = [str(x) for x in paths]
        self.options.set_paths(paths)
        self.state.new_files()
        pv = self._quick_preview(paths)
        self.name_edit.setText(pv.default_name)
        self.error_line.clear_message()
        self.state.last_preview_reply = None
        self.preview_view.show_reply({}, [], {})
        self._set_importing(False)
        self.stack.setCurrentIndex(1)
        self.import_button.setFocus()
        self.request_preview()
        return pv

    def _quick_preview(self, paths: list[str]) -> FilePreview:
        pv = self.state.look(paths, self.options.options())
        if pv is None:  # the files an import would read are the same as before
            return self.state.preview
        self.preview_info.setText(quick_look_info(pv))
        self.preview_text.setPlainText(pv.text)
        self._show_warnings()
        return pv

    def _show_warnings(self) -> None:
        """The quick look's warning and the engine preview's, in the one warning line (Import stays enabled:
        the engine is the judge)."""
        parts = self.state.warnings(self.options.decode_combo.currentData(), self.options.fmt_combo.currentData())
        self.preview_warning.show_message("\n".join(parts), "warning")

    def _on_options_changed(self) -> None:
        if self.preview is not None and self.import_request_id is None:
            self.preview_status.setText("updating the preview…")
            self._preview_timer.start()  # restarts: only a pause in the edits sends a request

    def request_preview(self) -> str | None:
        """Ask the engine for the records these options read; only the newest request's reply is shown."""
        self._preview_timer.stop()
        if self.preview is None:
            return None
        paths = list(self.preview.paths)
        self._quick_preview(paths)
        msg = p.ImportPreviewRequest(paths=paths, options=self.options.options(for_preview=True), n=PREVIEW_RECORDS)
        self.preview_status.setText("reading the first records…")
        self.state.preview_request_id = self.session.request(msg, on_reply=guarded(self, self._on_preview_reply))
        return self.state.preview_request_id

    def _on_preview_reply(self, reply) -> None:
        if reply.parent != self.state.preview_request_id or self.preview is None or self._preview_timer.isActive():
            return  # an older request's answer, options changed since it was asked, or the files put away
        self.state.last_preview_reply = reply
        if reply.ok:
            pv = reply.preview or {}
            self.options.set_detected(pv.get("format"), pv.get("columns") or [], pv.get("column_types") or {})
            self.preview_view.show_reply(pv, reply.cleaned, reply.cleaning)
            self.preview_status.setText(preview_status(pv))
        else:
            self.preview_status.setText("The preview failed; see the warning above.")
        self._show_warnings()
        self.previewUpdated.emit()

    def discard_preview(self) -> None:
        if self.import_request_id is not None:
            return
        self._preview_timer.stop()
        self.state.forget()
        self.stack.setCurrentIndex(0)

    def keyPressEvent(self, event):
        if event.key() == Qt.Key.Key_Escape and self.stack.currentIndex() == 1 and self.import_request_id is None:
            self.discard_preview()
            event.accept()
            return
        super().keyPressEvent(event)

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and self.import_request_id is None:
            event.acceptProposedAction()
            self.preview_paths(paths)

    # -------------------------------------------------------------------------------------------- importing
    def start_import(self) -> str | None:
        if self.preview is None or self.import_request_id is not None:
            return None
        self._preview_timer.stop()
        name = self.name_edit.text().strip() or self.preview.default_name
        msg = p.ImportRequest(
            paths=list(self.preview.paths),
            name=name,
            val_fraction=self.options.val_fraction(),
            options=self.options.options(),
        )
        self.error_line.clear_message()
        self.import_page.start_progress()
        self._set_importing(True)
        self.state.import_started = time.monotonic()
        # Kept before sending: the Session may answer at once (the engine has just stopped or died), and that
        # answer must find the request it ends, or the panel would stay "importing".
        self.state.import_request_id = msg.id
        self.session.request(
            msg, on_reply=guarded(self, self._on_import_reply), on_event=guarded(self, self._on_import_event)
        )
        return msg.id

    def cancel_import(self) -> None:
        if self.import_request_id is not None:
            self.session.cancel(self.import_request_id)
            self.progress_bar.setFormat("cancelling…")
            self.cancel_button.setEnabled(False)

    def _set_importing(self, busy: bool) -> None:
        self.import_page.set_importing(busy)
        for w in (self.import_file_button, self.import_folder_button):
            w.setEnabled(not busy)
        self.delete_button.setEnabled(not busy and bool(getattr(self.session, "dataset", None)))

    def _on_import_event(self, msg) -> None:
        if isinstance(msg, p.Progress):
            elapsed = time.monotonic() - self.state.import_started
            self.import_page.show_progress(msg.fraction, progress_line(msg.message, msg.fraction, elapsed))

    def _on_import_reply(self, reply) -> None:
        self.state.import_request_id = None
        self._set_importing(False)
        self.progress_bar.setRange(0, 1000)
        if not reply.ok:
            error = reply.error or "the import failed"
            if "cancel" in error.lower():
                self.error_line.show_message("Import cancelled; nothing was added.", "info")
            else:
                self.error_line.show_message(f"Import failed: {error}", "error")
                self._show_error_box(error)
            self.importFinished.emit(None)
            return
        row = getattr(reply, "dataset", None) or {}
        self.state.forget()
        self.error_line.show_message(*imported_message(row))
        self.stack.setCurrentIndex(0)
        if row:
            self.session.select_dataset(row)
        self.importFinished.emit(row)

    def _show_error_box(self, error: str) -> None:
        # open(), not exec(): a message box must not stop the event loop (and a test from going on)
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Import failed",
            "The text could not be imported.",
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setInformativeText(error)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.error_box = box
        box.open()

    # ------------------------------------------------------------------------------------ workspace & details
    def _on_workspace(self, summary: dict) -> None:
        datasets = list((summary or {}).get("datasets") or [])
        self.dataset_table.fill(datasets)
        current = getattr(self.session, "dataset", None)
        self.dataset_table.select_dataset(current)
        if current:  # the row may have new numbers (the workspace was re-read)
            fresh = next((d for d in datasets if d.get("id") == current.get("id")), None)
            if fresh:
                self.details.show_dataset(fresh)

    def delete_selected(self) -> str | None:
        """Move the selected dataset to the trash (the undo bar offers it back)."""
        ds = getattr(self.session, "dataset", None)
        if not ds or self.import_request_id is not None:
            return None
        return self.undo_bar.delete("dataset", ds)

    def _on_table_selection(self) -> None:
        ds = self.dataset_table.selected_dataset()
        current = getattr(self.session, "dataset", None)
        if ds and (not current or current.get("id") != ds.get("id")):
            self.session.select_dataset(ds)

    def _on_dataset_selected(self, ds) -> None:
        self.delete_button.setEnabled(bool(ds))
        self.dataset_table.select_dataset(ds)
        self.details.show_dataset(ds)
        if self.stack.currentIndex() == 1 and self.import_request_id is None and self.preview is None:
            self.stack.setCurrentIndex(0)
        self.dataset_preview.clear()
        if ds:
            self.dataset_preview.setPlaceholderText("loading…")
            self._text_request_id = self.session.request(
                p.DatasetPreviewRequest(dataset=ds.get("id", ds.get("name")), n_chars=4000),
                on_reply=guarded(self, self._on_dataset_text),
            )
        else:
            self.dataset_preview.setPlaceholderText("")

    def _on_dataset_text(self, reply) -> None:
        if reply.parent != self._text_request_id:
            return  # an older selection's text
        if reply.ok:
            self.dataset_preview.setPlainText(reply.text)
        else:
            self.details.show_text_failed(reply.error)
