"""Every objective trains through the real loop (engine/train.py): a tiny model on a tiny corpus of documents in a
real SQLite workspace, its validation loss falls, and its metrics are stored and reach the Evaluation events;
the training options of the classic recipes (SGD with Nesterov momentum, label smoothing) work end to end."""

import json
import math
import random

import pytest

from engine.config import RunConfig
from engine.objectives.catalog import OBJECTIVE_CATALOG, objective_info
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training

# Two topics with words of their own, so a document's sentences belong together (next-sentence prediction can
# tell a sentence of another document) and follow a fixed order (first, then, last: sentence order can be read).
TOPICS = (
    ("cat dog mouse".split(), "sat ran hid".split(), "mat rug box".split()),
    ("ship boat raft".split(), "sank sailed drifted".split(), "sea bay lake".split()),
)
ORDER = ("first", "then", "last")


def _document(rng: random.Random) -> str:
    nouns, verbs, places = rng.choice(TOPICS)
    return " ".join(
        f"{word} the {rng.choice(nouns)} {rng.choice(verbs)} on the {rng.choice(places)}." for word in ORDER
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("objectives")
    rng = random.Random(0)
    src = root / "stories.jsonl"
    src.write_text("\n".join(json.dumps({"text": _document(rng)}) for _ in range(400)) + "\n", encoding="utf-8")
    with Workspace(root / "ws") as ws:
        ws.import_dataset([src], "stories", 0.1)
    return root / "ws"


@pytest.fixture(scope="module", autouse=True)
def loop_dataset(ws_path, tmp_path_factory):
    """A text that repeats exactly: every next token can be known."""
    src = tmp_path_factory.mktemp("loop") / "loop.txt"
    src.write_text("abcdefgh\n" * 600, encoding="utf-8")
    with Workspace(ws_path) as w:
        w.import_dataset([src], "loop", 0.1)


@pytest.fixture
def ws(ws_path):
    w = Workspace(ws_path)
    yield w
    w.close()


def objective_config(name: str, arch: str | None = None, **train) -> RunConfig:
    info = objective_info(name)
    t = {
        "batch_size": 8,
        "max_iters": 80,
        "learning_rate": 3e-3,
        "min_lr": 3e-4,
        "warmup_iters": 5,
        "lr_decay_iters": 80,
        "eval_interval": 20,
        "eval_iters": 4,
        "log_interval": 5,
        "device": "cpu",
        "seed": 3,
        "probe_attention": False,
        "keep_checkpoints": 0,
    }
    t.update(train)
    model = {"arch": arch or info.archs[0], "n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 32}
    if info.needs_segments:
        model["n_segments"] = 2
    return RunConfig.from_dict(
        {
            "data": {"dataset": "stories"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": model,
            "objective": {"name": name},
            "train": t,
        }
    )


class Events:
    """on_event that keeps the typed events by kind."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if e.kind == kind]


def _train(ws, cfg):
    events = Events()
    run = prepare_run(ws, cfg)
    state = run_training(ws, run["id"], on_event=events)
    return run["id"], state, events


# Distillation needs a teacher run (tests/test_distillation.py trains it), classification labelled texts
# (tests/test_classification.py), REINFORCE a run to start from and a reward (tests/test_reinforce.py).
CASES = [
    (name, arch)
    for name, info in OBJECTIVE_CATALOG.items()
    for arch in info.archs
    if not info.needs_teacher and not info.needs_labels and not info.needs_parent
]


@pytest.mark.parametrize("name,arch", CASES, ids=[f"{n}-{a}" for n, a in CASES])
def test_every_objective_trains_and_reports_its_metrics(ws, name, arch):
    info = objective_info(name)
    run_id, state, events = _train(ws, objective_config(name, arch))
    assert state == "finished", events.of("status")[-1].message
    evals = events.of("eval")
    assert [e.step for e in evals] == [20, 40, 60, 80]
    assert evals[-1].val_loss < evals[0].val_loss, [e.val_loss for e in evals]

    expected = {f"{split}_{m}" for split in ("train", "val") for m in info.metrics}
    for e in evals:
        assert set(e.metrics) == expected, (name, e.metrics)
        for key, value in e.metrics.items():
            assert (value >= 1.0) if key.endswith("perplexity") else (0.0 <= value <= 1.0), (key, value)
    if "perplexity" in info.metrics and not info.needs_segments:
        # Perplexity is exp of the mean token loss; where the loss is the token loss alone, the two agree.
        assert math.log(evals[-1].metrics["val_perplexity"]) == pytest.approx(evals[-1].val_loss, rel=0.05)
    # What the events said is what SQLite keeps, and what the Runs panel will read back.
    rows = ws.metrics(run_id, "val")
    assert [(r["step"], r["loss"], r["metrics"]) for r in rows] == [(e.step, e.val_loss, e.metrics) for e in evals]
    assert all(r["metrics"] == {} for r in ws.metrics(run_id, "train"))
    assert all(m.tokens_per_sec > 0 for m in events.of("metrics"))


def test_sgd_with_nesterov_momentum_trains(ws):
    cfg = objective_config("causal_lm", optimizer="sgd", momentum=0.9, nesterov=True, learning_rate=0.3, min_lr=0.03)
    run_id, state, events = _train(ws, cfg)
    assert state == "finished"
    evals = events.of("eval")
    assert evals[-1].val_loss < evals[0].val_loss - 0.2, [e.val_loss for e in evals]
    # It resumes with its momentum buffers: the checkpoint holds SGD's state.
    assert run_training(ws, run_id, on_event=None, resume=True) == "finished"


def test_label_smoothing_raises_the_floor_of_the_training_loss(ws):
    """On text that repeats exactly the model becomes sure of every next token; with label smoothing eps the
    loss it minimises cannot go below the entropy of the smoothed target (eps spread over the V classes), while
    the plain loss goes on towards 0. Evaluation measures the plain loss either way."""
    eps = 0.1
    common = dict(max_iters=150, lr_decay_iters=150, eval_interval=150, learning_rate=1e-2, min_lr=1e-3, log_interval=1)
    plain_id, _, plain = _train(ws, objective_config("causal_lm", **common).with_overrides(["data.dataset=loop"]))
    smooth_id, _, smooth = _train(
        ws,
        objective_config("causal_lm", label_smoothing=eps, **common).with_overrides(["data.dataset=loop"]),
    )
    V = ws.tokenizer(ws.run(smooth_id)["tokenizer_id"])["vocab_size"]
    p_true, p_other = 1 - eps + eps / V, eps / V
    floor = -p_true * math.log(p_true) - (V - 1) * p_other * math.log(p_other)
    smoothed = [r["loss"] for r in ws.metrics(smooth_id, "train")]
    unsmoothed = [r["loss"] for r in ws.metrics(plain_id, "train")]
    assert min(smoothed) > floor - 1e-3, (min(smoothed), floor)
    assert sum(smoothed[-10:]) / 10 < floor + 0.15  # it did learn: near the floor, not above it for want of steps
    assert sum(unsmoothed[-10:]) / 10 < floor / 2
    # The validation loss is the plain cross-entropy for both, so the two can be compared.
    assert smooth.of("eval")[-1].val_loss < 0.5 and plain.of("eval")[-1].val_loss < 0.5


def test_a_vocabulary_without_mask_fails_the_run_naming_the_token(ws):
    """A run made with a vocabulary that lacks [MASK] (an older run's, chosen by id) stops before step 0 with a
    message naming the token; nothing is trained."""
    cfg = objective_config("masked_lm")
    ds = ws.dataset("stories")
    tok = ws.train_tokenizer(ds["id"], "char", 64)  # a plain char vocabulary: no [MASK]
    cfg.tokenizer.tokenizer = tok["id"]
    run = ws.create_run("no mask", cfg.to_dict(), ds["id"], tok["id"])  # as an older studio left it
    events = Events()
    assert run_training(ws, run["id"], on_event=events) == "failed"
    last = events.of("status")[-1]
    assert last.state == "failed" and "[MASK]" in last.message and "\n" not in last.message
    assert ws.run(run["id"])["message"] == last.message and ws.run(run["id"])["step"] == 0
    assert events.of("metrics") == [] and ws.metrics(run["id"]) == []


def test_attention_probes_never_end_an_encoder_decoder_run(ws):
    """Recording attention on an architecture the probes cannot read yet is skipped with a note, not a warning."""
    run_id, state, events = _train(
        ws, objective_config("denoising", max_iters=20, eval_interval=10, probe_attention=True)
    )
    assert state == "finished"
    assert [e for e in events.events if e.kind == "warning"] == []
    recorded = [e.step for e in events.of("attention")]
    assert recorded == [0, 10, 20] or (recorded == [] and len(events.of("info")) == 1)


def test_the_engine_sends_the_metrics_with_each_evaluation_and_in_the_stored_rows(tmp_path):
    """Through the real engine process: the Eval broadcasts of a masked-LM run carry its metrics, and the
    metrics reply (what the Runs and Train panels read back) has them on its rows."""
    from engine import protocol as p
    from tests.engine_harness import EngineProcess

    engine = EngineProcess(tmp_path / "ws")
    try:
        src = tmp_path / "stories.jsonl"
        rng = random.Random(1)
        src.write_text("\n".join(json.dumps({"text": _document(rng)}) for _ in range(200)) + "\n", encoding="utf-8")
        ds = engine.request(p.ImportRequest(paths=[str(src)], name="stories"))
        cfg = objective_config("masked_lm", max_iters=20, eval_interval=10, log_interval=10).to_dict()
        cfg["data"]["dataset"] = ds.dataset["id"]
        start = engine.request(p.TrainRequest(config=cfg), timeout=120)
        assert start.ok, start.error
        run_id = start.run["id"]
        last = engine.wait_for(lambda m: isinstance(m, p.Eval) and m.run == run_id and m.step == 20, timeout=120)
        assert set(last.metrics) == {
            "train_perplexity",
            "val_perplexity",
            "train_masked_accuracy",
            "val_masked_accuracy",
        }
        engine.wait_for(lambda m: isinstance(m, p.Status) and m.run == run_id and m.run_state == "finished", 60)
        reply = engine.request(p.MetricsRequest(run=run_id))
        val = [r for r in reply.rows if r["split"] == "val"]
        assert [r["step"] for r in val] == [10, 20] and val[-1]["metrics"] == last.metrics
    finally:
        engine.close()


@pytest.mark.parametrize("name", ["masked_lm", "denoising"])
def test_a_resumed_run_draws_the_same_corrupted_batches(ws, name):
    """The objective's corruption comes from the checkpointed generator: 10 steps, a stop, a resume and 10 more
    give the very losses of 20 steps straight."""
    from engine.train import Control

    cfg = objective_config(name, max_iters=20, eval_interval=10, lr_decay_iters=20, log_interval=1)
    straight, _, _ = _train(ws, cfg)
    control = Control()

    def stop_at_10(event):
        if event.kind == "metrics" and event.step == 10:
            control.request_stop()

    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=stop_at_10, control=control) == "stopped"
    assert run_training(ws, run["id"], on_event=None, resume=True) == "finished"
    losses = [[(r["step"], r["split"], r["loss"]) for r in ws.metrics(i)] for i in (straight, run["id"])]
    assert losses[0] == losses[1] and len(losses[0]) == 22
