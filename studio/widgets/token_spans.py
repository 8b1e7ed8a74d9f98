"""TokenSpanView: text shown as coloured token spans, one pastel colour per token in turn, with a tooltip each.

Span backgrounds are light pastels with dark text forced on them, so a span reads the same in light and dark
themes; text that no span covers keeps the theme's colours.
"""

from __future__ import annotations

import bisect

from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QColor, QTextBlockFormat, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QTextBrowser, QToolTip

from studio.widgets.form_helpers import monospace_font

# Pastels far enough apart in hue that neighbours are told apart, light enough for dark text on any theme.
PASTELS = ("#ffd6a5", "#b9fbc0", "#a0c4ff", "#ffc6ff", "#fdffb6", "#9bf6ff", "#ffadad", "#d0bfff")
SPAN_TEXT = "#1b1b1b"
NEWLINE_MARK = "↵"  # larger than ⏎ in common monospace fonts


def readable_token(token: str) -> str:
    """Make invisible characters visible: ' ' -> '␣', newline -> '⏎', tab -> '⇥'."""
    return token.replace(" ", "␣").replace("\n", "⏎").replace("\r", "␍").replace("\t", "⇥")


def span_tooltip(span: dict) -> str:
    return f"id {span.get('id', '?')} · '{readable_token(str(span.get('token', '')))}'"


class TokenSpanView(QTextBrowser):
    """Read-only view of a text cut into tokens. `set_spans(text, spans)` with engine spans
    ({"id", "token", "start", "end"}, character offsets into `text`); hover a token to see its id."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setOpenLinks(False)
        self.setFont(monospace_font())
        self.setLineWrapMode(QTextBrowser.LineWrapMode.WidgetWidth)
        self.setToolTip("")  # tooltips come per token, see event()
        self._spans: list[dict] = []
        self._doc_starts: list[int] = []  # document position where each span starts
        self._doc_ends: list[int] = []
        self._text = ""

    # ------------------------------------------------------------------------------------------------ public
    def set_spans(self, text: str, spans: list[dict]) -> None:
        self._text = text
        self._spans = [s for s in spans if 0 <= int(s.get("start", 0)) <= int(s.get("end", 0)) <= len(text)]
        self._spans.sort(key=lambda s: int(s["start"]))
        self._doc_starts, self._doc_ends = [], []
        self.clear()
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()
        plain = QTextCharFormat()
        at = 0
        for i, span in enumerate(self._spans):
            start, end = int(span["start"]), int(span["end"])
            if start < at:  # overlapping spans (should not happen): show the rest of this one only
                start = at
            if start > at:
                cursor.insertText(text[at:start], plain)
            self._doc_starts.append(cursor.position())
            self._insert_span(cursor, text[start:end], self._span_format(i, span))
            self._doc_ends.append(cursor.position())
            at = max(at, end)
        if at < len(text):
            cursor.insertText(text[at:], plain)
        # a little air between lines, so the coloured rows of two lines do not touch
        cursor.select(QTextCursor.SelectionType.Document)
        block = QTextBlockFormat()
        block.setLineHeight(125, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
        cursor.mergeBlockFormat(block)
        cursor.endEditBlock()
        self.moveCursor(QTextCursor.MoveOperation.Start)

    def span_count(self) -> int:
        return len(self._spans)

    def spans(self) -> list[dict]:
        return list(self._spans)

    def text(self) -> str:
        return self._text

    def span_at(self, pos) -> dict | None:
        """The span at a point in the viewport (QPoint) or at a character offset into the text (int)."""
        if isinstance(pos, QPoint):
            cursor = self.cursorForPosition(pos)
            doc_pos = cursor.position()
            # cursorForPosition gives the caret position nearest the point; the character under the point is
            # the one after it unless the point is on the right half of a character.
            rect = self.cursorRect(cursor)
            if pos.x() < rect.x() and doc_pos > 0:
                doc_pos -= 1
            i = bisect.bisect_right(self._doc_starts, doc_pos) - 1
            if 0 <= i < len(self._spans) and doc_pos < self._doc_ends[i]:
                return self._spans[i]
            return None
        offset = int(pos)
        for span in self._spans:  # text offsets: spans are few enough (a sample text) for a scan
            if int(span["start"]) <= offset < int(span["end"]):
                return span
        return None

    def span_color(self, index: int) -> QColor:
        return QColor(PASTELS[index % len(PASTELS)])

    def span_format(self, index: int) -> QTextCharFormat:
        """The character format of span `index` as shown (for tests and for the legend)."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._doc_starts[index] + 1)
        return cursor.charFormat()

    # --------------------------------------------------------------------------------------------- internals
    def _span_format(self, i: int, span: dict) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setBackground(self.span_color(i))
        fmt.setForeground(QColor(SPAN_TEXT))
        fmt.setToolTip(span_tooltip(span))
        fmt.setProperty(QTextCharFormat.Property.UserProperty, i)
        return fmt

    def _insert_span(self, cursor: QTextCursor, piece: str, fmt: QTextCharFormat) -> None:
        # A line break has no width to colour, so a newline inside a token is shown as a coloured ⏎ first.
        parts = piece.split("\n")
        for j, part in enumerate(parts):
            if part:
                cursor.insertText(part, fmt)
            if j < len(parts) - 1:
                cursor.insertText(NEWLINE_MARK, fmt)
                cursor.insertText("\n", fmt)

    def event(self, e):
        if e.type() == QEvent.Type.ToolTip:
            vp = self.viewport().mapFromGlobal(e.globalPos())
            span = self.span_at(vp) if self.viewport().rect().contains(vp) else None
            if span is not None:
                QToolTip.showText(e.globalPos(), span_tooltip(span), self)
            else:
                QToolTip.hideText()
                e.ignore()
            return True
        return super().event(e)

    def viewportEvent(self, e):
        if e.type() == QEvent.Type.ToolTip:
            return self.event(e)
        return super().viewportEvent(e)
