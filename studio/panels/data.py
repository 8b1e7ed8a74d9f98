"""Data panel: bring your own text into the workspace, look at it before and after importing.

Before an import the chosen files are previewed here (a few KB read with the standard library), so a wrong file
is noticed before the engine reads gigabytes; the import itself runs in the engine with progress and Cancel.
"""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox,
                               QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from engine import protocol as p
from engine.config import human_bytes, human_count
from studio import theme
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded, human_exact, monospace_font

PREVIEW_BYTES = 4096
MAX_PREVIEW_FILES = 10_000   # a folder walk for the preview stops here; the engine still imports them all
HEADS_CHECKED = 20           # files whose first bytes are checked for binary / bad encoding before importing
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le", 4), (codecs.BOM_UTF32_BE, "utf-32-be", 4),
         (codecs.BOM_UTF8, "utf-8", 1), (codecs.BOM_UTF16_LE, "utf-16-le", 2), (codecs.BOM_UTF16_BE, "utf-16-be", 2))


# ------------------------------------------------------------------------------------------ file preview (no Qt)

@dataclass
class FilePreview:
    paths: list[str]                # what the user chose
    files: list[str] = field(default_factory=list)   # the text files an import would read (first MAX_PREVIEW_FILES)
    more_files: bool = False        # the folder walk stopped early
    total_bytes: int = 0
    text: str = ""                  # the first PREVIEW_BYTES of the first file, decoded
    warning: str = ""               # a problem the engine will likely refuse the import for

    @property
    def default_name(self) -> str:
        first = Path(self.paths[0]) if self.paths else Path("text")
        return first.name if first.is_dir() else first.stem


def _text_files(path: Path, limit: int) -> tuple[list[Path], bool]:
    """Like the engine's importer: a chosen file as it is; a folder searched for *.txt, hidden ones skipped."""
    if not path.is_dir():
        return [path], False
    out: list[Path] = []
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.lower().endswith(".txt") and not f.startswith("."):
                out.append(Path(root, f))
                if len(out) >= limit:
                    return out, True
    return out, False


def decode_head(data: bytes, name: str, whole: bool = False) -> tuple[str, str]:
    """Decode the first bytes of a file as the importer would; return (text, warning or '').

    whole: `data` is the whole file, so a multi-byte character cut off at its end is an error."""
    encoding, unit, skip = "utf-8", 1, 0
    for bom, enc, size in _BOMS:
        if data.startswith(bom):
            encoding, unit, skip = enc, size, len(bom)
            break
    body = data[skip:]
    nul = b"\0" * unit
    i = body.find(nul)
    while i >= 0 and i % unit:
        i = body.find(nul, i + 1)
    if i >= 0:
        return body[:i].decode(encoding, "replace"), f"{name} looks binary (NUL byte at offset {skip + i})"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        # a head cut from a longer file may end in the middle of a multi-byte character, which is not an error
        text = decoder.decode(body, final=whole)
        warning = ""
    except UnicodeDecodeError as e:
        what = encoding.upper().removesuffix("-LE").removesuffix("-BE")
        text = body.decode(encoding, "replace")
        warning = f"{name} is not {what} text: bad byte at offset {skip + e.start}"
    return text.replace("\r\n", "\n").replace("\r", "\n"), warning


def preview_paths(paths: list[str]) -> FilePreview:
    """Look at what an import of `paths` would read: file count, total size, the first file's first 4 KB."""
    pv = FilePreview(paths=[str(x) for x in paths])
    if not paths:
        pv.warning = "nothing chosen"
        return pv
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            pv.warning = pv.warning or f"{path} does not exist"
            continue
        found, more = _text_files(path, MAX_PREVIEW_FILES - len(files))
        if path.is_dir() and not found:
            pv.warning = pv.warning or f"folder {path} has no .txt files"
        files += found
        pv.more_files = pv.more_files or more
        if len(files) >= MAX_PREVIEW_FILES:
            pv.more_files = True
            break
    pv.files = [str(f) for f in files]
    for f in files:
        try:
            pv.total_bytes += f.stat().st_size
        except OSError:
            pass
    for n, f in enumerate(files[:HEADS_CHECKED]):
        try:
            with open(f, "rb") as fh:
                head = fh.read(PREVIEW_BYTES)
        except OSError as e:
            pv.warning = pv.warning or f"cannot read {f}: {e.strerror or e}"
            continue
        text, warning = decode_head(head, f.name, whole=len(head) < PREVIEW_BYTES)
        if n == 0:
            pv.text = text
            if not head:
                warning = warning or f"{f.name} is empty"
        pv.warning = pv.warning or warning
    return pv


# ----------------------------------------------------------------------------------------------------- panel

DATASET_COLUMNS = (("name", "Name"), ("n_docs", "Documents"), ("n_chars", "Characters"), ("n_lines", "Lines"))


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

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.preview: FilePreview | None = None
        self.import_request_id: str | None = None
        self._preview_request_id: str | None = None
        self.error_box: QMessageBox | None = None
        self.setAcceptDrops(True)
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
            "Import a text file or a folder of .txt files as a dataset. The model will learn to write text like "
            "it. You can also drop files here."))

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        root.addWidget(split, 1)

        # left: the workspace's datasets and the import buttons
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
        self.import_file_button.setToolTip("Choose one or more text files (UTF-8, UTF-16 or UTF-32) to import. "
                                           "You see a preview before anything is imported.")
        self.import_file_button.clicked.connect(self.choose_files)
        self.import_folder_button = QPushButton("Import folder…")
        self.import_folder_button.setToolTip("Choose a folder: every .txt file in it and its sub-folders is "
                                             "imported, one document each. Hidden files are skipped.")
        self.import_folder_button.clicked.connect(self.choose_folder)
        buttons.addWidget(self.import_file_button)
        buttons.addWidget(self.import_folder_button)
        buttons.addStretch(1)
        lv.addLayout(buttons)
        split.addWidget(left)

        # right: either the selected dataset's details or the preview of an import
        self.stack = QStackedWidget()
        self.stack.setMinimumWidth(340)
        self.stack.addWidget(self._build_details())
        self.stack.addWidget(self._build_import())
        split.addWidget(self.stack)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([380, 620])

        self.error_line = MessageLine(self)
        root.addWidget(self.error_line)

    def _build_details(self) -> QWidget:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        self.details_title = QLabel("<b>No dataset selected</b>")
        v.addWidget(self.details_title)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.stats: dict[str, QLabel] = {}
        rows = (("n_docs", "Documents", "How many files (documents) the dataset was made from."),
                ("n_chars", "Characters", "Characters of text in the dataset, training and validation together."),
                ("n_lines", "Lines", "Lines of text (line breaks) in the dataset."),
                ("split", "Train / validation", "Characters the model trains on, and characters held out at the "
                                                "end of the text to measure how well it generalises."),
                ("n_bytes", "Size", "Size of the imported text on disk (UTF-8)."),
                ("sources", "Imported from", "The file or folder the text came from."))
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
        v.addWidget(QLabel("<b>Beginning of the text</b>"))
        self.dataset_preview = QPlainTextEdit()
        self.dataset_preview.setReadOnly(True)
        self.dataset_preview.setFont(monospace_font())
        self.dataset_preview.setToolTip("The first few thousand characters of the selected dataset, as the model "
                                        "will see them.")
        v.addWidget(self.dataset_preview, 1)
        return page

    def _build_import(self) -> QWidget:
        page = QGroupBox("Import preview")
        v = QVBoxLayout(page)
        self.preview_info = QLabel()
        self.preview_info.setWordWrap(True)
        self.preview_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addWidget(self.preview_info)
        self.preview_warning = MessageLine(page)
        v.addWidget(self.preview_warning)
        self.preview_text = QPlainTextEdit()
        self.preview_text.setReadOnly(True)
        self.preview_text.setFont(monospace_font())
        self.preview_text.setToolTip("The first 4 KB of the first file, read before importing, so you can check "
                                     "that it is the text you meant.")
        v.addWidget(self.preview_text, 1)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.name_edit = QLineEdit()
        self.name_edit.setMinimumWidth(280)
        self.name_edit.setToolTip("The dataset's name in this workspace. Defaults to the file or folder name.")
        self.name_edit.setPlaceholderText("dataset name")
        form.addRow("Name:", self.name_edit)
        self.val_spin = QSpinBox()
        self.val_spin.setRange(0, 50)
        self.val_spin.setValue(10)
        self.val_spin.setSuffix(" %")
        self.val_spin.setMinimumWidth(90)
        self.val_spin.setToolTip("Validation share, 0–50 %: the last part of the text is held out to measure how "
                                 "well the model generalises. 10 % is usual; 0 % means no validation loss.")
        form.addRow("Validation:", self.val_spin)
        v.addLayout(form)

        row = QHBoxLayout()
        self.import_button = theme.make_primary(QPushButton("Import"))
        self.import_button.setShortcut(QKeySequence("Ctrl+I"))
        self.import_button.setToolTip("Import the chosen text as a new dataset (Ctrl+I). The engine checks every "
                                      "byte; a binary or badly encoded file is refused with the reason.")
        self.import_button.clicked.connect(self.start_import)
        self.discard_button = QPushButton("Back")
        self.discard_button.setToolTip("Forget the chosen files and go back to the selected dataset.")
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
        v.addWidget(self.progress_label)
        return page

    # -------------------------------------------------------------------------------------- choosing files
    def choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Import text files", str(Path.home()),
                                                "Text files (*.txt *.md *.text);;All files (*)")
        if paths:
            self.preview_paths(paths)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Import a folder of .txt files", str(Path.home()))
        if path:
            self.preview_paths([path])

    def preview_paths(self, paths: list[str]) -> FilePreview:
        """Show what importing `paths` would bring in, and wait for the user to press Import."""
        pv = preview_paths(paths)
        self.preview = pv
        n = len(pv.files)
        count = f"{n:,}{'+' if pv.more_files else ''} file{'s' if n != 1 else ''}"
        where = pv.paths[0] if len(pv.paths) == 1 else f"{pv.paths[0]} and {len(pv.paths) - 1} more"
        self.preview_info.setText(f"<b>{_esc(where)}</b><br>{count}, {human_bytes(pv.total_bytes)} in all"
                                  + (f" — showing the start of {_esc(Path(pv.files[0]).name)}"
                                     if n > 1 else ""))
        self.preview_text.setPlainText(pv.text)
        self.preview_warning.show_message(
            (pv.warning + " — the import will probably be refused.") if pv.warning else "", "warning")
        self.name_edit.setText(pv.default_name)
        self.error_line.clear_message()
        self._set_importing(False)
        self.stack.setCurrentIndex(1)
        self.import_button.setFocus()
        return pv

    def discard_preview(self) -> None:
        self.preview = None
        self.stack.setCurrentIndex(0)

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
        name = self.name_edit.text().strip() or self.preview.default_name
        msg = p.ImportRequest(paths=list(self.preview.paths), name=name, val_fraction=self.val_spin.value() / 100)
        self.error_line.clear_message()
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")
        self._set_importing(True)
        self.import_request_id = self.session.request(msg, on_reply=guarded(self, self._on_import_reply),
                                                      on_event=guarded(self, self._on_import_event))
        return self.import_request_id

    def cancel_import(self) -> None:
        if self.import_request_id is not None:
            self.session.cancel(self.import_request_id)
            self.progress_bar.setFormat("cancelling…")
            self.cancel_button.setEnabled(False)

    def _set_importing(self, busy: bool) -> None:
        for w in (self.import_button, self.discard_button, self.name_edit, self.val_spin,
                  self.import_file_button, self.import_folder_button):
            w.setEnabled(not busy)
        self.progress_bar.setVisible(busy)
        self.progress_label.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        if not busy:
            self.progress_label.clear()

    def _on_import_event(self, msg) -> None:
        if isinstance(msg, p.Progress):
            if msg.fraction < 0:
                self.progress_bar.setRange(0, 0)  # busy indicator: the engine cannot tell how far it is
            else:
                self.progress_bar.setRange(0, 1000)
                self.progress_bar.setValue(int(round(1000 * min(1.0, msg.fraction))))
                self.progress_bar.setFormat(f"{100 * msg.fraction:.0f} %")
            if msg.message:
                self.progress_label.setText(msg.message)

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
        self.error_line.show_message(
            f"Imported “{row.get('name', '')}”: {human_count(row.get('n_chars', 0))} characters.", "info")
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
                item = QTableWidgetItem(str(ds.get(key, ""))) if key == "name" else _NumberItem(ds.get(key))
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

    def _on_table_selection(self) -> None:
        items = self.dataset_table.selectedItems()
        if not items:
            return
        ds = items[0].data(Qt.ItemDataRole.UserRole)
        current = getattr(self.session, "dataset", None)
        if ds and (not current or current.get("id") != ds.get("id")):
            self.session.select_dataset(ds)

    def _on_dataset_selected(self, ds) -> None:
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


def _sources_text(ds: dict) -> str:
    src = ds.get("sources")
    if isinstance(src, (list, tuple)):
        if not src:
            return ""
        return str(src[0]) + (f" and {len(src) - 1} more" if len(src) > 1 else "")
    return str(src or "")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
