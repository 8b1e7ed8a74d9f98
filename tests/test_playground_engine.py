"""The playground's engine side on tiny runs trained through the real loop in a real workspace: fill-mask on a
masked-LM encoder, infilling (T5 sentinels, fill-in-the-middle, masks), text to text on an encoder-decoder (its
cache changes nothing), a prefix LM's prompt read both ways, pair scores, and the message each kind of run gets
for what it cannot do."""

import pytest

from engine.config import RunConfig
from engine.generate import GenerationError, stream_steps
from engine.objectives.base import decoder_start_id
from engine.playground_infer import PlaygroundError, fill_mask, infill, mask_lines, score_pair, split_masks
from engine.run_generation import generate_text, load_run
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training

LINE = "to be or not to be, that is the question.\n"


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("playground")
    (root / "hamlet.txt").write_text(LINE * 300, encoding="utf-8")
    with Workspace(root / "ws") as w:
        w.import_dataset([root / "hamlet.txt"], "hamlet", 0.1)
        yield w


def _run(ws, arch: str, objective: str, steps: int = 20, **model) -> int:
    """A tiny run of `objective` on `arch`, trained `steps` steps on the repeated line; its id."""
    steps_cfg = {"max_iters": steps, "lr_decay_iters": steps, "eval_interval": steps, "warmup_iters": 10}
    cfg = RunConfig.from_dict(
        {
            "data": {"dataset": "hamlet"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"arch": arch, "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32, **model},
            "objective": {"name": objective},
            "train": {
                "batch_size": 32,
                "learning_rate": 1e-2,
                "min_lr": 1e-3,
                "weight_decay": 0.0,
                "eval_iters": 2,
                "log_interval": 50,
                "device": "cpu",
                "seed": 1,
                **steps_cfg,
            },
        }
    )
    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=lambda event: None) == "finished"
    return run["id"]


@pytest.fixture(scope="module")
def masked_run(ws):
    # RoPE: relative positions, which a tiny encoder learns to read within a few hundred steps.
    return _run(ws, "encoder", "masked_lm", 400, pos_encoding="rope")


@pytest.fixture(scope="module")
def decoder_run(ws):
    return _run(ws, "decoder", "causal_lm")


@pytest.fixture(scope="module")
def t5_run(ws):
    return _run(ws, "encoder-decoder", "span_corruption")


# ------------------------------------------------------------------------------------------------ fill mask


def test_fill_mask_ranks_the_hidden_letter_first(ws, masked_run):
    out = fill_mask(ws, masked_run, "to be or not to [MASK]e, that is the qu[MASK]stion.", top_k=3, device="cpu")
    assert [m["candidates"][0][0] for m in out["masks"]] == ["b", "e"]
    assert out["text"] == "to be or not to be, that is the question."
    for m in out["masks"]:
        probs = [p for _, p in m["candidates"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert out["tokens"][m["position"]] == "[MASK]"  # the position indexes the tokens the model read
    assert out["checkpoint"] == "latest" and out["step"] == 400
    lines = mask_lines(out["masks"])
    assert len(lines) == 2 and lines[0].startswith("[MASK] 1: b ") and lines[0].count(" %") == 3


def test_fill_mask_reads_a_text_longer_than_the_context_around_its_masks(ws, masked_run):
    text = LINE.strip() + " " + "to be or not to [MASK]e, that is the question."
    out = fill_mask(ws, masked_run, text, top_k=2, device="cpu")
    assert len(out["tokens"]) == 32 and out["masks"][0]["candidates"][0][0] == "b"
    with pytest.raises(PlaygroundError, match="put them closer together"):
        fill_mask(ws, masked_run, "[MASK]" + LINE * 2 + "[MASK]", device="cpu")


def test_a_text_without_a_mask_and_a_bad_top_k_get_clear_messages(ws, masked_run):
    with pytest.raises(PlaygroundError, match=r"no \[MASK\]: type \[MASK\] where a word is missing"):
        fill_mask(ws, masked_run, "to be or not to be", device="cpu")
    with pytest.raises(PlaygroundError, match="top_k"):
        fill_mask(ws, masked_run, "to [MASK]", top_k=0, device="cpu")


def test_the_vocabulary_s_own_mask_token_and_typed_mask_both_count():
    assert split_masks("a [MASK] b <mask> c", "<mask>") == ["a ", " b ", " c"]
    assert split_masks("a [MASK] b", "[MASK]") == ["a ", " b"]


def test_runs_that_do_not_fill_masks_say_what_they_do_instead(ws, decoder_run, t5_run):
    with pytest.raises(PlaygroundError, match="decoder trained with causal language modelling.*use Continue a text"):
        fill_mask(ws, decoder_run, "to [MASK]", device="cpu")
    with pytest.raises(PlaygroundError, match="encoder-decoder.*use Infill or Text to text"):
        fill_mask(ws, t5_run, "to [MASK]", device="cpu")


def test_an_encoder_does_not_write_text_it_fills_in_blanks(ws, masked_run):
    with pytest.raises(GenerationError, match="an encoder fills in blanks.*use Fill mask"):
        generate_text(ws, masked_run, "to be", max_new_tokens=5, device="cpu")
    with pytest.raises(PlaygroundError, match="use Fill mask"):
        score_pair(ws, masked_run, "to be", "or not", device="cpu")


# ------------------------------------------------------------------------------------------------- infilling


def test_a_masked_lm_run_fills_a_gap_with_its_masks(ws, masked_run):
    out = infill(ws, masked_run, ["to be or not to ", "e, that is the question."], gap_tokens=1, device="cpu")
    assert out["fills"] == ["b"] and out["text"] == "to be or not to be, that is the question."
    sampled = infill(
        ws, masked_run, ["to be or ", " to be"], gap_tokens=3, mode="sample", temperature=0.5, seed=0, device="cpu"
    )
    assert len(sampled["fills"][0]) == 3 and sampled["text"] == "to be or " + sampled["fills"][0] + " to be"


def test_an_encoder_decoder_fills_each_gap_after_its_sentinel(ws, t5_run):
    out = infill(ws, t5_run, ["to be or ", " to be, that ", " the"], max_new_tokens=4, device="cpu")
    assert len(out["fills"]) == 2 and all(len(f) <= 4 for f in out["fills"])
    assert out["text"] == "to be or " + out["fills"][0] + " to be, that " + out["fills"][1] + " the"
    with pytest.raises(PlaygroundError, match="the text with its gaps is 85 tokens, more than the 32"):
        infill(ws, t5_run, [LINE, LINE], device="cpu")


def test_a_fill_in_the_middle_decoder_writes_each_middle(ws):
    fim = _run(ws, "decoder", "span_corruption")
    out = infill(ws, fim, ["to be or ", " to be, that is ", "."], max_new_tokens=5, device="cpu")
    assert len(out["fills"]) == 2 and all(len(f) <= 5 for f in out["fills"])
    assert out["text"] == "to be or " + out["fills"][0] + " to be, that is " + out["fills"][1] + "."


def test_infill_needs_a_gap_and_a_run_that_learned_to_fill(ws, decoder_run, masked_run):
    with pytest.raises(PlaygroundError, match="mark at least one gap"):
        infill(ws, masked_run, ["no gap here"], device="cpu")
    with pytest.raises(PlaygroundError, match="Infill needs a run trained with span corruption.*Continue a text"):
        infill(ws, decoder_run, ["a ", " b"], device="cpu")


# --------------------------------------------------------------------------------------------- text to text


def test_encoder_decoder_generation_with_the_cache_equals_without(ws, t5_run):
    loaded = load_run(ws, t5_run, "cpu")
    ids = loaded.tok.encode("to be or not").ids
    start = decoder_start_id(loaded.specials)
    for mode, seed in (("greedy", None), ("sample", 3)):
        kw = dict(max_new_tokens=40, mode=mode, temperature=1.0, seed=seed, start_id=start)
        cached = [s.token for s in stream_steps(loaded.model, ids, use_cache=True, **kw)]
        uncached = [s.token for s in stream_steps(loaded.model, ids, use_cache=False, **kw)]
        assert cached == uncached and len(cached) == 32  # the decoder writes at most its context


def test_an_encoder_decoder_run_writes_an_output_for_its_prompt(ws, t5_run):
    streamed = []
    out = generate_text(
        ws, t5_run, "to be or not", max_new_tokens=10, mode="greedy", on_token=lambda i, t: streamed.append(t)
    )
    assert 0 < out["n_tokens"] <= 10 and "".join(streamed) == out["text"]
    assert "".join(t["text"] for t in out["prompt_tokens"]) == "to be or not"  # what the encoder read
    beam = generate_text(ws, t5_run, "to be or not", max_new_tokens=10, mode="beam", beam_width=1)
    assert beam["token_ids"] == out["token_ids"]  # beam width 1 is greedy, the cache rows following the beam


def test_a_permutation_lm_writes_left_to_right(ws):
    run = _run(ws, "decoder", "permutation_lm")
    out = generate_text(ws, run, "to be", max_new_tokens=40, mode="greedy", device="cpu")
    assert out["n_tokens"] == 40  # past the context too: each step reads the last block_size - 1 tokens


def test_a_prefix_lm_reads_the_prompt_as_its_prefix(ws):
    run = _run(ws, "decoder", "prefix_lm")
    out = generate_text(ws, run, "to be or", max_new_tokens=20, mode="greedy", device="cpu")
    loaded = load_run(ws, run)
    prompt = loaded.tok.encode("to be or", add_special_tokens=False).ids
    kw = dict(max_new_tokens=20, mode="greedy")
    both_ways = [s.token for s in stream_steps(loaded.model, prompt, bidirectional_prompt=True, **kw)]
    assert out["token_ids"] == both_ways


# ----------------------------------------------------------------------------------------------- pair scores


@pytest.mark.parametrize("objective,words", [("nsp", "B follows A: "), ("masked_lm+sop", "In order: ")])
def test_a_pair_run_scores_two_texts(ws, objective, words):
    run = _run(ws, "encoder", objective, n_segments=2)
    out = score_pair(ws, run, "to be or not to be,", "that is the question.", device="cpu")
    assert out["task"] == objective[-3:] and 0.0 <= out["prob"] <= 1.0
    assert out["words"] == f"{words}{100 * out['prob']:.0f} %"
    with pytest.raises(PlaygroundError, match="write both texts"):
        score_pair(ws, run, "to be", "  ", device="cpu")
    if objective == "masked_lm+sop":  # it learned masked LM too: a single text reads as [CLS] text [SEP]
        filled = fill_mask(ws, run, "to be or [MASK]", top_k=2, device="cpu")
        assert filled["tokens"][0] == "[CLS]" and filled["tokens"][-1] == "[SEP]"


def test_a_run_without_a_pair_task_does_not_score_pairs(ws, decoder_run):
    with pytest.raises(PlaygroundError, match="Score a pair needs an encoder.*use Continue a text"):
        score_pair(ws, decoder_run, "a", "b", device="cpu")


# ------------------------------------------------------------------------------------------ through the engine

from engine import protocol as p  # noqa: E402


def test_the_engine_answers_every_playground_request(ws, masked_run, t5_run, decoder_run):
    from tests.engine_harness import EngineProcess

    pair_run = _run(ws, "encoder", "sop", n_segments=2)
    eng = EngineProcess(ws.path)
    try:
        assert eng.request(p.HelloRequest()).ok
        # The whole line around the mask: cut short after "[MASK]e", the tiny run's guess depends on the CPU.
        filled = eng.request(p.FillMaskRequest(run=masked_run, text="to be or not to [MASK]e, that is", top_k=3))
        assert filled.ok and filled.masks[0]["candidates"][0][0] == "b" and filled.text == "to be or not to be, that is"
        assert filled.tokens[filled.masks[0]["position"]] == "[MASK]"
        gaps = eng.request(p.InfillRequest(run=masked_run, segments=["to be or not to ", "e, that is"], gap_tokens=1))
        assert gaps.ok and gaps.fills == ["b"] and gaps.text == "to be or not to be, that is"
        pair = eng.request(p.ScorePairRequest(run=pair_run, a="to be or not", b="to be"))
        assert pair.ok and pair.task == "sop" and 0 <= pair.prob <= 1 and pair.words.startswith("In order: ")
        refused = eng.request(p.FillMaskRequest(run=decoder_run, text="to [MASK]"))
        assert not refused.ok and "use Continue a text" in refused.error
        asked = p.GenerateRequest(run=t5_run, prompt="to be or", max_new_tokens=8, mode="greedy")
        reply = eng.request(asked)
        tokens = eng.events(asked.id, p.Token)
        assert reply.ok and "".join(t.text for t in tokens) == reply.text and len(tokens) == reply.n_tokens > 0
    finally:
        eng.close()
