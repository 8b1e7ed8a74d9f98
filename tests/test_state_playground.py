"""studio.state.playground (no Qt, no window): what the Playground shows as a model writes, how a text ends, what
Compare shares, and what the token details say."""

import subprocess
import sys

import numpy as np

from engine import protocol as p
from studio.state import playground as st

TOKENS = [
    (" the", 0.62, 1.1, [["␣the", 0.62], ["␣a", 0.2]]),
    (" cat", 0.05, 2.9, [["␣dog", 0.4], ["␣cat", 0.05]]),
    (" sat", 0.91, 0.4, [["␣sat", 0.91]]),
]


def paint(text: st.GeneratedText, prompt: str = "A:") -> None:
    """What the output pane does at each flush: each token placed after the prompt and the tokens before it."""
    at = len(prompt) + len(text.generated)
    for token in text.take_pending():
        token["start"], token["end"] = at, at + len(token["text"])
        at = token["end"]
        text.written(token)


def stream(text: st.GeneratedText, request: str) -> None:
    for i, (t, pr, h, top) in enumerate(TOKENS):
        text.pending.append(p.Token(parent=request, token_id=20 + i, text=t, prob=pr, entropy=h, top=top))


def test_a_stream_of_tokens_becomes_the_text_and_the_reply_says_how_it_went():
    text = st.GeneratedText()
    text.start()
    text.request = "r1"
    assert text.writing and text.stats == "Writing…" and text.tokens == []
    stream(text, "r1")
    assert text.generated == ""  # nothing painted yet: they wait for the flush
    paint(text)
    assert text.generated == " the cat sat" and [t["id"] for t in text.tokens] == [20, 21, 22]
    assert text.tokens[1] == {
        "id": 21,
        "text": " cat",
        "prob": 0.05,
        "entropy": 2.9,
        "top": [["␣dog", 0.4], ["␣cat", 0.05]],
        "start": 6,
        "end": 10,
    }
    assert text.take_pending() == []
    whole = text.finish(
        p.GenerateReply(
            parent="r1",
            text=" the cat sat",
            n_tokens=3,
            tokens_per_sec=50.0,
            prompt_tokens=[{"id": 7, "text": "A"}, {"id": 8, "text": ":"}],
            token_ids=[20, 21, 22],
            ended=True,
        )
    )
    assert not whole and not text.writing
    assert text.stats == "3 tokens · 50.0 tok/s · the model ended the text"
    # Clicking in the text: the prompt is no token; " cat" covers positions 6..9.
    assert [text.token_at(i) for i in (0, 1, 2, 5, 6, 9, 10, 13, 14)] == [None, None, 0, 0, 1, 1, 2, 2, None]


def test_where_it_looked_is_asked_over_the_prompt_and_the_tokens_before():
    text = st.GeneratedText()
    text.start()
    stream(text, "r")
    paint(text)
    assert text.attention_query(1) is None  # before the reply the prompt's ids are unknown
    text.finish(
        p.GenerateReply(
            parent="r",
            text="",
            n_tokens=3,
            tokens_per_sec=1.0,
            prompt_tokens=[{"id": 7, "text": "A"}, {"id": 8, "text": ":"}],
        )
    )
    assert text.token_ids == [20, 21, 22]  # from the painted tokens when the reply has none
    assert text.attention_query(0) == ([7, 8], 1)
    assert text.attention_query(2) == ([7, 8, 20, 21], 3)


def test_stop_and_errors_and_a_text_sent_whole():
    text = st.GeneratedText()
    text.start()
    stream(text, "r")
    text.finish(p.GenerateReply(parent="r", text=" the", n_tokens=1, tokens_per_sec=4.0, stopped=True))
    assert text.stats == "1 token · 4.0 tok/s (stopped)"
    text.start()
    assert text.tokens == [] and text.generated == "" and text.pending == [] and text.selected is None
    assert not text.finish(p.GenerateReply(parent="r", status="error", error="no checkpoint"))
    assert text.stats == "" and not text.writing
    # An older engine streams no tokens: the reply's text is shown whole.
    text.start()
    assert text.finish(p.GenerateReply(parent="r", text="hello", n_tokens=2, tokens_per_sec=1.0))
    assert text.generated == "hello" and text.tokens == []


def test_characters_the_vocabulary_lacks_are_named_under_the_numbers():
    reply = p.GenerateReply(parent="r", text="x", n_tokens=1, tokens_per_sec=2.0, unknown_chars=["☃"])
    stats = st.stats_text(reply)
    assert stats.startswith("1 token · 2.0 tok/s\n") and "☃" in stats


def test_compare_shares_one_seed_only_when_two_models_sample():
    seed = st.shared_seed(None, "sample", 2)
    assert isinstance(seed, int) and 0 <= seed < 2**31
    assert st.shared_seed(None, "sample", 1) is None  # one model: a fresh seed in the engine
    assert st.shared_seed(None, "greedy", 2) is None  # greedy needs none
    assert st.shared_seed(42, "sample", 2) == 42  # a fixed seed is kept


def test_modes_show_only_their_settings():
    assert st.shown_settings("sample") == {"temperature", "top_k", "top_p", "seed", "max_new"}
    assert st.shown_settings("greedy") == {"max_new"}
    assert st.shown_settings("beam") == {"beam_width", "length_penalty", "max_new"}


def test_the_default_run_is_one_that_has_trained():
    runs = [{"id": 1, "step": 300}, {"id": 2, "step": 50}, {"id": 3, "step": 0}]
    assert st.default_run_id(runs[2], runs) == 2  # the selected run has not trained: the newest that has
    assert st.default_run_id(runs[0], runs) == 1
    assert st.default_run_id(None, runs) == 2
    assert st.default_run_id(runs[2], [runs[2]]) == 3  # nothing trained: the selected one
    assert st.default_run_id(None, []) is None


def test_words_for_people():
    assert (
        st.prompt_placeholder("\n  First Citizen: Before we proceed any further\n")
        == "The start of a text, e.g. First Citizen: Before we"
    )
    assert st.prompt_placeholder("") == "The start of a text"
    assert st.checkpoint_label({"step": 2000, "val_loss": 1.234}) == "step 2,000, val 1.23"
    assert st.checkpoint_label({"step": 0, "val_loss": None}) == "step 0"
    token = {"id": 21, "text": " <cat>\n", "prob": 0.05, "entropy": 2.9}
    assert st.token_heading(token, 1, 3) == "Token 2 of 3: <b>‘␣&lt;cat&gt;⏎’</b> (id 21)"
    assert st.probability_text(0.05) == "Probability: <b>5.0 %</b>"
    assert st.probability_text(None) == "Probability: not sent by the engine"
    assert "2.90 nats" in st.entropy_text(2.9) and "18.2 equally likely" in st.entropy_text(2.9)
    assert st.entropy_text(None) == ""
    assert st.token_tooltip(token) == "probability 5.0 % — click for the alternatives"
    assert st.token_tooltip({"prob": None}) == "Click for details."


def test_token_attention_rows_and_what_is_strongest():
    weights = np.array([[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], [[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]]], dtype=np.float32)
    reply = p.TokenAttentionReply(
        parent="r", tokens=["A", ":", "␣the"], shape=[2, 2, 3], buffers=(weights.astype("<f2").tobytes(),)
    )
    decoded = st.decode_token_attention(reply)
    assert decoded.shape == (2, 2, 3) and np.allclose(decoded, weights, atol=1e-3)
    row = st.attention_row(decoded, 1, -1)  # the mean of layer 1's heads
    assert np.allclose(row, [0.25, 0.125, 0.625], atol=1e-3)
    tokens = st.key_tokens(reply, row.size)
    assert st.strongest_text(tokens, row).startswith("Strongest: ‘␣the’ (#2) 0.62, ‘A’ (#0) 0.25")
    assert st.key_tokens(reply, 4) == ["#0", "#1", "#2", "#3"]
    html = st.attention_html(tokens, row, (10, 20, 30))
    assert html.count("<span") == 3 and "rgba(10,20,30,1.00)" in html and ">:<" in html and "> the<" in html


def test_token_attentions_are_kept_by_text_run_checkpoint_and_token():
    cache = st.TokenAttentions()
    key = cache.key(0, 1, None, 2)
    cache.put(key, "reply")
    assert key in cache and cache.get(key) == "reply"
    assert cache.key(1, 1, None, 2) not in cache and cache.key(0, 1, "step-100", 2) not in cache
    cache.clear()
    assert cache.get(key) is None


def test_the_state_needs_no_qt():
    code = (
        "import sys, studio.state.playground, studio.state.attention_view; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------------------ modes by the run

from studio.state import playground_modes as pm  # noqa: E402


def _run(arch, objective):
    return {"id": 1, "config": {"model": {"arch": arch}, "objective": {"name": objective}}}


def test_each_kind_of_run_gets_its_own_modes_and_a_line_saying_why():
    cases = {
        ("decoder", "causal_lm"): ["generate"],
        ("decoder", "prefix_lm"): ["generate"],
        ("decoder", "permutation_lm"): ["generate"],
        ("decoder", "span_corruption"): ["infill", "generate"],
        ("encoder", "masked_lm"): ["fill_mask"],
        ("encoder", "masked_lm+nsp"): ["fill_mask", "pair"],
        ("encoder", "sop"): ["pair"],
        ("encoder-decoder", "span_corruption"): ["infill", "text2text"],
        ("encoder-decoder", "denoising"): ["text2text"],
    }
    for (arch, objective), modes in cases.items():
        assert pm.run_modes(_run(arch, objective)) == modes, (arch, objective)
    assert pm.run_modes({"id": 1, "config": {}}) == ["generate"]  # a run from before objectives
    assert (
        pm.modes_line(_run("encoder", "masked_lm"))
        == "This run is an encoder trained with masked language modelling: it fills in blanks."
    )
    assert pm.modes_line(_run("encoder", "masked_lm+sop")).endswith(
        "fills in blanks and judges whether two texts are in order."
    )
    assert "writes it back repaired" in pm.modes_line(_run("encoder-decoder", "denoising"))
    assert pm.pair_task(_run("encoder", "masked_lm+nsp")) == "nsp" and pm.pair_task(_run("encoder", "sop")) == "sop"


def test_masks_gaps_and_pair_answers_in_words():
    assert pm.mask_selection("To be or not to be", 16, 18) == ("To be or not to [MASK]", 22)
    assert pm.mask_selection("ab", 1, 1) == ("a[MASK]b", 7)  # nothing selected: a mask at the cursor
    assert pm.fill_mask_refusal("no blanks").startswith("Put [MASK]") and pm.fill_mask_refusal("a [MASK]") == ""
    masks = [{"position": 4, "candidates": [["␣be", 0.6], ["␣go", 0.2]]}, {"position": 6, "candidates": []}]
    html = pm.fill_mask_html("to [MASK] & [MASK]", masks)
    assert "to <span" in html and "<b>be</b><sup>1</sup>" in html and "&amp;" in html and "<b>?</b><sup>2</sup>" in html
    assert "<b> be</b>" in pm.fill_mask_html("to[MASK]", masks)  # the token's own space, where none was typed
    assert pm.candidate_rows(masks[0]) == [("␣be", 0.6), ("␣go", 0.2)] and pm.mask_heading(0) == "Blank 1"
    assert pm.split_gaps("a [GAP] b [GAP]") == ["a ", " b ", ""]
    assert "<b>x</b>" in pm.infill_html(["a ", " b"], ["x"]) and pm.fills_text(["x y"]) == "Gap 1: ‘x␣y’"
    assert pm.infill_refusal("no gap").startswith("Mark at least one gap")
    assert pm.pair_answer("nsp", 0.874) == "B follows A: 87 %" and pm.pair_answer("sop", 0.12) == "In order: 12 %"
    assert pm.pair_refusal("a", " ") == "Write a text in A and another in B."
