"""Vocabulary panel: train a tokenizer on the selected dataset, browse its vocabulary, see a text cut into tokens.

The vocabulary table can hold 100k rows, so sorting is done by the model on its Python list (one sort, not a
million Python comparisons through QSortFilterProxyModel.lessThan); the proxy only filters.
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QMessageBox, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox,
                               QSplitter, QTableView, QVBoxLayout, QWidget)

from engine import protocol as p
from engine.config import human_count
from studio import theme
from studio.widgets.form_helpers import MessageLine, PanelHeader, guarded, monospace_font
from studio.widgets.token_spans import TokenSpanView, readable_token

VOCAB_LIMIT = 100_000
SAMPLE_CHARS = 400
SAMPLE_LINES = 6

KINDS = (
    ("char", "Character",
     "One token per character (letter, digit, space, punctuation). Small vocabulary, long sequences; "
     "simple and a good start, as in nanoGPT's Shakespeare example."),
    ("bytebpe", "Byte-level BPE",
     "Frequent pieces of words become single tokens (as in GPT-2). Shorter sequences, bigger vocabulary; "
     "any text can be written, even characters never seen in training."),
)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class VocabTableModel(QAbstractTableModel):
    """Rows [id, token, frequency] from a vocab_reply; shows readable tokens and human-formatted counts."""

    HEADERS = ("Id", "Token", "Frequency")
    TIPS = ("The number the model sees for this token.",
            "The token's text: ␣ is a space, ⏎ a line break, ⇥ a tab.",
            "How often the token occurs in the dataset once it is tokenized.")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[int, str, int, str]] = []
        self.sort_column, self.sort_order = 0, Qt.SortOrder.AscendingOrder

    def set_rows(self, rows: list) -> None:
        self.beginResetModel()
        # the lower-cased token rides along in each row, so filtering needs no lookup and sorting no rebuild
        self._rows = [(int(r[0]), str(r[1]), int(r[2] or 0), str(r[1]).lower()) for r in rows]
        self._sort_rows()
        self.endResetModel()

    def row(self, i: int) -> tuple[int, str, int]:
        return self._rows[i][:3]

    def token_lower(self, i: int) -> str:
        return self._rows[i][3]

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else 3

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        tid, token, freq, _ = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(tid), token, human_count(freq))[col]
        if role == SORT_ROLE:
            return (tid, token, freq)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"id {tid} · '{token}' · {freq:,} occurrences"
        if role == Qt.ItemDataRole.TextAlignmentRole and col != 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.HEADERS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return self.TIPS[section] + " Click to sort."
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if (column, order) == (self.sort_column, self.sort_order):
            return   # QTableView asks twice (header indicator, then the view); one sort of 100k rows is enough
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        old_ids = [self._rows[idx.row()][0] if idx.row() < len(self._rows) else None for idx in persistent]
        self.sort_column, self.sort_order = column, order
        self._sort_rows()
        if persistent:   # the selection and current row follow their tokens
            new_row_of_id = {r[0]: i for i, r in enumerate(self._rows)}
            for idx, tid in zip(persistent, old_ids):
                if tid is not None:
                    self.changePersistentIndex(idx, self.index(new_row_of_id[tid], idx.column()))
        self.layoutChanged.emit()

    def _sort_rows(self) -> None:
        col, desc = self.sort_column, self.sort_order == Qt.SortOrder.DescendingOrder
        # ties (equal frequencies) stay in id order either way, so a sorted table is calm to look at
        if col == 1:
            self._rows.sort(key=lambda r: r[0])
            self._rows.sort(key=lambda r: r[3], reverse=desc)
        elif desc:
            self._rows.sort(key=lambda r: (-r[col], r[0]))
        else:
            self._rows.sort(key=lambda r: (r[col], r[0]))


class VocabFilterProxy(QSortFilterProxyModel):
    """Filters by token text; sorting is handed to the source model (fast on 100k rows)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._needle = ""

    def set_needle(self, text: str) -> None:
        # people type a space for a space; the table shows it as ␣
        if hasattr(self, "beginFilterChange"):   # Qt 6.10+; invalidateRowsFilter is deprecated there
            self.beginFilterChange()
            self._needle = readable_token(text).lower()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self._needle = readable_token(text).lower()
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row, source_parent):
        if not self._needle:
            return True
        return self._needle in self.sourceModel().token_lower(source_row)

    def sort(self, column, order=Qt.SortOrder.AscendingOrder):
        self.sourceModel().sort(column, order)


class VocabPanel(QWidget):
    """Train a tokenizer for the selected dataset and look inside it."""

    tokenizerTrained = Signal(object)   # the new tokenizer row, or None when training failed / was cancelled
    vocabLoaded = Signal(int)           # rows now in the table
    spansShown = Signal(int)            # tokens now in the sample view

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.train_request_id: str | None = None
        self._vocab_request_id: str | None = None
        self._tokenize_request_id: str | None = None
        self._sample_request_id: str | None = None
        self._sample_edited = False
        self._setting_sample = False
        self._tokenize_text = ""
        self.error_box: QMessageBox | None = None
        self._build()
        session.workspaceChanged.connect(self._on_workspace)
        session.datasetSelected.connect(self._on_dataset_selected)
        session.tokenizerSelected.connect(self._on_tokenizer_selected)
        self._on_dataset_selected(getattr(session, "dataset", None))
        if getattr(session, "tokenizer", None):
            self._on_tokenizer_selected(session.tokenizer)

    # ------------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        root.addWidget(PanelHeader(
            "Turn text into tokens",
            "A tokenizer cuts text into pieces (tokens) and numbers them; the model only ever sees these numbers. "
            "Train one on your dataset, then look at its vocabulary and at how it cuts a sample."))

        top = QHBoxLayout()
        root.addLayout(top)
        train_box = QGroupBox("Train a tokenizer")
        form = QFormLayout(train_box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        self.dataset_label = QLabel("—")
        self.dataset_label.setToolTip("The tokenizer is trained on the dataset selected in the Data panel.")
        form.addRow("Dataset:", self.dataset_label)
        self.kind_combo = QComboBox()
        for key, label, _ in KINDS:
            self.kind_combo.addItem(label, key)
        self.kind_combo.setMinimumWidth(170)
        self.kind_combo.setToolTip("How text is cut into tokens. Character is simplest; byte-level BPE makes "
                                   "shorter sequences, so the model sees more text per step.")
        self.kind_combo.currentIndexChanged.connect(self._on_kind_changed)
        form.addRow("Kind:", self.kind_combo)
        self.kind_help = QLabel()
        self.kind_help.setWordWrap(True)
        form.addRow(self.kind_help)
        self.vocab_spin = QSpinBox()
        self.vocab_spin.setRange(260, 65536)
        self.vocab_spin.setSingleStep(256)
        self.vocab_spin.setValue(2048)
        self.vocab_spin.setGroupSeparatorShown(True)
        self.vocab_spin.setMinimumWidth(110)
        self.vocab_label = QLabel("Vocabulary size:")
        form.addRow(self.vocab_label, self.vocab_spin)
        row = QHBoxLayout()
        self.train_button = theme.make_primary(QPushButton("Train tokenizer"))
        self.train_button.setToolTip("Train a tokenizer of this kind on the selected dataset. Takes seconds for a "
                                     "few MB of text; runs in the engine, so the window stays responsive.")
        self.train_button.clicked.connect(self.train_tokenizer)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setToolTip("How far tokenizer training has got.")
        self.progress_bar.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop training the tokenizer; nothing is added.")
        self.cancel_button.clicked.connect(self.cancel_training)
        self.cancel_button.hide()
        row.addWidget(self.train_button)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.cancel_button)
        row.addStretch(0)
        form.addRow(row)
        top.addWidget(train_box, 3)

        use_box = QGroupBox("Tokenizer in use")
        uv = QVBoxLayout(use_box)
        self.tokenizer_combo = QComboBox()
        self.tokenizer_combo.setToolTip("The tokenizers trained on this dataset. The one chosen here is used for "
                                        "training and shown below.")
        self.tokenizer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.tokenizer_combo.setMinimumContentsLength(18)
        self.tokenizer_combo.activated.connect(self._on_tokenizer_chosen)
        uv.addWidget(self.tokenizer_combo)
        self.tokenizer_info = QLabel("No tokenizer yet: train one.")
        self.tokenizer_info.setWordWrap(True)
        self.tokenizer_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        uv.addWidget(self.tokenizer_info)
        uv.addStretch(1)
        top.addWidget(use_box, 2)

        self.error_line = MessageLine(self)
        root.addWidget(self.error_line)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        root.addWidget(split, 1)

        # vocabulary table
        left = QWidget()
        left.setMinimumWidth(300)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Vocabulary</b>"))
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search tokens…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setToolTip("Show only tokens containing this text (a space finds ␣).")
        head.addWidget(self.search_edit, 1)
        lv.addLayout(head)
        self.vocab_model = VocabTableModel(self)
        self.vocab_proxy = VocabFilterProxy(self)
        self.vocab_proxy.setSourceModel(self.vocab_model)
        self.vocab_view = QTableView()
        self.vocab_view.setModel(self.vocab_proxy)
        self.vocab_view.setSortingEnabled(True)
        self.vocab_view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.vocab_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.vocab_view.setAlternatingRowColors(True)
        self.vocab_view.verticalHeader().hide()
        self.vocab_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.vocab_view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        hh = self.vocab_view.horizontalHeader()
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        hh.resizeSection(0, 70)
        hh.resizeSection(2, 90)
        self.vocab_view.setFont(monospace_font())
        self.vocab_view.setToolTip("Every token of the tokenizer. Click a column title to sort by it.")
        lv.addWidget(self.vocab_view, 1)
        self.vocab_count = QLabel("")
        lv.addWidget(self.vocab_count)
        self._filter_timer = QTimer(self, singleShot=True, interval=150)
        self._filter_timer.timeout.connect(self._apply_filter)
        self.search_edit.textChanged.connect(lambda _: self._filter_timer.start())
        split.addWidget(left)

        # sample text
        right = QWidget()
        right.setMinimumWidth(300)
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(QLabel("<b>Try it on a text</b>"))
        self.sample_edit = QPlainTextEdit()
        self.sample_edit.setFont(monospace_font())
        self.sample_edit.setPlaceholderText("Type or paste a text to see how it is cut into tokens…")
        self.sample_edit.setToolTip("A text to tokenize. It starts with the beginning of the dataset; change it "
                                    "freely.")
        self.sample_edit.setMaximumHeight(self.fontMetrics().height() * 7)
        self.sample_edit.textChanged.connect(self._on_sample_edited)
        rv.addWidget(self.sample_edit)
        self.span_view = TokenSpanView()
        self.span_view.setToolTip("")
        rv.addWidget(self.span_view, 1)
        self.sample_stats = QLabel("")
        self.sample_stats.setWordWrap(True)
        self.sample_stats.setToolTip("Fewer tokens for the same text means the model sees more text in each "
                                     "context window.")
        rv.addWidget(self.sample_stats)
        self._tokenize_timer = QTimer(self, singleShot=True, interval=250)
        self._tokenize_timer.timeout.connect(self.tokenize_sample)
        split.addWidget(right)
        split.setSizes([420, 580])

        self._on_kind_changed()

    # ---------------------------------------------------------------------------------------------- training
    def _on_kind_changed(self, *_) -> None:
        key = self.kind_combo.currentData()
        self.kind_help.setText(next(h for k, _, h in KINDS if k == key))
        if key == "char":
            self.vocab_spin.setRange(2, 65536)
            self.vocab_label.setText("At most:")
            self.vocab_spin.setToolTip(
                "An upper bound: the vocabulary is every distinct character of the text, up to this many (the "
                "rarest beyond it become [UNK]). English needs about 100; leave it high unless the text has "
                "thousands of rare symbols.")
        else:
            self.vocab_spin.setRange(260, 65536)
            self.vocab_label.setText("Vocabulary size:")
            self.vocab_spin.setToolTip(
                "How many tokens byte-level BPE learns, 260–65,536 (256 bytes come first). 1,000–8,000 suits a "
                "few MB of text; too big for a small corpus gives rare tokens the model never learns well, and "
                "a bigger embedding and output layer.")

    def train_tokenizer(self) -> str | None:
        ds = getattr(self.session, "dataset", None)
        if not ds:
            self.error_line.show_message("Select or import a dataset first (Data panel).", "error")
            return None
        if self.train_request_id is not None:
            return None
        msg = p.TokenizerTrainRequest(dataset=ds.get("id", ds.get("name")),
                                      tokenizer_kind=self.kind_combo.currentData(),
                                      vocab_size=self.vocab_spin.value())
        self.error_line.clear_message()
        self._set_training(True)
        self.train_request_id = self.session.request(msg, on_reply=guarded(self, self._on_train_reply),
                                                     on_event=guarded(self, self._on_train_event))
        return self.train_request_id

    def cancel_training(self) -> None:
        if self.train_request_id is not None:
            self.session.cancel(self.train_request_id)
            self.progress_bar.setFormat("cancelling…")
            self.cancel_button.setEnabled(False)

    def _set_training(self, busy: bool) -> None:
        self.train_button.setEnabled(not busy)
        self.kind_combo.setEnabled(not busy)
        self.vocab_spin.setEnabled(not busy)
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.cancel_button.setEnabled(busy)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")

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
        self._set_training(False)
        if not reply.ok:
            error = reply.error or "tokenizer training failed"
            if "cancel" in error.lower():
                self.error_line.show_message("Tokenizer training cancelled; nothing was added.", "info")
            else:
                self.error_line.show_message(f"Tokenizer training failed: {error}", "error")
                self._show_error_box(error)
            self.tokenizerTrained.emit(None)
            return
        row = reply.tokenizer or {}
        self.error_line.show_message(
            f"Trained “{row.get('name', '')}” with {int(row.get('vocab_size', 0)):,} tokens.", "info")
        self._add_tokenizer_item(row)
        self.session.select_tokenizer(row)
        self.tokenizerTrained.emit(row)

    def _show_error_box(self, error: str) -> None:
        if self.error_box is not None:
            self.error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Tokenizer training failed", "The tokenizer could not be trained.",
                          QMessageBox.StandardButton.Ok, self)
        box.setInformativeText(error)
        self.error_box = box
        box.open()   # not exec(): never block the event loop

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
        for t in rows:
            self._add_tokenizer_item(t)
        if not rows:
            combo.addItem("(none yet)", None)
        combo.setEnabled(bool(rows))
        self._select_tokenizer_item(getattr(self.session, "tokenizer", None))
        combo.blockSignals(False)

    def _add_tokenizer_item(self, t: dict) -> None:
        combo = self.tokenizer_combo
        for i in range(combo.count()):
            data = combo.itemData(i)
            if data is None:
                combo.removeItem(i)
                break
        for i in range(combo.count()):
            if (combo.itemData(i) or {}).get("id") == t.get("id"):
                return
        kind = dict((k, label) for k, label, _ in KINDS).get(t.get("kind"), t.get("kind", ""))
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
        self.dataset_label.setText(f"<b>{_esc(ds.get('name', ''))}</b> — {human_count(ds.get('n_chars') or 0)} "
                                   f"characters" if ds else "none selected (import one in the Data panel)")
        self.train_button.setEnabled(bool(ds) and self.train_request_id is None)
        self._fill_tokenizers()
        self._sample_edited = False
        if ds:
            self._sample_request_id = self.session.request(
                p.DatasetPreviewRequest(dataset=ds.get("id", ds.get("name")), n_chars=SAMPLE_CHARS * 2),
                on_reply=guarded(self, self._on_sample_preview))

    def _on_sample_preview(self, reply) -> None:
        if reply.parent != self._sample_request_id or not reply.ok or self._sample_edited:
            return
        lines = reply.text.split("\n")[:SAMPLE_LINES]
        self._setting_sample = True
        self.sample_edit.setPlainText("\n".join(lines)[:SAMPLE_CHARS])
        self._setting_sample = False
        self.tokenize_sample()

    def _on_tokenizer_selected(self, t) -> None:
        self._fill_tokenizers()
        if not t:
            self.tokenizer_info.setText("No tokenizer yet: train one.")
            self.vocab_model.set_rows([])
            self.vocab_count.setText("")
            self.span_view.set_spans(self.sample_edit.toPlainText(), [])
            self.sample_stats.setText("")
            return
        kind = dict((k, label) for k, label, _ in KINDS).get(t.get("kind"), t.get("kind", ""))
        train, val = t.get("train_tokens"), t.get("val_tokens")
        self.tokenizer_info.setText(
            f"<b>{kind}</b>, {int(t.get('vocab_size', 0)):,} tokens<br>"
            f"Training text: {human_count(train or 0)} tokens · validation: {human_count(val or 0)} tokens")
        self.vocab_count.setText("loading…")
        self._vocab_request_id = self.session.request(
            p.VocabRequest(tokenizer=t.get("id", t.get("name")), limit=VOCAB_LIMIT),
            on_reply=guarded(self, self._on_vocab))
        self.tokenize_sample()

    def _on_vocab(self, reply) -> None:
        if reply.parent != self._vocab_request_id:
            return
        if not reply.ok:
            self.vocab_count.setText("")
            self.error_line.show_message(f"Could not load the vocabulary: {reply.error}", "error")
            return
        self.vocab_model.set_rows(reply.rows)
        self._update_vocab_count()
        self.vocabLoaded.emit(self.vocab_model.rowCount())

    def _apply_filter(self) -> None:
        self.vocab_proxy.set_needle(self.search_edit.text())
        self._update_vocab_count()

    def _update_vocab_count(self) -> None:
        total = self.vocab_model.rowCount()
        shown = self.vocab_proxy.rowCount()
        vocab = int((getattr(self.session, "tokenizer", None) or {}).get("vocab_size") or total)
        text = f"{shown:,} of {total:,} tokens shown" if shown != total else f"{total:,} tokens"
        if vocab > total:
            text += f" (the first {total:,} of {vocab:,})"
        self.vocab_count.setText(text)

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
            p.TokenizeRequest(tokenizer=t.get("id", t.get("name")), text=text), on_reply=guarded(self, self._on_spans))
        self._tokenize_text = text
        return self._tokenize_request_id

    def _on_spans(self, reply) -> None:
        if reply.parent != self._tokenize_request_id:
            return
        text = self._tokenize_text   # the spans' offsets are into the text that was sent
        if not reply.ok:
            self.sample_stats.setText(f"Could not tokenize: {reply.error}")
            return
        self.span_view.set_spans(text, reply.spans)
        n = len(reply.spans)
        per = len(text) / n if n else 0.0
        self.sample_stats.setText(f"{n:,} tokens for {len(text):,} characters · {per:.2f} characters per token "
                                  f"(hover a token to see its id)")
        self.spansShown.emit(n)


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
