"""Attention and the playground's requests through the real engine process (tests/engine_harness.py, no Qt):
snapshots broadcast while training and asked for later, attention of a typed text, a token's attention row,
checkpoints to compare, generation modes with token details. Arrays are decoded with numpy alone, as the
studio does."""

import numpy as np
import pytest

from engine import protocol as p
from engine.config import preset
from engine.attention_probes import capture_attention
from engine.store import Workspace
from engine.run_generation import load_model_for_run
from tests.engine_harness import EngineProcess

STEPS = [0, 20, 40]


def decode(meta: dict, blobs) -> list[np.ndarray]:
    """float32 [L, H, T, T] per probe from the wire, following the Attention docstring."""
    assert meta["dtype"] == "<f2" and len(meta["probes"]) == len(blobs)
    out = []
    for probe, blob in zip(meta["probes"], blobs):
        L, H, T, _ = probe["shape"]
        flat = np.frombuffer(blob, "<f2").astype(np.float32)
        if probe["layout"] == "tril":
            attn = np.zeros((L, H, T, T), np.float32)
            r, c = np.tril_indices(T)
            attn[..., r, c] = flat.reshape(L, H, -1)
        else:
            attn = flat.reshape(L, H, T, T)
        assert len(probe["tokens"]) == T
        out.append(attn)
    return out


def rows_sum_to_one(attn: np.ndarray) -> bool:
    return np.allclose(attn.sum(-1), 1.0, atol=3e-3) and not np.triu(attn, 1).any()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An engine that has trained a tiny run to step 40, with the attention broadcasts it sent meanwhile."""
    root = tmp_path_factory.mktemp("attention")
    corpus = root / "rhymes.txt"
    corpus.write_text("the cat sat on the mat and the dog ran to the log.\n" * 200, encoding="utf-8")
    eng = EngineProcess(root / "ws")
    try:
        assert eng.request(p.HelloRequest()).ok
        ds = eng.request(p.ImportRequest(paths=[str(corpus)], name="rhymes"))
        tok = eng.request(p.TokenizerTrainRequest(dataset=ds.dataset["id"], tokenizer_kind="char"))
        cfg = preset("tiny").with_overrides(
            [
                f"data.dataset={ds.dataset['id']}",
                f"tokenizer.tokenizer={tok.tokenizer['id']}",
                "model.n_layer=2",
                "model.n_embd=32",
                "model.n_head=2",
                "model.block_size=32",
                "train.batch_size=8",
                "train.max_iters=40",
                "train.lr_decay_iters=40",
                "train.eval_interval=20",
                "train.eval_iters=2",
                "train.device=cpu",
            ]
        )
        start = eng.request(p.TrainRequest(config=cfg.to_dict()))
        assert start.ok, start.error
        eng.wait_for(lambda m: isinstance(m, p.Status) and m.state == "finished", timeout=120)
        eng.pump(0.3)
        broadcasts = [m for m in eng.inbox if isinstance(m, p.Attention)]
        yield eng, start.run["id"], broadcasts, root / "ws"
    finally:
        eng.close()


def test_training_broadcasts_a_snapshot_at_step_0_and_every_evaluation(trained):
    eng, run_id, broadcasts, _ = trained
    assert [(m.run, m.step) for m in broadcasts] == [(run_id, s) for s in STEPS]
    for m in broadcasts:
        assert m.meta["step"] == m.step and m.meta["source"] == "training"
        assert [pr["kind"] for pr in m.meta["probes"]] == ["text", "text", "induction"]
        assert all(rows_sum_to_one(a) for a in decode(m.meta, m.buffers))
        labels = m.meta["heads"]["labels"]
        assert len(labels) == 2 and all(len(layer) == 2 and layer[0]["label"] for layer in labels)


def test_attention_request_replays_stored_snapshots(trained):
    eng, run_id, broadcasts, _ = trained
    latest = eng.request(p.AttentionRequest(run=run_id))
    assert latest.ok, latest.error
    assert latest.step == 40 and latest.steps == STEPS and latest.run == run_id
    assert latest.meta == broadcasts[-1].meta and latest.buffers == broadcasts[-1].buffers
    first = eng.request(p.AttentionRequest(run=run_id, step=0))
    assert first.ok and first.step == 0 and first.buffers == broadcasts[0].buffers
    # The untrained model looks evenly at everything before; training changed that.
    start, end = decode(first.meta, first.buffers)[0], decode(latest.meta, latest.buffers)[0]
    T = start.shape[-1]
    assert np.abs(start[:, :, -1] - 1 / T).max() < 0.005
    assert np.abs(end[:, :, -1] - 1 / T).max() > 2 * np.abs(start[:, :, -1] - 1 / T).max()

    missing = eng.request(p.AttentionRequest(run=run_id, step=7))
    assert not missing.ok and "step 7" in missing.error and "0, 20, 40" in missing.error
    assert not eng.request(p.AttentionRequest(run=999)).ok


def test_attention_of_a_typed_text_on_a_chosen_checkpoint(trained):
    eng, run_id, _, ws_path = trained
    text = "the dog sat on the log"
    reply = eng.request(p.AttentionRequest(run=run_id, text=text, checkpoint="step-00000020", max_tokens=16))
    assert reply.ok, reply.error
    assert reply.meta["source"] == "text" and reply.meta["checkpoint"] == "step-00000020"
    assert reply.step == 20 and reply.steps == STEPS
    probe = reply.meta["probes"][0]
    assert probe["kind"] == "text" and "".join(probe["tokens"]) == text[-16:].replace(" ", "␣")
    attn = decode(reply.meta, reply.buffers)[0]
    with Workspace(ws_path) as ws:
        model, _, _ = load_model_for_run(ws, run_id, "cpu", "step-00000020")
        exact = capture_attention(model, probe["ids"])
    assert attn.shape == exact.shape == (2, 2, 16, 16)
    assert np.abs(attn - exact).max() <= 5e-4  # float16 on the wire
    empty = eng.request(p.AttentionRequest(run=run_id, text=""))
    assert not empty.ok and "no tokens" in empty.error


def test_generate_with_details_then_a_tokens_attention_row(trained):
    eng, run_id, _, ws_path = trained
    gen = p.GenerateRequest(run=run_id, prompt="the cat", max_new_tokens=12, mode="greedy", details=True)
    reply = eng.request(gen)
    assert reply.ok, reply.error
    tokens = eng.events(gen.id, p.Token)
    assert [t.token_id for t in tokens] == reply.token_ids and len(tokens) == 12
    assert "".join(t.text for t in tokens) == reply.text
    assert "".join(t["text"] for t in reply.prompt_tokens) == "the cat"
    for t in tokens:
        probs = [pr for _, pr in t.top]
        assert 0 < t.prob <= 1 and t.entropy >= 0 and probs == sorted(probs, reverse=True)
        assert t.top[0][1] == pytest.approx(t.prob, rel=1e-6)  # greedy takes the likeliest

    ids = [t["id"] for t in reply.prompt_tokens] + reply.token_ids
    position = len(reply.prompt_tokens) + 4  # the fifth generated token
    row = eng.request(p.TokenAttentionRequest(run=run_id, ids=ids, position=position))
    assert row.ok, row.error
    L, H, K = row.shape
    assert (L, H, K) == (2, 2, position + 1) and len(row.tokens) == K and row.tokens[:3] == ["t", "h", "e"]
    got = np.frombuffer(row.buffers[0], "<f2").astype(np.float32).reshape(L, H, K)
    with Workspace(ws_path) as ws:
        model, _, _ = load_model_for_run(ws, run_id, "cpu")
        exact = capture_attention(model, ids)[:, :, position, : position + 1]
    assert np.abs(got - exact).max() <= 5e-4 and np.allclose(got.sum(-1), 1.0, atol=3e-3)
    bad = eng.request(p.TokenAttentionRequest(run=run_id, ids=ids, position=len(ids)))
    assert not bad.ok and "outside the sequence" in bad.error


def test_checkpoints_to_compare_and_beam_search(trained):
    eng, run_id, _, _ = trained
    listed = eng.request(p.CheckpointsRequest(run=run_id))
    assert listed.ok
    assert [(r["name"], r["step"]) for r in listed.rows] == [
        ("step-00000000", 0),
        ("step-00000020", 20),
        ("step-00000040", 40),
        ("latest", 40),
    ]
    assert listed.rows[1]["val_loss"] is not None and listed.rows[0]["val_loss"] is None

    texts = {}
    for name in ("step-00000000", "latest"):
        gen = p.GenerateRequest(run=run_id, checkpoint=name, prompt="the ", max_new_tokens=16, mode="greedy")
        texts[name] = eng.request(gen).text
    assert texts["step-00000000"] != texts["latest"]

    beam = p.GenerateRequest(run=run_id, prompt="the ", max_new_tokens=16, mode="beam", beam_width=1)
    reply = eng.request(beam)
    assert reply.ok and reply.text == texts["latest"]  # beam width 1 is greedy
    assert "".join(t.text for t in eng.events(beam.id, p.Token)) == reply.text
    wrong = eng.request(p.GenerateRequest(run=run_id, checkpoint="step-00000005", prompt="the"))
    assert not wrong.ok and "step-00000020" in wrong.error
    bad = eng.request(p.GenerateRequest(run=run_id, prompt="the", mode="beam", beam_width=0))
    assert not bad.ok and "beam_width" in bad.error
