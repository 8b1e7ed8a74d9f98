"""Tokenizers side by side: the same corpus sample and the same sentence, cut by each.

The engine does the measuring (tokenizer_compare_request); this view picks the tokenizers, shows the numbers in a
sortable table with the best value of each metric in bold, and asks for the real token spans of the sample text
once per tokenizer, so the splits are coloured exactly as the Vocabulary tab colours them.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from engine.format import human_bytes, human_count, plural
from studio import theme
from studio.state.tokenizer_choices import KIND_LABELS
from studio.widgets.form_helpers import MessageLine, guarded, muted_color
from studio.widgets.token_spans import TokenSpanView

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2
SPAN_VIEW_LINES = 3

# (key in a result row, header, header tooltip, which value is best: "max" | "min" | None)
COLUMNS = (
    ("tokenizer", "Tokenizer", "The tokenizer's name.", None),
    ("kind", "Kind", "How it cuts text: per character, or learned pieces of words (BPE, WordPiece, Unigram).", None),
    (
        "vocab_size",
        "Vocab",
        "How many different tokens it knows. A bigger vocabulary means a bigger embedding "
        "and output layer in the model.",
        None,
    ),
    (
        "n_tokens",
        "Tokens",
        "How many tokens the corpus sample becomes. Fewer tokens for the same text means the "
        "model sees more text per step.",
        None,
    ),
    (
        "bytes_per_token",
        "Bytes /\ntoken",
        "Bytes per token: how much text one token carries on average. Higher "
        "means shorter sequences, so the model sees more text per step.",
        "max",
    ),
    (
        "tokens_per_word",
        "Tokens /\nword",
        "Tokens per word: how many pieces an average word is cut into. Close to "
        "1 means most words are a single token; lower is better.",
        "min",
    ),
    (
        "unk_rate",
        "Unknown\nrate",
        "The share of tokens that are the unknown token: text the tokenizer could "
        "not write and the model will never see. Lower is better; 0 is ideal.",
        "min",
    ),
    (
        "vocab_coverage",
        "Vocab\ncoverage",
        "The share of the vocabulary that the corpus sample uses. Low "
        "coverage means many tokens are rare, and the model learns rare tokens poorly; there is no single best "
        "value.",
        None,
    ),
    (
        "lossless",
        "Lossless",
        "✓ when decoding the tokens gives back exactly the original text (spaces and case "
        "included); ✗ when something is lost, such as case or spacing.",
        None,
    ),
)
COL = {key: i for i, (key, *_rest) in enumerate(COLUMNS)}
LEFT_ALIGNED = ("tokenizer", "kind", "lossless")


def _percent(v: float, digits: int) -> str:
    if v == 0:
        return "0"
    small = 10**-digits
    return f"<{small:.{digits}f}" if 100 * v < small else f"{100 * v:.{digits}f}"


def _display(key: str, value) -> str:
    if key == "kind":
        return KIND_LABELS.get(value, str(value))
    if key == "vocab_size":
        return f"{int(value):,}"
    if key == "n_tokens":
        return human_count(int(value))
    if key in ("bytes_per_token", "tokens_per_word"):
        return f"{float(value):.2f}"
    if key == "unk_rate":
        return f"{_percent(float(value), 2)} %"
    if key == "vocab_coverage":
        return f"{_percent(float(value), 1)} %"
    if key == "lossless":
        return "✓" if value else "✗"
    return str(value)


class TokenizerCompareView(QWidget):
    """Tick two or more tokenizers, press Compare: a table of their numbers and the sample text cut by each."""

    compared = Signal(dict)  # the reply's result, once the table is filled
    splitsShown = Signal(int)  # every split view has its spans (the number of views)

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self.request_id: str | None = None
        self.result: dict | None = None
        self._ticks: dict[int, bool] = {}  # the user's own ticks, by tokenizer id; the rest follow defaults
        self._filling = False
        self._split_requests: dict[str, tuple] = {}  # tokenize request id -> (label, view, name, text)
        self._build()
        session.workspaceChanged.connect(self._fill_list)
        session.datasetSelected.connect(self._fill_list)
        self._fill_list()

    # ------------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        top = QHBoxLayout()
        root.addLayout(top)
        top.addLayout(self._build_list(), 0)
        top.addLayout(self._build_controls(), 1)
        root.addWidget(self._build_table())
        self.corpus_line = QLabel("")
        self.corpus_line.setWordWrap(True)
        self.corpus_line.setToolTip("The text every tokenizer was measured on.")
        self.corpus_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        root.addWidget(self.corpus_line)
        root.addWidget(QLabel("<b>The same text, split by each</b>"))
        root.addWidget(self._build_splits(), 1)
        self._fit_table()
        self.split_views: list[TokenSpanView] = []
        self.split_labels: list[QLabel] = []
        self._set_busy(False)

    def _build_list(self) -> QVBoxLayout:
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Tokenizers to compare</b>"))
        self.list = QListWidget()
        self.list.setToolTip(
            "Tick the tokenizers to compare (at least two). The ones trained on the selected "
            "dataset are ticked at first."
        )
        self.list.setFixedWidth(300)
        # room for about three two-line entries; more scroll
        self.list.setFixedHeight(int(self.fontMetrics().lineSpacing() * 6.6) + 8)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemChanged.connect(self._on_item_changed)
        left.addWidget(self.list)
        return left

    def _build_controls(self) -> QVBoxLayout:
        right = QVBoxLayout()
        right.addSpacing(self.fontMetrics().lineSpacing())
        row = QHBoxLayout()
        row.addWidget(QLabel("Sample text:"))
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText(
            "Empty: the first line of the corpus. Type a sentence to see how each tokenizer cuts it…"
        )
        self.text_edit.setToolTip(
            "A sentence to cut with every tokenizer, shown below the table. Leave it empty "
            "to use the corpus's first line. Return (or Ctrl+Return) compares."
        )
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.returnPressed.connect(self.compare)
        row.addWidget(self.text_edit, 1)
        self.compare_button = theme.make_primary(QPushButton("Compare"))
        self.compare_button.clicked.connect(self.compare)
        row.addWidget(self.compare_button)
        right.addLayout(row)
        self.corpus_note = QLabel()
        self.corpus_note.setWordWrap(True)
        self.corpus_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        right.addWidget(self.corpus_note)

        busy = QHBoxLayout()
        self.busy_label = QLabel("comparing…")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumHeight(self.fontMetrics().height())
        self.busy_bar.setToolTip("The engine is tokenizing the corpus sample with each tokenizer.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop waiting for this comparison.")
        self.cancel_button.clicked.connect(self.cancel)
        busy.addWidget(self.busy_label)
        busy.addWidget(self.busy_bar, 1)
        busy.addWidget(self.cancel_button)
        right.addLayout(busy)
        self.message = MessageLine(self)
        right.addWidget(self.message)
        right.addStretch(1)
        return right

    def _build_table(self) -> QTableView:
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setSortRole(SORT_ROLE)
        for i, (_, title, tip, _best) in enumerate(COLUMNS):
            self.model.setHeaderData(i, Qt.Orientation.Horizontal, title)
            self.model.setHeaderData(i, Qt.Orientation.Horizontal, tip + " Click to sort.", Qt.ItemDataRole.ToolTipRole)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.setToolTip("The tokenizers on the same corpus sample. Bold marks the best value of a column.")
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        return self.table

    def _build_splits(self) -> QScrollArea:
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.splits = QWidget()
        self.splits_layout = QVBoxLayout(self.splits)
        self.splits_layout.setContentsMargins(4, 4, 4, 4)
        self.empty_hint = QLabel(
            "Tick two or more tokenizers and press Compare: each one's numbers fill the "
            "table above, and the sample text, cut by each, appears here."
        )
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.splits_layout.addWidget(self.empty_hint)
        self.splits_layout.addStretch(1)
        self.scroll.setWidget(self.splits)
        return self.scroll

    # ------------------------------------------------------------------------------------------ tokenizer list
    def _tokenizers(self) -> list[dict]:
        """The workspace's tokenizers, the selected dataset's first (the first ticked one decides the corpus)."""
        ds = getattr(self.session, "dataset", None) or {}
        rows = list((getattr(self.session, "workspace", None) or {}).get("tokenizers") or [])
        return sorted(rows, key=lambda t: t.get("dataset_id") != ds.get("id"))

    def _dataset_name(self, dataset_id) -> str:
        for d in (getattr(self.session, "workspace", None) or {}).get("datasets") or []:
            if d.get("id") == dataset_id:
                return str(d.get("name", dataset_id))
        return f"dataset {dataset_id}"

    def _fill_list(self, *_) -> None:
        ds = getattr(self.session, "dataset", None) or {}
        self._filling = True
        self.list.clear()
        for t in self._tokenizers():
            tid = t.get("id")
            on_dataset = t.get("dataset_id") == ds.get("id")
            text = (
                f"{t.get('name', tid)}\n{KIND_LABELS.get(t.get('kind'), t.get('kind', ''))} · "
                f"{int(t.get('vocab_size') or 0):,} tokens"
            )
            if not on_dataset:
                text += f" · on {self._dataset_name(t.get('dataset_id'))}"
            item = QListWidgetItem(text)
            item.setData(ID_ROLE, tid)
            item.setData(SORT_ROLE, t.get("dataset_id"))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable)
            checked = self._ticks.get(tid, on_dataset)
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            item.setToolTip(f"Trained on “{self._dataset_name(t.get('dataset_id'))}”. Tick to compare it.")
            self.list.addItem(item)
        self._filling = False
        self._update_controls()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if not self._filling:
            self._ticks[item.data(ID_ROLE)] = item.checkState() == Qt.CheckState.Checked
            self._update_controls()

    def checked_ids(self) -> list:
        return [
            self.list.item(i).data(ID_ROLE)
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Checked
        ]

    def set_checked(self, ids) -> None:
        """Tick exactly these tokenizers (as if the user had)."""
        wanted = set(ids)
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(ID_ROLE) in wanted else Qt.CheckState.Unchecked)

    def _update_controls(self) -> None:
        checked = [
            self.list.item(i)
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Checked
        ]
        if checked:
            name = self._dataset_name(checked[0].data(SORT_ROLE))
            self.corpus_note.setText(
                f"Corpus: the validation text of “{html.escape(name)}” (up to 1 M characters)"
                f", the dataset of the first ticked tokenizer."
            )
        else:
            self.corpus_note.setText("Corpus: the validation text of the first ticked tokenizer's dataset.")
        busy = self.request_id is not None
        if busy:
            why = "Comparing… wait for the result, or cancel."
        elif self.list.count() < 2:
            why = "Train at least two tokenizers (Vocabulary panel) to compare them."
        elif len(checked) < 2:
            why = "Tick at least two tokenizers to compare."
        else:
            why = ""
        self.compare_button.setEnabled(not why)
        self.compare_button.setToolTip(
            why
            or "Measure the ticked tokenizers on the same corpus sample and cut the "
            "sample text with each (Ctrl+Return in the text field)."
        )

    # ----------------------------------------------------------------------------------------------- compare
    def compare(self) -> str | None:
        """Send the comparison of the ticked tokenizers; returns the request id (None when it cannot start)."""
        ids = self.checked_ids()
        if self.request_id is not None:
            return None
        if len(ids) < 2:
            self.message.show_message("Tick at least two tokenizers to compare.", "warning")
            return None
        text = self.text_edit.text()
        self.message.clear_message()
        self._split_requests.clear()
        self.request_id = self.session.request(
            p.TokenizerCompareRequest(tokenizers=ids, text=text if text.strip() else None),
            on_reply=guarded(self, self._on_compare_reply),
        )
        self._set_busy(True)
        return self.request_id

    def cancel(self) -> None:
        if self.request_id is not None:
            rid, self.request_id = self.request_id, None  # its reply, if it still comes, is ignored
            self.session.cancel(rid)
            self._set_busy(False)
            self.message.show_message("Comparison cancelled.", "info")

    def _set_busy(self, busy: bool) -> None:
        self.busy_label.setVisible(busy)
        self.busy_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.compare_button.setText("Comparing…" if busy else "Compare")
        self._update_controls()

    def _on_compare_reply(self, reply) -> None:
        if reply.parent != self.request_id:
            return
        self.request_id = None
        self._set_busy(False)
        if not reply.ok:
            self.message.show_message(f"Could not compare the tokenizers: {reply.error}", "error")
            return
        self.result = reply.result
        self._fill_table(reply.result.get("rows") or [])
        self._show_corpus(reply.result.get("corpus") or {})
        self.compared.emit(reply.result)
        self._request_splits(reply.result)

    def _fill_table(self, rows: list[dict]) -> None:
        model = self.model
        model.removeRows(0, model.rowCount())
        best = {}
        for key, _, _, rule in COLUMNS:
            values = [float(r.get(key) or 0) for r in rows] if rule else []
            if values and min(values) != max(values):  # all equal: nobody wins
                best[key] = max(values) if rule == "max" else min(values)
        for r in rows:
            items = []
            for key, *_ in COLUMNS:
                value = r.get(key)
                item = QStandardItem(_display(key, value))
                item.setData(value if not isinstance(value, bool) else int(value), SORT_ROLE)
                item.setData(r.get("id"), ID_ROLE)
                item.setToolTip(self._cell_tip(key, r))
                if key not in LEFT_ALIGNED:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                elif key == "lossless":
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if key in best and float(value or 0) == best[key]:
                    font = QFont(self.table.font())
                    font.setBold(True)
                    item.setFont(font)
                items.append(item)
            model.appendRow(items)
        self._fit_columns()
        self._fit_table()
        section = self.table.horizontalHeader().sortIndicatorSection()
        if 0 <= section < len(COLUMNS):  # the user's sort survives a new comparison
            model.sort(section, self.table.horizontalHeader().sortIndicatorOrder())

    def _fit_table(self) -> None:
        """As tall as its rows (at least three), so the split views below get the rest of the height."""
        t = self.table
        rows = max(3, self.model.rowCount())
        height = t.horizontalHeader().sizeHint().height() + rows * t.verticalHeader().defaultSectionSize()
        height += 2 * t.frameWidth()
        hh = t.horizontalHeader()
        if sum(hh.sectionSize(i) for i in range(hh.count())) > t.viewport().width():
            height += t.horizontalScrollBar().sizeHint().height()
        t.setFixedHeight(height)

    def _fit_columns(self) -> None:
        """Every column as wide as its contents, the names taking what is left; when that is too wide, the names
        give way (elided, full in their tooltips) so the numbers stay readable without scrolling."""
        t, hh = self.table, self.table.horizontalHeader()
        t.resizeColumnsToContents()
        extra = sum(hh.sectionSize(i) for i in range(hh.count())) - t.viewport().width()
        if extra < 0:
            hh.resizeSection(0, hh.sectionSize(0) - extra)
        for col, least in ((0, 100), (1, 70)):
            if extra <= 0:
                break
            give = min(extra, max(0, hh.sectionSize(col) - least))
            hh.resizeSection(col, hh.sectionSize(col) - give)
            extra -= give

    def resizeEvent(self, e) -> None:
        super().resizeEvent(e)
        if self.model.rowCount():
            self._fit_columns()
            self._fit_table()

    @staticmethod
    def _cell_tip(key: str, r: dict) -> str:
        name = r.get("tokenizer", "")
        if key == "n_tokens":
            return f"{name}: {int(r.get('n_tokens') or 0):,} tokens on the corpus sample"
        if key == "lossless":
            return (
                f"{name}: decoding gives back the exact text"
                if r.get("lossless")
                else f"{name}: decoding does not give back the exact text (case, spaces or unknown characters are lost)"
            )
        if key in ("unk_rate", "vocab_coverage"):
            return f"{name}: {100 * float(r.get(key) or 0):.4g} %"
        return f"{name}: {r.get(key)}"

    def _show_corpus(self, corpus: dict) -> None:
        split = {"val": "validation", "train": "training"}.get(corpus.get("split"), corpus.get("split", ""))
        self.corpus_line.setText(
            f"Corpus: “{html.escape(str(corpus.get('dataset', '')))}”, {split} split · "
            f"{human_count(int(corpus.get('n_chars') or 0))} characters · "
            f"{human_count(int(corpus.get('n_words') or 0))} words · {human_bytes(int(corpus.get('n_bytes') or 0))}"
        )

    # ------------------------------------------------------------------------------------------------ splits
    def _request_splits(self, result: dict) -> None:
        for w in self.split_labels + self.split_views:
            self.splits_layout.removeWidget(w)
            w.deleteLater()
        self.split_labels, self.split_views = [], []
        self.empty_hint.hide()
        text = str(result.get("text") or "")
        height = self._span_view_height()
        for i, r in enumerate(result.get("rows") or []):
            name = str(r.get("tokenizer", ""))
            label = QLabel(f"<b>{html.escape(name)}</b> · {plural(len(r.get('sample_split') or []), 'token')}")
            view = TokenSpanView()
            view.setFixedHeight(height)
            view.set_spans(text, [])
            self.splits_layout.insertWidget(2 * i, label)
            self.splits_layout.insertWidget(2 * i + 1, view)
            self.split_labels.append(label)
            self.split_views.append(view)
            rid = self.session.request(
                p.TokenizeRequest(tokenizer=r.get("id", name), text=text), on_reply=guarded(self, self._on_split_reply)
            )
            self._split_requests[rid] = (label, view, name, text)

    def _span_view_height(self) -> int:
        probe = TokenSpanView()
        line = probe.fontMetrics().lineSpacing() * 1.25  # TokenSpanView spaces lines at 125 %
        margins = 2 * probe.frameWidth() + 2 * probe.document().documentMargin()
        probe.deleteLater()
        return int(SPAN_VIEW_LINES * line + margins + 2)

    def _on_split_reply(self, reply) -> None:
        entry = self._split_requests.pop(reply.parent, None)
        if entry is None:  # an older comparison's split
            return
        label, view, name, text = entry
        if not reply.ok:
            label.setText(f"<b>{html.escape(name)}</b> · could not split: {html.escape(reply.error or '')}")
        else:
            view.set_spans(text, reply.spans)
            n = len(reply.spans)
            per = len(text) / n if n else 0.0
            label.setText(
                f"<b>{html.escape(name)}</b> · {plural(n, 'token')} · {per:.2f} characters per token "
                f"<span style='color:{muted_color(self).name()}'>(hover a token to see its id)</span>"
            )
        if not self._split_requests:
            self.splitsShown.emit(len(self.split_views))
