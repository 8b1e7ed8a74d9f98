"""The engine as a real OS process, driven through the real connection and protocol (no Qt)."""

import os
import signal
import time

import pytest

from engine import protocol as p
from engine.config import preset
from tests.engine_harness import EngineProcess


def corpus(tmp_path):
    lines = [
        f"the {a} {b} sat on the {c} mat."
        for a in ("red", "big", "old")
        for b in ("cat", "dog", "fox")
        for c in ("warm", "cold", "soft")
    ]
    path = tmp_path / "mats.txt"
    path.write_text("\n".join(lines * 40) + "\n")
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    ws = tmp_path_factory.mktemp("ws")
    eng = EngineProcess(ws)
    yield eng
    eng.close()


def tiny_config(dataset_id, tokenizer_id, max_iters=400):
    cfg = preset("tiny").with_overrides(
        [
            f"data.dataset={dataset_id}",
            f"tokenizer.tokenizer={tokenizer_id}",
            "model.n_layer=1",
            "model.n_embd=32",
            "model.n_head=2",
            "model.block_size=16",
            "train.batch_size=4",
            f"train.max_iters={max_iters}",
            f"train.lr_decay_iters={max_iters}",
            "train.eval_interval=50",
            "train.eval_iters=2",
            "train.log_interval=1",
        ]
    )
    return cfg.to_dict()


def test_hello_reports_device_and_a_workspace_with_the_sample(engine):
    reply = engine.request(p.HelloRequest(), timeout=60)
    assert reply.ok and reply.device == "cpu" and "CPU" in reply.device_name
    assert any(d["name"] == "sample" for d in reply.workspace["datasets"])


def test_bad_requests_get_readable_errors_and_the_engine_keeps_going(engine, tmp_path):
    reply = engine.request(p.ImportRequest(paths=[str(tmp_path / "missing.txt")]))
    assert not reply.ok and "missing.txt" in reply.error and "Traceback" not in reply.error
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"abc\x00\x01\x02" * 100)
    reply = engine.request(p.ImportRequest(paths=[str(binary)]))
    assert not reply.ok and "blob.txt" in reply.error
    reply = engine.request(p.ControlRequest(action="pause"))
    assert not reply.ok and "no training" in reply.error
    assert engine.request(p.WorkspaceRequest()).ok


def test_import_train_pause_resume_stop_generate(engine, tmp_path):
    ds = engine.request(p.ImportRequest(paths=[str(corpus(tmp_path))], name="mats", val_fraction=0.1))
    assert ds.ok, ds.error
    tok = engine.request(p.TokenizerTrainRequest(dataset=ds.dataset["id"], tokenizer_kind="char", vocab_size=100))
    assert tok.ok, tok.error
    vocab = engine.request(p.VocabRequest(tokenizer=tok.tokenizer["id"]))
    assert len(vocab.rows) == tok.tokenizer["vocab_size"]

    start = engine.request(p.TrainRequest(config=tiny_config(ds.dataset["id"], tok.tokenizer["id"], 100000)))
    assert start.ok, start.error
    run_id = start.run["id"]
    engine.wait_for(lambda m: isinstance(m, p.Metrics) and m.rows[-1]["step"] >= 5)

    assert engine.request(p.ControlRequest(action="pause")).ok
    paused = engine.wait_for(lambda m: isinstance(m, p.Status) and m.state == "paused")
    engine.pump(0.5)
    engine.inbox = [m for m in engine.inbox if not isinstance(m, p.Metrics)]
    engine.pump(0.5)
    assert not [m for m in engine.inbox if isinstance(m, p.Metrics)], "training went on while paused"

    # The run being trained cannot be deleted (nor its tokenizer, which it uses).
    reply = engine.request(p.DeleteRequest(item_kind="run", ref=run_id))
    assert not reply.ok and "stop it before deleting it" in reply.error
    reply = engine.request(p.DeleteRequest(item_kind="tokenizer", ref=tok.tokenizer["id"]))
    assert not reply.ok and "still used by 1 run" in reply.error

    # The playground works while a run is paused.
    gen = p.GenerateRequest(run=run_id, prompt="the ", max_new_tokens=20, seed=1)
    reply = engine.request(gen)
    assert reply.ok and reply.n_tokens == 20
    assert "".join(t.text for t in engine.events(gen.id, p.Token)) == reply.text

    assert engine.request(p.ControlRequest(action="resume")).ok
    engine.wait_for(lambda m: isinstance(m, p.Metrics) and m.rows[-1]["step"] > paused.step + 3)
    t0 = time.monotonic()
    assert engine.request(p.ControlRequest(action="stop")).ok
    stopped = engine.wait_for(lambda m: isinstance(m, p.Status) and m.state == "stopped")
    assert time.monotonic() - t0 < 5, "stop must answer within a step (plus a checkpoint)"
    assert stopped.run == run_id
    # The run's states and the engine's travel apart (1.5): the run holds the work lane, so the engine stays busy
    # through it, its outcome included, and says idle once the job is over.
    assert (paused.engine_state, paused.run_state) == ("busy", "paused")
    assert (stopped.engine_state, stopped.run_state) == ("busy", "stopped")
    idle = engine.wait_for(lambda m: isinstance(m, p.Status) and m.state == "idle")
    assert (idle.engine_state, idle.run_state, idle.run) == ("idle", None, None)
    runs_states = [m.run_state for m in engine.inbox if isinstance(m, p.Status) and m.run == run_id]
    assert runs_states[:2] == ["starting", "training"] and "stopping" in runs_states

    metrics = engine.request(p.MetricsRequest(run=run_id))
    assert metrics.ok and len([r for r in metrics.rows if r["split"] == "train"]) >= 5
    runs = engine.request(p.WorkspaceRequest()).workspace["runs"]
    assert runs[-1]["id"] == run_id and runs[-1]["status"] == "stopped"


def test_a_run_that_finishes_says_so_and_leaves_the_engine_idle(engine, tmp_path):
    ds = engine.request(p.ImportRequest(paths=[str(corpus(tmp_path))], name="short"))
    tok = engine.request(p.TokenizerTrainRequest(dataset=ds.dataset["id"], tokenizer_kind="char"))
    start = engine.request(p.TrainRequest(config=tiny_config(ds.dataset["id"], tok.tokenizer["id"], 20)))
    assert start.ok, start.error
    run_id = start.run["id"]
    deadline = time.monotonic() + 60
    while True:  # the broadcasts stay in the inbox in the order they came, up to the engine's idle after the run
        engine.pump()
        statuses = [m for m in engine.inbox if isinstance(m, p.Status)]
        first = next((i for i, m in enumerate(statuses) if m.run == run_id), None)
        if first is not None and statuses[-1].engine_state == "idle" and statuses[-2].run == run_id:
            break
        assert time.monotonic() < deadline, f"no idle after the run; engine log:\n{engine.log()[-2000:]}"
    states = [(m.engine_state, m.run_state) for m in statuses[first - 1 :]]
    assert states == [
        ("busy", None),  # the job takes the work lane
        ("busy", "starting"),
        ("busy", "training"),
        ("busy", "finished"),
        ("idle", None),
    ]
    assert [m.state for m in statuses[first - 1 :]] == ["busy", "starting", "training", "finished", "idle"]
    assert all(m.run == run_id for m in statuses[first:-1]) and statuses[-1].run is None


def test_engine_stops_training_and_exits_when_the_studio_dies(tmp_path):
    eng = EngineProcess(tmp_path / "ws2")
    try:
        assert eng.request(p.HelloRequest()).ok
        ds = eng.request(p.ImportRequest(paths=[str(corpus(tmp_path))], name="mats"))
        tok = eng.request(p.TokenizerTrainRequest(dataset=ds.dataset["id"], tokenizer_kind="char"))
        start = eng.request(p.TrainRequest(config=tiny_config(ds.dataset["id"], tok.tokenizer["id"], 100000)))
        assert start.ok, start.error
        eng.wait_for(lambda m: isinstance(m, p.Metrics))
        eng.conn.close()  # the studio vanishes
        eng.proc.wait(timeout=20)
        assert eng.proc.returncode == 0
    finally:
        if eng.proc.poll() is None:
            os.killpg(eng.proc.pid, signal.SIGKILL)
        eng.close()
    from engine.store import Workspace

    ws = Workspace(tmp_path / "ws2")
    run = ws.runs()[-1]
    assert run["status"] == "stopped"
    assert ws.latest_checkpoint(run["id"]) is not None


def test_a_request_kind_the_engine_does_not_know_is_answered_not_ignored(engine):
    """As a newer studio would send it: the engine's reply ends the request with a readable error."""
    import json

    engine.conn.send_bytes(
        json.dumps(
            {"v": p.PROTOCOL_VERSION, "msgs": [{"kind": "teleport_request", "id": "tp-1", "where": "moon"}]}
        ).encode()
    )
    reply = engine.wait_for(lambda m: m.parent == "tp-1", timeout=30)
    assert isinstance(reply, p.Unknown) and reply.kind_name == "teleport_reply"
    assert reply.data["status"] == "error" and "does not handle teleport_request" in reply.data["error"]
