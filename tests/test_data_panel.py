"""DataPanel with a real engine: preview before import, import a generated text, refuse a binary file."""

from PySide6.QtCore import Qt

from tests.conftest import shown
from engine.format import human_exact
from studio.panels.data import DataPanel
from studio.state.import_files import preview_paths


def make_panel(qtbot, session):
    return shown(qtbot, DataPanel(session), (1000, 700))


def test_preview_then_import_shows_matching_stats(qtbot, module_session, tmp_path):
    lines = [f"Line {i}: the quick brown fox jumps over the lazy dog {i * i}." for i in range(300)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "fox notes.txt"
    path.write_text(text, encoding="utf-8")
    panel = make_panel(qtbot, module_session)

    panel.preview_paths([str(path)])
    assert panel.stack.currentIndex() == 1
    assert panel.preview_text.toPlainText().startswith(lines[0] + "\n" + lines[1])
    assert len(panel.preview_text.toPlainText()) <= 4096 < len(text)  # only the head is read
    assert "1 file" in panel.preview_info.text() and "KiB" in panel.preview_info.text()
    assert not panel.preview_warning.isVisible()
    assert panel.name_edit.text() == "fox notes"
    assert panel.val_spin.value() == 10

    panel.val_spin.setValue(20)
    with qtbot.waitSignal(panel.importFinished, timeout=30_000) as done:
        qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
    row = done.args[0]
    assert row and row["name"] == "fox notes"
    assert module_session.dataset["name"] == "fox notes"
    assert panel.stack.currentIndex() == 0
    assert panel.stats["n_chars"].text() == human_exact(len(text))  # e.g. "18.2 k (18,190)"
    assert panel.stats["n_lines"].text() == human_exact(text.count("\n")) == "300"
    assert "20 % held out" in panel.stats["split"].text()
    qtbot.waitUntil(lambda: panel.dataset_preview.toPlainText().startswith(lines[0]), timeout=10_000)
    # the list shows the new dataset, selected
    qtbot.waitUntil(
        lambda: any(
            panel.dataset_table.item(r, 0).text() == "fox notes" for r in range(panel.dataset_table.rowCount())
        ),
        timeout=10_000,
    )
    selected = panel.dataset_table.selectedItems()
    assert selected and selected[0].text() == "fox notes"


def test_binary_file_refused_with_clear_error(qtbot, module_session, tmp_path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"hello world!\x00\x01\x02 more bytes")
    panel = make_panel(qtbot, module_session)
    before = [d["name"] for d in module_session.workspace["datasets"]]

    panel.preview_paths([str(path)])
    assert panel.preview_warning.isVisible()
    assert "NUL byte at offset 12" in panel.preview_warning.text()
    assert panel.preview_text.toPlainText() == "hello world!"

    with qtbot.waitSignal(panel.importFinished, timeout=30_000) as done:
        qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
    assert done.args[0] is None
    assert panel.error_line.isVisible()
    assert "notes.bin looks like a program or binary file, not text (NUL byte at offset 12)" in panel.error_line.text()
    assert panel.error_box is not None and panel.error_box.isVisible()
    assert "NUL byte at offset 12" in panel.error_box.informativeText()
    panel.error_box.close()

    # nothing was added, as the engine itself says
    with qtbot.waitSignal(module_session.workspaceChanged, timeout=10_000):
        module_session.refresh_workspace()
    assert [d["name"] for d in module_session.workspace["datasets"]] == before


def test_folder_preview_counts_txt_files(tmp_path):
    (tmp_path / "a.txt").write_text("first file\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("second\n")
    (tmp_path / "skip.bin").write_bytes(b"\0\0")
    (tmp_path / ".hidden.txt").write_text("no")
    pv = preview_paths([str(tmp_path)])
    assert [p.rsplit("/", 1)[-1] for p in pv.files] == ["a.txt", "b.txt"]
    assert pv.total_bytes == len("first file\n") + len("second\n")
    assert pv.text == "first file\n" and pv.warning == ""
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    assert "not UTF-8 text: bad byte at offset 3" in preview_paths([str(bad)]).warning


def test_dropping_a_file_starts_the_preview(qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    from studio.session import Session

    path = tmp_path / "dropped.txt"
    path.write_text("dropped text\nsecond line\n")
    panel = DataPanel(Session(workspace_path=str(tmp_path / "ws")))  # no engine: nothing is imported
    qtbot.addWidget(panel)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    panel.dropEvent(event)
    assert panel.stack.currentIndex() == 1
    assert panel.preview_text.toPlainText() == "dropped text\nsecond line\n"
    assert panel.name_edit.text() == "dropped"


def test_import_as_the_engine_dies_is_not_left_importing_and_works_after_a_restart(qtbot, tmp_path):
    """The engine dies just before Import is pressed, unnoticed: the request fails while it is being sent. The
    panel says why and is not left importing (Import would be refused for ever); after a restart it imports."""
    from tests.conftest import kill_engine_unnoticed, start_session, stop_session

    path = tmp_path / "notes.txt"
    path.write_text("a few lines of text to import\n" * 50, encoding="utf-8")
    s = start_session(tmp_path / "ws")
    try:
        panel = make_panel(qtbot, s)
        with qtbot.waitSignal(panel.previewUpdated, timeout=30_000):
            panel.preview_paths([str(path)])
        kill_engine_unnoticed(s)
        panel.import_button.click()
        qtbot.waitUntil(lambda: panel.import_request_id is None, timeout=5000)  # answered from the event loop
        assert s.engine_state == "dead"
        assert panel.import_button.isEnabled() and panel.import_file_button.isEnabled()
        assert panel.error_line.text().startswith("Import failed: the engine stopped: the engine was killed")
        panel.error_box.close()

        s.restart_engine()
        qtbot.waitUntil(lambda: s.ready, timeout=60_000)
        with qtbot.waitSignal(panel.importFinished, timeout=30_000) as done:
            panel.import_button.click()
        assert done.args[0] and done.args[0]["name"] == "notes"
    finally:
        stop_session(s)
