"""The studio's words for classification runs, without Qt: the Playground's modes and answer, the Train panel's
confusion matrix cells and caption, the metric cards' numbers."""

from studio.state.confusion import confusion_caption, confusion_cells
from studio.state.curves import RunCurves
from studio.state.playground_modes import class_answer, class_rows, classify_refusal, modes_line, run_modes
from studio.state.train_summary import metric_text, run_metrics


def _run(arch: str) -> dict:
    return {"id": 3, "config": {"model": {"arch": arch}, "objective": {"name": "classification"}}}


def test_a_classification_run_classifies_first_and_a_decoder_still_writes():
    assert run_modes(_run("encoder")) == ["classify"]
    assert run_modes(_run("decoder")) == ["classify", "generate"]
    assert run_modes(_run("encoder-decoder")) == ["classify", "text2text"]
    assert (
        modes_line(_run("encoder"))
        == "This run is an encoder trained with classification: it names the class of a text."
    )


def test_the_answer_is_the_likeliest_class_and_the_bars_go_best_first():
    rows = class_rows([["food", 0.25], ["animal", 0.7], ["tool", 0.05], ["broken"]])
    assert rows == [("animal", 0.7), ("food", 0.25), ("tool", 0.05)]
    assert class_answer(rows) == "animal: 70 %" and class_answer([]) == ""
    assert classify_refusal("  ") == "Write a text for the model to classify." and classify_refusal("a cat") == ""


def test_each_confusion_cell_says_what_it_counts_as_a_share_of_its_row():
    cells = confusion_cells([[8, 2], [0, 0]], ["cat", "dog"])
    assert [(c.row, c.column, c.count) for c in cells] == [(0, 0, 8), (0, 1, 2), (1, 0, 0), (1, 1, 0)]
    assert cells[0].share == 0.8 and cells[1].share == 0.2 and cells[2].share == 0.0  # an empty row: no shares
    assert cells[0].tip == "8 of the 10 validation texts labelled 'cat' (80 %): right"
    assert cells[1].tip == "2 of the 10 validation texts labelled 'cat' (20 %): taken for 'dog'"
    assert confusion_caption([[8, 2], [1, 9]]) == "Val confusion: 17 of 20 right"


def test_the_curves_keep_the_latest_matrix_and_plot_only_numbers():
    c = RunCurves(1)
    c.add_eval(10, 0.9, {"val_class_accuracy": 0.5, "val_confusion": [[1, 1], [1, 1]]})
    c.add_eval(20, 0.5, {"val_class_accuracy": 0.75, "val_confusion": [[2, 0], [1, 1]]})
    c.add_rows([{"step": 10, "split": "val", "loss": 0.9, "metrics": {"val_confusion": [[1, 1], [1, 1]]}}])
    assert c.confusion == [[2, 0], [1, 1]] and c.confusion_step == 20  # an older row does not replace it
    assert "val_confusion" not in c.metrics and c.metrics["val_class_accuracy"] == ([10, 20], [0.5, 0.75])
    assert run_metrics("classification", c.metric_names()) == ["class_accuracy", "macro_f1"]
    assert metric_text("class_accuracy", 0.931) == "93.1 %" and metric_text("macro_f1", 0.9123) == "0.912"
