"""The Vocabulary panel's lab with a real engine: every tokenizer kind, advanced options, merge ranks, token
contexts, the document-length histogram and export."""

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QFont, QKeySequence, QTextCursor
from PySide6.QtWidgets import QFileDialog, QLabel

from engine import protocol as p
from engine.choices import DEFAULT_SPECIALS
from engine.choices import SPECIAL_ROLES as ROLES
from studio.panels.vocab import VocabPanel
from studio.widgets.length_histogram import longer_than, stats_text
from studio.widgets.tokenizer_options import TokenizerOptionsForm
from studio.widgets.vocab_table import SORT_ROLE

pytestmark = pytest.mark.timeout(120)

LOSSLESS = ("char", "bpe", "bytebpe", "unigram")  # tests/test_tokenizer.py: decode(encode(text)) == text
UNREADABLE = {"␣": " ", "⏎": "\n", "⇥": "\t"}


def open_panel(qtbot, session, dataset="sample") -> VocabPanel:
    qtbot.waitUntil(lambda: session.dataset is not None, timeout=10_000)
    session.select_dataset(next(d for d in session.workspace["datasets"] if d["name"] == dataset))
    panel = VocabPanel(session)
    qtbot.addWidget(panel)
    panel.resize(1100, 760)
    panel.show()
    qtbot.waitUntil(lambda: panel.sample_edit.toPlainText() != "", timeout=10_000)
    return panel


def train(qtbot, panel, kind, vocab_size, **advanced) -> dict:
    panel.form.set_kind(kind)
    panel.vocab_spin.setValue(vocab_size)
    for setter in advanced.values():
        setter(panel.form)
    with qtbot.waitSignal(panel.tokenizerTrained, timeout=60_000) as trained:
        qtbot.mouseClick(panel.train_button, Qt.MouseButton.LeftButton)
    tok = trained.args[0]
    assert tok, panel.error_line.text()
    # Not vocabLoaded: it may come from the tokenizer selected before, whose vocabulary was still on its way.
    # The table was emptied when the new tokenizer was selected (before tokenizerTrained), so this is the new one.
    qtbot.waitUntil(lambda: panel.vocab_model.rowCount() == tok["vocab_size"], timeout=30_000)
    return tok


def show_spans(qtbot, panel, text=None) -> list[dict]:
    """The spans of `text` (default: the sample already there) as the panel shows them."""
    if text is None:
        text = panel.sample_edit.toPlainText()
        panel.tokenize_sample()
    else:
        panel.sample_edit.setPlainText(text)
    # an answer for the text shown before may come first: wait for this text's spans
    qtbot.waitUntil(lambda: panel.span_view.text() == text and panel.span_view.span_count() > 0, timeout=10_000)
    return panel.span_view.spans()


def click_row(qtbot, panel, proxy_row: int) -> None:
    view = panel.vocab_view
    index = view.model().index(proxy_row, 1)
    view.scrollTo(index)
    rect = view.visualRect(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def proxy_row_of(panel, token: str) -> int:
    proxy = panel.vocab_view.model()
    return next(r for r in range(proxy.rowCount()) if proxy.index(r, 1).data() == token)


# ------------------------------------------------------------------------------------------ without engine


def test_only_options_that_differ_from_the_kinds_defaults_are_sent(qtbot):
    form = TokenizerOptionsForm()
    qtbot.addWidget(form)
    for kind in DEFAULT_SPECIALS:
        form.set_kind(kind)
        assert form.options() == {}, kind
        assert form.special_tokens() == DEFAULT_SPECIALS[kind]
    form.set_kind("wordpiece")
    form.special_edits["unk"].clear()
    form.special_edits["bos"].setText("[BOS]")
    form.normalizer_combo.setCurrentIndex(form.normalizer_combo.findData("nfkc_lowercase"))
    form.pre_tokenizer_combo.setCurrentIndex(form.pre_tokenizer_combo.findData("bert"))
    form.min_freq_spin.setValue(3)
    assert form.options() == {
        "min_frequency": 3,
        "normalizer": "nfkc_lowercase",
        "pre_tokenizer": "bert",
        "special_tokens": {"unk": None, "bos": "[BOS]"},
    }
    assert "special tokens" in form.advanced_summary.text()
    form.reset_advanced()
    assert form.options() == {}

    # the pre-tokenizer is fixed for char and byte-level BPE; byte-level BPE needs 256 + specials tokens
    for kind, fixed in (("char", "none"), ("bytebpe", "bytelevel")):
        form.set_kind(kind)
        assert not form.pre_tokenizer_combo.isEnabled() and form.pre_tokenizer_combo.currentData() == fixed
    assert form.vocab_spin.minimum() == 257
    form.special_edits["pad"].setText("<pad>")
    assert form.vocab_spin.minimum() == 258
    form.set_kind("unigram")
    choices = [form.pre_tokenizer_combo.itemData(i) for i in range(form.pre_tokenizer_combo.count())]
    assert form.pre_tokenizer_combo.isEnabled() and "bytelevel" not in choices and "none" not in choices
    assert not form.min_freq_spin.isEnabled()  # Unigram has no minimum frequency
    assert set(form.special_edits) == set(ROLES)


def test_longer_than_context_counts_whole_bins_and_estimates_the_cut_one():
    hist = {
        "n_docs": 10,
        "sampled": 10,
        "counts": [2, 3, 5],
        "edges": [0.0, 10.0, 20.0, 30.0],
        "min": 1,
        "max": 30,
        "mean": 17.0,
        "median": 18.0,
        "p95": 29.0,
    }
    assert longer_than(hist, 30) == (0.0, True)
    assert longer_than(hist, 0) == (10.0, True)
    assert longer_than(hist, 15) == (6.5, False)  # all 5 of the last bin, half of the middle one
    text = stats_text(hist, 15)
    assert "about 6 of 10 documents" in text and "context length of 15 tokens" in text
    assert "95th percentile 29" in text and "longest 30 tokens" in text


# --------------------------------------------------------------------------------------------- with engine


@pytest.mark.parametrize("kind", ["char", "bpe", "bytebpe", "wordpiece", "unigram"])
def test_every_kind_trains_fills_the_table_and_cuts_a_text(qtbot, module_session, kind):
    panel = open_panel(qtbot, module_session)
    tok = train(qtbot, panel, kind, 300 if kind != "bytebpe" else 320)
    assert panel.vocab_label.text() == ("At most:" if kind == "char" else "Vocabulary size:")
    assert tok["kind"] == kind and module_session.tokenizer["id"] == tok["id"]
    proxy = panel.vocab_view.model()
    assert proxy.rowCount() == tok["vocab_size"]
    assert kind == "char" or tok["vocab_size"] >= 290  # the others fill (nearly) what was asked

    ranks = [proxy.index(r, 3).data(SORT_ROLE) for r in range(proxy.rowCount())]
    if kind in ("bpe", "bytebpe"):
        assert not panel.vocab_view.isColumnHidden(3)
        assert sum(r is not None for r in ranks) > 30
        panel.vocab_view.sortByColumn(3, Qt.SortOrder.AscendingOrder)
        assert proxy.index(0, 3).data(SORT_ROLE) == 0 and proxy.index(0, 3).data() == "0"
        assert proxy.index(proxy.rowCount() - 1, 3).data(SORT_ROLE) is None  # unranked last
        assert proxy.index(proxy.rowCount() - 1, 3).data() == ""
        sorted_ranks = [proxy.index(r, 3).data(SORT_ROLE) for r in range(proxy.rowCount())]
        known = [r for r in sorted_ranks if r is not None]
        assert known == sorted(known) and sorted_ranks[: len(known)] == known
    else:
        assert all(r is None for r in ranks) and panel.vocab_view.isColumnHidden(3)

    spans = show_spans(qtbot, panel)
    text = panel.sample_edit.toPlainText()
    assert spans and all(0 <= s["id"] < tok["vocab_size"] for s in spans)
    joined = "".join("".join(UNREADABLE.get(c, c) for c in s["token"]) for s in spans)
    if kind in LOSSLESS:
        assert joined == text
    else:  # WordPiece drops the spaces and marks continuations with ##
        assert joined.replace("##", "") == "".join(text.split())


def test_advanced_options_reach_the_engine_and_its_errors_are_shown(qtbot, module_session):
    panel = open_panel(qtbot, module_session)
    panel.form.advanced_button.click()
    assert panel.form.advanced.isVisible()
    lower = panel.form.normalizer_combo.findData("lowercase")
    tok = train(qtbot, panel, "bpe", 300, normalizer=lambda f: f.normalizer_combo.setCurrentIndex(lower))
    assert tok["spec"]["normalizer"] == "lowercase" and "normalizer lowercase" in panel.tokenizer_info.text()
    text = "so The the THE"  # not first: the first word of a text has no ▁ before it
    spans = show_spans(qtbot, panel, text)
    words = [s for s in spans if text[s["start"] : s["end"]].strip().lower() == "the"]
    assert len(words) == 3 and len({s["id"] for s in words}) == 1  # lower-cased before it is cut
    tokens = [panel.vocab_model.row(i)[1] for i in range(panel.vocab_model.rowCount())]
    specials = set(tok["spec"]["special_tokens"].values())
    assert not any(t != t.lower() for t in tokens if t not in specials)  # no capitals left to learn

    # WordPiece without an unknown token: the engine refuses, its reason is shown, nothing is added
    before = len(module_session.workspace["tokenizers"])
    panel.form.set_kind("wordpiece")
    panel.form.special_edits["unk"].clear()
    assert panel.form.options()["special_tokens"] == {"unk": None}
    with qtbot.waitSignal(panel.tokenizerTrained, timeout=30_000) as trained:
        qtbot.keyClick(panel.form.vocab_spin, Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)  # Ctrl+T
    assert trained.args[0] is None
    assert "needs an unk token" in panel.error_line.text() and panel.error_line.level == "error"
    assert panel.train_button.isEnabled() and not panel.cancel_button.isVisible()
    module_session.refresh_workspace()
    qtbot.wait(300)
    assert len(module_session.workspace["tokenizers"]) == before
    assert module_session.tokenizer["id"] == tok["id"]


def test_clicking_a_token_shows_where_it_occurs(qtbot, module_session):
    panel = open_panel(qtbot, module_session)
    train(qtbot, panel, "char", 300)
    e_row = proxy_row_of(panel, "e")
    freq = panel.vocab_view.model().index(e_row, 2).data(SORT_ROLE)
    with qtbot.waitSignal(panel.contextsShown, timeout=10_000) as shown:
        click_row(qtbot, panel, e_row)
    assert shown.args[0] == len(panel.details.contexts()) == 10
    assert all("⟦e⟧" in c for c in panel.details.contexts())
    assert panel.details.token_label.text() == "e"
    assert panel.details.frequency_label.text() == f"{freq:,}"
    assert panel.details.rank_label.text().startswith("—")
    # the token between ⟦ ⟧ is bold in the list
    doc = panel.details.contexts_view.document()
    cursor = QTextCursor(doc)
    cursor.setPosition(doc.toPlainText().index("⟦e⟧") + 2)
    assert cursor.charFormat().fontWeight() >= QFont.Weight.Bold

    # only the latest request's answer is shown
    panel.vocab_view.selectRow(proxy_row_of(panel, "a"))
    panel.browser.request_contexts()
    with qtbot.waitSignal(panel.contextsShown, timeout=10_000):
        panel.vocab_view.selectRow(proxy_row_of(panel, "o"))
        panel.browser.request_contexts()
    qtbot.wait(200)
    assert panel.details.token_label.text() == "o" and all("⟦o⟧" in c for c in panel.details.contexts())

    # a token the corpus never uses ([UNK]: every character of the sample is in the vocabulary)
    with qtbot.waitSignal(panel.contextsShown, timeout=10_000) as shown:
        click_row(qtbot, panel, proxy_row_of(panel, "[UNK]"))
    assert shown.args[0] == 0 and panel.details.contexts_view.toPlainText() == "not in the corpus"

    # Ctrl+F goes to the search field from anywhere in the panel
    panel.tabs.setCurrentIndex(1)
    panel.activateWindow()
    qtbot.waitUntil(panel.isActiveWindow, timeout=2000)
    panel.span_view.setFocus()
    qtbot.keyClick(panel.span_view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert panel.tabs.currentIndex() == 0 and panel.search_edit.hasFocus()
    assert panel.search_shortcut.key() == QKeySequence(QKeySequence.StandardKey.Find)


def test_document_lengths_histogram_and_context_length(qtbot, module_session, tmp_path):
    corpus = tmp_path / "lines.txt"
    corpus.write_text("".join(("word " * (1 + i % 37)).strip() + "\n" for i in range(150)), encoding="utf-8")
    got = []
    module_session.request(
        p.ImportRequest(paths=[str(corpus)], name="lines", val_fraction=0.2, options={"doc_unit": "line"}),
        on_reply=got.append,
    )
    qtbot.waitUntil(lambda: bool(got), timeout=30_000)
    assert got[0].ok, got[0].error
    qtbot.waitUntil(lambda: any(d["name"] == "lines" for d in module_session.workspace["datasets"]), timeout=5000)
    panel = open_panel(qtbot, module_session, dataset="lines")
    module_session.update_config("model", block_size=64)
    train(qtbot, panel, "char", 100)
    qtbot.wait(200)
    assert panel.lengths.histogram() == {}  # nothing asked while the tab is hidden

    with qtbot.waitSignal(panel.lengthsShown, timeout=20_000) as shown:
        panel.tabs.setCurrentWidget(panel.lengths)
    hist = panel.lengths.histogram()
    n_train = hist["n_docs"]
    assert shown.args[0] == hist["sampled"] == n_train and 100 <= n_train < 150
    heights = panel.lengths.bar_heights()
    assert len(heights) > 5 and sum(heights) == hist["sampled"]
    stats = panel.lengths.stats.text()
    assert "context length of 64 tokens" in stats and "95th percentile" in stats
    over, exact = longer_than(hist, 64)
    assert exact and 0 < over < n_train  # lines run from 4 to 184 characters: some are longer than 64
    assert over == sum(1 for n in hist["lengths"] if n > 64)
    assert f"{over:,.0f} of {n_train:,} documents" in stats and "about" not in stats

    # a new context length in the Model panel updates the line without asking the engine again
    module_session.update_config("model", block_size=1024)
    assert "context length of 1,024 tokens" in panel.lengths.stats.text()
    assert "0 of" in panel.lengths.stats.text()

    with qtbot.waitSignal(panel.lengthsShown, timeout=20_000) as shown:
        panel.lengths.split_combo.setCurrentIndex(panel.lengths.split_combo.findData("val"))
    val = panel.lengths.histogram()
    assert val["split"] == "val" and shown.args[0] == val["sampled"] == val["n_docs"]
    assert 10 < val["n_docs"] < 50 and sum(panel.lengths.bar_heights()) == val["n_docs"]  # about 20 % of 150


def test_export_writes_files_that_tokenizers_loads(qtbot, module_session, tmp_path, monkeypatch):
    from tokenizers import Tokenizer

    panel = open_panel(qtbot, module_session)
    tok = train(qtbot, panel, "bytebpe", 300)
    target = tmp_path / "mine.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    with qtbot.waitSignal(panel.exportFinished, timeout=10_000) as done:
        qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton, pos=QPoint(8, 8))
    assert done.args[0] == str(target)
    assert str(target) in panel.error_line.text() and panel.error_line.level == "info"
    loaded = Tokenizer.from_file(str(target))
    assert loaded.get_vocab_size() == tok["vocab_size"]
    assert loaded.decode(loaded.encode("Hello, world").ids) == "Hello, world"

    folder = tmp_path / "hf"
    folder.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    with qtbot.waitSignal(panel.exportFinished, timeout=10_000) as done:
        panel.export_folder_action.trigger()
    assert done.args[0] == str(folder)
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= {f.name for f in folder.iterdir()}

    # the Compare tab is made when first shown (another module, which may be missing from a build)
    assert panel.compare_view is None
    panel.tabs.setCurrentIndex(panel.tabs.indexOf(panel.compare_tab))
    try:
        from studio.widgets.tokenizer_compare import TokenizerCompareView
    except ImportError:
        assert "not available" in panel.compare_tab.findChild(QLabel).text()
    else:
        assert isinstance(panel.compare_view, TokenizerCompareView) and panel.compare_view.isVisible()

    missing = tmp_path / "nowhere" / "tok.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(missing), "")))
    with qtbot.waitSignal(panel.exportFinished, timeout=10_000) as done:
        panel.export_json_action.trigger()
    assert done.args[0] == "" and "does not exist" in panel.error_line.text() and panel.error_line.level == "error"


def test_compare_view_made_while_its_tab_is_hidden_shows_when_the_tab_opens(qtbot, module_session):
    panel = VocabPanel(module_session)
    qtbot.addWidget(panel)
    panel.show()
    view = panel.ensure_compare_view()  # e.g. a presenter's script preparing the tab in advance
    assert not view.isVisible()
    panel.tabs.setCurrentWidget(panel.compare_tab)
    assert view.isVisible() and view.compare_button.isVisible()
