"""studio.state.attention_view (no Qt, no window): which snapshot the Attention panel wants on screen as replies
and live snapshots come, where Play goes next, the typed text, the head opened large, and the .npz it saves."""

import io

import numpy as np

from engine import protocol as p
from studio.state.attention import decode_snapshot, mean_over_heads, rollout
from studio.state.attention_view import AttentionView, npz_arrays, window_text
from test_attention_state import causal_attention, encode


def reply(step, steps, attn=None, **kw):
    """An AttentionReply carrying the snapshot of `step` (none when attn is None: only the list of steps)."""
    if attn is None:
        return p.AttentionReply(parent="r", run=3, step=step, meta={}, steps=steps)
    meta, blobs = encode(attn, step=step, **kw)
    return p.AttentionReply(parent="r", run=3, step=step, meta=meta, steps=steps, buffers=tuple(blobs))


def broadcast(step, seed=0):
    meta, blobs = encode(causal_attention(1, 2, 6, seed=seed), step=step)
    return p.Attention(run=3, step=step, meta=meta, buffers=tuple(blobs))


def opened() -> AttentionView:
    view = AttentionView()
    view.open(3)
    return view


def test_the_latest_snapshot_is_shown_and_a_scrubbed_step_is_fetched():
    view = opened()
    assert view.where(False) == "no snapshots yet"
    view.fetch = ("r", None)
    assert view.where(False) == "fetching…"
    view.fetch = None
    assert view.take_reply(None, reply(200, [0, 100, 200], causal_attention(1, 2, 6))) is None
    assert view.step == 200 and view.history.steps == [0, 100, 200]
    assert view.where(False) == "step 200 (3 of 3)" and view.stored().step == 200
    view.step = 0  # the slider went back: not here yet
    assert view.where(False) == "step 0 (1 of 3) · fetching…" and view.stored() is None
    assert view.take_reply(0, reply(0, [0, 100, 200], causal_attention(1, 2, 6, seed=1))) is None
    assert view.step == 0 and view.stored().step == 0


def test_a_reply_without_the_wanted_snapshot_says_which_to_fetch():
    view = opened()
    assert view.take_reply(None, reply(300, [100, 300])) == 300  # only the list came: the latest is still to fetch
    view.take_reply(300, reply(300, [100, 300], causal_attention(1, 2, 6)))
    view.step = 100  # looking back: a newer list does not move it
    assert view.take_reply(None, reply(400, [100, 300, 400])) == 100 and view.step == 100


def test_live_snapshots_follow_the_end_but_not_someone_looking_back():
    view = opened()
    view.take_reply(None, reply(100, [0, 100], causal_attention(1, 2, 6)))
    view.take_broadcast(broadcast(150))
    assert view.step == 150 and view.following()
    view.step = 100
    view.take_broadcast(broadcast(200, seed=2))
    assert view.step == 100 and view.history.steps == [0, 100, 150, 200] and not view.following()
    view.open(4)  # another run: nothing of this one stays
    assert view.step is None and len(view.history) == 0 and view.history.run == 4


def test_play_starts_at_the_beginning_waits_for_fetches_and_stops_at_the_end():
    view = opened()
    assert view.play_tick() == ("stop", None)
    view.take_reply(None, reply(200, [0, 100, 200], causal_attention(1, 2, 6)))
    assert view.play_from() == 0  # at the end: play from the start
    view.step = 0
    assert view.play_from() is None
    assert view.play_tick() == ("wait", None)  # step 0 is still being fetched
    view.take_reply(0, reply(0, [0, 100, 200], causal_attention(1, 2, 6)))
    assert view.play_tick() == ("show", 100)
    view.step = 200
    assert view.play_tick() == ("stop", None)


def test_a_typed_text_comes_after_the_stored_probes():
    view = opened()
    view.take_reply(None, reply(100, [100], causal_attention(1, 2, 6), tokens=list("abcdef")))
    stored = view.stored()
    assert view.titles(stored) == ["abcdef"]
    meta, blobs = encode(causal_attention(1, 2, 3), tokens=list("cat"))
    view.set_custom(decode_snapshot(meta, blobs, step=100, run=3))
    assert view.custom.probes[0].kind == "custom"
    view.probe_titles = view.titles(stored)
    assert view.probe_titles == ["abcdef", "Your text: cat"]
    assert view.is_custom(1) and not view.is_custom(0)
    assert view.where(True) == "your text (not a stored snapshot)"
    snap, probe = view.current(1, stored)
    assert snap is view.custom and probe.tokens == list("cat")
    snap, probe = view.current(0, stored)
    assert snap is stored and probe.tokens == list("abcdef")
    assert view.current(0, None) == (None, None)


def test_the_head_opened_large_its_title_and_summaries():
    attn = causal_attention(2, 3, 8)
    labels = [[{"label": "previous-token", "score": 0.5 + 0.1 * h} for h in range(3)] for _ in range(2)]
    view = opened()
    view.take_reply(None, reply(300, [300], attn, labels=labels))
    snap = view.stored()
    probe = snap.probes[0]
    view.select(1, 2)
    assert view.title(snap, 1, False) == "Layer 1 · head 2 — previous-token 0.70 · step 300"
    np.testing.assert_allclose(view.matrix(probe, 1, 2), attn[1, 2], atol=1e-3)
    view.select(1, 3)  # past the heads: the mean, then rollout
    assert view.title(snap, 1, True) == "Layer 1 · mean of its heads · your text"
    half = attn.astype(np.float16)
    np.testing.assert_allclose(view.matrix(probe, 1, 3), mean_over_heads(half)[1], atol=1e-6)
    np.testing.assert_allclose(view.matrix(probe, 0, 4), rollout(half)[0], atol=1e-6)
    assert view.summaries(probe) is view.summaries(probe)  # computed once per probe
    view.fit_selection(2, 3)
    assert (view.layer, view.column) == (1, 3)
    view.fit_selection(1, 3)  # a smaller model: the first head instead
    assert (view.layer, view.column) == (0, 0)


def test_a_long_text_is_shown_through_a_window():
    view = opened()
    view.take_reply(None, reply(10, [10], causal_attention(1, 1, 200)))
    probe = view.stored().probes[0]
    assert window_text(probe, 64, 0) == ((0, 64), "tokens 0–63 of 200")
    assert window_text(probe, 64, 500) == ((136, 200), "tokens 136–199 of 200")
    probe.n_dropped = 3
    assert (
        window_text(probe, 64, 0)[1] == "tokens 0–63 of 200 (the 3 tokens before them did not fit the model's context)"
    )


def test_the_npz_holds_plain_arrays_that_load_without_pickle():
    attn = causal_attention(2, 2, 5)
    labels = [[{"label": "self", "score": 0.9}, {"label": "local", "score": 0.4}]] * 2
    view = opened()
    view.take_reply(None, reply(100, [100], attn, labels=labels))
    snap = view.stored()
    probe = snap.probes[0]
    buffer = io.BytesIO()
    np.savez(buffer, **npz_arrays(snap, probe, 3, view.summaries(probe)))
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as z:
        np.testing.assert_allclose(z["attn"], attn.astype(np.float16))
        assert list(z["tokens"]) == [f"t{i}" for i in range(5)] and int(z["step"]) == 100 and int(z["run"]) == 3
        assert z["labels"][0, 1] == "local" and np.isclose(z["label_scores"][1, 0], 0.9)
        assert z["mean"].shape == z["rollout"].shape == (2, 5, 5)
