"""How the window looks: wrapped tooltips, reserved message lines, charts, plurals, sorting, the trash."""

import html

import pytest
from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QLabel, QToolTip

from tests.conftest import ended_runs, shown, use_a_seconds_long_run
from engine import protocol as p
from studio import theme
from studio.panels.data import DataPanel


def _tooltip_label() -> QLabel:
    labels = [w for w in QApplication.topLevelWidgets() if w.objectName() == "qtooltip_label" and w.isVisible()]
    assert labels, "no tooltip is shown"
    return labels[0]


def _hover(widget) -> None:
    """What Qt sends when the mouse rests on `widget`."""
    pos = QPoint(5, 5)
    QApplication.sendEvent(widget, QHelpEvent(QEvent.Type.ToolTip, pos, widget.mapToGlobal(pos)))


def test_a_long_tooltip_is_shown_in_lines_of_about_sixty_characters(qtbot, qapp, module_session):
    theme.install_tooltip_wrapping(qapp)
    panel = shown(qtbot, DataPanel(module_session))
    button = panel.import_file_button
    assert len(button.toolTip()) > 150 and "<" not in button.toolTip()  # a long plain tooltip

    _hover(button)
    qtbot.waitUntil(lambda: QToolTip.isVisible(), timeout=5000)
    label = _tooltip_label()
    assert label.wordWrap() and label.text().startswith('<p style="white-space:pre">')
    lines = label.text().split("<br>")
    assert len(lines) >= 3
    # No line much longer than 60 characters: the label is no wider than about 64 average characters.
    assert label.width() <= label.fontMetrics().averageCharWidth() * 64 + 20
    assert label.width() < label.fontMetrics().horizontalAdvance(button.toolTip()) / 2
    QToolTip.hideText()


def test_short_and_rich_tooltips_are_left_alone():
    assert theme.wrap_tooltip("Start the engine again.") == "Start the engine again."
    rich = "<b>Bold</b> " + "word " * 40
    assert theme.wrap_tooltip(rich) == rich
    wrapped = theme.wrap_tooltip("a < b and " * 20)
    assert "a &lt; b" in wrapped
    body = wrapped.removeprefix('<p style="white-space:pre">').removesuffix("</p>")
    assert all(len(html.unescape(line)) <= 60 for line in body.split("<br>"))


# ------------------------------------------------------------------------------------ messages move nothing
def _pos(widget, panel) -> tuple[int, int, int, int]:
    top_left = widget.mapTo(panel, QPoint(0, 0))
    return top_left.x(), top_left.y(), widget.width(), widget.height()


def _import(qtbot, session, path, name):
    got = []
    session.request(p.ImportRequest(paths=[str(path)], name=name), got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    assert got[0].ok, got[0].error
    return got[0].dataset


def test_buttons_stay_put_when_the_undo_bar_and_messages_appear(qtbot, session, tmp_path):
    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)
    src = tmp_path / "notes.txt"
    src.write_text("a few words of text, said twice.\n" * 50)
    notes = _import(qtbot, session, src, "notes")
    session.refresh_workspace()
    panel = shown(qtbot, DataPanel(session))
    qtbot.waitUntil(lambda: any(d["id"] == notes["id"] for d in session.workspace["datasets"]), timeout=10_000)
    session.select_dataset(notes["id"])
    qtbot.waitUntil(panel.delete_button.isEnabled, timeout=10_000)
    qtbot.wait(50)
    buttons = (panel.delete_button, panel.import_file_button, panel.import_folder_button)
    before = [_pos(b, panel) for b in buttons]

    panel.delete_button.click()  # the undo bar appears where the cursor is
    qtbot.waitUntil(panel.undo_bar.isVisible, timeout=10_000)
    qtbot.wait(50)
    assert [_pos(b, panel) for b in buttons] == before
    panel.undo_bar.undo_button.click()  # "Restored …" on the message line
    qtbot.waitUntil(lambda: panel.error_line.isVisible(), timeout=10_000)
    qtbot.wait(50)
    assert "Restored the dataset" in panel.error_line.text()
    assert [_pos(b, panel) for b in buttons] == before

    # The import page: a clean file, then a binary one (a warning above the form, an error line below).
    panel.preview_paths([str(src)])
    qtbot.wait(50)
    assert not panel.preview_warning.isVisible()
    fields = (panel.name_edit, panel.import_button, panel.discard_button)
    clean = [_pos(w, panel) for w in fields]
    binary = tmp_path / "notes.bin"
    binary.write_bytes(b"hello world!\x00\x01\x02 more bytes")
    with qtbot.waitSignal(panel.previewUpdated, timeout=30_000):  # the engine's preview adds its warnings
        panel.preview_paths([str(binary)])
    qtbot.wait(50)
    assert panel.preview_warning.isVisible()
    assert [_pos(w, panel) for w in fields] == clean
    with qtbot.waitSignal(panel.importFinished, timeout=30_000):
        panel.import_button.click()
    qtbot.wait(50)
    assert panel.error_line.isVisible()
    assert [_pos(w, panel) for w in fields] == clean


def test_the_binary_file_warning_is_shown_once(qtbot, module_session, tmp_path):
    panel = shown(qtbot, DataPanel(module_session))
    binary = tmp_path / "sub" / "photo.dat"
    binary.parent.mkdir()
    binary.write_bytes(b"JFIF header\x00\x00\x01 and more bytes")
    with qtbot.waitSignal(panel.previewUpdated, timeout=30_000):  # the quick look, then the engine's preview
        panel.preview_paths([str(binary)])
    assert panel.last_preview_reply is not None
    text = panel.preview_warning.text()
    assert "photo.dat" in text and "binary" in text
    assert text.count("NUL byte at offset 11") == 1, text


# ------------------------------------------------------------------------------------------------ charts
def _short_run_config(session) -> None:
    """A run of seconds on the built-in sample (other tests of the module import and select tiny datasets)."""
    session.select_dataset(next(d for d in session.workspace["datasets"] if d["name"] == "sample"))
    use_a_seconds_long_run(session)


def _ticks_shown(plot) -> bool:
    axis = plot.getPlotItem().getAxis("left")
    return axis._tickLevels != [[], []]


def test_charts_start_with_a_hint_then_show_curves_with_the_legend_off_the_data(qtbot, module_session):
    from studio.panels.training import TrainingPanel

    qtbot.waitUntil(lambda: module_session.dataset is not None, timeout=10_000)
    panel = shown(qtbot, TrainingPanel(module_session), (1100, 800))
    plots = (panel.loss_plot, panel.lr_plot, panel.grad_plot)
    for plot in plots:  # nothing yet: a hint, no made-up scale
        assert plot.empty_label.isVisible() and plot.empty_label.text() == "Press Train to start"
        assert not _ticks_shown(plot)

    _short_run_config(module_session)
    ended = ended_runs(module_session)
    panel.train_button.click()
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended[0].state == "finished", ended[0].message
    qtbot.waitUntil(lambda: all(plot.has_data() for plot in plots), timeout=10_000)
    qtbot.wait(100)
    for plot in plots:
        assert not plot.empty_label.isVisible() and _ticks_shown(plot)

    # The loss legend lists both curves and lies outside the area the curves are drawn in.
    item = panel.loss_plot.getPlotItem()
    assert [label.text for _, label in item.legend.items] == ["train loss", "val loss"]
    assert item.legend.isVisible()
    assert not item.legend.sceneBoundingRect().intersects(item.vb.sceneBoundingRect())
    # One curve, no legend: the title says what it is.
    for plot, title in ((panel.lr_plot, "Learning rate"), (panel.grad_plot, "Grad norm")):
        assert not plot.legend.isVisible() and plot.legend.items == []
        assert plot.getPlotItem().titleLabel.text == title

    panel.loss_plot.clear_data()  # another run's empty start: the hint is back
    assert panel.loss_plot.empty_label.isVisible()


def test_the_progress_bar_is_a_filled_track_not_a_text_field(qtbot, qapp, module_session):
    from PySide6.QtGui import QColor, QPalette
    from studio.panels.training import TrainingPanel

    before = qapp.styleSheet()
    theme.install_progress_bar_style(qapp)
    try:
        panel = shown(qtbot, TrainingPanel(module_session), (1100, 800))
        qtbot.wait(50)
        bar = panel.progress
        bar.setRange(0, 1000)
        bar.setValue(500)
        bar.setFormat("")
        image = bar.grab().toImage()
        y = image.height() // 2
        filled = QColor(image.pixel(image.width() // 8, y))
        track = QColor(image.pixel(image.width() * 7 // 8, y))
        base = qapp.palette().color(QPalette.ColorRole.Base)
        assert filled.name() == theme.ACCENT.name()
        assert track.name() not in (base.name(), theme.ACCENT.name())  # not a white box, not filled
        assert 16 <= bar.height() <= 20
    finally:
        qapp.setStyleSheet(before)


# ----------------------------------------------------------------------------------------------- plurals
def test_one_thing_is_counted_in_the_singular(qtbot, module_session, tmp_path):
    from engine.format import plural

    assert [plural(n, "document") for n in (0, 1, 2)] == ["0 documents", "1 document", "2 documents"]
    assert plural(1500, "token", human=True) == "1.5 k tokens" and plural(1, "entry", "entries") == "1 entry"

    src = tmp_path / "letter.txt"
    src.write_text("Dear reader, this whole file is one document.\n")
    panel = shown(qtbot, DataPanel(module_session))
    panel.preview_paths([str(src)])
    assert "1 file," in panel.preview_info.text()
    with qtbot.waitSignal(panel.importFinished, timeout=30_000) as done:
        panel.import_button.click()
    assert done.args[0] and done.args[0]["n_docs"] == 1
    message = panel.error_line.text()
    assert "“letter”: 1 document, " in message and "documents" not in message


# ----------------------------------------------------------------------------------------------- sorting
def test_the_dataset_table_is_in_the_order_its_sort_arrow_says(qtbot, session, tmp_path):
    from PySide6.QtCore import Qt

    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)
    for name in ("Notes", "alpha"):
        src = tmp_path / f"{name}.txt"
        src.write_text(f"{name}: a few words of text.\n" * 40)
        _import(qtbot, session, src, name)
    session.refresh_workspace()
    panel = shown(qtbot, DataPanel(session))
    table = panel.dataset_table
    qtbot.waitUntil(lambda: table.rowCount() == 3, timeout=10_000)

    def names():
        return [table.item(r, 0).text() for r in range(table.rowCount())]

    header = table.horizontalHeader()
    assert header.isSortIndicatorShown() and header.sortIndicatorSection() == 0
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    assert names() == ["alpha", "Notes", "sample"]  # A to Z, whatever the capitals
    qtbot.mouseClick(
        header.viewport(),
        Qt.MouseButton.LeftButton,
        pos=QPoint(header.sectionViewportPosition(0) + 10, header.height() // 2),
    )
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert names() == ["sample", "Notes", "alpha"]
    with qtbot.waitSignal(session.workspaceChanged, timeout=10_000):  # refilled: still as the arrow says
        session.refresh_workspace()
    qtbot.wait(50)
    assert names() == ["sample", "Notes", "alpha"]


# ------------------------------------------------------------------------------------ cleaning, both ways
def test_the_preview_and_the_dataset_details_say_the_same_of_collapse_whitespace(qtbot, module_session, tmp_path):
    src = tmp_path / "spaced.txt"
    src.write_text("Dear   reader,\n\n\n\nthe text ends here.\n\n\n")
    panel = shown(qtbot, DataPanel(module_session))
    panel.preview_paths([str(src)])
    with qtbot.waitSignal(panel.previewUpdated, timeout=30_000):
        panel.options.collapse_check.setChecked(True)
    tree = panel.preview_view.summary
    rows = {tree.topLevelItem(i).text(0): tree.topLevelItem(i).text(1) for i in range(tree.topLevelItemCount())}
    said = rows["Collapse whitespace"]
    assert said == "removed 2 lines, changed 1 document"
    with qtbot.waitSignal(panel.importFinished, timeout=30_000) as done:
        panel.import_button.click()
    assert done.args[0]
    qtbot.waitUntil(lambda: "Collapse whitespace" in panel.stats["cleaning"].text(), timeout=10_000)
    assert f"Collapse whitespace: {said}" in panel.stats["cleaning"].text()


# ------------------------------------------------------------------------------------------ undo and trash
def test_the_undo_bar_goes_when_the_trash_dialog_restores_or_empties(qtbot, session, tmp_path):
    from studio.trash_dialog import TrashDialog

    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)
    for name in ("first", "second"):
        src = tmp_path / f"{name}.txt"
        src.write_text(f"{name}: a few words of text.\n" * 40)
        _import(qtbot, session, src, name)
    session.refresh_workspace()
    panel = shown(qtbot, DataPanel(session))
    qtbot.waitUntil(lambda: panel.dataset_table.rowCount() == 3, timeout=10_000)

    def delete(name):
        session.select_dataset(next(d for d in session.workspace["datasets"] if d["name"] == name))
        panel.delete_button.click()
        qtbot.waitUntil(lambda: panel.undo_bar.isVisible() and name in panel.undo_bar.label.text(), timeout=10_000)
        qtbot.waitUntil(lambda: all(d["name"] != name for d in session.workspace["datasets"]), timeout=10_000)

    # Deleted here, restored in File → Trash: the Undo line goes (its Undo would fail: nothing to restore).
    delete("first")
    dialog = TrashDialog(session)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    assert not dialog.empty_label.isVisible()
    dialog.restore_button.click()
    qtbot.waitUntil(lambda: any(d["name"] == "first" for d in session.workspace["datasets"]), timeout=10_000)
    qtbot.waitUntil(lambda: not panel.undo_bar.isVisible(), timeout=10_000)
    assert panel.undo_bar.trash_id is None
    qtbot.waitUntil(dialog.empty_label.isVisible, timeout=10_000)  # an empty trash says so
    assert dialog.empty_label.text() == "The trash is empty." and not dialog.table.isVisible()

    # Deleted here, then the trash emptied for good: the Undo line goes too.
    delete("second")
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1 and dialog.table.isVisible(), timeout=10_000)
    dialog.confirm = lambda text: True
    dialog.empty()
    qtbot.waitUntil(lambda: not panel.undo_bar.isVisible(), timeout=10_000)
    assert dialog.empty_label.isVisible() and "Deleted 1 item for good" in dialog.message.text()


# ------------------------------------------------------------------------------------- the final speed
def test_a_run_ends_on_its_average_speed_not_its_last_few_steps(tmp_path):
    """The Speed tile shows the last metrics row: that row is the run's average, at the run's last step."""
    from engine.config import RunConfig
    from engine.store import Workspace
    from engine.run_setup import prepare_run
    from engine.train import run_training

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat and then the dog ran under the log.\n" * 300)
    rows = []
    with Workspace(tmp_path / "ws") as ws:
        ws.import_dataset([corpus], "cats", 0.1)
        # 30 steps, a line every 4 (so the last step is not a logging step), one evaluation at the end.
        cfg = RunConfig.from_dict(
            {
                "data": {"dataset": "cats"},
                "tokenizer": {"kind": "char", "vocab_size": 64},
                "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16},
                "train": {
                    "batch_size": 8,
                    "max_iters": 30,
                    "log_interval": 4,
                    "eval_interval": 1000,
                    "eval_iters": 2,
                    "warmup_iters": 2,
                    "lr_decay_iters": 30,
                    "checkpoint_interval": 1000,
                    "device": "cpu",
                },
            }
        )
        run = prepare_run(ws, cfg)
        assert (
            run_training(ws, run["id"], on_event=lambda k, p: rows.append(p) if k == "metrics" else None) == "finished"
        )
    last = rows[-1]
    assert last["step"] == 30  # the run's own last step has its line
    tokens = 30 * 8 * 16
    average = tokens / last["elapsed_s"]  # elapsed: training only (the evaluation comes after)
    assert last["tokens_per_sec"] == pytest.approx(average, rel=0.15)
    assert min(r["tokens_per_sec"] for r in rows) <= last["tokens_per_sec"]


# ------------------------------------------------------------------------------------------- the playground
def test_the_prompt_placeholder_comes_from_the_runs_own_dataset(qtbot, module_session):
    from studio.panels.playground import PlaygroundPanel

    s = module_session
    qtbot.waitUntil(lambda: s.dataset is not None, timeout=10_000)
    _short_run_config(s)
    got = []
    s.request(p.TrainRequest(config=s.config.to_dict()), got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    assert got[0].ok, got[0].error
    run_id = got[0].run["id"]
    qtbot.waitUntil(
        lambda: any(r["id"] == run_id and r["status"] == "finished" for r in s.workspace["runs"]), timeout=120_000
    )
    preview = []
    s.request(p.DatasetPreviewRequest(dataset=s.dataset["id"], n_chars=400), preview.append)
    qtbot.waitUntil(lambda: bool(preview), timeout=10_000)
    first_line = next(ln.strip() for ln in preview[0].text.splitlines() if ln.strip())

    panel = shown(qtbot, PlaygroundPanel(s))
    s.select_run(run_id)
    qtbot.waitUntil(lambda: panel.selected_run_id() == run_id, timeout=10_000)
    qtbot.waitUntil(lambda: ", e.g. " in panel.prompt.placeholderText(), timeout=10_000)
    example = panel.prompt.placeholderText().split(", e.g. ", 1)[1]
    assert "ROMEO" not in panel.prompt.placeholderText()
    assert example and first_line.startswith(example) and len(example.split()) <= 4


def test_every_preset_says_how_long_it_takes_on_a_two_core_cpu():
    """Measured with `studio-engine train --preset NAME --set data.dataset=sample` on this 2-core machine: tiny
    19 s (108 s on tinyshakespeare with other jobs running), baby 9 min with other jobs running, small-bpe 100 of
    its 3,000 steps in 6 min with other jobs running (about 0.5 s a step when quiet), shakespeare-char 9 steps of
    5,000 in 17 min."""
    from engine.config import PRESETS

    for name, spec in PRESETS.items():
        assert "2-core CPU" in spec["description"], name
    assert "Seconds" not in PRESETS["tiny"]["description"] and "20 seconds" in PRESETS["tiny"]["description"]


def test_a_message_box_is_wide_enough_for_its_whole_title(qtbot, qapp):
    """A short question in a box titled "Restart engine" came out as "…rmer Studio" in the title bar."""
    from PySide6.QtGui import QFont, QFontMetrics
    from PySide6.QtWidgets import QMessageBox

    from studio import theme

    theme.install_tooltip_wrapping(qapp)
    qapp.setApplicationDisplayName("Transformer Studio")
    box = QMessageBox(QMessageBox.Icon.Question, "Restart engine", "Restart?")
    qtbot.addWidget(box)
    bold = QFont(box.font())
    bold.setBold(True)
    need = QFontMetrics(bold).horizontalAdvance("Restart engine — Transformer Studio") + theme.TITLE_BAR_CHROME_PX
    box.open()
    qtbot.waitExposed(box)
    assert box.width() >= need
