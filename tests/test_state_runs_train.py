"""What the Runs and Train panels say, without a window: settings by their panel labels, how two runs differ, the
cells of a training run, and the Train panel's lines."""

from engine.config import RunConfig, preset
from engine.format import fmt_created, fmt_loss
from studio.state.runs import config_diff, config_rows, progress_cells, run_heading, value_names
from studio.state.train_summary import config_differences, config_html, differs_text, status_text


def two_configs():
    a, b = preset("baby").to_dict(), preset("baby").to_dict()
    b["model"]["n_layer"] = 7
    b["train"]["learning_rate"] = 0.01
    b["train"]["seed"] = 99
    return a, b


def test_settings_are_shown_by_their_panel_labels_with_names_for_ids():
    a, _ = two_configs()
    a["data"]["dataset"] = 3
    names = value_names({"datasets": [{"id": 3, "name": "sonnets"}], "tokenizers": []})
    rows = config_rows(a, names)
    assert rows[0] == ("Data", "Dataset", "sonnets", "data.dataset")
    assert ("Model", "Layers", "4", "model.n_layer") in rows
    assert [r[0] for r in rows] == sorted(
        (r[0] for r in rows), key=["Data", "Vocabulary", "Model", "Objective", "Training"].index
    )


def test_two_runs_differ_only_where_their_settings_do():
    a, b = two_configs()
    assert config_diff(a, b)[:2] == [
        ("Model", "Layers", "4", "7", "model.n_layer"),
        ("Training", "Learning rate", "0.001", "0.01", "train.learning_rate"),
    ]
    # Train would start something else only for settings that change the model or its training: not the seed.
    assert config_differences(RunConfig.from_dict(a), RunConfig.from_dict(b)) == ["Layers", "Learning rate"]
    assert differs_text(list("abcdef")) == "a, b, c, d and 2 more"


def test_a_training_runs_cells_and_heading():
    run = {"id": 4, "name": "", "status": "running", "step": 1200, "max_iters": 5000, "best_val_loss": 1.23456}
    assert progress_cells(run) == [(2, "training", None), (3, "1,200 / 5,000", 1200), (4, "1.235", 1.23456)]
    assert progress_cells({"step": 3})[1:] == [(3, "3", 3), (4, "—", float("inf"))]
    assert run_heading(run) == "Run 4 “”"
    assert fmt_created("2026-11-23T09:00:00") == "2026-11-23 09:00" and fmt_created(None) == ""


def test_the_train_panels_lines():
    assert status_text("training") == "Training"
    assert (
        status_text("stopped", "stopped at step 40") == "Stopped at step 40 — checkpoint saved; Resume run continues it"
    )
    assert status_text("failed", "out of memory") == "Out of memory"
    assert fmt_loss(float("nan")) == "—" and fmt_loss(2.0) == "2.000"
    cfg = preset("baby")
    html = config_html(cfg, {"name": "a<b"}, None, 65)
    assert "a&lt;b" in html and f"a new {cfg.tokenizer.kind} vocabulary" in html and "parameters</b>" in html
    assert config_html(cfg, None, {"name": "t", "kind": "char", "vocab_size": 80}, 65, short=True).endswith(
        f"none chosen (Data panel) · t (char, 80 tokens) · {cfg.train.max_iters:,} steps"
    )


def _run(run_id, arch, objective):
    return {"id": run_id, "config": {"model": {"arch": arch}, "objective": {"name": objective}}}


def test_the_overlay_notes_losses_of_different_objectives_and_not_those_of_one():
    from studio.state.runs import kind_cells, overlay_note

    causal, masked = _run(1, "decoder", "causal_lm"), _run(2, "encoder", "masked_lm")
    note = overlay_note([causal, masked])
    assert note.startswith("These losses are not comparable")
    assert "run 1 (Causal language modelling) over every token" in note
    assert "run 2 (Masked language modelling) over the masked tokens" in note
    assert overlay_note([causal, _run(3, "decoder", "causal_lm")]) == ""
    assert overlay_note([causal, {"id": 4, "config": {}}]) == ""  # an old run trained causal LM
    both = overlay_note([causal, _run(3, "decoder", "causal_lm"), masked])
    assert "runs 1 and 3 (Causal language modelling) over every token" in both
    assert kind_cells(_run(5, "encoder-decoder", "span_corruption")) == ("Span corruption", "Encoder-decoder")
    assert kind_cells({"config": {}}) == ("Causal language modelling", "Decoder")


def test_the_objectives_metrics_in_words():
    from studio.state.train_summary import loss_over_text, metric_caption, metric_text, metric_tooltip, run_metrics

    assert loss_over_text("masked_lm") == "This run's loss averages over the masked tokens, not over every token."
    assert loss_over_text("causal_lm") == "" and loss_over_text("unknown") == ""

    assert run_metrics("masked_lm", []) == ["perplexity", "masked_accuracy"]
    assert run_metrics("causal_lm", ["perplexity", "bleu"]) == ["perplexity", "accuracy", "bleu"]
    assert run_metrics("someday", ["bleu"]) == ["bleu"]
    assert metric_caption("masked_accuracy") == "Val masked-token accuracy"
    assert metric_caption("perplexity", "train") == "Train perplexity"
    assert metric_text("pair_accuracy", 0.8766) == "87.7 %" and metric_text("perplexity", 5.123) == "5.12"
    assert metric_text("perplexity", 12345.0) == "12,345" and metric_text("accuracy", None) == "—"
    assert "On training text: 50.0 %" in metric_tooltip("pair_accuracy", 0.5)
    cfg = RunConfig.from_dict({"model": {"arch": "encoder"}, "objective": {"name": "masked_lm"}})
    html = config_html(cfg, None, None, 65)
    assert "<b>Objective</b> Masked language modelling" in html and "Encoder, " in html


def test_a_run_from_before_metrics_shows_its_perplexity():
    """A validation row stored before metrics were kept (a causal LM's) gets e^loss as its perplexity; a row
    with the objective's own metrics keeps them."""
    import math

    from studio.state.curves import RunCurves

    old = RunCurves(1)
    old.add_rows(
        [{"step": 100, "split": "val", "loss": 2.0}, {"step": 200, "split": "val", "loss": 1.5, "metrics": {}}]
    )
    assert old.metrics["val_perplexity"] == ([100, 200], [math.exp(2.0), math.exp(1.5)])
    new = RunCurves(2)
    new.add_rows([{"step": 100, "split": "val", "loss": 3.0, "metrics": {"val_masked_accuracy": 0.4}}])
    assert "val_perplexity" not in new.metrics and new.last_metrics == {"val_masked_accuracy": 0.4}
