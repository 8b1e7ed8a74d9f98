"""A run's vocabulary has the special tokens its objective needs: prepare_run trains them into a vocabulary it
makes for the run (char ones too, the character ids unchanged), and refuses a chosen vocabulary that lacks them
before anything is written, naming the tokens and the fix. Real workspaces, real tokenizers."""

import pytest

from engine import tokenizer as tk
from engine.choices import ROLE_TOKENS, SENTINELS, sentinel_tokens
from engine.config import ConfigError, preset
from engine.objectives.catalog import OBJECTIVE_CATALOG
from engine.run_setup import prepare_run
from engine.store import Workspace

TEXT = "".join(
    f"{who}: the {a} {b} sat on the {c} mat. Did it? It did!\n\n"
    for who in ("ANNA", "BEN", "CLARA")
    for a in ("red", "big", "old")
    for b in ("cat", "dog", "fox")
    for c in ("warm", "cold", "soft")
)


@pytest.fixture
def ws(tmp_path):
    path = tmp_path / "mats.txt"
    path.write_text(TEXT * 3, encoding="utf-8")
    w = Workspace(tmp_path / "ws")
    w.import_dataset([path], "mats", 0.1)
    yield w
    w.close()


def config(objective="causal_lm", arch="decoder", **tokenizer):
    cfg = preset("tiny").with_overrides(
        ["data.dataset=mats", "model.block_size=32", "train.device=cpu", f"model.arch={arch}"]
    )
    cfg.objective.name = objective
    if objective in ("nsp", "sop", "masked_lm+nsp", "masked_lm+sop"):
        cfg.model.n_segments = 2
    for key, value in tokenizer.items():
        setattr(cfg.tokenizer, key, value)
    return cfg


def what_a_user_sees(ws) -> tuple:
    """The workspace's rows and every file under it but the database's."""
    files = sorted(
        str(p.relative_to(ws.path)) for p in ws.path.rglob("*") if p.is_file() and "workspace.db" not in p.name
    )
    return [r["id"] for r in ws.runs()], [t["id"] for t in ws.tokenizers()], files


def test_every_special_token_an_objective_needs_has_a_default_token():
    needs = {n for info in OBJECTIVE_CATALOG.values() for n in info.needs}
    assert needs - {tk.SENTINEL} <= set(ROLE_TOKENS)
    assert ROLE_TOKENS["mask"] == "[MASK]" and ROLE_TOKENS["eos"] == "<|endoftext|>" and SENTINELS == 32


def test_masked_lm_trains_a_char_vocabulary_with_mask_keeping_the_character_ids(ws):
    causal = ws.tokenizer(prepare_run(ws, config())["tokenizer_id"])
    masked_run = prepare_run(ws, config("masked_lm", "encoder"))
    masked = ws.tokenizer(masked_run["tokenizer_id"])
    assert masked["id"] != causal["id"] and masked["spec"]["special_tokens"]["mask"] == "[MASK]"
    plain, with_mask = ws.load_tokenizer(causal["id"]), ws.load_tokenizer(masked["id"])
    # The characters keep nanoGPT's ids, [UNK] follows them, [MASK] comes last.
    assert [with_mask.id_to_token(i) for i in range(causal["vocab_size"])] == [
        plain.id_to_token(i) for i in range(causal["vocab_size"])
    ]
    assert with_mask.token_to_id("[MASK]") == causal["vocab_size"] == masked["vocab_size"] - 1
    # The stored config names the vocabulary it got; a second run finds it again instead of training another.
    assert masked_run["config"]["tokenizer"]["tokenizer"] == masked["id"]
    assert prepare_run(ws, config("masked_lm", "encoder"))["tokenizer_id"] == masked["id"]
    assert len(ws.tokenizers()) == 2


def test_causal_lm_finds_the_vocabulary_it_always_found(ws):
    before = ws.train_tokenizer("mats", "char", 512)
    assert prepare_run(ws, config())["tokenizer_id"] == before["id"]
    assert "sentinels" not in before["spec"]  # specs read as they did before sentinels existed


def test_span_corruption_trains_32_sentinels_after_the_other_special_tokens(ws):
    run = prepare_run(ws, config("span_corruption", "encoder-decoder"))
    row = ws.tokenizer(run["tokenizer_id"])
    tok = ws.load_tokenizer(row["id"])
    assert row["spec"]["sentinels"] == SENTINELS
    ids = tk.sentinel_ids(tok, row["spec"])
    assert len(ids) == 32 and ids == list(range(ids[0], ids[0] + 32)) and ids[-1] == tok.get_vocab_size() - 1
    eos = tok.token_to_id("<|endoftext|>")
    assert eos is not None and eos < ids[0] and tk.role_ids(tok, row["spec"])["eos"] == eos
    # A sentinel in the text is one token, as the model will see it.
    assert tok.encode("a <extra_id_5> b").ids[2] == ids[5]


@pytest.mark.parametrize("kind", ["bpe", "bytebpe", "wordpiece", "unigram"])
def test_every_kind_gets_the_tokens_it_lacks(ws, kind):
    run = prepare_run(ws, config("masked_lm+nsp", "encoder", kind=kind, vocab_size=400))
    row = ws.tokenizer(run["tokenizer_id"])
    roles = tk.role_ids(ws.load_tokenizer(row["id"]), row["spec"])
    assert {"mask", "cls", "sep"} <= set(roles)
    assert row["spec"]["special_tokens"]["mask"] == "[MASK]"


def test_a_chosen_vocabulary_without_mask_is_refused_before_anything_is_written(ws):
    plain = ws.train_tokenizer("mats", "char", 512, name="plain chars")
    before = what_a_user_sees(ws)
    with pytest.raises(ConfigError) as e:
        prepare_run(ws, config("masked_lm", "encoder", tokenizer=plain["id"]))
    assert e.value.field == "tokenizer.tokenizer"
    assert e.value.message == (
        "Masked language modelling needs the special token [MASK], which the vocabulary 'plain chars' lacks: let "
        "the run train its own vocabulary (Tokenizer: new) or train one with [MASK] on the Vocabulary panel"
    )
    with pytest.raises(ConfigError, match=r"\[MASK\], \[CLS\] and \[SEP\], which the vocabulary 'plain chars'"):
        prepare_run(ws, config("masked_lm+sop", "encoder", tokenizer=plain["id"]))
    with pytest.raises(ConfigError, match=r"<\|endoftext\|> and <extra_id_0> … <extra_id_31>"):
        prepare_run(ws, config("span_corruption", "encoder-decoder", tokenizer=plain["id"]))
    assert what_a_user_sees(ws) == before


def test_a_chosen_vocabulary_with_the_tokens_is_taken(ws):
    made = ws.train_tokenizer("mats", "char", 512, special_tokens={"mask": "[MASK]"})
    assert prepare_run(ws, config("masked_lm", "encoder", tokenizer=made["id"]))["tokenizer_id"] == made["id"]


def test_no_room_for_the_special_tokens_is_a_vocabulary_size_error_before_anything_is_written(ws):
    before = what_a_user_sees(ws)
    with pytest.raises(ConfigError, match="at least 258 tokens") as e:
        prepare_run(ws, config("masked_lm", "encoder", kind="bytebpe", vocab_size=257))
    assert e.value.field == "tokenizer.vocab_size"
    assert what_a_user_sees(ws) == before


def test_a_context_too_short_for_the_objective_is_refused_before_the_run_exists(ws):
    cfg = config("span_corruption", "encoder-decoder")
    cfg.model.block_size = 4
    with pytest.raises(ConfigError) as e:
        prepare_run(ws, cfg)
    assert e.value.field == "model.block_size" and "too short for span corruption" in e.value.message
    assert ws.runs() == []


def test_with_specials_adds_to_a_copy_and_leaves_the_stored_tokenizer_alone(ws):
    row = ws.train_tokenizer("mats", "char", 512)
    tok = ws.load_tokenizer(row["id"])
    copy, spec = tk.with_specials(tok, row["spec"], ("sentinel", "mask", "eos"))
    assert tok.get_vocab_size() == row["vocab_size"] and tok.token_to_id("[MASK]") is None
    assert copy.get_vocab_size() == row["vocab_size"] + 2 + SENTINELS
    assert tk.role_ids(copy, spec)["mask"] == row["vocab_size"]
    assert tk.sentinel_ids(copy, spec) == [copy.token_to_id(t) for t in sentinel_tokens(SENTINELS)]
    assert tk.missing_specials(spec, ("sentinel", "mask", "eos")) == []
    assert tk.with_specials(copy, spec, ("mask",)) == (copy, spec)  # nothing lacking: the same tokenizer
