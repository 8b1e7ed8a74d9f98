"""SampleBatchView draws a batch as the engine describes it (engine/objectives/base.py describe(): spans with a
mark, whether they carry loss, their prediction order): each mark in its colour, the predicted tokens underlined
in bold, deleted ones struck through, a target side beside the input, a legend of what is shown; and
SampleBatchBox says why there is no batch while there is no dataset or no engine. The real engine's batches are
tests/test_objective_panel.py's."""

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QTextCursor

from tests.conftest import shown
from engine.config import RunConfig
from studio.session import Session
from studio.state.objective import marks_in, sample_key, why_no_sample
from studio.widgets.sample_batch_view import MARK_COLORS, SampleBatchBox, SampleBatchView


def span(text, mark="kept", loss=False, order=None):
    return {"text": text, "mark": mark, "loss": loss, "order": order}


def formats(view: SampleBatchView) -> dict[str, tuple[str, bool, bool, bool]]:
    """Each shown piece of text -> (background colour, underlined, bold, struck through), as drawn."""
    out = {}
    doc = view.text.document()
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            fmt = frag.charFormat()
            bg = fmt.background().color().name() if fmt.background().style() != Qt.BrushStyle.NoBrush else ""
            out[frag.text()] = (bg, fmt.fontUnderline(), fmt.fontWeight() > 500, fmt.fontStrikeOut())
            it += 1
        block = block.next()
    return out


def test_marks_are_coloured_and_predicted_tokens_underlined(qtbot):
    view = shown(qtbot, SampleBatchView(), (600, 400))
    rows = [
        {
            "input": [span("To "), span("[MASK]", "masked", True), span(" or "), span("xx", "random", True)],
            "target": None,
        },
        {"input": [span("not "), span("gone", "deleted"), span(" to", "moved")], "target": None, "label": "in order"},
    ]
    view.show_rows(rows, "a note")
    shown_formats = formats(view)
    assert shown_formats["[MASK]"] == (QColor(MARK_COLORS["masked"]).name(), True, True, False)
    assert shown_formats["xx"][:2] == (QColor(MARK_COLORS["random"]).name(), True)
    assert shown_formats["gone"] == (QColor(MARK_COLORS["deleted"]).name(), False, False, True)
    assert shown_formats["To "] == ("", False, False, False)  # kept tokens keep the theme's look
    assert "in order" in view.plain_text()  # the pair label
    legend = view.legend.text()
    for words in ("hidden as [MASK]", "replaced by a random token", "deleted", "moved", "carries loss"):
        assert words in legend
    assert view.note.text() == "a note" and not view.message.isVisible()


def test_a_target_side_is_shown_beside_the_input(qtbot):
    view = shown(qtbot, SampleBatchView(), (600, 400))
    rows = [
        {
            "input": [span("The "), span("<extra_id_0>", "sentinel")],
            "target": [span("<extra_id_0>", "sentinel", True), span("cat", "masked", True)],
        }
    ]
    view.show_rows(rows, arch="encoder-decoder")
    cursor = QTextCursor(view.text.document())
    cursor.movePosition(QTextCursor.MoveOperation.NextBlock)
    assert cursor.currentTable() is not None  # two columns: input | target
    text = view.plain_text()
    assert "Input (the encoder reads)" in text and "Target (the decoder writes)" in text
    assert text.index("The") < text.index("cat")
    assert marks_in(rows) == ["masked", "sentinel", "kept"]


def test_the_prediction_order_is_shown_over_predicted_tokens(qtbot):
    view = shown(qtbot, SampleBatchView(), (600, 400))
    rows = [{"input": [span("a", order=0), span("b", loss=True, order=9), span("c", loss=True, order=5)]}]
    view.show_rows(rows)
    # among the predicted tokens, c comes first in the random order and b second: the raised numbers say so
    assert view.plain_text().replace("\u200b", "").endswith("ab2c1")
    assert "predicted n-th" in view.legend.text()


def test_without_a_dataset_or_an_engine_it_says_why(qtbot, tmp_path):
    session = Session(str(tmp_path))
    box = shown(qtbot, SampleBatchBox(session), (600, 400))
    box.fetch()
    assert "Choose a dataset on the Data panel" in box.view.message.text() and not box.another_button.isEnabled()
    session.update_config("data", dataset=1)
    box.fetch()
    assert "The engine is not running" in box.view.message.text()
    assert not session.queued  # nothing was asked of an engine that is not there


def test_only_what_the_batch_depends_on_asks_for_a_new_one():
    cfg = RunConfig()
    key = sample_key(cfg)
    cfg.model.n_layer = 7
    cfg.train.learning_rate = 0.01
    assert sample_key(cfg) == key
    cfg.objective.mask_prob = 0.3
    assert sample_key(cfg) != key
    assert why_no_sample(True, RunConfig.from_dict({"data": {"dataset": 2}})) == ""
