"""The training loop on a tiny model and a tiny generated corpus, with a real Workspace (engine/train.py)."""

import math
import random
import threading
import time

import pytest
import torch

import numpy as np

from engine import attention_probes as ins
from engine.checkpoint import CheckpointError, _thinned, list_checkpoints, read_checkpoint_meta, save_checkpoint
from engine.config import ConfigError, RunConfig, TrainConfig
from engine.store import Workspace
from engine.tokenizer import train_tokenizer
from engine.run_generation import _StreamDecoder, generate_text, load_model_for_run
from engine.run_setup import prepare_run
from engine.train import ATTENTION_DIR, Control, get_lr, run_training

WORDS = "the a cat dog sat ran on under mat log and then slept ate fish bread".split()


def _corpus(n_lines: int, seed: int = 0) -> str:
    """Sentences with a simple grammar, so a tiny model has something to learn within a few dozen steps."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        lines.append(
            f"{rng.choice(WORDS[:2])} {rng.choice(WORDS[2:4])} {rng.choice(WORDS[4:6])} "
            f"{rng.choice(WORDS[6:8])} the {rng.choice(WORDS[8:10])}."
        )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


@pytest.fixture(scope="module")
def ws_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    corpus = root / "corpus.txt"
    corpus.write_text(_corpus(600), encoding="utf-8")
    ws = Workspace(root / "ws")
    ws.import_dataset([corpus], "grammar", 0.1)
    ws.close()
    return root / "ws"


@pytest.fixture(scope="module")
def reference_run(ws_path):
    """tiny_config() trained straight through (20 steps): the run others compare with."""
    with Workspace(ws_path) as w:
        run = prepare_run(w, tiny_config())
        assert run_training(w, run["id"], on_event=lambda k, p: None) == "finished"
        return run["id"]


@pytest.fixture
def ws(ws_path):
    w = Workspace(ws_path)
    yield w
    w.close()


def tiny_config(**train) -> RunConfig:
    t = {
        "batch_size": 8,
        "max_iters": 20,
        "learning_rate": 3e-3,
        "min_lr": 3e-4,
        "warmup_iters": 4,
        "lr_decay_iters": 20,
        "eval_interval": 10,
        "eval_iters": 4,
        "log_interval": 1,
        "device": "cpu",
        "seed": 7,
    }
    t.update(train)
    # Dropout on, so an exact resume also needs the global RNG state back, not only the data generator's.
    return RunConfig.from_dict(
        {
            "data": {"dataset": "grammar"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 32, "block_size": 16, "dropout": 0.1},
            "train": t,
        }
    )


class Recorder:
    """on_event that keeps every event, and lets a test wait for one."""

    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, kind, payload):
        with self.cond:
            self.events.append((kind, dict(payload)))
            self.cond.notify_all()

    def of(self, kind):
        with self.cond:
            return [p for k, p in self.events if k == kind]

    def states(self):
        return [p["state"] for p in self.of("status")]

    def wait_for(self, pred, timeout=30):
        with self.cond:
            assert self.cond.wait_for(lambda: any(pred(k, p) for k, p in self.events), timeout), (
                f"event not seen within {timeout} s"
            )


def _train(ws, cfg, **kw):
    rec = Recorder()
    run = prepare_run(ws, cfg, on_event=rec)
    state = run_training(ws, run["id"], on_event=rec, **kw)
    return run["id"], state, rec


def _train_losses(ws, run_id):
    return [(r["step"], r["loss"]) for r in ws.metrics(run_id, "train")]


# ---------------------------------------------------------------------------------------------------- tests


def test_loss_falls_and_everything_lands_in_sqlite(ws):
    cfg = tiny_config(max_iters=60, eval_interval=30, lr_decay_iters=60)
    run_id, state, rec = _train(ws, cfg)
    assert state == "finished"
    assert rec.states()[0] == "starting" and rec.states()[-1] == "finished"

    rows = ws.metrics(run_id, "train")
    assert [r["step"] for r in rows] == list(range(1, 61))
    first = sum(r["loss"] for r in rows[:5]) / 5
    last = sum(r["loss"] for r in rows[-5:]) / 5
    assert first > math.log(ws.tokenizer(ws.run(run_id)["tokenizer_id"])["vocab_size"]) - 0.3  # starts near chance
    assert last < first - 0.8, (first, last)
    # What was logged is what the schedule says, and what the GUI was told.
    assert [r["lr"] for r in rows] == pytest.approx([get_lr(s - 1, cfg.train) for s in range(1, 61)])
    assert all(r["grad_norm"] > 0 and r["tokens_per_sec"] > 0 for r in rows)
    assert [m["step"] for m in rec.of("metrics")] == list(range(1, 61))
    assert rec.of("metrics")[-1]["eta_s"] == 0

    evals = rec.of("eval")
    assert [e["step"] for e in evals] == [30, 60]
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    val_rows = ws.metrics(run_id, "val")
    assert [(r["step"], r["loss"]) for r in val_rows] == [(e["step"], e["val_loss"]) for e in evals]

    row = ws.run(run_id)
    assert row["status"] == "finished" and row["step"] == 60 and row["device"].startswith("CPU")
    assert row["best_val_loss"] == min(e["val_loss"] for e in evals)
    assert row["config"]["tokenizer"]["tokenizer"] == row["tokenizer_id"]  # the resolved id is in the config

    ckpts = [c for c in ws.checkpoints(run_id) if c["path"].endswith("latest.json")]
    assert [c["step"] for c in ckpts] == [0, 30, 60]  # step 0 too: a good state for the health guard to go back to
    assert ckpts[-1]["val_loss"] == evals[-1]["val_loss"]
    assert ws.latest_checkpoint(run_id)["path"].endswith("latest.json")
    meta = read_checkpoint_meta(ckpts[-1]["path"])["meta"]
    assert meta["step"] == 60 and meta["run_id"] == run_id and meta["config"] == row["config"]
    assert meta["best_val_loss"] == row["best_val_loss"]


def test_lr_schedule_warms_up_then_decays_to_min_lr():
    tc = TrainConfig(learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=110)
    assert get_lr(0, tc) == pytest.approx(1e-3 / 11)  # warm-up starts small, never at 0
    assert get_lr(4, tc) == pytest.approx(1e-3 * 5 / 11)
    assert get_lr(10, tc) == pytest.approx(1e-3)  # peak at the end of warm-up
    assert get_lr(60, tc) == pytest.approx((1e-3 + 1e-4) / 2)  # half-way down the cosine
    assert get_lr(110, tc) == pytest.approx(1e-4)
    assert get_lr(500, tc) == pytest.approx(1e-4)  # min_lr after the decay
    decay = [get_lr(i, tc) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


def test_stop_from_another_thread_answers_within_one_step(ws_path):
    control = Control()
    rec = Recorder()
    result = {}

    def train():
        with Workspace(ws_path) as w:
            run = prepare_run(w, tiny_config(max_iters=100_000, eval_interval=100_000), on_event=rec)
            result["run"] = run["id"]
            result["state"] = run_training(w, run["id"], on_event=rec, control=control)

    t = threading.Thread(target=train)
    t.start()
    rec.wait_for(lambda k, p: k == "metrics" and p["step"] >= 5)
    control.request_stop()
    seen = rec.of("metrics")[-1]["step"]  # steps done when stop was asked, at least
    t.join(30)
    assert not t.is_alive()
    assert result["state"] == "stopped"
    assert rec.states()[-2:] == ["stopping", "stopped"]

    ws = Workspace(ws_path)
    row = ws.run(result["run"])
    assert row["status"] == "stopped"
    assert seen <= row["step"] <= seen + 1
    ckpt = ws.latest_checkpoint(result["run"])
    assert ckpt["step"] == row["step"]
    assert read_checkpoint_meta(ckpt["path"])["meta"]["step"] == row["step"]
    assert [r["step"] for r in ws.metrics(result["run"], "train")] == list(range(1, row["step"] + 1))


def test_pause_writes_a_checkpoint_waits_and_resumes_unchanged(ws_path, reference_run):
    control = Control()
    rec = Recorder()
    result = {}

    def train():
        with Workspace(ws_path) as w:
            run = prepare_run(w, tiny_config(), on_event=rec)
            result["run"] = run["id"]
            result["state"] = run_training(w, run["id"], on_event=rec, control=control)

    t = threading.Thread(target=train)
    t.start()
    rec.wait_for(lambda k, p: k == "metrics" and p["step"] >= 3)
    control.request_pause()
    control.request_pause()  # asking twice is harmless
    rec.wait_for(lambda k, p: k == "status" and p["state"] == "paused")
    paused_at = rec.of("status")[-1]["step"]
    time.sleep(0.3)
    assert rec.of("metrics")[-1]["step"] == paused_at  # no step while paused

    ws = Workspace(ws_path)
    assert ws.latest_checkpoint(result["run"])["step"] == paused_at
    assert ws.run(result["run"])["status"] == "paused"
    # The playground can use the paused model.
    assert generate_text(ws, result["run"], "the ", max_new_tokens=5, seed=1, device="cpu")["n_tokens"] == 5

    control.request_resume()
    t.join(30)
    assert result["state"] == "finished"
    states = rec.states()
    assert states[states.index("paused") + 1] == "training"
    assert ws.run(result["run"])["step"] == 20
    # Pausing, and generating while paused, changed nothing in the training itself.
    assert _train_losses(ws, result["run"]) == _train_losses(ws, reference_run)


def test_resume_is_bit_identical_to_an_uninterrupted_run(ws, reference_run):
    cfg, straight = tiny_config(), reference_run
    control = Control()

    def stop_at_10(kind, payload):
        if kind == "metrics" and payload["step"] == 10:
            control.request_stop()

    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=stop_at_10, control=control) == "stopped"
    assert ws.latest_checkpoint(run["id"])["step"] == 10
    # Rows a crashed session had logged after its last checkpoint must not survive the resume.
    ws.add_metrics(
        run["id"], [{"step": 11, "split": "train", "loss": 99.0}, {"step": 12, "split": "val", "loss": 99.0}]
    )

    # ...and so must its attention snapshots and weights-only checkpoints.
    folder = ws.run_dir(run["id"]) / ATTENTION_DIR
    ins.save_snapshot(folder, 12, *ins.load_snapshot(folder / "step-00000010.npz"))
    model, _, _ = load_model_for_run(ws, run["id"], "cpu")
    info = save_checkpoint(ws.run_dir(run["id"]) / "checkpoints", "step-00000012", model, meta={"step": 12})
    ws.add_checkpoint(run["id"], 12, info["path"], info["sha256"])

    rec = Recorder()
    assert run_training(ws, run["id"], on_event=rec, resume=True) == "finished"
    assert [m["step"] for m in rec.of("metrics")] == list(range(11, 21))
    assert [s for s, _ in ins.list_snapshots(folder)] == [0, 10, 20]
    assert [a["step"] for a in rec.of("attention")] == [20]  # step 0 is not looked at again
    assert [c["name"] for c in list_checkpoints(ws, run["id"])] == [
        "step-00000000",
        "step-00000010",
        "step-00000020",
        "latest",
    ]
    assert not (ws.run_dir(run["id"]) / "checkpoints" / "step-00000012.safetensors").exists()
    assert _train_losses(ws, run["id"]) == _train_losses(ws, straight)  # exact, not approximately
    assert [(r["step"], r["loss"]) for r in ws.metrics(run["id"], "val")] == [
        (r["step"], r["loss"]) for r in ws.metrics(straight, "val")
    ]
    assert ws.run(run["id"])["best_val_loss"] == ws.run(straight)["best_val_loss"]


def test_impossible_config_raises_before_anything_is_written(ws):
    before = (len(ws.runs()), len(ws.tokenizers()))
    with pytest.raises(ConfigError, match=r"multiple of Attention heads \(3\)") as info:
        prepare_run(ws, tiny_config().with_overrides(["model.n_head=3"]))
    assert "model.n_head" in info.value.keys
    with pytest.raises(ConfigError, match="block_size"):
        prepare_run(ws, tiny_config().with_overrides(["model.block_size=1000000"]))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="GPU"):
            prepare_run(ws, tiny_config(device="cuda"))
    assert (len(ws.runs()), len(ws.tokenizers())) == before


def test_empty_validation_split_falls_back_to_training_text(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(_corpus(100), encoding="utf-8")
    with Workspace(tmp_path / "ws") as w:
        w.import_dataset([corpus], "noval", val_fraction=0.0)
        cfg = tiny_config(max_iters=4, eval_interval=2).with_overrides(["data.dataset=noval"])
        run_id, state, rec = _train(w, cfg)
        assert state == "finished"
        assert all(math.isfinite(e["val_loss"]) for e in rec.of("eval"))
        assert "validation" in rec.of("status")[1]["message"]  # the user is told why val equals train text
        assert len(w.metrics(run_id, "val")) == 2


def test_lost_token_files_fail_with_a_readable_message(ws):
    done, state, _ = _train(ws, tiny_config(max_iters=4, eval_interval=4))
    assert state == "finished"
    fresh = prepare_run(ws, tiny_config(max_iters=4))
    files = ws.token_files(fresh["tokenizer_id"])
    for f in ("train", "val"):
        files[f].rename(files[f].with_suffix(".gone"))
    try:
        rec, rec_resume = Recorder(), Recorder()
        assert run_training(ws, fresh["id"], on_event=rec) == "failed"
        assert run_training(ws, done, on_event=rec_resume, resume=True) == "failed"
    finally:
        for f in ("train", "val"):
            files[f].with_suffix(".gone").rename(files[f])
    last = rec.of("status")[-1]
    assert last["state"] == "failed" and "0 tokens" in last["message"] and "\n" not in last["message"]
    assert ws.run(fresh["id"])["status"] == "failed" and ws.run(fresh["id"])["message"] == last["message"]
    # A resume that fails keeps what the run had reached.
    row = ws.run(done)
    assert row["status"] == "failed" and row["step"] == 4 and row["best_val_loss"] is not None


def test_generate_text_gives_the_requested_tokens_and_streams_them(ws, reference_run):
    run = ws.run(reference_run)
    pieces, ids = [], []
    out = generate_text(
        ws,
        run["id"],
        "the cat",
        max_new_tokens=40,
        temperature=0.8,
        top_k=10,
        seed=3,
        on_token=lambda i, s: (ids.append(i), pieces.append(s)),
        device="cpu",
    )
    assert out["n_tokens"] == 40 and not out["stopped"] and out["tokens_per_sec"] > 0
    assert "".join(pieces) == out["text"] and len(ids) == 40
    tok = ws.load_tokenizer(run["tokenizer_id"])
    assert tok.decode(ids) == out["text"]
    again = generate_text(ws, run["id"], "the cat", max_new_tokens=40, temperature=0.8, top_k=10, seed=3)
    assert again["text"] == out["text"]  # a seed repeats

    empty = generate_text(ws, run["id"], "", max_new_tokens=10, seed=0)
    assert empty["n_tokens"] == 10

    streamed = []
    stopped = generate_text(
        ws,
        run["id"],
        "a",
        max_new_tokens=1000,
        seed=0,
        should_stop=lambda: len(streamed) >= 5,
        on_token=lambda i, s: streamed.append(s),
    )
    assert stopped["stopped"] and stopped["n_tokens"] == 5


def test_stream_decoder_never_splits_a_character(tmp_path):
    text = "naïve café — größer, 日本語 ✓ emoji 🙂 and plain words\n" * 20
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    tok = train_tokenizer("bytebpe", 270, [tmp_path / "t.txt"])
    ids = tok.encode(text).ids
    decoder = _StreamDecoder(tok)
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert not any("\ufffd" in p for p in pieces)
    assert "".join(pieces) == text
    assert pieces.count("") > 0  # some tokens were held back until their character was complete


def _decode_rows(meta, blobs):
    """The snapshot's arrays decoded with numpy alone, as the studio does (engine/protocol.py, Attention)."""
    out = []
    for probe, blob in zip(meta["probes"], blobs):
        L, H, T, _ = probe["shape"]
        attn = np.zeros((L, H, T, T), dtype=np.float32)
        r, c = np.tril_indices(T)
        attn[..., r, c] = np.frombuffer(blob, "<f2").reshape(L, H, -1)
        out.append(attn)
    return out


def test_attention_is_probed_at_step_0_and_every_evaluation_without_changing_training(ws, reference_run):
    run_id, state, rec = _train(ws, tiny_config())  # probes and kept checkpoints on by default
    assert state == "finished"
    events = rec.of("attention")
    assert [e["step"] for e in events] == [0, 10, 20]
    folder = ws.run_dir(run_id) / ATTENTION_DIR
    assert [s for s, _ in ins.list_snapshots(folder)] == [0, 10, 20]
    for e in events:
        meta, blobs = ins.load_snapshot(folder / f"step-{e['step']:08d}.npz")
        assert meta == e["meta"] and blobs == e["blobs"] and meta["step"] == e["step"]
        assert [p["kind"] for p in meta["probes"]] == ["text", "text", "induction"]
        assert len(meta["heads"]["labels"]) == 1 and len(meta["heads"]["labels"][0]) == 2
        for attn in _decode_rows(meta, blobs):
            assert np.allclose(attn.sum(-1), 1.0, atol=3e-3)
    # The untrained model spreads its attention evenly ("uniform"); trained heads do not.
    first = _decode_rows(events[0]["meta"], events[0]["blobs"])[0]
    T = first.shape[-1]
    assert np.allclose(first[..., T - 1, :], 1 / T, atol=0.02)
    # The same texts at every step, taken from the validation split.
    assert events[0]["meta"]["probes"][0]["text"] == events[-1]["meta"]["probes"][0]["text"]

    assert [(c["name"], c["step"]) for c in list_checkpoints(ws, run_id)] == [
        ("step-00000000", 0),
        ("step-00000010", 10),
        ("step-00000020", 20),
        ("latest", 20),
    ]
    # Looking at attention and keeping weights changed nothing in the training itself.
    assert _train_losses(ws, run_id) == _train_losses(ws, reference_run)
    quiet_id, _, quiet = _train(ws, tiny_config(probe_attention=False, keep_checkpoints=0))
    assert quiet.of("attention") == [] and not (ws.run_dir(quiet_id) / ATTENTION_DIR).exists()
    assert [c["name"] for c in list_checkpoints(ws, quiet_id)] == ["latest"]
    assert _train_losses(ws, quiet_id) == _train_losses(ws, reference_run)


def test_named_checkpoints_load_and_kept_ones_are_thinned_evenly(ws, reference_run):
    run_id, _, _ = _train(ws, tiny_config(max_iters=40, eval_interval=5, lr_decay_iters=40, keep_checkpoints=4))
    steps = [c["step"] for c in list_checkpoints(ws, run_id) if c["name"] != "latest"]
    # Step 0 and eight evaluations, every 5 steps, thinned to at most four: every 20 steps, and the newest.
    assert steps == [0, 20, 40]
    files = sorted(p.name for p in (ws.run_dir(run_id) / "checkpoints").iterdir())
    assert files == sorted(
        ["latest.json", "latest.safetensors", "latest.optim.safetensors"]
        + [f"step-{s:08d}.{x}" for s in steps for x in ("json", "safetensors")]
    )
    early, _, meta0 = load_model_for_run(ws, run_id, "cpu", "step-00000000")
    late, _, meta = load_model_for_run(ws, run_id, "cpu", "latest")
    assert meta0["step"] == 0 and meta0["checkpoint"] == "step-00000000" and meta["step"] == 40
    assert not torch.equal(early.lm_head.weight, late.lm_head.weight)
    with pytest.raises(CheckpointError, match="no checkpoint 'step-00000005'.*step-00000040"):
        load_model_for_run(ws, run_id, "cpu", "step-00000005")
    # A weights-only checkpoint cannot resume a run.
    fresh = prepare_run(ws, tiny_config())
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        run_training(ws, fresh["id"], on_event=lambda k, p: None, resume=True)

    rows = [{"step": s} for s in range(0, 101, 10)] + [{"step": 105}]  # the last step need not be an evaluation
    left = [r["step"] for r in rows if r not in _thinned(rows, 5, 10)]
    assert left == [0, 40, 80, 105] and _thinned(rows, 20, 10) == []
    assert [r["step"] for r in rows if r not in _thinned(rows, 7, 10)] == [0, 20, 40, 60, 80, 100, 105]
    assert [r["step"] for r in rows if r not in _thinned(rows, 1, 10)] == [105]


def test_generate_modes_details_and_checkpoints(ws, reference_run):
    greedy = generate_text(ws, reference_run, "the cat", max_new_tokens=30, mode="greedy", device="cpu")
    beam1 = generate_text(ws, reference_run, "the cat", max_new_tokens=30, mode="beam", beam_width=1)
    assert beam1["token_ids"] == greedy["token_ids"] and beam1["text"] == greedy["text"]
    tok = ws.load_tokenizer(ws.run(reference_run)["tokenizer_id"])
    assert [t["id"] for t in greedy["prompt_tokens"]] == tok.encode("the cat").ids
    assert "".join(t["text"] for t in greedy["prompt_tokens"]) == "the cat"
    assert tok.decode(greedy["token_ids"]) == greedy["text"]

    records = []
    out = generate_text(
        ws,
        reference_run,
        "the",
        max_new_tokens=25,
        mode="sample",
        temperature=1.0,
        seed=4,
        details=True,
        on_step=records.append,
    )
    assert [r["id"] for r in records] == out["token_ids"] and "".join(r["text"] for r in records) == out["text"]
    for r in records:
        assert 0 < r["prob"] <= 1 and r["entropy"] >= 0
        probs = [p for _, p in r["top"]]
        assert len(r["top"]) == 5 and probs == sorted(probs, reverse=True) and probs[0] <= 1
        shown = dict(r["top"])
        if ins._display(tok, r["id"]) in shown:
            assert shown[ins._display(tok, r["id"])] == pytest.approx(r["prob"])
    beam = generate_text(ws, reference_run, "the", max_new_tokens=25, mode="beam", beam_width=4, details=True)
    assert beam["n_tokens"] == 25 and not beam["stopped"]
    early = generate_text(ws, reference_run, "the", max_new_tokens=25, mode="greedy", checkpoint="step-00000000")
    assert early["checkpoint"] == "step-00000000" and early["step"] == 0 and early["text"] != greedy["text"]


def test_generation_ends_where_the_training_documents_end(tmp_path):
    """Documents end with <|endoftext|> in the token files, so a model that learned them finishes its text there."""
    import json

    src = tmp_path / "greetings.jsonl"
    src.write_text("\n".join(json.dumps({"text": "hello there, old friend"}) for _ in range(400)) + "\n")
    with Workspace(tmp_path / "ws") as w:
        ds = w.import_dataset([src], name="greetings")
        cfg = tiny_config(max_iters=150, lr_decay_iters=150, eval_interval=150, learning_rate=1e-2, min_lr=1e-3)
        cfg.data.dataset = ds["id"]
        cfg.tokenizer.kind, cfg.tokenizer.vocab_size = "bytebpe", 300
        cfg.model.dropout = 0.0
        run_id, state, _ = _train(w, cfg)
        assert state == "finished"
        for mode in ("greedy", "beam"):
            out = generate_text(w, run_id, "hello", max_new_tokens=40, mode=mode, device="cpu")
            assert out["ended"] and not out["stopped"], (mode, out["text"])
            assert out["text"] == " there, old friend" and "<|endoftext|>" not in out["text"]
            assert out["n_tokens"] == len(out["token_ids"]) < 40


def test_a_run_stores_the_vocabulary_it_really_uses(tmp_path):
    """`--set tokenizer.tokenizer=ID` with the default size left 512 in the run's config for a 40-token vocabulary,
    and the Runs panel showed "Vocabulary size 512"."""
    from engine.config import preset
    from engine.store import Workspace
    from engine.run_setup import prepare_run

    ws = Workspace(tmp_path / "ws")
    ws.ensure_sample_dataset()
    tok = ws.train_tokenizer("sample", "char", 512)
    cfg = preset("tiny").with_overrides(["data.dataset=sample", f"tokenizer.tokenizer={tok['id']}"])
    assert cfg.tokenizer.vocab_size != tok["vocab_size"]
    run = prepare_run(ws, cfg)
    assert run["config"]["tokenizer"]["vocab_size"] == tok["vocab_size"]
    assert run["config"]["tokenizer"]["kind"] == "char"
