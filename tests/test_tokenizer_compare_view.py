"""TokenizerCompareView with a real engine: tokenizers trained on the built-in sample, compared side by side."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine import protocol as p
from tests.conftest import shown
from studio.widgets.tokenizer_compare import COL, ID_ROLE, SORT_ROLE, TokenizerCompareView
from tests.conftest import wait_until


def _train(session, **kw) -> dict:
    replies = []
    session.request(p.TokenizerTrainRequest(**kw), on_reply=replies.append)
    wait_until(lambda: replies, 120, f"a {kw['tokenizer_kind']} tokenizer")
    assert replies[0].ok, replies[0].error
    return replies[0].tokenizer


@pytest.fixture(scope="module")
def trained(module_session):
    session = module_session
    wait_until(lambda: session.dataset is not None, 10, "the sample dataset")
    ds = session.dataset["id"]
    toks = {
        kind: _train(session, dataset=ds, tokenizer_kind=kind, vocab_size=size)
        for kind, size in (("char", 200), ("bytebpe", 300), ("wordpiece", 300))
    }
    # the session refreshes its workspace after each training reply; wait for the last one
    wait_until(lambda: len(session.workspace["tokenizers"]) >= 3, 10, "the workspace to list the tokenizers")
    return toks


@pytest.fixture
def view(qtbot, module_session, trained):
    return shown(qtbot, TokenizerCompareView(module_session), (1000, 600))


def _column(view, key):
    m = view.model
    return [m.index(r, COL[key]) for r in range(m.rowCount())]


def _row_of(view, tok_id):
    m = view.model
    return next(r for r in range(m.rowCount()) if m.index(r, 0).data(ID_ROLE) == tok_id)


def test_compare_fills_the_table_and_splits_the_same_text(qtbot, view, trained):
    ids = [t["id"] for t in trained.values()]
    assert sorted(view.checked_ids()) == sorted(ids)  # trained on the selected dataset: ticked
    texts = [view.list.item(i).text() for i in range(view.list.count())]
    assert len(texts) == 3 and f"{trained['bytebpe']['name']}\nByte-level BPE · 300 tokens" in texts
    assert view.compare_button.isEnabled() and "sample" in view.corpus_note.text()

    view.text_edit.setText("the cat sat")
    with qtbot.waitSignal(view.splitsShown, timeout=60_000):
        with qtbot.waitSignal(view.compared, timeout=60_000) as done:
            qtbot.keyClick(view.text_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
            assert not view.compare_button.isEnabled() and view.busy_bar.isVisible()  # busy while it works
    assert done.args[0]["text"] == "the cat sat"
    assert view.compare_button.isEnabled() and not view.busy_bar.isVisible() and not view.message.isVisible()

    m = view.model
    assert m.rowCount() == 3
    char, bpe = _row_of(view, trained["char"]["id"]), _row_of(view, trained["bytebpe"]["id"])
    bpt = COL["bytes_per_token"]
    assert float(m.index(char, bpt).data()) == pytest.approx(1.0, abs=0.05)
    assert m.index(char, COL["lossless"]).data() == "✓" and m.index(char, COL["kind"]).data() == "Character"
    assert m.index(bpe, bpt).data(SORT_ROLE) > m.index(char, bpt).data(SORT_ROLE)
    assert m.index(char, COL["vocab_size"]).data() == f"{trained['char']['vocab_size']:,}"
    assert m.index(char, bpt).data(Qt.ItemDataRole.TextAlignmentRole) & Qt.AlignmentFlag.AlignRight
    bold = [
        i
        for i in _column(view, "bytes_per_token")
        if i.data(Qt.ItemDataRole.FontRole) and i.data(Qt.ItemDataRole.FontRole).bold()
    ]
    assert len(bold) == 1
    assert bold[0].data(SORT_ROLE) == max(i.data(SORT_ROLE) for i in _column(view, "bytes_per_token"))
    tip = m.headerData(bpt, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Bytes per token: how much text one token carries")
    assert "sample" in view.corpus_line.text() and "characters" in view.corpus_line.text()

    # sorting by a column orders the rows by its numbers, not by its text
    view.table.sortByColumn(bpt, Qt.SortOrder.DescendingOrder)
    values = [i.data(SORT_ROLE) for i in _column(view, "bytes_per_token")]
    assert values == sorted(values, reverse=True) and m.index(2, 0).data(ID_ROLE) == trained["char"]["id"]

    # the same sentence, split by each, with real spans
    assert len(view.split_views) == 3
    by_id = dict(zip([r["id"] for r in done.args[0]["rows"]], zip(view.split_labels, view.split_views)))
    for kind in ("char", "bytebpe"):
        label, spans = by_id[trained[kind]["id"]]
        text = spans.text()
        assert text == "the cat sat"
        assert "".join(text[s["start"] : s["end"]] for s in spans.spans()) == text
        assert f"{spans.span_count()} tokens" in label.text()
    char_view = by_id[trained["char"]["id"]][1]
    assert char_view.span_count() == 11
    first = char_view.span_at(0)
    assert char_view.span_format(0).toolTip() == f"id {first['id']} · 't'"
    assert char_view.height() < 6 * char_view.fontMetrics().lineSpacing()  # compact: about three lines


def test_ticks_survive_a_refresh_and_one_tokenizer_is_not_enough(qtbot, view, module_session, trained):
    view.set_checked([trained["char"]["id"], trained["bytebpe"]["id"]])
    with qtbot.waitSignal(module_session.workspaceChanged, timeout=10_000):
        module_session.refresh_workspace()
    assert sorted(view.checked_ids()) == sorted([trained["char"]["id"], trained["bytebpe"]["id"]])

    view.set_checked([trained["char"]["id"]])
    assert not view.compare_button.isEnabled()
    assert "at least two" in view.compare_button.toolTip()
    assert view.compare() is None and view.request_id is None

    # a cancelled comparison's late reply never replaces the latest one's
    view.set_checked([trained["char"]["id"], trained["wordpiece"]["id"]])
    view.text_edit.setText("first")
    first = view.compare()
    assert first is not None
    view.cancel()
    assert view.compare_button.isEnabled()
    view.text_edit.setText("second")
    with qtbot.waitSignal(view.splitsShown, timeout=60_000):
        with qtbot.waitSignal(view.compared, timeout=60_000) as done:
            second = view.compare()
    assert second != first and done.args[0]["text"] == "second"
    qtbot.wait(300)  # the first reply, if the engine still sent it, would have arrived by now
    assert view.result["text"] == "second" and all(v.text() == "second" for v in view.split_views)


def test_an_engine_error_is_one_readable_line(qtbot, view, module_session, trained):
    broken = _train(
        module_session, dataset=trained["char"]["dataset_id"], tokenizer_kind="char", vocab_size=100, name="broken"
    )
    qtbot.waitUntil(lambda: view.list.count() == 4, timeout=10_000)
    (Path(module_session.workspace_path) / "tokenizers" / str(broken["id"]) / "tokenizer.json").unlink()
    view.set_checked([trained["char"]["id"], broken["id"]])
    results = []
    view.compared.connect(results.append)
    assert view.compare() is not None
    qtbot.waitUntil(lambda: view.request_id is None, timeout=30_000)
    assert not results and view.model.rowCount() == 0
    assert view.message.isVisible() and view.message.level == "error"
    text = view.message.text()
    assert text.startswith("Could not compare the tokenizers:") and "\n" not in text and "Traceback" not in text
    assert view.compare_button.isEnabled()
