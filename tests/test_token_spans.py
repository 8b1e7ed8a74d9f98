"""TokenSpanView: each token coloured, neighbours told apart, a tooltip with the id, lookups by offset and point."""

from PySide6.QtGui import QColor

from studio.widgets.token_spans import SPAN_TEXT, TokenSpanView, span_tooltip

TEXT = "the cat\nsat"
SPANS = [
    {"id": 42, "token": "the", "start": 0, "end": 3},
    {"id": 7, "token": "␣", "start": 3, "end": 4},
    {"id": 9, "token": "cat", "start": 4, "end": 7},
    {"id": 1, "token": "⏎", "start": 7, "end": 8},
    {"id": 50, "token": "sat", "start": 8, "end": 11},
]


def test_spans_coloured_with_tooltips(qtbot):
    view = TokenSpanView()
    qtbot.addWidget(view)
    view.resize(400, 200)
    view.show()
    view.set_spans(TEXT, SPANS)
    assert view.span_count() == 5
    colours = [view.span_format(i).background().color().name() for i in range(5)]
    assert all(c != QColor(0, 0, 0, 0).name() for c in colours)
    assert all(a != b for a, b in zip(colours, colours[1:]))  # neighbours differ
    assert all(view.span_format(i).foreground().color() == QColor(SPAN_TEXT) for i in range(5))
    assert view.span_format(0).toolTip() == "id 42 · 'the'"
    assert span_tooltip(SPANS[2]) == "id 9 · 'cat'"
    # the text itself is all there (the newline token also shows a visible ↵ mark)
    assert view.toPlainText().replace("↵", "") == TEXT


def test_span_at_offset_and_point(qtbot):
    view = TokenSpanView()
    qtbot.addWidget(view)
    view.resize(400, 200)
    view.show()
    view.set_spans(TEXT, SPANS)
    assert view.span_at(5)["id"] == 9
    assert view.span_at(100) is None
    # a point in the middle of "cat" on screen
    cursor = view.textCursor()
    cursor.setPosition(5)
    rect = view.cursorRect(cursor)
    assert view.span_at(rect.center())["id"] == 9
    view.set_spans("abc", [])
    assert view.span_count() == 0 and view.span_at(1) is None
