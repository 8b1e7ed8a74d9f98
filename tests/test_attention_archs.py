"""Attention on every architecture: an encoder's maps are whole (weight above the diagonal, stored "full"), an
encoder-decoder's snapshot has its encoder, decoder and cross-attention, with the right shapes and labels; the
Attention panel offers the part choice for an encoder-decoder run only and draws an encoder's map unmasked. The
GUI tests train tiny encoder and encoder-decoder runs through the real engine."""

import json

import numpy as np
import pytest
import torch

from engine import attention_probes as ins
from engine import protocol as p
from engine.config import ModelConfig
from engine.model import build_model
from engine.tokenizer import train_tokenizer
from studio.widgets.heatmap import clip_label

TEXT = "the cat sat on the mat. the dog ran to the log.\n" * 30


@pytest.fixture(scope="module")
def char_tok(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return train_tokenizer("char", 512, [path])


def model_of(tok, arch, **kw):
    torch.manual_seed(0)
    cfg = dict(arch=arch, n_layer=2, n_head=2, n_embd=16, block_size=24)
    cfg.update(kw)
    return build_model(ModelConfig(**cfg), tok.get_vocab_size())


def above_diagonal_share(attn) -> float:
    """The mean weight each query puts on the keys after it."""
    return float(np.triu(np.asarray(attn, np.float32), 1).sum(-1).mean())


# ---------------------------------------------------------------------------------------------- the engine


def test_an_encoder_snapshot_is_stored_whole_and_looks_both_ways(char_tok):
    model = model_of(char_tok, "encoder")
    snap, heads = ins.probe_model(model, char_tok, ["the cat sat", "on the mat"])
    assert [(pr["kind"], pr["part"], pr["causal"]) for pr in snap] == [("text", "self", False)] * 2  # no induction
    assert above_diagonal_share(snap[0]["attn"]) > 0.2  # rows put weight on later tokens
    assert np.allclose(snap[0]["attn"].astype(np.float32).sum(-1), 1, atol=3e-3)
    assert {"previous-token", "next-token", "self", "local"} <= set(heads["scores"]) and "parts" not in heads
    assert "before or after" in heads["labels"][0][0]["explanation"] or heads["labels"][0][0]["label"] != "local"
    meta, blobs = ins.encode_snapshot(snap, heads, step=7)
    assert [pr["layout"] for pr in meta["probes"]] == ["full", "full"]
    assert [pr["part"] for pr in meta["probes"]] == ["self", "self"]
    back = ins.decode_snapshot(json.loads(json.dumps(meta)), blobs)
    assert np.abs(back[0]["attn"].astype(np.float32) - snap[0]["attn"]).max() == 0


def test_an_encoders_token_row_is_its_row_of_the_whole_map(char_tok):
    model = model_of(char_tok, "encoder")
    ids = char_tok.encode("the cat sat on").ids
    row, keys = ins.token_attention(model, ids, 3)
    assert keys == ids and np.allclose(row, ins.capture_attention(model, ids)[:, :, 3, :], atol=1e-6)
    assert row[:, :, 4:].sum() > 0  # it looks at the tokens after it too
    long = char_tok.encode(TEXT[:60]).ids
    row, keys = ins.token_attention(model, long, 50)  # the 24 tokens around it
    assert len(keys) == 24 and keys == long[36:60] and np.allclose(row.sum(-1), 1, atol=1e-5)
    with pytest.raises(ins.InspectError, match="Attention panel"):
        ins.token_attention(model_of(char_tok, "encoder-decoder"), ids, 1)


def test_an_encoder_decoder_snapshot_has_three_parts_of_the_right_shapes(char_tok):
    model = model_of(char_tok, "encoder-decoder", n_layer=2, n_decoder_layer=1)
    start = char_tok.token_to_id("[UNK]")
    snap, heads = ins.probe_model(model, char_tok, ["the cat sat"], start_id=start)
    enc, dec, cross = snap
    S = len(char_tok.encode("the cat sat").ids)
    assert [pr["part"] for pr in snap] == ["encoder", "decoder", "cross"]
    assert enc["attn"].shape == (2, 2, S, S) and dec["attn"].shape == (1, 2, S + 1, S + 1)
    assert cross["attn"].shape == (1, 2, S + 1, S)  # decoder tokens by encoder tokens
    assert dec["ids"] == [start, *enc["ids"]] and cross["query_ids"] == dec["ids"] and cross["ids"] == enc["ids"]
    assert cross["tokens"] == enc["tokens"] and cross["query_tokens"] == dec["tokens"]
    assert above_diagonal_share(enc["attn"]) > 0.2 and above_diagonal_share(dec["attn"]) == 0
    assert np.allclose(cross["attn"].astype(np.float32).sum(-1), 1, atol=3e-3)
    parts = heads["parts"]
    assert set(parts) == {"encoder", "decoder", "cross"} and heads["labels"] == parts["encoder"]["labels"]
    assert len(parts["decoder"]["labels"]) == 1 and set(parts["cross"]["scores"]) == {"aligned"}
    assert {cell["label"] for row in parts["cross"]["labels"] for cell in row} <= {"aligned", "mixed"}
    assert "next-token" in parts["encoder"]["scores"] and "next-token" not in parts["decoder"]["scores"]

    meta, blobs = ins.encode_snapshot(snap, heads, step=3)
    wire = json.loads(json.dumps(meta, allow_nan=False))
    assert [(pr["part"], pr["layout"]) for pr in wire["probes"]] == [
        ("encoder", "full"),
        ("decoder", "tril"),
        ("cross", "full"),
    ]
    assert wire["probes"][2]["shape"] == [1, 2, S + 1, S] and wire["probes"][2]["query_tokens"] == dec["tokens"]
    assert set(wire["heads"]["parts"]) == {"encoder", "decoder", "cross"}
    for before, after in zip(snap, ins.decode_snapshot(wire, blobs)):
        assert after["part"] == before["part"] and np.array_equal(after["attn"], before["attn"])


def test_the_decoder_reads_a_given_target_and_the_cli_arrays_follow(char_tok, tmp_path):
    model = model_of(char_tok, "encoder-decoder")
    snap = ins.attention_snapshot(model, char_tok, ["the cat"], targets=["a dog ran"], start_id=0)
    enc, dec, cross = snap
    assert dec["ids"] == [0, *char_tok.encode("a dog ran").ids] and cross["attn"].shape == (2, 2, 10, 7)
    attn, tokens = ins.attention_for_text(model, char_tok, "the cat")
    extra = ins.attention_extra_for_text(model, char_tok, "the cat")
    assert attn.shape == (2, 2, 7, 7) and extra["cross_attn"].shape == (2, 2, 8, 7)
    z = np.load(ins.save_npz(tmp_path / "a.npz", attn, tokens, extra=extra), allow_pickle=False)
    assert z["decoder_attn"].shape == (2, 2, 8, 8) and len(z["target_tokens"]) == 8
    assert ins.attention_extra_for_text(model_of(char_tok, "decoder"), char_tok, "the cat") == {}


def test_hand_built_next_token_and_aligned_heads_are_labelled():
    T = 8
    nxt = np.zeros((1, 1, T, T), np.float32)
    nxt[0, 0, np.arange(T - 1), np.arange(1, T)] = 1
    nxt[0, 0, T - 1, T - 1] = 1
    labels = ins.label_heads(ins.score_heads(nxt, bidirectional=True))
    assert labels[0][0]["label"] == "next-token" and labels[0][0]["score"] == 1.0
    assert "next-token" not in ins.score_heads(nxt[..., ::-1, ::-1].copy())  # a decoder's heads as before
    diag = np.zeros((1, 1, 9, 6), np.float32)
    diag[0, 0, np.arange(9), np.rint(np.arange(9) * 5 / 8).astype(int)] = 1
    cross = ins.label_heads(ins.score_cross(diag))
    assert cross[0][0]["label"] == "aligned" and "same place" in cross[0][0]["explanation"]
    flat = np.full((1, 1, 9, 30), 1 / 30, np.float32)
    assert ins.label_heads(ins.score_cross(flat))[0][0]["label"] == "mixed"


# ------------------------------------------------------------------------------------------------ the panel

TRAIN = dict(
    batch_size=8,
    max_iters=20,
    eval_interval=10,
    eval_iters=2,
    log_interval=5,
    warmup_iters=2,
    lr_decay_iters=20,
    learning_rate=3e-3,
    min_lr=3e-4,
    checkpoint_interval=20,
    probe_attention=True,
)


def train_run(s, arch: str, objective: str) -> int:
    """A tiny run of `arch` trained by the real engine; its id."""
    from tests.conftest import wait_until

    s.update_config("model", arch=arch, n_layer=1, n_decoder_layer=0, n_head=2, n_embd=32, block_size=32)
    s.update_config("objective", name=objective)
    s.update_config("tokenizer", kind="char", tokenizer=None)  # a vocabulary of its own, with the tokens it needs
    replies, ended = [], []

    def on_status(st):
        if replies and replies[0].ok and st.run == replies[0].run["id"] and st.state in ("finished", "failed"):
            ended.append(st)

    s.statusReceived.connect(on_status)
    s.request(p.TrainRequest(config=s.config.to_dict()), replies.append)
    wait_until(lambda: bool(ended) or (replies and not replies[0].ok), 120, f"the tiny {arch} run to finish")
    s.statusReceived.disconnect(on_status)
    assert replies[0].ok, replies[0].error
    assert ended[0].state == "finished", ended[0].message
    return replies[0].run["id"]


@pytest.fixture(scope="module")
def runs(module_session):
    from tests.conftest import wait_until

    s = module_session
    wait_until(lambda: bool(s.workspace.get("datasets")), 20, "the sample dataset")
    s.update_config("tokenizer", kind="char")
    s.update_config("train", **TRAIN)
    return s, {
        "encoder": train_run(s, "encoder", "masked_lm"),
        "encoder-decoder": train_run(s, "encoder-decoder", "denoising"),
    }


def opened(qtbot, s, run_id):
    from studio.panels.attention import AttentionPanel

    w = AttentionPanel(s)
    qtbot.addWidget(w)
    w.resize(1300, 850)
    w.show()
    w.run_combo.setCurrentIndex(w.run_combo.findData(run_id))
    qtbot.waitUntil(lambda: w.history.run == run_id and w.history.latest is not None and not w.fetching, timeout=15_000)
    w.render_now()
    return w


def test_an_encoder_run_is_drawn_whole_without_a_part_choice(qtbot, runs):
    s, ids = runs
    w = opened(qtbot, s, ids["encoder"])
    assert not w.part_combo.isVisible() and w.shown.parts == ["self"]
    probe = w.shown.probes[0]
    assert not probe.causal and probe.layout == "full"
    m = w.heatmap.matrix
    assert above_diagonal_share(m) > 0.1 and w.heatmap.q_tokens == w.heatmap.k_tokens
    assert "before and after" in w.heatmap.toolTip()
    # The thumbnail is lit above its diagonal too, not a dark triangle.
    t = w.grid.thumb
    cell = w.grid.cell_pixels(0, 0) & 0xFFFFFF
    zero = int(w.grid._lut32[0]) & 0xFFFFFF
    upper = cell[np.triu_indices(t, 1)]
    assert (upper != zero).mean() > 0.5
    assert "next-token" in w.legend.shown and "induction" not in w.legend.shown


def test_an_encoder_decoder_run_offers_encoder_decoder_and_cross_attention(qtbot, runs):
    s, ids = runs
    w = opened(qtbot, s, ids["encoder-decoder"])
    assert w.part_combo.isVisible()
    assert [w.part_combo.itemData(i) for i in range(w.part_combo.count())] == ["encoder", "decoder", "cross"]
    assert [w.part_combo.itemText(i) for i in range(3)] == [
        "Encoder self-attention",
        "Decoder self-attention",
        "Cross-attention",
    ]
    assert w.shown.parts == ["encoder"] and above_diagonal_share(w.heatmap.matrix) > 0.1

    w.part_combo.setCurrentIndex(1)  # the decoder: causal
    w.render_now()
    assert w.shown.probes[0].part == "decoder" and above_diagonal_share(w.heatmap.matrix) == 0
    assert w.heatmap.title.startswith("Decoder self-attention · Layer 0")

    w.part_combo.setCurrentIndex(2)  # cross: decoder tokens by encoder tokens
    w.render_now()
    probe = w.shown.probes[0]
    Tt, S = probe.shape[-2:]
    assert probe.part == "cross" and Tt == min(S + 1, 32)  # the start token, then the text, to the context
    assert w.heatmap.matrix.shape == (min(Tt, 64), min(S, 64))
    assert w.heatmap.q_tokens == probe.query_tokens[:64] and w.heatmap.k_tokens == probe.tokens[:64]
    assert "decoder" in w.heatmap.plot.getAxis("left").labelText
    assert "encoder" in w.heatmap.plot.getAxis("bottom").labelText
    assert w.head_combo.count() == w.shown.n_head + 1  # the mean; no rollout across two texts
    assert {c["label"] for row in w.shown.labels for c in row} <= {"aligned", "mixed"}
    w.tabs.setCurrentIndex(1)
    w.render_now()
    assert w.head_view.tokens == [clip_label(t, 14) for t in probe.query_tokens[:64]]
    assert w.head_view.cross and len(w.head_view.key_tokens) == min(S, 64)

    # A typed text is read by both stacks; the part chosen stays chosen.
    w.tabs.setCurrentIndex(0)
    w.text_edit.setText("the cat sat")
    w.look_button.click()
    qtbot.waitUntil(lambda: w.custom is not None or w.message.level == "error", timeout=15_000)
    assert w.custom is not None, w.message.text()
    w.render_now()
    assert w.custom.parts == ["encoder", "decoder", "cross"] and w.shown.probes[0].part == "cross"
    assert "".join(w.heatmap.k_tokens).replace("␣", " ") == "the cat sat"
