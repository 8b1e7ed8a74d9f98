"""studio.state.attention (no Qt): decoding the engine's snapshots, summaries, windows, the history of a run."""

import numpy as np
import pytest

from studio.state import attention as st


def causal_attention(L, H, T, seed=0):
    """Random causal attention [L, H, T, T]: rows sum to 1, nothing above the diagonal."""
    rng = np.random.default_rng(seed)
    a = np.tril(rng.random((L, H, T, T)) ** 3)
    return (a / a.sum(-1, keepdims=True)).astype(np.float32)


def encode(attn, tokens=None, step=0, layout="tril", labels=None, kind="text"):
    """The engine's wire format (engine.attention_probes.encode_snapshot), written out with numpy for the studio's tests."""
    L, H, T, _ = attn.shape
    half = np.asarray(attn).astype("<f2")
    if layout == "tril":
        r, c = np.tril_indices(T)
        half = half[..., r, c]
    blob = np.ascontiguousarray(half).tobytes()
    tokens = tokens or [f"t{i}" for i in range(T)]
    meta = {
        "format": 1,
        "step": step,
        "dtype": "<f2",
        "probes": [
            {
                "kind": kind,
                "text": "".join(tokens),
                "tokens": tokens,
                "ids": list(range(T)),
                "n_dropped": 0,
                "chars_cut": 0,
                "shape": [L, H, T, T],
                "layout": layout,
                "nbytes": len(blob),
            }
        ],
    }
    if labels is not None:
        meta["heads"] = {"scores": {}, "labels": labels}
    return meta, [blob]


def test_reads_what_the_engines_encoder_writes():
    inspect = pytest.importorskip("engine.attention_probes")
    causal = causal_attention(2, 3, 9)
    full = np.random.default_rng(1).random((1, 2, 5, 5)).astype(np.float32)  # not causal: kept whole
    snapshot = [
        {"kind": "text", "text": "abcdefghi", "tokens": list("abcdefghi"), "ids": list(range(9)), "attn": causal},
        {
            "kind": "induction",
            "text": "a random sequence",
            "tokens": list("vwxyz"),
            "ids": [5, 6, 7, 8, 9],
            "attn": full,
        },
    ]
    labels = [
        [{"label": "self", "score": 0.5, "explanation": "Looks at the current token itself.", "scores": {"self": 0.5}}]
        * 3
    ] * 2
    meta, blobs = inspect.encode_snapshot(
        snapshot[:1], {"scores": {"self": np.full((2, 3), 0.5)}, "labels": labels}, step=40
    )
    assert meta["probes"][0]["layout"] == "tril"
    snap = st.decode_snapshot(meta, blobs, run=7)
    assert (snap.step, snap.run, snap.n_layer, snap.n_head) == (40, 7, 2, 3)
    probe = snap.probes[0]
    assert probe.tokens == list("abcdefghi") and probe.attn.dtype == np.float32
    np.testing.assert_array_equal(probe.attn, causal.astype(np.float16).astype(np.float32))
    assert snap.label(1, 2)["label"] == "self" and snap.label(5, 0) is None
    assert snap.explanations() == {"self": "Looks at the current token itself."}
    assert snap.scores["self"].shape == (2, 3)

    meta, blobs = inspect.encode_snapshot(snapshot[1:])
    assert meta["probes"][0]["layout"] == "full"
    probe = st.decode_probes(meta, blobs)[0]
    np.testing.assert_array_equal(probe.attn, full.astype(np.float16).astype(np.float32))
    assert probe.kind == "induction" and probe.title().startswith("Induction test")


def test_damaged_or_unknown_snapshots_give_one_readable_line():
    meta, blobs = encode(causal_attention(1, 2, 4))
    with pytest.raises(st.AttentionError, match="damaged: 8 bytes"):
        st.decode_snapshot(meta, [blobs[0][:8]])
    with pytest.raises(st.AttentionError, match="1 probes but 0 arrays"):
        st.decode_snapshot(meta, [])
    with pytest.raises(st.AttentionError, match="unknown attention snapshot format 99"):
        st.decode_snapshot(dict(meta, format=99), blobs)


def test_mean_over_heads_on_a_hand_built_array():
    attn = np.zeros((1, 2, 2, 2), np.float32)
    attn[0, 0] = [[1, 0], [1, 0]]
    attn[0, 1] = [[1, 0], [0, 1]]
    np.testing.assert_allclose(st.mean_over_heads(attn)[0], [[1, 0], [0.5, 0.5]])


def test_rollout_on_a_hand_built_array():
    attn = np.zeros((2, 2, 2, 2), np.float32)
    attn[0, :] = [[1, 0], [0.5, 0.5]]  # layer 0: both heads alike
    attn[1, 0] = [[1, 0], [1, 0]]  # layer 1: mean [[1, 0], [0.5, 0.5]]
    attn[1, 1] = [[1, 0], [0, 1]]
    r = st.rollout(attn)
    # layer 0: 0.5 * A + 0.5 * I
    np.testing.assert_allclose(r[0], [[1, 0], [0.25, 0.75]])
    # layer 1: (0.5 * mean + 0.5 * I) @ rollout[0] = [[1, 0], [0.25, 0.75]] @ [[1, 0], [0.25, 0.75]]
    np.testing.assert_allclose(r[1], [[1, 0], [0.4375, 0.5625]])
    big = st.rollout(causal_attention(4, 3, 12))
    np.testing.assert_allclose(big.sum(-1), 1.0, rtol=1e-5)  # still a distribution over the input tokens
    assert not np.triu(big, 1).any()  # and still causal


def test_token_window_caps_and_clamps():
    assert st.token_window(10, 64) == (0, 10)
    assert st.token_window(300, 64) == (0, 64)
    assert st.token_window(300, 64, start=100) == (100, 164)
    assert st.token_window(300, 64, start=290) == (236, 300)  # never a short last window
    assert st.token_window(300, 64, start=-5) == (0, 64)


def test_thumbnails_keep_sharp_lines():
    eye = np.broadcast_to(np.eye(256, dtype=np.float32), (2, 3, 256, 256))
    small = st.downsample_max(eye, 64)
    assert small.shape == (2, 3, 64, 64)
    assert small.diagonal(axis1=-2, axis2=-1).min() == 1.0  # the block maximum keeps the diagonal bright
    odd = st.downsample_max(np.ones((1, 1, 130, 130)), 64)  # 130 is not a multiple of the block
    assert odd.shape == (1, 1, 44, 44) and odd.min() == 1.0


def test_history_fetches_decodes_and_forgets_within_its_budget(monkeypatch):
    h = st.AttentionHistory(run=3)
    h.set_steps([0, 50, 100])
    assert h.steps == [0, 50, 100] and h.get(50) is None and not h.has(50)
    a0, a1 = causal_attention(2, 2, 8, seed=0), causal_attention(2, 2, 8, seed=1)
    h.add(50, *encode(a0, step=50))
    snap = h.get(50)
    assert snap.step == 50 and snap.run == 3 and h.get(50) is snap  # decoded once, then cached
    h.add(150, *encode(a1, step=150))  # a live broadcast: a new step
    assert h.steps == [0, 50, 100, 150] and h.latest == 150
    h.add(50, *encode(a1, step=50))  # a re-run step replaces the old one
    np.testing.assert_array_equal(h.get(50).probes[0].attn, a1.astype(np.float16).astype(np.float32))
    assert h.nearest(120) == 100 and h.nearest(125) == 100 and h.nearest(-9) == 0

    one = len(encode(a0)[1][0])
    monkeypatch.setattr(st, "HISTORY_BUDGET_BYTES", 2 * one)
    for step in (200, 250):
        h.add(step, *encode(a0, step=step))
    assert h.nbytes <= 2 * one and h.has(250)  # the newest is always kept
    assert not h.has(50) and 50 in h.steps  # an old one is dropped, to be fetched again
