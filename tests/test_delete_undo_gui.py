"""Deleting a tokenizer and a dataset from the panels, and undoing it, with a real engine."""

from PySide6.QtCore import Qt

from engine import protocol as p
from studio.panels.data import DataPanel
from studio.panels.vocab import VocabPanel


def _train(qtbot, session, dataset_id, kind, size):
    got = []
    session.request(p.TokenizerTrainRequest(dataset=dataset_id, tokenizer_kind=kind, vocab_size=size), got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=60_000)
    assert got[0].ok, got[0].error
    return got[0].tokenizer


def test_delete_a_tokenizer_then_undo_then_its_dataset(qtbot, session, tmp_path):
    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)
    src = tmp_path / "notes.txt"
    src.write_text("a few words of text, said twice.\n" * 50)
    imported = []
    session.request(p.ImportRequest(paths=[str(src)], name="notes"), imported.append)
    qtbot.waitUntil(lambda: bool(imported), timeout=30_000)
    notes = imported[0].dataset
    session.select_dataset(notes)
    tok = _train(qtbot, session, notes["id"], "char", 100)
    session.refresh_workspace()
    qtbot.waitUntil(lambda: any(t["id"] == tok["id"] for t in session.workspace["tokenizers"]), timeout=10_000)
    session.select_tokenizer(tok["id"])

    data, vocab = DataPanel(session), VocabPanel(session)
    for w in (data, vocab):
        qtbot.addWidget(w)
    vocab.show()
    qtbot.waitUntil(lambda: vocab.vocab_model.rowCount() == tok["vocab_size"], timeout=10_000)

    # The dataset has a tokenizer: deleting it is refused with the reason, and nothing changes.
    data.show()
    data.delete_button.click()
    qtbot.waitUntil(lambda: data.error_line.isVisible(), timeout=10_000)
    assert "still used by 1 tokenizer" in data.error_line.text()
    assert any(d["id"] == notes["id"] for d in session.workspace["datasets"])

    # Delete the tokenizer: it leaves the list and the session; Undo brings it back, selected again.
    vocab.show()
    vocab.delete_button.click()
    qtbot.waitUntil(lambda: vocab.undo_bar.isVisible(), timeout=10_000)
    assert "Moved the tokenizer" in vocab.undo_bar.label.text()
    qtbot.waitUntil(lambda: session.tokenizer is None, timeout=10_000)
    assert not vocab.delete_button.isEnabled() and vocab.vocab_model.rowCount() == 0
    assert vocab.tokenizer_combo.currentData() is None
    vocab.activateWindow()
    qtbot.waitUntil(vocab.isActiveWindow, timeout=5000)
    qtbot.keyClick(vocab, "z", modifier=Qt.KeyboardModifier.ControlModifier)  # Ctrl+Z = Undo
    qtbot.waitUntil(lambda: session.tokenizer is not None and session.tokenizer["id"] == tok["id"], timeout=10_000)
    assert not vocab.undo_bar.isVisible() and "Restored the tokenizer" in vocab.error_line.text()
    qtbot.waitUntil(lambda: vocab.vocab_model.rowCount() == tok["vocab_size"], timeout=10_000)

    # Tokenizer gone for good (Delete again), then the dataset can go; the session falls back to the sample.
    vocab.delete_button.click()
    qtbot.waitUntil(lambda: session.tokenizer is None, timeout=10_000)
    data.show()
    session.select_dataset(notes["id"])
    data.activateWindow()
    qtbot.waitUntil(data.isActiveWindow, timeout=5000)
    data.dataset_table.setFocus()
    qtbot.keyClick(data.dataset_table, Qt.Key.Key_Delete)  # Del in the table = Delete
    qtbot.waitUntil(lambda: data.undo_bar.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: all(d["id"] != notes["id"] for d in session.workspace["datasets"]), timeout=10_000)
    assert session.dataset is not None and session.dataset["name"] == "sample"
    assert session.config.data.dataset == session.dataset["id"]
    data.undo_bar.undo_button.click()
    qtbot.waitUntil(lambda: any(d["id"] == notes["id"] for d in session.workspace["datasets"]), timeout=10_000)
    assert session.dataset["id"] == notes["id"]


def test_the_trash_dialog_restores_and_empties(qtbot, session):
    from studio.trash_dialog import TrashDialog

    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)
    tok = _train(qtbot, session, session.dataset["id"], "char", 100)
    gone = []
    session.request(p.DeleteRequest(item_kind="tokenizer", ref=tok["id"]), gone.append)
    qtbot.waitUntil(lambda: bool(gone), timeout=10_000)

    dialog = TrashDialog(session)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    assert [dialog.table.item(0, c).text() for c in range(2)] == ["Tokenizer", tok["name"]]
    assert dialog.restore_button.isEnabled() and dialog.empty_button.isEnabled()
    dialog.restore_button.click()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 0, timeout=10_000)
    assert "Restored the tokenizer" in dialog.message.text()
    qtbot.waitUntil(lambda: any(t["id"] == tok["id"] for t in session.workspace["tokenizers"]), timeout=10_000)

    session.request(p.DeleteRequest(item_kind="tokenizer", ref=tok["id"]), gone.append)
    qtbot.waitUntil(lambda: len(gone) == 2, timeout=10_000)
    dialog.refresh()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=10_000)
    asked = []
    dialog.confirm = lambda text: asked.append(text) or False  # the user says no: nothing happens
    assert dialog.empty() is None and dialog.table.rowCount() == 1
    dialog.confirm = lambda text: asked.append(text) or True
    dialog.empty()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 0, timeout=10_000)
    assert "for good" in asked[0] and "Deleted 1 item for good" in dialog.message.text()
    assert not dialog.empty_button.isEnabled() and not dialog.restore_button.isEnabled()
