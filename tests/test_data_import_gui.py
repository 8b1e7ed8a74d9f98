"""The data panel's import page with the real engine: formats and columns, bad records, a non-text Parquet column,
the cleaning preview, the options an import sends, and Cancel."""

import json

import pytest
from PySide6.QtCore import Qt

from tests.conftest import shown
from engine.format import eta_text
from studio.panels.data import DataPanel

pytestmark = pytest.mark.timeout(120)


def make_panel(qtbot, session):
    return shown(qtbot, DataPanel(session), (1280, 800))


def table_texts(panel, column=2):
    t = panel.preview_view.table
    return [t.item(r, column).text() for r in range(t.rowCount())]


def wait_preview(qtbot, panel, predicate, timeout=15_000):
    """Wait until the engine's (debounced) preview shows what predicate() expects."""
    qtbot.waitUntil(
        lambda: panel.last_preview_reply is not None and not panel._preview_timer.isActive() and predicate(),
        timeout=timeout,
    )


def dataset_names(qtbot, session):
    with qtbot.waitSignal(session.workspaceChanged, timeout=10_000):
        session.refresh_workspace()
    return [d["name"] for d in session.workspace["datasets"]]


def import_and_wait(qtbot, panel):
    with qtbot.waitSignal(panel.importFinished, timeout=30_000) as done:
        qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
    return done.args[0]


def test_csv_columns_label_preview_and_import(qtbot, module_session, tmp_path):
    path = tmp_path / "reviews.csv"
    rows = ["id,review,stars"] + [f'{i},"Review {i}: a fine film, I liked it",{i % 5}' for i in range(30)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    panel = make_panel(qtbot, module_session)
    form = panel.options

    panel.preview_paths([str(path)])
    wait_preview(qtbot, panel, lambda: form.column_combo.count() == 3)
    assert [form.column_combo.itemText(i) for i in range(3)] == ["id", "review", "stars"]
    assert [form.label_combo.itemText(i) for i in range(4)] == ["none", "id", "review", "stars"]
    assert form.column_combo.isVisible() and not form.doc_unit_combo.isVisible()  # a table, not plain text
    # no text column chosen and none named "text": the engine asks for one, Import stays possible
    assert "choose the text column" in panel.preview_warning.text() and panel.import_button.isEnabled()

    form.column_combo.setCurrentIndex(form.column_combo.findText("review"))
    form.label_combo.setCurrentIndex(form.label_combo.findData("stars"))
    wait_preview(qtbot, panel, lambda: table_texts(panel)[:1] == ["Review 0: a fine film, I liked it"])
    assert len(table_texts(panel)) == 30 and table_texts(panel, 3)[:3] == ["0", "1", "2"]
    assert not panel.preview_view.table.isColumnHidden(3)
    assert table_texts(panel, 1)[0] == "reviews.csv:2"  # the header is line 1
    assert not panel.preview_warning.isVisible()

    row = import_and_wait(qtbot, panel)
    assert row and row["has_labels"] and row["n_docs"] == 30 and row["format"] == "csv"
    assert row["options"]["column"] == "review" and row["options"]["label_column"] == "stars"
    assert panel.stack.currentIndex() == 0
    assert panel.stats["labels"].text() == "yes, from “stars”"
    assert panel.stats["format"].text() == "CSV" and panel.stats["cleaning"].text() == "none"
    assert panel.stats["records"].text() == "30 read"


def test_jsonl_dotted_field_and_a_malformed_line(qtbot, module_session, tmp_path):
    lines = [json.dumps({"id": i, "meta": {"body": f"Story {i} about a red fox.", "tag": "t"}}) for i in range(12)]
    lines[4] = '{"id": 4, "meta": {"body": "cut off'  # line 5
    path = tmp_path / "stories.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    panel = make_panel(qtbot, module_session)
    form = panel.options
    before = dataset_names(qtbot, module_session)

    panel.preview_paths([str(path)])
    wait_preview(qtbot, panel, lambda: form.column_combo.findText("meta.body") >= 0)
    form.column_combo.setEditText("meta.body")  # typed, as a user would a dotted path
    wait_preview(qtbot, panel, lambda: table_texts(panel)[:1] == ["Story 0 about a red fox."])
    assert "line 5" in panel.preview_warning.text() and "not valid JSON" in panel.preview_warning.text()
    assert table_texts(panel)[4].startswith("(bad record: not valid JSON")

    # stop (the default): the import fails naming the line, and nothing is added
    assert form.bad_record_combo.currentData() == "error"
    assert import_and_wait(qtbot, panel) is None
    assert "line 5" in panel.error_line.text() and "bad record" in panel.error_line.text()
    assert panel.error_box is not None and "line 5" in panel.error_box.informativeText()
    panel.error_box.close()
    assert dataset_names(qtbot, module_session) == before
    assert panel.stack.currentIndex() == 1  # the options are still there to fix

    # skip: the rest is imported and the details say what was left out
    form.bad_record_combo.setCurrentIndex(form.bad_record_combo.findData("skip"))
    row = import_and_wait(qtbot, panel)
    assert row and row["n_docs"] == 11 and row["stats"]["bad_records"] == 1
    assert panel.stats["records"].text() == "11 read, 1 bad record skipped"
    assert panel.stats["format"].text() == "JSONL"
    assert "line" in panel.details_warnings.text() and panel.details_warnings.isVisible()


def test_parquet_int_column_is_a_clear_error(qtbot, module_session, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "table.parquet"
    pq.write_table(pa.table({"body": [f"row {i} of text" for i in range(6)], "n": list(range(6))}), path)
    panel = make_panel(qtbot, module_session)
    form = panel.options
    before = dataset_names(qtbot, module_session)

    panel.preview_paths([str(path)])
    assert "NUL" not in panel.preview_warning.text()  # a binary format, not a binary text file
    wait_preview(qtbot, panel, lambda: form.column_combo.count() == 2)
    assert form.column_combo.itemData(1, Qt.ItemDataRole.ToolTipRole) == "n: int64"
    form.column_combo.setCurrentIndex(form.column_combo.findText("n"))
    wait_preview(qtbot, panel, lambda: "int64" in panel.preview_warning.text())

    assert import_and_wait(qtbot, panel) is None
    assert "column 'n' holds int64, not text; choose a string column" in panel.error_line.text()
    panel.error_box.close()
    assert dataset_names(qtbot, module_session) == before


def test_cleaning_preview_before_after_and_summary(qtbot, module_session, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Hello World, This Is ONE\nHi\nAnother LINE of Text\n", encoding="utf-8")
    panel = make_panel(qtbot, module_session)
    form, view = panel.options, panel.preview_view

    panel.preview_paths([str(path)])
    assert not form.column_combo.isVisible() and form.doc_unit_combo.isVisible()
    form.doc_unit_combo.setCurrentIndex(form.doc_unit_combo.findData("line"))
    form.lowercase_check.setChecked(True)
    form.min_chars_spin.setValue(5)
    wait_preview(qtbot, panel, lambda: len(table_texts(panel)) == 3 and bool(view.cleaning))

    view.table.selectRow(0)
    assert view.before_text.toPlainText() == "Hello World, This Is ONE"
    assert view.after_text.toPlainText() == "hello world, this is one"
    view.table.selectRow(1)  # "Hi" is shorter than 5 characters
    assert "dropped by cleaning" in view.after_title.text() and view.after_text.toPlainText() == ""
    assert view.table.item(1, 2).font().strikeOut() and not view.table.item(0, 2).font().strikeOut()
    assert view.summary_lines() == ["Lowercase: changed 3 documents", "Document length: removed 1 document"]
    assert view.tabs.tabText(1) == "Cleaning summary (1 dropped)"

    # a broken regex is pointed at; the preview keeps working without it
    form.regex_edit.setText("([")
    assert form.regex_error.isVisible() and "regular expression" in form.regex_error.text()
    assert "regex" not in form.options(for_preview=True).get("cleaning", {})
    assert form.options()["cleaning"]["regex"] == "(["  # an import sends it: the engine refuses it clearly

    qtbot.keyClick(form.regex_edit, Qt.Key.Key_Escape)  # Esc goes back to the datasets
    assert panel.stack.currentIndex() == 0 and panel.preview is None


def test_options_send_only_what_the_user_set(qtbot, tmp_path):
    from studio.session import Session

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("one\n")
    (tmp_path / "docs" / "b.md").write_text("two\n")
    panel = DataPanel(Session(workspace_path=str(tmp_path / "ws")))  # no engine: nothing is sent
    qtbot.addWidget(panel)
    form = panel.options
    panel.preview_paths([str(tmp_path / "docs")])
    assert form.options() == {}  # untouched: the plain import it always was
    assert "1 file" in panel.preview_info.text()  # a folder gives its .txt files by default
    assert form.include_edit.isVisibleTo(panel) and not form.label_combo.isVisibleTo(panel)

    form.include_edit.setText("*.txt, *.md")
    form.exclude_edit.setText("drafts/*")
    form.decode_combo.setCurrentIndex(form.decode_combo.findData("latin-1"))
    form.normalize_combo.setCurrentIndex(form.normalize_combo.findData("NFKC"))
    form.dedupe_docs_check.setChecked(True)
    form.max_chars_spin.setValue(5000)
    form.regex_edit.setText(r"^\d+$")
    form.regex_action_combo.setCurrentIndex(form.regex_action_combo.findData("drop_docs"))
    form.split_docs_radio.setChecked(True)
    form.seed_spin.setValue(7)
    assert form.options() == {
        "include": ["*.txt", "*.md"],
        "exclude": ["drafts/*"],
        "on_decode_error": "latin-1",
        "cleaning": {
            "normalize": "NFKC",
            "dedupe_docs": True,
            "regex": r"^\d+$",
            "regex_action": "drop_docs",
            "max_chars": 5000,
        },
        "split": "documents",
        "seed": 7,
    }
    panel.request_preview()  # the quick look follows the patterns
    assert "2 files" in panel.preview_info.text()

    # every control says in plain words what it does
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit

    controls = [
        w
        for kind in (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit)
        for w in panel.findChildren(kind)
        if not isinstance(w.parent(), (QComboBox, QAbstractSpinBox)) and not w.objectName()
    ]  # Qt's own
    missing = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}" for w in controls if not w.toolTip()]
    assert len(controls) > 25 and not missing, missing


def test_eta_text():
    assert eta_text(0.25, 20) == "about 1 m 00 s left"
    assert eta_text(0.01, 20) == "" and eta_text(0.5, 0.5) == ""


def test_cancel_a_large_import_adds_nothing(qtbot, module_session, tmp_path):
    path = tmp_path / "big.txt"
    words = "the quick brown fox jumps over the lazy dog and runs far away into the night".split()
    with open(path, "w", encoding="utf-8") as f:
        block = "".join(" ".join(words[(i + k) % len(words)] for k in range(10)) + f" {i}\n" for i in range(20_000))
        for _ in range(40_000_000 // len(block) + 1):
            f.write(block)
    panel = make_panel(qtbot, module_session)
    before = dataset_names(qtbot, module_session)
    panel.preview_paths([str(path)])
    # one document per line with cleaning: a few seconds of work for the engine, time enough to cancel
    panel.options.doc_unit_combo.setCurrentIndex(panel.options.doc_unit_combo.findData("line"))
    panel.options.lowercase_check.setChecked(True)

    panel.start_import()
    assert panel.cancel_button.isVisible() and not panel.options.isEnabled()
    qtbot.waitUntil(lambda: "reading" in panel.progress_label.text(), timeout=15_000)
    assert panel.progress_bar.format().endswith("%")
    with qtbot.waitSignal(panel.importFinished, timeout=30_000) as done:
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert done.args[0] is None
    assert "cancelled" in panel.error_line.text() and panel.error_box is None
    assert not panel.cancel_button.isVisible() and panel.import_button.isEnabled()
    assert dataset_names(qtbot, module_session) == before
