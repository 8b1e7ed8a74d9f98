"""VocabPanel with a real engine: train a char tokenizer, browse and sort its vocabulary, tokenize a sample."""

from PySide6.QtCore import Qt

from studio.panels.vocab import VocabPanel


def test_train_char_tokenizer_table_search_and_spans(qtbot, module_session):
    session = module_session
    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)  # the built-in sample
    panel = VocabPanel(session)
    qtbot.addWidget(panel)
    panel.resize(1000, 750)
    panel.show()
    assert session.dataset["name"] in panel.dataset_label.text()
    panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("char"))
    assert panel.vocab_label.text() == "At most:"

    with qtbot.waitSignal(panel.vocabLoaded, timeout=60_000) as loaded:
        with qtbot.waitSignal(panel.tokenizerTrained, timeout=60_000) as trained:
            qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    tok = trained.args[0]
    assert tok and tok["kind"] == "char"
    assert session.tokenizer["id"] == tok["id"]
    assert panel.tokenizer_combo.currentData()["id"] == tok["id"]

    # one row per token
    assert loaded.args[0] == tok["vocab_size"] == panel.vocab_view.model().rowCount()
    assert panel.vocab_count.text() == f"{tok['vocab_size']:,} tokens"

    # sorting by frequency, most frequent first
    proxy = panel.vocab_view.model()
    panel.vocab_view.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    freqs = [proxy.index(r, 2).data(Qt.ItemDataRole.UserRole + 1) for r in range(proxy.rowCount())]
    assert freqs == sorted(freqs, reverse=True) and freqs[0] > freqs[-1]
    assert proxy.index(0, 1).data() == "␣"  # the space is the commonest character in the sample play

    # search filters by token text; a typed space finds ␣
    panel.search_edit.setText("e")
    qtbot.waitUntil(lambda: proxy.rowCount() < tok["vocab_size"], timeout=2000)
    shown = [proxy.index(r, 1).data() for r in range(proxy.rowCount())]
    assert shown and all("e" in t.lower() for t in shown)
    assert "of" in panel.vocab_count.text()
    panel.search_edit.setText(" ")
    qtbot.waitUntil(lambda: proxy.rowCount() == 1, timeout=2000)
    assert proxy.index(0, 1).data() == "␣"
    panel.search_edit.clear()
    qtbot.waitUntil(lambda: proxy.rowCount() == tok["vocab_size"], timeout=2000)

    # the sample text (the dataset's first lines) is shown as spans: one per character for a char tokenizer
    qtbot.waitUntil(lambda: panel.span_view.span_count() > 0, timeout=10_000)
    sample = panel.sample_edit.toPlainText()
    assert sample and panel.span_view.span_count() == len(sample)
    assert "characters per token" in panel.sample_stats.text()
    first = panel.span_view.span_at(0)
    assert panel.span_view.span_format(0).toolTip() == f"id {first['id']} · '{first['token']}'"

    # editing the sample re-tokenizes it
    with qtbot.waitSignal(panel.spansShown, timeout=10_000) as shown_spans:
        panel.sample_edit.setPlainText("Hello there")
    assert shown_spans.args[0] == len("Hello there")
    assert panel.sample_stats.text().startswith("11 tokens for 11 characters")


def test_train_as_the_engine_dies_is_not_left_busy_and_works_after_a_restart(qtbot, tmp_path):
    """The engine dies just before Train is pressed, unnoticed: the request fails while it is being sent. The
    panel says why and is not left training (Train would be refused for ever); after a restart it trains."""
    from tests.conftest import kill_engine_unnoticed, start_session, stop_session

    s = start_session(tmp_path / "ws")
    try:
        panel = VocabPanel(s)
        qtbot.addWidget(panel)
        panel.show()
        panel.kind_combo.setCurrentIndex(panel.kind_combo.findData("char"))
        kill_engine_unnoticed(s)
        panel.train_button.click()
        qtbot.waitUntil(lambda: panel.train_request_id is None, timeout=5000)  # answered from the event loop
        assert s.engine_state == "dead"
        assert panel.train_button.isEnabled() and not panel.cancel_button.isVisible()
        assert panel.error_line.text().startswith(
            "Tokenizer training failed: the engine stopped: the engine was killed"
        )

        s.restart_engine()
        qtbot.waitUntil(lambda: s.ready, timeout=60_000)
        with qtbot.waitSignal(panel.tokenizerTrained, timeout=60_000) as trained:
            panel.train_button.click()
        assert trained.args[0] and trained.args[0]["kind"] == "char"
    finally:
        stop_session(s)
