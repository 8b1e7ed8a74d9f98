"""The vocabulary table (model + filter proxy), the token details box beside it, and the two together.

The table can hold 100k rows, so sorting is done by the model on its Python list (one sort, not a million Python
comparisons through QSortFilterProxyModel.lessThan); the proxy only filters.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine import protocol as p
from engine.format import human_count, plural
from studio.widgets.form_helpers import guarded, monospace_font
from studio.widgets.token_spans import readable_token

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
MERGE_RANK_TIP = "the order in which BPE learned this token; lower = learned earlier = more common pair"
ID, TOKEN, FREQUENCY, RANK = range(4)
N_CONTEXTS = 10
CONTEXT_WIDTH = 32  # characters each side: a line fits beside the table at 1280 pixels


class VocabTableModel(QAbstractTableModel):
    """Rows [id, token, frequency, merge rank or None] from a vocab_reply; readable tokens, human counts."""

    HEADERS = ("Id", "Token", "Frequency", "Merge rank")
    TIPS = (
        "The number the model sees for this token.",
        "The token's text: ␣ is a space, ⏎ a line break, ⇥ a tab, <0xE2> a byte that is part of a character.",
        "How often the token occurs in the dataset once it is tokenized (training and validation text).",
        MERGE_RANK_TIP[0].upper() + MERGE_RANK_TIP[1:] + ". Blank for characters, bytes, special tokens "
        "and kinds other than BPE.",
    )

    def __init__(self, parent=None):
        super().__init__(parent)
        # (id, token, frequency, rank or None, lower-cased token): the lower-cased token rides along so filtering
        # needs no lookup and sorting no rebuild
        self._rows: list[tuple[int, str, int, int | None, str]] = []
        self.sort_column, self.sort_order = ID, Qt.SortOrder.AscendingOrder

    def set_rows(self, rows: list) -> None:
        self.beginResetModel()
        self._rows = [
            (int(r[0]), str(r[1]), int(r[2] or 0), None if len(r) < 4 or r[3] is None else int(r[3]), str(r[1]).lower())
            for r in rows
        ]
        self._sort_rows()
        self.endResetModel()

    def row(self, i: int) -> tuple[int, str, int, int | None]:
        """(id, token, frequency, merge rank or None) of source row i."""
        return self._rows[i][:4]

    def token_lower(self, i: int) -> str:
        return self._rows[i][4]

    def has_ranks(self) -> bool:
        return any(r[3] is not None for r in self._rows)

    def row_of_id(self, token_id: int) -> int | None:
        for i, r in enumerate(self._rows):
            if r[0] == token_id:
                return i
        return None

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else 4

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        tid, token, freq, rank, _ = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(tid), token, human_count(freq), "" if rank is None else f"{rank:,}")[col]
        if role == SORT_ROLE:
            return (tid, token, freq, rank)[col]
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == RANK:
                return (
                    (f"merge {rank:,}: " + MERGE_RANK_TIP)
                    if rank is not None
                    else "not made by a merge (a character, a byte or a special token)"
                )
            return f"id {tid} · '{token}' · {freq:,} occurrences"
        if role == Qt.ItemDataRole.TextAlignmentRole and col != TOKEN:
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
            return  # QTableView asks twice (header indicator, then the view); one sort of 100k rows is enough
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        old_ids = [self._rows[idx.row()][0] if idx.row() < len(self._rows) else None for idx in persistent]
        self.sort_column, self.sort_order = column, order
        self._sort_rows()
        if persistent:  # the selection and current row follow their tokens
            new_row_of_id = {r[0]: i for i, r in enumerate(self._rows)}
            for idx, tid in zip(persistent, old_ids):
                if tid is not None:
                    self.changePersistentIndex(idx, self.index(new_row_of_id[tid], idx.column()))
        self.layoutChanged.emit()

    def _sort_rows(self) -> None:
        col, desc = self.sort_column, self.sort_order == Qt.SortOrder.DescendingOrder
        # ties (equal frequencies) stay in id order either way, so a sorted table is calm to look at
        if col == TOKEN:
            self._rows.sort(key=lambda r: r[0])
            self._rows.sort(key=lambda r: r[4], reverse=desc)
        elif col == RANK:
            # tokens no merge made have no rank: last in both directions, where they are out of the way
            sign = -1 if desc else 1
            self._rows.sort(key=lambda r: (r[3] is None, sign * (r[3] or 0), r[0]))
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
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+; invalidateRowsFilter is deprecated there
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


def context_html(line: str) -> str:
    """One context line as HTML: the text escaped, the ⟦token⟧ in bold on a highlight."""
    a, b = line.find("⟦"), line.rfind("⟧")
    if a < 0 or b < a:
        return html.escape(line)
    return (
        html.escape(line[:a])
        + "<span style='font-weight:bold; background:#ffe08a; color:#1b1b1b'>"
        + html.escape(line[a : b + 1])
        + "</span>"
        + html.escape(line[b + 1 :])
    )


class TokenDetails(QGroupBox):
    """The selected token: its text, id, frequency, merge rank, and where it occurs in the corpus."""

    def __init__(self, parent=None):
        super().__init__("Token details", parent)
        self.setToolTip("Click a token in the table to see it here with examples of where it occurs.")
        lay = QVBoxLayout(self)
        self.token_label = QLabel("Click a token in the table.")
        font = monospace_font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setWeight(QFont.Weight.Bold)
        self.token_label.setFont(font)
        self.token_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.token_label.setTextFormat(Qt.TextFormat.PlainText)
        self.token_label.setToolTip("The token as text: ␣ is a space, ⏎ a line break, ⇥ a tab.")
        lay.addWidget(self.token_label)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.id_label = QLabel("—")
        self.id_label.setToolTip("The number the model sees for this token.")
        self.frequency_label = QLabel("—")
        self.frequency_label.setToolTip("How often the token occurs in the dataset (training and validation text).")
        self.rank_label = QLabel("—")
        self.rank_label.setToolTip(MERGE_RANK_TIP[0].upper() + MERGE_RANK_TIP[1:] + ".")
        form.addRow("Id:", self.id_label)
        form.addRow("Frequency:", self.frequency_label)
        form.addRow("Merge rank:", self.rank_label)
        lay.addLayout(form)
        self.contexts_title = QLabel("<b>In the corpus</b>")
        lay.addWidget(self.contexts_title)
        self.contexts_view = QTextBrowser()
        self.contexts_view.setFont(monospace_font())
        self.contexts_view.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.contexts_view.setOpenLinks(False)
        self.contexts_view.setToolTip(
            "Places in the dataset where the token occurs, spread over the text: the "
            "token is between ⟦ ⟧; ⏎ is a line break."
        )
        lay.addWidget(self.contexts_view, 1)
        self._contexts: list[str] = []
        self.token_id: int | None = None

    def clear(self) -> None:
        self.token_id = None
        self.token_label.setText("Click a token in the table.")
        for label in (self.id_label, self.frequency_label, self.rank_label):
            label.setText("—")
        self._contexts = []
        self.contexts_view.clear()

    def set_token(self, token_id: int, token: str, frequency: int, rank: int | None) -> None:
        """Show a row of the table; the contexts follow with set_contexts."""
        self.token_id = int(token_id)
        self.token_label.setText(token)
        self.id_label.setText(f"{int(token_id):,}")
        self.frequency_label.setText(f"{int(frequency):,}")
        self.rank_label.setText(
            "—  (not made by a merge)" if rank is None else f"{int(rank):,}  (merge number {int(rank) + 1:,})"
        )
        self._contexts = []
        self.contexts_view.setPlainText("looking for it in the corpus…")

    def set_contexts(self, token: str, frequency: int, contexts: list[str]) -> None:
        if token:
            self.token_label.setText(token)
        self.frequency_label.setText(f"{int(frequency):,}")
        self._contexts = [str(c) for c in contexts]
        if not self._contexts:
            self.contexts_view.setPlainText("not in the corpus")
            return
        body = "\n".join(context_html(c) for c in self._contexts)
        self.contexts_view.setHtml(f"<pre style='margin:0'>{body}</pre>")

    def show_error(self, text: str) -> None:
        self._contexts = []
        self.contexts_view.setPlainText(text)

    def contexts(self) -> list[str]:
        return list(self._contexts)


class VocabBrowser(QSplitter):
    """The Vocabulary tab: a searchable, sortable table of every token and, beside it, the selected token's
    details with up to N_CONTEXTS places where it occurs in the corpus (asked of the engine per click)."""

    contextsShown = Signal(int)  # corpus contexts now in the token details (0: not in the corpus)

    def __init__(self, session, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.session = session
        self._contexts_request_id: str | None = None
        self._vocab_size = 0
        self.setChildrenCollapsible(False)
        left = QWidget()
        left.setMinimumWidth(320)
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 4, 0, 0)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search tokens… (Ctrl+F)")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setToolTip("Show only tokens containing this text (a space finds ␣). Ctrl+F jumps here.")
        lv.addWidget(self.search_edit)
        self.model = VocabTableModel(self)
        self.proxy = VocabFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        view = self.view = QTableView()
        view.setModel(self.proxy)
        view.setSortingEnabled(True)
        view.sortByColumn(ID, Qt.SortOrder.AscendingOrder)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        view.setAlternatingRowColors(True)
        view.verticalHeader().hide()
        view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        hh = view.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(TOKEN, QHeaderView.ResizeMode.Stretch)
        for col, width in ((ID, 64), (FREQUENCY, 84), (RANK, 96)):
            hh.resizeSection(col, width)
        view.setFont(monospace_font())
        view.setToolTip(
            "Every token of the tokenizer. Click a column title to sort by it; click a token to see where it occurs."
        )
        view.selectionModel().selectionChanged.connect(self._on_selection)
        lv.addWidget(view, 1)
        self.count_label = QLabel("")
        self.count_label.setToolTip("How many tokens the table shows.")
        lv.addWidget(self.count_label)
        self._filter_timer = QTimer(self, singleShot=True, interval=150)
        self._filter_timer.timeout.connect(self._apply_filter)
        self.search_edit.textChanged.connect(lambda _: self._filter_timer.start())
        # keyboard scrolling through the table asks for the contexts of the row it stops at, not of every row
        self._contexts_timer = QTimer(self, singleShot=True, interval=120)
        self._contexts_timer.timeout.connect(self.request_contexts)
        self.addWidget(left)
        self.details = TokenDetails()
        self.details.setMinimumWidth(320)
        self.addWidget(self.details)
        self.setSizes([480, 520])

    def set_rows(self, rows: list, vocab_size: int) -> None:
        self._vocab_size = int(vocab_size or 0)
        self.model.set_rows(rows)
        self.view.setColumnHidden(RANK, not self.model.has_ranks())  # only BPE kinds have merge ranks
        self._update_count()

    def clear(self, note: str = "") -> None:
        """Empty the table and the details (a new tokenizer is coming, or there is none)."""
        self._contexts_request_id = None
        self._contexts_timer.stop()
        self.model.set_rows([])
        self.details.clear()
        self.count_label.setText(note)

    def selected_row(self) -> tuple | None:
        """(id, token, frequency, merge rank) of the selected table row, or None."""
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.row(self.proxy.mapToSource(rows[0]).row())

    def request_contexts(self) -> str | None:
        t = getattr(self.session, "tokenizer", None)
        row = self.selected_row()
        if not t or row is None:
            return None
        self._contexts_request_id = self.session.request(
            p.TokenContextsRequest(
                tokenizer=t.get("id", t.get("name")), token_id=row[0], n=N_CONTEXTS, width=CONTEXT_WIDTH
            ),
            on_reply=guarded(self, self._on_contexts),
        )
        return self._contexts_request_id

    def _on_selection(self, *_) -> None:
        row = self.selected_row()
        if row is None:
            return
        self.details.set_token(*row)
        self._contexts_timer.start()

    def _on_contexts(self, reply) -> None:
        if reply.parent != self._contexts_request_id:
            return  # an older click's answer, or one for a tokenizer no longer shown
        if not reply.ok:
            self.details.show_error(f"Could not look it up: {reply.error}")
            return
        self.details.set_contexts(reply.token, reply.frequency, reply.contexts)
        self.contextsShown.emit(len(reply.contexts))

    def _apply_filter(self) -> None:
        self.proxy.set_needle(self.search_edit.text())
        self._update_count()

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        text = f"{shown:,} of {plural(total, 'token')} shown" if shown != total else plural(total, "token")
        if self._vocab_size > total:
            text += f" (the first {total:,} of {self._vocab_size:,})"
        self.count_label.setText(text)
