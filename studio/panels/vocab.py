"""Vocabulary panel: train a tokenizer on the selected dataset (five kinds, with advanced options), browse its
vocabulary and where each token occurs, see a text cut into tokens, see how long documents are in tokens,
compare tokenizers, and export one for use elsewhere.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from engine.format import human_count, plural
from studio import theme
from studio.state.tokenizer_choices import KIND_LABELS, tokenizer_summary
from studio.widgets.tokenizer_compare import TokenizerCompareView
from studio.widgets.tokenizer_options import TokenizerOptionsForm
from studio.coverage import coverage_html
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded, monospace_font, warning_color
from studio.widgets.length_histogram import DocLengthsView
from studio.widgets.token_spans import TokenSpanView
from studio.widgets.undo_bar import UndoBar

# VocabTableModel, VocabFilterProxy and SORT_ROLE lived here before: importable from here still
from studio.widgets.vocab_table import VocabBrowser

VOCAB_LIMIT = 100_000
SAMPLE_CHARS = 400
SAMPLE_LINES = 6


class VocabPanel(QWidget):
    """Train a tokenizer for the selected dataset and look inside it."""

    tokenizerTrained = Signal(object)  # the new tokenizer row, or None when training failed / was cancelled
    vocabLoaded = Signal(int)  # rows now in the table
    spansShown = Signal(int)  # tokens now in the sample view
    contextsShown = Signal(int)  # corpus contexts now in the token details (0: not in the corpus)
    lengthsShown = Signal(int)  # documents counted in the length histogram now shown
    exportFinished = Signal(str)  # the path written, or "" when the export failed

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.train_request_id: str | None = None
        self._vocab_request_id: str | None = None
        self._tokenize_request_id: str | None = None
        self._sample_request_id: str | None = None
        self._export_request_id: str | None = None
        self._sample_edited = False
        self._setting_sample = False
        self._tokenize_text = ""
        self._export_dir = str(Path.home())
        self.compare_view = None
        self._build()
        session.workspaceChanged.connect(self._on_workspace)
        session.datasetSelected.connect(self._on_dataset_selected)
        session.tokenizerSelected.connect(self._on_tokenizer_selected)
        self._on_dataset_selected(getattr(session, "dataset", None))
        self._on_tokenizer_selected(getattr(session, "tokenizer", None))

    # ------------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(
            PanelHeader(
                "Turn text into tokens",
                "A tokenizer cuts text into pieces (tokens) and numbers them; the model only ever sees these numbers. "
                "Train one on your dataset, then look at its vocabulary and at how it cuts a text.",
            )
        )

        top = QHBoxLayout()
        root.addLayout(top)
        self.form = TokenizerOptionsForm()
        f = self.form
        # the form's controls, under the names the rest of the studio (and its tests) use
        self.dataset_label, self.kind_combo, self.kind_help = f.dataset_label, f.kind_combo, f.kind_help
        self.vocab_label, self.vocab_spin = f.vocab_label, f.vocab_spin
        self.train_button, self.progress_bar, self.cancel_button = f.train_button, f.progress_bar, f.cancel_button
        self.train_button.clicked.connect(self.train_tokenizer)
        self.cancel_button.clicked.connect(self.cancel_training)
        top.addWidget(self.form, 3)
        self.error_line = MessageLine(self)
        top.addWidget(self._build_use_box(), 2)
        root.addWidget(self.error_line)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.browser = VocabBrowser(self.session)
        b = self.browser
        self.search_edit, self.vocab_model, self.vocab_proxy = b.search_edit, b.model, b.proxy
        self.vocab_view, self.vocab_count, self.details = b.view, b.count_label, b.details
        b.contextsShown.connect(self.contextsShown)
        self.tabs.addTab(self.browser, "Vocabulary")
        self.tabs.setTabToolTip(0, "Every token of the tokenizer; click one to see where it occurs (Ctrl+F searches).")
        self.tabs.addTab(self._build_try_tab(), "Try a text")
        self.tabs.setTabToolTip(1, "Type a text and see how the tokenizer cuts it.")
        self.lengths = DocLengthsView(self.session)
        self.lengths.lengthsShown.connect(self.lengthsShown)
        self.tabs.addTab(self.lengths, "Document lengths")
        self.tabs.setTabToolTip(
            2, "How long the dataset's documents are in tokens, next to the model's context length."
        )
        self.compare_tab = QWidget()
        QVBoxLayout(self.compare_tab).setContentsMargins(0, 0, 0, 0)
        self.tabs.addTab(self.compare_tab, "Compare")
        self.tabs.setTabToolTip(3, "Several tokenizers side by side on the same text.")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        root.addWidget(self.tabs, 1)

        # Window context: they fire only while the panel is shown (Qt skips shortcuts of hidden widgets), also
        # when the focus is still in the sidebar.
        self.train_shortcut = QShortcut(QKeySequence("Ctrl+T"), self)
        self.train_shortcut.activated.connect(self.train_tokenizer)
        self.search_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Find), self)
        self.search_shortcut.activated.connect(self.focus_search)

    def _build_use_box(self) -> QGroupBox:
        box = QGroupBox("Tokenizer in use")
        # No fixed minimum width: it would override the room the tokenizer combo asks for and cut its text.
        uv = QVBoxLayout(box)
        row = QHBoxLayout()
        self.tokenizer_combo = QComboBox()
        self.tokenizer_combo.setToolTip(
            "The tokenizers trained on this dataset. The one chosen here is used for training and shown below."
        )
        # As wide as its longest entry: "shakespeare-bpe-728 — BPE, 728 tokens" must not lose its end.
        theme.fit_to_contents(self.tokenizer_combo)
        self.tokenizer_combo.activated.connect(self._on_tokenizer_chosen)
        row.addWidget(self.tokenizer_combo, 1)
        self.export_button = QToolButton()
        self.export_button.setText("Export…")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.export_button.setToolTip(
            "Save this tokenizer as a tokenizer.json that the Hugging Face tokenizers "
            "and transformers libraries load; the arrow offers a whole transformers "
            "folder (AutoTokenizer.from_pretrained)."
        )
        self.export_button.clicked.connect(lambda: self.export_json())
        menu = QMenu(self.export_button)
        self.export_json_action = QAction("Export tokenizer.json…", self)
        self.export_json_action.setToolTip("One file: tokenizers.Tokenizer.from_file loads it.")
        self.export_json_action.triggered.connect(lambda: self.export_json())
        self.export_folder_action = QAction("Export as transformers folder…", self)
        self.export_folder_action.setToolTip(
            "A folder with tokenizer.json, tokenizer_config.json and "
            "special_tokens_map.json: AutoTokenizer.from_pretrained loads it."
        )
        self.export_folder_action.triggered.connect(lambda: self.export_folder())
        menu.addAction(self.export_json_action)
        menu.addAction(self.export_folder_action)
        menu.setToolTipsVisible(True)
        self.export_button.setMenu(menu)
        row.addWidget(self.export_button)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip(
            "Move this tokenizer to the workspace's trash; Undo puts it back. A tokenizer "
            "that a run was trained with cannot be deleted."
        )
        self.delete_button.clicked.connect(self.delete_tokenizer)
        self.delete_button.setEnabled(False)
        row.addWidget(self.delete_button)
        uv.addLayout(row)
        self.undo_bar = UndoBar(self.session, self.error_line, box)
        uv.addWidget(self.undo_bar)
        self.tokenizer_info = QLabel("No tokenizer yet: train one.")
        self.tokenizer_info.setWordWrap(True)
        self.tokenizer_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tokenizer_info.setToolTip("What the chosen tokenizer is made of and how many tokens the dataset becomes.")
        uv.addWidget(self.tokenizer_info)
        uv.addStretch(1)
        return box

    def _build_try_tab(self) -> QWidget:
        w = QWidget()
        rv = QVBoxLayout(w)
        rv.setContentsMargins(0, 4, 0, 0)
        self.sample_edit = QPlainTextEdit()
        self.sample_edit.setFont(monospace_font())
        self.sample_edit.setPlaceholderText("Type or paste a text to see how it is cut into tokens…")
        self.sample_edit.setToolTip(
            "A text to tokenize. It starts with the beginning of the dataset; change it freely."
        )
        self.sample_edit.setMaximumHeight(self.fontMetrics().height() * 7)
        self.sample_edit.textChanged.connect(self._on_sample_edited)
        rv.addWidget(self.sample_edit)
        self.span_view = TokenSpanView()
        rv.addWidget(self.span_view, 1)
        self.sample_stats = QLabel("")
        self.sample_stats.setWordWrap(True)
        self.sample_stats.setToolTip(
            "Fewer tokens for the same text means the model sees more text in each context window."
        )
        rv.addWidget(self.sample_stats)
        self._tokenize_timer = QTimer(self, singleShot=True, interval=250)
        self._tokenize_timer.timeout.connect(self.tokenize_sample)
        return w

    def focus_search(self) -> None:
        self.tabs.setCurrentIndex(0)
        self.search_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_edit.selectAll()

    # ---------------------------------------------------------------------------------------------- training
    def train_tokenizer(self) -> str | None:
        ds = getattr(self.session, "dataset", None)
        if not ds:
            self.error_line.show_message("Select or import a dataset first (Data panel).", "error")
            return None
        if self.train_request_id is not None:
            return None
        msg = p.TokenizerTrainRequest(
            dataset=ds.get("id", ds.get("name")),
            tokenizer_kind=self.form.kind(),
            vocab_size=self.form.vocab_size(),
            options=self.form.options(),
        )
        self.error_line.clear_message()
        self.form.set_busy(True)
        # Kept before sending: the Session may answer at once (the engine has just stopped or died), and that
        # answer must find the request it ends, or Train would stay refused.
        self.train_request_id = msg.id
        self.session.request(
            msg, on_reply=guarded(self, self._on_train_reply), on_event=guarded(self, self._on_train_event)
        )
        return msg.id

    def cancel_training(self) -> None:
        if self.train_request_id is not None:
            self.session.cancel(self.train_request_id)
            self.progress_bar.setFormat("cancelling…")
            self.cancel_button.setEnabled(False)

    def _on_train_event(self, msg) -> None:
        if isinstance(msg, p.Progress):
            if msg.fraction < 0:
                self.progress_bar.setRange(0, 0)
            else:
                self.progress_bar.setRange(0, 1000)
                self.progress_bar.setValue(int(round(1000 * min(1.0, msg.fraction))))
                self.progress_bar.setFormat(f"{100 * msg.fraction:.0f} %")
            if msg.message:
                self.progress_bar.setToolTip(msg.message)

    def _on_train_reply(self, reply) -> None:
        self.train_request_id = None
        self.form.set_busy(False)
        self.train_button.setEnabled(bool(getattr(self.session, "dataset", None)))
        if not reply.ok:
            error = reply.error or "tokenizer training failed"
            if "cancel" in error.lower():
                self.error_line.show_message("Tokenizer training cancelled; nothing was added.", "info")
            else:
                self.error_line.show_message(f"Tokenizer training failed: {error}", "error")
            self.tokenizerTrained.emit(None)
            return
        row = reply.tokenizer or {}
        self.error_line.show_message(
            f"Trained “{row.get('name', '')}” with {int(row.get('vocab_size', 0)):,} tokens.", "info"
        )
        self._add_tokenizer_item(row)
        self.session.select_tokenizer(row)
        self.tokenizerTrained.emit(row)

    # ------------------------------------------------------------------------------------ tokenizer list
    def _dataset_tokenizers(self) -> list[dict]:
        ds = getattr(self.session, "dataset", None)
        if not ds:
            return []
        toks = (getattr(self.session, "workspace", None) or {}).get("tokenizers") or []
        return [t for t in toks if t.get("dataset_id") == ds.get("id")]

    def _fill_tokenizers(self) -> None:
        combo = self.tokenizer_combo
        combo.blockSignals(True)
        combo.clear()
        rows = self._dataset_tokenizers()
        chosen = getattr(self.session, "tokenizer", None)
        if chosen and all(t.get("id") != chosen.get("id") for t in rows):
            rows.append(chosen)  # just trained: the workspace list has not caught up yet
        for t in rows:
            self._add_tokenizer_item(t)
        if not rows:
            combo.addItem("(none yet)", None)
        elif chosen is None:
            # Never show a tokenizer as chosen when none is: Train would make a new vocabulary instead.
            combo.insertItem(0, "(none chosen: pick one)", None)
            combo.setCurrentIndex(0)
        combo.setEnabled(bool(rows))
        self._select_tokenizer_item(chosen)
        combo.blockSignals(False)

    def _add_tokenizer_item(self, t: dict) -> None:
        combo = self.tokenizer_combo
        for i in range(combo.count()):
            if combo.itemData(i) is None:
                combo.removeItem(i)
                break
        for i in range(combo.count()):
            if (combo.itemData(i) or {}).get("id") == t.get("id"):
                return
        kind = KIND_LABELS.get(t.get("kind"), t.get("kind", ""))
        combo.addItem(f"{t.get('name', '')} — {kind}, {int(t.get('vocab_size', 0)):,} tokens", t)
        combo.setEnabled(True)

    def _select_tokenizer_item(self, t: dict | None) -> None:
        combo = self.tokenizer_combo
        for i in range(combo.count()):
            if t and (combo.itemData(i) or {}).get("id") == t.get("id"):
                combo.setCurrentIndex(i)
                return

    def _on_tokenizer_chosen(self, index: int) -> None:
        row = self.tokenizer_combo.itemData(index)
        if row and (not self.session.tokenizer or self.session.tokenizer.get("id") != row.get("id")):
            self.session.select_tokenizer(row)

    def _on_workspace(self, _summary) -> None:
        self._fill_tokenizers()

    def _on_dataset_selected(self, ds) -> None:
        self.dataset_label.setText(
            f"<b>{escape(ds.get('name', ''))}</b> — {human_count(ds.get('n_chars') or 0)} characters"
            if ds
            else "none selected (import one in the Data panel)"
        )
        self.train_button.setEnabled(bool(ds) and self.train_request_id is None)
        self._fill_tokenizers()
        self._sample_edited = False
        if ds:
            self._sample_request_id = self.session.request(
                p.DatasetPreviewRequest(dataset=ds.get("id", ds.get("name")), n_chars=SAMPLE_CHARS * 2),
                on_reply=guarded(self, self._on_sample_preview),
            )

    def _on_sample_preview(self, reply) -> None:
        if reply.parent != self._sample_request_id or not reply.ok or self._sample_edited:
            return
        lines = reply.text.split("\n")[:SAMPLE_LINES]
        self._setting_sample = True
        self.sample_edit.setPlainText("\n".join(lines)[:SAMPLE_CHARS])
        self._setting_sample = False
        self.tokenize_sample()

    def delete_tokenizer(self) -> str | None:
        """Move the tokenizer in use to the trash (the undo bar offers it back)."""
        t = getattr(self.session, "tokenizer", None)
        if not t:
            return None
        return self.undo_bar.delete("tokenizer", t)

    def _on_tokenizer_selected(self, t) -> None:
        self._fill_tokenizers()
        self.export_button.setEnabled(bool(t))
        self.delete_button.setEnabled(bool(t))
        self.lengths.set_tokenizer(t)
        if not t:
            self.browser.clear()
            self.tokenizer_info.setText(
                "No tokenizer chosen: pick one above, or train one. Train makes a new character vocabulary otherwise."
                if self._dataset_tokenizers()
                else "No tokenizer yet: train one."
            )
            self.span_view.set_spans(self.sample_edit.toPlainText(), [])
            self.sample_stats.setText("")
            return
        self.browser.clear("loading…")
        self.tokenizer_info.setText(
            tokenizer_summary(t) + coverage_html(t, getattr(self.session, "dataset", None), warning_color(self).name())
        )
        self._vocab_request_id = self.session.request(
            p.VocabRequest(tokenizer=t.get("id", t.get("name")), limit=VOCAB_LIMIT),
            on_reply=guarded(self, self._on_vocab),
        )
        self.tokenize_sample()

    def _on_vocab(self, reply) -> None:
        if reply.parent != self._vocab_request_id:
            return
        if not reply.ok:
            self.vocab_count.setText("")
            self.error_line.show_message(f"Could not load the vocabulary: {reply.error}", "error")
            return
        t = getattr(self.session, "tokenizer", None) or {}
        self.browser.set_rows(reply.rows, int(t.get("vocab_size") or len(reply.rows)))
        self.vocabLoaded.emit(self.vocab_model.rowCount())

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.compare_tab:
            self.ensure_compare_view()

    def handle_ctrl_return(self) -> bool:
        """Ctrl+Return in the Compare tab's text field compares (the window's Ctrl+Return routes it here)."""
        view = self.compare_view
        if view is not None and view.text_edit.hasFocus():
            view.compare()
            return True
        return False

    # --------------------------------------------------------------------------------------------- compare
    def ensure_compare_view(self) -> TokenizerCompareView:
        """The Compare tab's view, made the first time it is needed (it lists every tokenizer of the workspace)."""
        if self.compare_view is None:
            self.compare_view = TokenizerCompareView(self.session, self.compare_tab)
            self.compare_tab.layout().addWidget(self.compare_view)
            if self.compare_tab.isVisible():  # shown now, not one event later: no empty tab flashes
                self.compare_view.show()
        return self.compare_view

    # ---------------------------------------------------------------------------------------------- export
    def export_json(self, path: str | None = None) -> str | None:
        """Ask where (unless given) and export the tokenizer in use as one tokenizer.json file."""
        t = getattr(self.session, "tokenizer", None)
        if not t:
            self.error_line.show_message("There is no tokenizer to export yet: train one.", "error")
            return None
        if path is None:
            suggestion = str(Path(self._export_dir) / f"{t.get('name') or 'tokenizer'}.json")
            path, _ = QFileDialog.getSaveFileName(self, "Export tokenizer.json", suggestion, "tokenizer.json (*.json)")
            if not path:
                return None
        if not path.lower().endswith(".json"):
            path += ".json"  # the engine writes a folder for any other name
        return self._export(t, path)

    def export_folder(self, path: str | None = None) -> str | None:
        """Ask for a folder (unless given) and export the tokenizer in use as a transformers tokenizer there."""
        t = getattr(self.session, "tokenizer", None)
        if not t:
            self.error_line.show_message("There is no tokenizer to export yet: train one.", "error")
            return None
        if path is None:
            path = QFileDialog.getExistingDirectory(self, "Export as a transformers folder", self._export_dir)
            if not path:
                return None
        if path.lower().endswith(".json"):
            self.error_line.show_message("A transformers folder cannot end in .json; choose another name.", "error")
            return None
        return self._export(t, path)

    def _export(self, t: dict, path: str) -> str:
        self._export_dir = str(Path(path).parent if path.lower().endswith(".json") else Path(path))
        self.error_line.show_message(f"Exporting “{t.get('name', '')}”…", "info")
        self._export_request_id = self.session.request(
            p.TokenizerExportRequest(tokenizer=t.get("id", t.get("name")), path=path),
            on_reply=guarded(self, self._on_exported),
        )
        return self._export_request_id

    def _on_exported(self, reply) -> None:
        if reply.parent != self._export_request_id:
            return
        if not reply.ok:
            self.error_line.show_message(f"Could not export the tokenizer: {reply.error}", "error")
            self.exportFinished.emit("")
            return
        what = "tokenizer.json" if reply.path.lower().endswith(".json") else "transformers folder"
        self.error_line.show_message(f"Exported the tokenizer ({what}) to {reply.path}", "info")
        self.exportFinished.emit(reply.path)

    # -------------------------------------------------------------------------------------------- sample
    def _on_sample_edited(self) -> None:
        if not self._setting_sample:
            self._sample_edited = True
        self._tokenize_timer.start()

    def tokenize_sample(self) -> str | None:
        t = getattr(self.session, "tokenizer", None)
        text = self.sample_edit.toPlainText()
        if not t or not text:
            self.span_view.set_spans(text, [])
            self.sample_stats.setText("")
            return None
        self._tokenize_request_id = self.session.request(
            p.TokenizeRequest(tokenizer=t.get("id", t.get("name")), text=text), on_reply=guarded(self, self._on_spans)
        )
        self._tokenize_text = text
        return self._tokenize_request_id

    def _on_spans(self, reply) -> None:
        if reply.parent != self._tokenize_request_id:
            return
        text = self._tokenize_text  # the spans' offsets are into the text that was sent
        if not reply.ok:
            self.sample_stats.setText(f"Could not tokenize: {reply.error}")
            return
        self.span_view.set_spans(text, reply.spans)
        n = len(reply.spans)
        per = len(text) / n if n else 0.0
        self.sample_stats.setText(
            f"{plural(n, 'token')} for {plural(len(text), 'character')} · "
            f"{per:.2f} characters per token "
            f"(hover a token to see its id)"
        )
        self.spansShown.emit(n)
