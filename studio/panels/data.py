"""Data panel: bring your own text into the workspace, look at it before and after importing.

Choosing files opens the import page: the options (import_options.py) on the left, and on the right the records
the engine would read with them, before and after cleaning (widgets/import_preview.py), asked for again ~300 ms
after each change. A quick look with the standard library (file count, size, the first 4 KB) fills the info
line at once, so a wrong file is noticed before the engine reads gigabytes; the import itself runs in the engine
with progress and Cancel.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QHeaderView,
                               QLabel, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QScrollArea,
                               QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine import protocol as p
from engine.config import human_bytes, human_count, human_duration, plural
from studio import theme
from studio.panels.import_files import FilePreview, preview_paths
from studio.panels.import_options import ImportOptionsForm
from studio.panels.import_report import FORMAT_NAMES, cleaning_text, format_text, records_text, split_text
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded, human_exact, monospace_font
from studio.widgets.import_preview import ImportPreviewView
from studio.widgets.undo_bar import UndoBar

PREVIEW_RECORDS = 50         # records the engine previews
PREVIEW_DELAY_MS = 300       # the preview is asked for again this long after the last option change
WARNINGS_SHOWN = 3
FILE_FILTER = ("Text and data (*.txt *.md *.csv *.tsv *.jsonl *.json *.parquet);;Plain text (*.txt *.md *.text);;"
               "Tables (*.csv *.tsv *.parquet);;JSON lines (*.jsonl *.json *.ndjson);;All files (*)")


def eta_text(fraction: float, elapsed_s: float) -> str:
    """'about 1 m 20 s left' from how far a job is and how long it has run; '' while too early to tell."""
    if fraction <= 0.02 or fraction >= 1 or elapsed_s < 2:
        return ""
    return f"about {human_duration(elapsed_s * (1 - fraction) / fraction)} left"


# ----------------------------------------------------------------------------------------------------- panel

DATASET_COLUMNS = (("name", "Name"), ("n_docs", "Documents"), ("n_chars", "Characters"), ("n_lines", "Lines"))
class _NameItem(QTableWidgetItem):
    """A name that sorts as people read names: "alpha", "Notes", "sample" (not capitals first)."""

    def __lt__(self, other):
        return (self.text().casefold(), self.text()) < (other.text().casefold(), other.text())


class _NumberItem(QTableWidgetItem):
    """Shows a human-formatted number but sorts by the number itself."""

    def __init__(self, value):
        super().__init__(human_count(value) if isinstance(value, (int, float)) else str(value or ""))
        self._value = value if isinstance(value, (int, float)) else -1
        if isinstance(value, (int, float)):
            self.setToolTip(f"{int(value):,}")
            self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other):
        if isinstance(other, _NumberItem):
            return self._value < other._value
        return super().__lt__(other)


class DataPanel(QWidget):
    """Import text files or folders as datasets and inspect them."""

    importFinished = Signal(object)   # the new dataset row, or None when the import failed / was cancelled
    previewUpdated = Signal()         # the engine's preview of the chosen files is on screen

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.preview: FilePreview | None = None
        self.import_request_id: str | None = None
        self._preview_request_id: str | None = None    # the dataset text on the details page
        self.import_preview_request_id: str | None = None
        self.last_preview_reply = None
        self._quick_key = None
        self._import_started = 0.0
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

    # ------------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(PanelHeader(
            "Bring your text",
            "Import text files, tables (CSV, TSV, JSONL, Parquet) or a folder as a dataset, cleaned the way you "
            "choose. The model will learn to write text like it. You can also drop files here."))
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
        self.dataset_table = QTableWidget(0, len(DATASET_COLUMNS))
        self.dataset_table.setHorizontalHeaderLabels([c[1] for c in DATASET_COLUMNS])
        self.dataset_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.dataset_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.dataset_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.dataset_table.verticalHeader().hide()
        self.dataset_table.setSortingEnabled(True)
        # Qt's default indicator is Name, descending: start A to Z, as the arrow will then say.
        self.dataset_table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.dataset_table.setAlternatingRowColors(True)
        hh = self.dataset_table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(DATASET_COLUMNS)):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.dataset_table.setToolTip("The datasets imported into this workspace. Click one to use it for the "
                                      "tokenizer and for training.")
        self.dataset_table.itemSelectionChanged.connect(self._on_table_selection)
        lv.addWidget(self.dataset_table, 1)
        buttons = QHBoxLayout()
        self.import_file_button = QPushButton("Import file…")
        self.import_file_button.setToolTip("Choose one or more files to import: plain text (UTF-8, UTF-16 or "
                                           "UTF-32), CSV, TSV, JSONL or Parquet. You choose the options and see a "
                                           "preview before anything is imported.")
        self.import_file_button.clicked.connect(self.choose_files)
        self.import_folder_button = QPushButton("Import folder…")
        self.import_folder_button.setToolTip("Choose a folder: its files and those of its sub-folders are "
                                             "imported (.txt unless you choose a format or patterns). Hidden "
                                             "files are skipped.")
        self.import_folder_button.clicked.connect(self.choose_folder)
        buttons.addWidget(self.import_file_button)
        buttons.addWidget(self.import_folder_button)
        buttons.addStretch(1)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Move the selected dataset to the workspace's trash (Del). Undo puts it back; "
                                      "a dataset that tokenizers or runs were made from cannot be deleted before "
                                      "them.")
        self.delete_button.clicked.connect(self.delete_selected)
        self.delete_button.setEnabled(False)
        buttons.addWidget(self.delete_button)
        lv.addLayout(buttons)
        self.undo_bar = UndoBar(self.session, self.error_line, left)
        lv.addWidget(self.undo_bar)
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.dataset_table)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self.delete_selected)
        split.addWidget(left)
        details = self._build_details()
        details.setMinimumWidth(340)
        split.addWidget(details)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([420, 620])
        return split

    def _build_details(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        self.details_title = QLabel("<b>No dataset selected</b>")
        v.addWidget(self.details_title)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.stats: dict[str, QLabel] = {}
        rows = (("n_docs", "Documents", "How many documents (files, records, lines or paragraphs) the dataset has."),
                ("n_chars", "Characters", "Characters of text in the dataset, training and validation together."),
                ("n_lines", "Lines", "Lines of text (line breaks) in the dataset."),
                ("split", "Train / validation", "Characters the model trains on, and characters held out to "
                                                "measure how well it generalises."),
                ("split_kind", "Held out", "How the validation text was chosen: the end of the text, or whole "
                                           "documents at random."),
                ("format", "Format", "What the files were read as, and what one document is."),
                ("labels", "Labels", "Whether each document keeps a label (for fine-tuning a classifier later)."),
                ("cleaning", "Cleaning", "The cleaning steps applied on import, and what each removed or changed."),
                ("records", "Records", "Documents read before cleaning, and those left out as unreadable "
                                            "or empty."),
                ("n_bytes", "Size", "Size of the imported text on disk (UTF-8)."),
                ("sources", "Imported from", "The files or folder the text came from."))
        for key, label, tip in rows:
            value = QLabel("—")
            value.setWordWrap(True)   # the value wraps before its label is cut off in a narrow window
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setToolTip(tip)
            name = QLabel(label + ":")
            name.setToolTip(tip)
            form.addRow(name, value)
            self.stats[key] = value
        v.addLayout(form)
        self.details_warnings = MessageLine(page)
        v.addWidget(self.details_warnings)
        v.addWidget(QLabel("<b>Beginning of the text</b>"))
        self.dataset_preview = QPlainTextEdit()
        self.dataset_preview.setReadOnly(True)
        self.dataset_preview.setFont(monospace_font())
        self.dataset_preview.setToolTip("The first few thousand characters of the selected dataset, as the model "
                                        "will see them.")
        v.addWidget(self.dataset_preview, 1)
        return page

    def _build_import(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        self.preview_info = QLabel()
        self.preview_info.setWordWrap(True)
        self.preview_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.preview_info)
        self.preview_warning = MessageLine(page)
        v.addWidget(theme.reserve_space(self.preview_warning, lines=2))

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        self.options = ImportOptionsForm()
        self.options.changed.connect(self._on_options_changed)
        self.name_edit, self.val_spin = self.options.name_edit, self.options.val_spin
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
        self.preview_text = self.preview_view.raw_text
        rv.addWidget(self.preview_view, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([430, 720])
        v.addWidget(split, 1)

        row = QHBoxLayout()
        self.import_button = theme.make_primary(QPushButton("Import"))
        self.import_button.setShortcut(QKeySequence("Ctrl+I"))
        self.import_button.setToolTip("Import the chosen files with these options as a new dataset (Ctrl+I). The "
                                      "engine checks every byte and says exactly what it refuses and why.")
        self.import_button.clicked.connect(self.start_import)
        self.discard_button = QPushButton("Back")
        self.discard_button.setToolTip("Forget the chosen files and go back to the datasets (Esc).")
        self.discard_button.clicked.connect(self.discard_preview)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setToolTip("How far the import has got.")
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the import; nothing is added to the workspace.")
        self.cancel_button.clicked.connect(self.cancel_import)
        self.cancel_button.hide()
        row.addWidget(self.import_button)
        row.addWidget(self.discard_button)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        row.addStretch(0)
        v.addLayout(row)
        self.progress_label = QLabel()
        self.progress_label.hide()
        v.addWidget(theme.reserve_space(self.progress_label, lines=1))
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
        self.options.set_paths([str(x) for x in paths])
        self._quick_key = None
        pv = self._quick_preview([str(x) for x in paths])
        self.name_edit.setText(pv.default_name)
        self.error_line.clear_message()
        self.last_preview_reply = None
        self.preview_view.show_reply({}, [], {})
        self._set_importing(False)
        self.stack.setCurrentIndex(1)
        self.import_button.setFocus()
        self.request_preview()
        return pv

    def _quick_preview(self, paths: list[str]) -> FilePreview:
        o = self.options.options()
        key = (tuple(paths), o.get("fmt"), tuple(o.get("include") or ()), tuple(o.get("exclude") or ()))
        if key == self._quick_key and self.preview is not None:
            return self.preview
        self._quick_key = key
        pv = preview_paths(paths, o.get("fmt"), o.get("include"), o.get("exclude"))
        self.preview = pv
        n = len(pv.files)
        count = plural(n, "file").replace(" ", "+ ", 1) if pv.more_files else plural(n, "file")
        where = pv.paths[0] if len(pv.paths) == 1 else f"{pv.paths[0]} and {len(pv.paths) - 1} more"
        size = (f"the first {n:,} hold {human_bytes(pv.total_bytes)}" if pv.more_files else
                f"{human_bytes(pv.total_bytes)} in all")
        self.preview_info.setText(f"<b>{_esc(where)}</b><br>{count}, {size}"
                                  + (f" — “File start” shows {_esc(Path(pv.files[0]).name)}" if n > 1 else ""))
        self.preview_text.setPlainText(pv.text)
        self._show_warnings()
        return pv

    def _show_warnings(self) -> None:
        """The quick look's warning and the engine preview's, in the one warning line (Import stays enabled:
        the engine is the judge)."""
        parts = []
        pv = self.preview
        if pv is not None and pv.warning:
            decode = self.options.decode_combo.currentData()
            if pv.decode_problem and decode == "latin-1" and "binary" not in pv.warning:
                parts.append(pv.warning + " — it will be decoded as Latin-1.")
            elif pv.decode_problem and decode == "skip":
                parts.append(pv.warning + " — it will be skipped.")
            else:
                parts.append(pv.warning + " — the import will probably be refused.")
        reply = self.last_preview_reply
        if reply is not None and not reply.ok:
            if not self._already_warned(reply.error):
                parts.append(f"Preview: {reply.error}")
        elif reply is not None:
            warnings = [w for w in reply.preview.get("warnings") or [] if not self._already_warned(w)]
            parts += warnings[:WARNINGS_SHOWN]
            if len(warnings) > WARNINGS_SHOWN:
                parts.append(f"… and {len(warnings) - WARNINGS_SHOWN} more warnings")
        if pv is not None and any(Path(x).suffix.lower() == ".json" for x in pv.paths) \
                and not self.options.fmt_combo.currentData():
            parts.append("A .json file is read as plain text unless you choose JSONL as the format.")
        self.preview_warning.show_message("\n".join(parts), "warning")

    def _already_warned(self, warning: str) -> bool:
        """The engine's warning says what the quick look already said: the same problem of the same file, only
        named by its full path where the quick look names the file."""
        pv = self.preview
        if pv is None or not pv.warning:
            return False
        for path in sorted({*pv.files, *pv.paths}, key=len, reverse=True):   # longest first: a folder's files
            warning = warning.replace(str(path), Path(path).name)
        return warning in pv.warning

    def _on_options_changed(self) -> None:
        if self.preview is not None and self.import_request_id is None:
            self.preview_status.setText("updating the preview…")
            self._preview_timer.start()   # restarts: only a pause in the edits sends a request

    def request_preview(self) -> str | None:
        """Ask the engine for the records these options read; only the newest request's reply is shown."""
        self._preview_timer.stop()
        if self.preview is None:
            return None
        paths = list(self.preview.paths)
        self._quick_preview(paths)
        msg = p.ImportPreviewRequest(paths=paths, options=self.options.options(for_preview=True),
                                     n=PREVIEW_RECORDS)
        self.preview_status.setText("reading the first records…")
        self.import_preview_request_id = self.session.request(msg, on_reply=guarded(self, self._on_preview_reply))
        return self.import_preview_request_id

    def _on_preview_reply(self, reply) -> None:
        if reply.parent != self.import_preview_request_id or self.preview is None \
                or self._preview_timer.isActive():
            return   # an older request's answer, options changed since it was asked, or the files put away
        self.last_preview_reply = reply
        if reply.ok:
            pv = reply.preview or {}
            self.options.set_detected(pv.get("format"), pv.get("columns") or [], pv.get("column_types") or {})
            self.preview_view.show_reply(pv, reply.cleaned, reply.cleaning)
            n = len(pv.get("records") or [])
            fmt = FORMAT_NAMES.get(pv.get("format") or "", pv.get("format") or "")
            self.preview_status.setText(f"The first {plural(n, 'record')} as the import would read them"
                                        + (f" ({fmt})" if fmt else "") + ".")
        else:
            self.preview_status.setText("The preview failed; see the warning above.")
        self._show_warnings()
        self.previewUpdated.emit()

    def discard_preview(self) -> None:
        if self.import_request_id is not None:
            return
        self._preview_timer.stop()
        self.preview = None
        self.import_preview_request_id = None
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
        msg = p.ImportRequest(paths=list(self.preview.paths), name=name, val_fraction=self.options.val_fraction(),
                              options=self.options.options())
        self.error_line.clear_message()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")
        self._set_importing(True)
        self._import_started = time.monotonic()
        self.import_request_id = self.session.request(msg, on_reply=guarded(self, self._on_import_reply),
                                                      on_event=guarded(self, self._on_import_event))
        return self.import_request_id

    def cancel_import(self) -> None:
        if self.import_request_id is not None:
            self.session.cancel(self.import_request_id)
            self.progress_bar.setFormat("cancelling…")
            self.cancel_button.setEnabled(False)

    def _set_importing(self, busy: bool) -> None:
        for w in (self.import_button, self.discard_button, self.options, self.import_file_button,
                  self.import_folder_button):
            w.setEnabled(not busy)
        self.delete_button.setEnabled(not busy and bool(getattr(self.session, "dataset", None)))
        self.progress_bar.setVisible(busy)
        self.progress_label.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.progress_label.clear()

    def _on_import_event(self, msg) -> None:
        if not isinstance(msg, p.Progress):
            return
        text = msg.message
        if msg.fraction < 0:
            self.progress_bar.setRange(0, 0)  # busy indicator: the engine cannot tell how far it is
        else:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(round(1000 * min(1.0, msg.fraction))))
            if self.cancel_button.isEnabled():
                self.progress_bar.setFormat(f"{100 * msg.fraction:.0f} %")
            if " left" not in text:   # the engine gives a time left when it can; otherwise a rough one here
                eta = eta_text(msg.fraction, time.monotonic() - self._import_started)
                text = f"{text} — {eta}" if text and eta else (text or eta)
        if text:
            self.progress_label.setText(text)

    def _on_import_reply(self, reply) -> None:
        self.import_request_id = None
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
        self.preview = None
        self.import_preview_request_id = None
        warn = (row.get("stats") or {}).get("warnings") or []
        self.error_line.show_message(
            f"Imported “{row.get('name', '')}”: {plural(row.get('n_docs', 0), 'document', human=True)}, "
            f"{plural(row.get('n_chars', 0), 'character', human=True)}"
            + (f" ({plural(len(warn), 'warning')}, see the details)." if warn else "."),
            "warning" if warn else "info")
        self.stack.setCurrentIndex(0)
        if row:
            self.session.select_dataset(row)
        self.importFinished.emit(row)

    def _show_error_box(self, error: str) -> None:
        # open(), not exec(): a message box must not stop the event loop (and a test from going on)
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Import failed", "The text could not be imported.",
                          QMessageBox.StandardButton.Ok, self)
        box.setInformativeText(error)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, False)
        self.error_box = box
        box.open()

    # ------------------------------------------------------------------------------------ workspace & details
    def _on_workspace(self, summary: dict) -> None:
        datasets = list((summary or {}).get("datasets") or [])
        t = self.dataset_table
        t.blockSignals(True)
        t.setSortingEnabled(False)
        t.setRowCount(len(datasets))
        for r, ds in enumerate(datasets):
            for c, (key, _) in enumerate(DATASET_COLUMNS):
                item = _NameItem(str(ds.get(key, ""))) if key == "name" else _NumberItem(ds.get(key))
                item.setData(Qt.ItemDataRole.UserRole, ds)
                if key == "name":
                    item.setToolTip(_sources_text(ds) or str(ds.get("name", "")))
                t.setItem(r, c, item)
        t.setSortingEnabled(True)
        t.blockSignals(False)
        current = getattr(self.session, "dataset", None)
        self._select_row_for(current)
        if current:  # the row may have new numbers (the workspace was re-read)
            fresh = next((d for d in datasets if d.get("id") == current.get("id")), None)
            if fresh:
                self._show_stats(fresh)

    def _select_row_for(self, ds: dict | None) -> None:
        t = self.dataset_table
        t.blockSignals(True)
        t.clearSelection()
        if ds:
            for r in range(t.rowCount()):
                row = t.item(r, 0).data(Qt.ItemDataRole.UserRole)
                if row and row.get("id") == ds.get("id"):
                    t.selectRow(r)
                    break
        t.blockSignals(False)

    def delete_selected(self) -> str | None:
        """Move the selected dataset to the trash (the undo bar offers it back)."""
        ds = getattr(self.session, "dataset", None)
        if not ds or self.import_request_id is not None:
            return None
        return self.undo_bar.delete("dataset", ds)

    def _on_table_selection(self) -> None:
        items = self.dataset_table.selectedItems()
        if not items:
            return
        ds = items[0].data(Qt.ItemDataRole.UserRole)
        current = getattr(self.session, "dataset", None)
        if ds and (not current or current.get("id") != ds.get("id")):
            self.session.select_dataset(ds)

    def _on_dataset_selected(self, ds) -> None:
        self.delete_button.setEnabled(bool(ds))
        self._select_row_for(ds)
        self._show_stats(ds)
        if self.stack.currentIndex() == 1 and self.import_request_id is None and self.preview is None:
            self.stack.setCurrentIndex(0)
        self.dataset_preview.clear()
        if ds:
            self.dataset_preview.setPlaceholderText("loading…")
            self._preview_request_id = self.session.request(
                p.DatasetPreviewRequest(dataset=ds.get("id", ds.get("name")), n_chars=4000),
                on_reply=guarded(self, self._on_dataset_preview))
        else:
            self.dataset_preview.setPlaceholderText("")

    def _on_dataset_preview(self, reply) -> None:
        if reply.parent != self._preview_request_id:
            return  # an older selection's text
        if reply.ok:
            self.dataset_preview.setPlainText(reply.text)
        else:
            self.dataset_preview.setPlainText("")
            self.dataset_preview.setPlaceholderText(f"(could not load the text: {reply.error})")

    def _show_stats(self, ds: dict | None) -> None:
        if not ds:
            self.details_title.setText("<b>No dataset selected</b>")
            for label in self.stats.values():
                label.setText("—")
            self.details_warnings.clear_message()
            return
        self.details_title.setText(f"<b>{_esc(str(ds.get('name', '')))}</b>")
        self.stats["n_docs"].setText(human_exact(ds.get("n_docs")))
        self.stats["n_chars"].setText(human_exact(ds.get("n_chars")))
        self.stats["n_lines"].setText(human_exact(ds.get("n_lines")))
        train, val = ds.get("train_chars"), ds.get("val_chars")
        frac = ds.get("val_fraction")
        pct = f" ({100 * float(frac):.0f} % held out)" if frac is not None else ""
        self.stats["split"].setText(f"{human_count(train or 0)} / {human_count(val or 0)} characters{pct}")
        self.stats["n_bytes"].setText(human_bytes(ds.get("n_bytes") or 0))
        self.stats["n_bytes"].setToolTip(f"{int(ds.get('n_bytes') or 0):,} bytes")
        self.stats["sources"].setText(_sources_text(ds) or "—")
        options = ds.get("options") or {}
        stats = ds.get("stats") or {}
        self.stats["split_kind"].setText(split_text(ds))
        self.stats["format"].setText(format_text(ds))
        label = options.get("label_column")
        self.stats["labels"].setText(f"yes, from “{label}”" if ds.get("has_labels") and label is not None else
                                     "yes" if ds.get("has_labels") else "no")
        self.stats["cleaning"].setText(cleaning_text(ds))
        self.stats["records"].setText(records_text(stats) or "—")
        warnings = stats.get("warnings") or []
        self.details_warnings.show_message(
            ("Import warnings: " + "; ".join(warnings[:WARNINGS_SHOWN])
             + (f"; … and {len(warnings) - WARNINGS_SHOWN} more" if len(warnings) > WARNINGS_SHOWN else ""))
            if warnings else "", "warning")
        self.details_warnings.setToolTip("\n".join(warnings))


def _sources_text(ds: dict) -> str:
    src = ds.get("sources")
    if isinstance(src, (list, tuple)):
        if not src:
            return ""
        return str(src[0]) + (f" and {len(src) - 1} more" if len(src) > 1 else "")
    return str(src or "")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
