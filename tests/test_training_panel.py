"""TrainingPanel: engine messages in (through the session's real routing), plot data and labels out."""

import pytest
from PySide6.QtWidgets import QMessageBox

from engine import protocol as p
from engine.format import fmt_speed, human_duration
from studio.panels.training import TrainingPanel
from studio.state.curves import RunCurves
from studio.session import Session


def _rows(steps, start_loss=4.0):
    return [
        {
            "step": s,
            "loss": start_loss - 0.04 * s,
            "lr": 1e-3 * s / 50,
            "grad_norm": 1.0 + s / 100,
            "tokens_per_sec": 14_200.0,
            "elapsed_s": 65.0,
            "eta_s": 125.0,
        }
        for s in steps
    ]


def _data(curve):
    xs, ys = curve.getData()
    return ([] if xs is None else [float(x) for x in xs]), ([] if ys is None else [float(y) for y in ys])


@pytest.fixture
def panel(qtbot, tmp_path):
    session = Session(str(tmp_path / "ws"))  # no engine: the test plays the engine's messages
    session.deliver([p.Status(state="idle")])
    w = TrainingPanel(session)
    qtbot.addWidget(w)
    w.resize(1100, 800)
    w.show()
    return w


def test_live_metrics_eval_and_status_show_on_plot_and_labels(qtbot, panel):
    s = panel.session
    s.deliver([p.Status(state="training", run=7, step=0, max_iters=200)])
    for chunk in (range(10, 30, 10), range(30, 60, 10)):  # two batches, like two drains
        s.deliver([p.Metrics(run=7, rows=_rows(chunk))])
    # Nothing is drawn per message: the plot waits for the ~30 Hz redraw timer.
    assert _data(panel.train_curve) == ([], [])
    s.deliver(
        [
            p.Eval(run=7, step=50, train_loss=2.1, val_loss=2.5),
            p.Status(state="training", run=7, step=50, max_iters=200),
        ]
    )
    qtbot.waitUntil(lambda: len(_data(panel.train_curve)[0]) == 5, timeout=2000)

    xs, ys = _data(panel.train_curve)
    assert xs == [10, 20, 30, 40, 50] and ys == pytest.approx([3.6, 3.2, 2.8, 2.4, 2.0])
    assert _data(panel.val_curve) == ([50.0], [2.5])
    assert _data(panel.lr_curve)[1][-1] == pytest.approx(1e-3)
    assert _data(panel.grad_curve)[1][-1] == pytest.approx(1.5)
    cards = {k: c.value.text() for k, c in panel.cards.items()}
    assert cards == {
        "step": "50 / 200",
        "train_loss": "2.000",
        "val_loss": "2.500",
        "lr": "1.00e-03",
        "grad_norm": "1.50",
        "speed": "14.2 k tok/s",
        "elapsed": "1 m 05 s",
        "eta": "2 m 05 s",
    }
    assert panel.progress.value() == 250 and panel.progress.format() == "step 50 / 200 · ETA 2 m 05 s"
    assert not panel.train_button.isEnabled()
    assert panel.pause_button.isEnabled() and panel.stop_button.isEnabled()
    assert panel.state_label.text() == "Training" and "Run 7" in panel.run_caption.text()
    plot = panel.loss_plot.getPlotItem()
    assert plot.getAxis("bottom").labelText == "step" and plot.getAxis("left").labelText == "loss (nats/token)"
    assert [item.text for _, item in plot.legend.items] == ["train loss", "val loss"]

    s.deliver([p.Status(state="paused", run=7, step=50, max_iters=200)])
    assert panel.pause_button.text() == "Resume" and s.engine_state == "paused"
    s.deliver([p.Status(state="finished", run=7, step=200, max_iters=200), p.Status(state="idle")])
    qtbot.waitUntil(lambda: panel.cards["eta"].value.text() == "—", timeout=2000)
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
    assert panel.cards["step"].value.text() == "200 / 200" and panel.progress.value() == 1000


def test_train_button_sends_the_config_and_follows_the_reply(qtbot, panel):
    s = panel.session
    s.update_config("model", n_layer=2, n_head=2, n_embd=32, block_size=32)
    s.update_config("train", max_iters=60, batch_size=8)
    s.config.data.dataset = 1
    assert "2 layers × 2 heads × 32 wide, context 32" in panel.summary.text()
    assert "256 tokens/step" in panel.summary.text()
    panel.train_button.click()
    sent = s.queued[-1]
    assert isinstance(sent, p.TrainRequest) and sent.config == s.config.to_dict() and sent.resume_run is None
    assert not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
    assert panel.progress.maximum() == 0  # busy until the run has started

    run = {"id": 3, "name": "r3", "status": "created", "step": 0, "max_iters": 60, "config": sent.config}
    s.deliver([p.TrainReply(parent=sent.id, run=run)])
    assert s.run["id"] == 3 and s.training_run == 3
    assert "Run 3 started" in panel.state_label.text()
    # Selecting the new run asked the engine for its stored curves.
    assert any(isinstance(m, p.MetricsRequest) and m.run == 3 for m in s.queued)


def test_config_error_is_shown_and_nothing_is_sent(qtbot, panel):
    s = panel.session
    s.config.data.dataset = 1
    s.update_config("model", n_embd=30, n_head=4)
    queued = len(s.queued)
    panel.train_button.click()
    assert len(s.queued) == queued
    assert panel.error_label.isVisible() and "Width (30) must be a multiple of" in panel.error_label.text()
    text = panel.error_label.text()  # the plain words first, the key on a second, smaller line
    assert text.index("Width (30)") < text.index("<small>Config key: model.n_embd</small>")
    boxes = [w for w in panel.findChildren(QMessageBox) if w.isVisible()]
    assert boxes and "Width (30)" in boxes[0].text() and "model.n_embd" in boxes[0].informativeText()
    boxes[0].close()


def test_selecting_an_old_run_loads_its_curves(qtbot, panel):
    s = panel.session
    s.apply_workspace(
        {
            "path": "x",
            "datasets": [],
            "tokenizers": [],
            "runs": [
                {"id": 1, "name": "old", "status": "stopped", "step": 30, "max_iters": 100, "config": {}},
                {"id": 2, "name": "other", "status": "finished", "step": 10, "max_iters": 10, "config": {}},
            ],
        }
    )
    s.select_run(1)
    req = next(m for m in reversed(s.queued) if isinstance(m, p.MetricsRequest))
    assert req.run == 1
    history = [
        {
            "step": st,
            "split": "train",
            "loss": 3.0 - st / 100,
            "lr": 1e-3,
            "grad_norm": 0.5,
            "tokens_per_sec": 1000.0,
            "elapsed_s": 5.0,
        }
        for st in (10, 20, 30)
    ]
    history.append({"step": 30, "split": "val", "loss": 2.9, "lr": None, "grad_norm": None})
    s.deliver([p.MetricsReply(parent=req.id, run=s.run, rows=history)])
    qtbot.waitUntil(lambda: len(_data(panel.train_curve)[0]) == 3, timeout=2000)
    assert _data(panel.train_curve)[0] == [10, 20, 30]
    assert _data(panel.val_curve) == ([30.0], [2.9])
    assert panel.cards["step"].value.text() == "30 / 100" and panel.cards["eta"].value.text() == "—"
    assert panel.resume_button.isEnabled()  # stopped before max_iters: can be continued
    panel.resume_button.click()
    sent = s.queued[-1]
    assert isinstance(sent, p.TrainRequest) and sent.resume_run == 1

    s.select_run(2)  # another run: the old curves go, its own are requested
    qtbot.waitUntil(lambda: _data(panel.train_curve) == ([], []), timeout=2000)


def test_history_and_live_rows_merge_without_duplicates():
    c = RunCurves(5)
    c.add_rows(_rows([40, 50]))  # live rows that arrived before the history reply
    c.merge_history([dict(r, split="train") for r in _rows([10, 20, 30, 40])])
    assert c.steps == [10, 20, 30, 40, 50]


def test_human_formatting():
    assert human_duration(125) == "2 m 05 s" and human_duration(3725) == "1 h 02 m" and human_duration(None) == "—"
    assert fmt_speed(14_200) == "14.2 k tok/s" and fmt_speed(0) == "—"


def test_a_vocabulary_that_leaves_text_unknown_is_warned_about_before_training(qtbot, panel):
    s = panel.session
    s.select_dataset({"id": 1, "name": "sample"})
    assert not panel.coverage_label.isVisible()
    s.select_tokenizer(
        {
            "id": 4,
            "name": "tiny-char",
            "kind": "char",
            "vocab_size": 10,
            "dataset_id": 1,
            "unk_share": 0.37,
            "unk_examples": ["e", "t"],
        }
    )
    assert panel.coverage_label.isVisible()
    text = panel.coverage_label.text()
    assert "37 % of the text in 'sample'" in text and "[UNK]" in text and "larger vocabulary" in text
    s.select_tokenizer(
        {
            "id": 5,
            "name": "full-char",
            "kind": "char",
            "vocab_size": 65,
            "dataset_id": 1,
            "unk_share": 0.0,
            "unk_examples": [],
        }
    )
    assert not panel.coverage_label.isVisible()


def test_train_and_resume_as_the_engine_dies_are_not_left_busy_and_work_after_a_restart(qtbot, tmp_path):
    """The engine dies just before Train (later: Resume) is pressed, unnoticed: the request fails while it is being
    sent. The panel says why and is not left "Preparing the run…" / "Resuming…" with Stop on and the bar busy;
    after a restart the same button works."""
    from tests.conftest import ended_runs, kill_engine_unnoticed, start_session, stop_session
    from test_attention_panel import TRAIN

    s = start_session(tmp_path / "ws")
    ended = ended_runs(s)
    try:
        s.update_config("tokenizer", kind="char")
        for section, values in TRAIN.items():
            s.update_config(section, **values)
        s.update_config("train", max_iters=5000)  # never finishes on its own: the test stops it
        w = TrainingPanel(s)
        qtbot.addWidget(w)
        w.show()
        for button in (w.train_button, w.resume_button):
            qtbot.waitUntil(button.isEnabled, timeout=60_000)
            kill_engine_unnoticed(s)
            button.click()
            qtbot.waitUntil(lambda: w.state_label.text() == "", timeout=5000)  # answered from the event loop
            assert s.engine_state == "dead"
            assert not w.stop_button.isEnabled() and w.progress.maximum() == 1000
            assert w.error_label.text().startswith(
                "Training could not start: the engine stopped: the engine was killed"
            )
            for box in w.findChildren(QMessageBox):
                box.close()

            s.restart_engine()
            qtbot.waitUntil(lambda: s.ready and button.isEnabled(), timeout=60_000)
            button.click()
            qtbot.waitUntil(lambda: s.is_training and int(s.run.get("step") or 0) > 0, timeout=60_000)
            w.stop_button.click()  # a stopped run, resumable from its checkpoint
            qtbot.waitUntil(lambda: bool(ended), timeout=30_000)
            assert ended.pop().state == "stopped" and not w.error_label.isVisible()
    finally:
        stop_session(s)


# ------------------------------------------------------------------------------------ the objective's metrics


def _masked_run(run_id: int = 8) -> dict:
    config = {"model": {"arch": "encoder"}, "objective": {"name": "masked_lm"}}
    return {"id": run_id, "name": "bert", "status": "training", "step": 0, "max_iters": 100, "config": config}


def test_an_eval_with_metrics_shows_the_objectives_own_numbers_beside_the_loss(qtbot, panel):
    s = panel.session
    s.apply_workspace({"path": "x", "datasets": [], "tokenizers": [], "runs": [_masked_run()]})
    s.select_run(8)
    qtbot.waitUntil(lambda: panel.metric_cards.names == ["perplexity", "masked_accuracy"], timeout=2000)
    assert panel.metric_cards.cards["perplexity"].isVisible() and panel.metric_cards.value("masked_accuracy") == "—"
    assert panel.metric_cards.cards["masked_accuracy"].caption.text() == "Val masked-token accuracy"
    assert "averages over the masked tokens" in panel.loss_plot.toolTip()
    s.deliver([p.Status(state="training", run=8, step=20, max_iters=100)])
    metrics = {"train_perplexity": 14.2, "val_perplexity": 15.37, "train_masked_accuracy": 0.43}
    s.deliver(
        [p.Eval(run=8, step=20, train_loss=2.6, val_loss=2.73, metrics={**metrics, "val_masked_accuracy": 0.4125})]
    )
    qtbot.waitUntil(lambda: panel.metric_cards.value("masked_accuracy") == "41.2 %", timeout=2000)
    assert panel.metric_cards.value("perplexity") == "15.37" and panel.cards["val_loss"].value.text() == "2.730"
    assert "On training text: 43.0 %" in panel.metric_cards.cards["masked_accuracy"].toolTip()
    plot = panel.metric_plots["masked_accuracy"]
    assert plot.isVisible() and _data(plot.curves[next(iter(plot.curves))]) == ([20.0], [41.25])
    # Live: the next evaluation moves the card and adds a point.
    s.deliver([p.Eval(run=8, step=40, train_loss=2.2, val_loss=2.4, metrics={"val_masked_accuracy": 0.5})])
    qtbot.waitUntil(lambda: panel.metric_cards.value("masked_accuracy") == "50.0 %", timeout=2000)
    assert _data(plot.curves[next(iter(plot.curves))])[0] == [20.0, 40.0]


def test_a_causal_run_shows_perplexity_and_a_pair_run_only_pair_accuracy(qtbot, panel):
    s = panel.session
    causal = {"id": 1, "name": "gpt", "status": "finished", "step": 10, "max_iters": 10, "config": {}}
    pair = {**_masked_run(2), "config": {"model": {"arch": "encoder"}, "objective": {"name": "nsp"}}}
    s.apply_workspace({"path": "x", "datasets": [], "tokenizers": [], "runs": [causal, pair]})
    s.select_run(1)
    req = next(m for m in reversed(s.queued) if isinstance(m, p.MetricsRequest))
    history = [{"step": 10, "split": "val", "loss": 2.0, "metrics": {"val_perplexity": 7.389, "val_accuracy": 0.3}}]
    s.deliver([p.MetricsReply(parent=req.id, run=causal, rows=history)])
    qtbot.waitUntil(lambda: panel.metric_cards.value("perplexity") == "7.39", timeout=2000)
    assert panel.metric_cards.names == ["perplexity", "accuracy"] and panel.metric_cards.value("accuracy") == "30.0 %"
    s.select_run(2)
    qtbot.waitUntil(lambda: panel.metric_cards.names == ["pair_accuracy"], timeout=2000)
    assert not panel.metric_plots["accuracy"].isVisible() and panel.metric_plots["pair_accuracy"].isVisible()


def test_a_distillation_run_plots_its_kl_to_the_teacher_in_nats(qtbot, panel):
    s = panel.session
    run = {**_masked_run(5), "config": {"objective": {"name": "distillation", "teacher_run": 1}}}
    s.apply_workspace({"path": "x", "datasets": [], "tokenizers": [], "runs": [run]})
    s.select_run(5)
    s.deliver([p.Status(state="training", run=5, step=20, max_iters=100)])
    s.deliver([p.Eval(run=5, step=20, train_loss=2.6, val_loss=2.7, metrics={"val_kl": 0.4321, "val_accuracy": 0.3})])
    qtbot.waitUntil(lambda: panel.metric_cards.value("kl") == "0.432 nats", timeout=2000)
    assert panel.metric_cards.cards["kl"].caption.text() == "Val KL to the teacher"
    plot = panel.metric_plots["kl"]
    assert plot.isVisible() and _data(plot.curves[next(iter(plot.curves))]) == ([20.0], [0.4321])  # not a percent


def test_run_curves_keep_each_metric_by_split_and_merge_live_with_history():
    c = RunCurves(3)
    c.add_eval(40, 2.0, {"val_masked_accuracy": 0.5})
    c.merge_history([{"step": 20, "split": "val", "loss": 2.5, "metrics": {"val_masked_accuracy": 0.3}}])
    assert c.metrics["val_masked_accuracy"] == ([20, 40], [0.3, 0.5]) and c.last_metrics["val_masked_accuracy"] == 0.5
    assert c.metric_names() == ["masked_accuracy"] and c.val_steps == [20, 40]
    c.add_eval(40, 2.0, {"val_masked_accuracy": 0.55, "val_perplexity": float("nan"), "note": "x"})
    assert c.metrics["val_masked_accuracy"] == ([20, 40], [0.3, 0.55]) and "note" not in c.metrics
