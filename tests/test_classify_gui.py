"""Classification through the studio and a real engine: a labelled CSV is imported with its label column, a
classification run trains, and the Playground shows the Classify mode first, with every class's probability for
a typed text; the Train panel plots accuracy and macro-F1."""

import pytest

from engine import protocol as p
from studio.panels.playground import PlaygroundPanel
from tests.test_classification import _write_csv

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def classifier(qapp, module_session, tmp_path_factory):
    """A finished tiny classification run (an encoder) on a labelled CSV imported through the engine."""
    from tests.conftest import ended_runs, wait_until

    s = module_session
    src = tmp_path_factory.mktemp("labelled") / "things.csv"
    _write_csv(src, 400)
    imported = []
    s.request(
        p.ImportRequest(paths=[str(src)], name="things", options={"label_column": "label", "split": "documents"}),
        imported.append,
    )
    wait_until(lambda: bool(imported), 60, "the import")
    assert imported[0].ok, imported[0].error
    s.update_config("data", dataset=imported[0].dataset["id"])
    s.update_config("tokenizer", kind="char", tokenizer=None)
    s.update_config("model", arch="encoder", n_layer=1, n_head=2, n_embd=32, block_size=64, n_segments=0)
    s.update_config("objective", name="classification")
    s.update_config(
        "train", batch_size=16, max_iters=60, eval_interval=30, eval_iters=2, log_interval=10, warmup_iters=5,
        lr_decay_iters=60, learning_rate=3e-3, checkpoint_interval=60, device="cpu",
    )  # fmt: skip
    ended = ended_runs(s)
    s.request(p.TrainRequest(config=s.config.to_dict(), name="sorter"))
    wait_until(lambda: bool(ended), 240, "the classification run")
    assert ended[0].state == "finished", ended[0].message
    s.refresh_workspace()
    wait_until(lambda: any(r.get("name") == "sorter" for r in s.workspace.get("runs", [])), 20, "the run row")
    return next(r for r in s.workspace["runs"] if r.get("name") == "sorter")


def test_the_playground_classifies_a_typed_text(qtbot, module_session, classifier):
    panel = PlaygroundPanel(module_session)
    qtbot.addWidget(panel)
    panel.resize(1300, 800)
    panel.show()
    panel.run_combo.setCurrentIndex(panel.run_combo.findData(classifier["id"]))
    assert panel.modes() == ["classify"] and panel.mode == "classify"
    assert "names the class of a text" in panel.modes_label.text()
    page = panel.mode_pages["classify"]
    page.ask_button.click()  # nothing typed: the page says what to do and asks nothing
    assert page.request is None and "Write a text" in page.error_label.text()
    page.edit.setPlainText("the old lion saw a big dog and a wolf.")
    page.ask_button.click()
    qtbot.waitUntil(lambda: page.request is None, timeout=60_000)
    assert not page.error_label.isVisible(), page.error_label.text()
    names = [name for name, _ in page.bars.rows]
    assert sorted(names) == ["animal", "food"]
    probs = [prob for _, prob in page.bars.rows]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert page.answer_label.text().startswith(names[0] + ": ")
    assert page.status_label.text().startswith("The model read ")


def test_the_train_panel_plots_accuracy_and_macro_f1_and_shows_the_confusion_matrix(qtbot, module_session, classifier):
    from studio.panels.training import TrainingPanel

    panel = TrainingPanel(module_session)
    qtbot.addWidget(panel)
    panel.resize(1280, 720)
    panel.show()
    module_session.select_run(classifier["id"])
    qtbot.waitUntil(lambda: panel.confusion_view.isVisible(), timeout=20_000)
    assert panel.metric_cards.names == ["class_accuracy", "macro_f1"]
    assert panel.metric_cards.cards["class_accuracy"].caption.text() == "Val accuracy"
    assert panel.metric_plots["class_accuracy"].isVisible() and panel.metric_plots["macro_f1"].isVisible()
    view = panel.confusion_view
    n_val = len(module_session_labelled_val(module_session))
    assert sum(map(sum, view.matrix)) == n_val  # every labelled validation text once
    assert view.table.rowCount() == view.table.columnCount() == 2
    assert view.table.verticalHeaderItem(0).text() == "1 animal"
    assert view.caption.text().startswith("<b>Val confusion: ") and "At step 60." in view.caption.toolTip()


def module_session_labelled_val(session) -> list:
    from engine.store import Workspace

    with Workspace(session.workspace["path"]) as ws:
        return ws.labelled_documents("things", "val")[0]
