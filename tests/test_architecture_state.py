"""The Model panel's Qt-free state (studio/state/model_form.py): presets, undo, marked fields, estimates, the
diagram's boxes. No window is needed."""

import subprocess
import sys
from pathlib import Path

from engine import config as C
from engine.config import ConfigError, ModelConfig, RunConfig, param_count, preset
from studio.state.model_form import (
    ALL_FIELDS,
    ASSUMED_CHAR_VOCAB,
    CUSTOM,
    PresetUndo,
    changed_fields,
    config_with,
    decay_follows_steps,
    diagram_boxes,
    error_keys,
    estimate,
    marked_fields,
    matching_preset,
    preset_description,
    vocab_for_estimates,
)


ROOT = Path(__file__).resolve().parents[1]


def test_the_state_loads_no_qt():
    code = "import sys, studio.state.model_form; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_choice_fields_offer_exactly_the_engines_values():
    choices = {f.key: [v for v, _ in f.options] for f in ALL_FIELDS if f.kind == "choice"}
    assert choices == {
        ("model", "pos_encoding"): list(C.POS_ENCODINGS),
        ("model", "norm"): list(C.NORMS),
        ("model", "mlp"): list(C.MLPS),
        ("train", "device"): list(C.DEVICES),
        ("train", "dtype"): list(C.DTYPES),
    }
    assert all(f.label == C.FIELD_LABELS[f"{f.section}.{f.name}"] for f in ALL_FIELDS)


def test_matching_preset_and_its_words():
    assert matching_preset(preset("tiny")) == "tiny"
    cfg = preset("tiny")
    cfg.model.n_layer = 7
    assert matching_preset(cfg) == CUSTOM
    assert preset_description(CUSTOM) == "Your own settings."
    assert "2 layers" in preset_description("tiny")


def test_preset_undo_keeps_the_dataset_and_tokenizer_chosen_since():
    undo = PresetUndo()
    assert not undo and undo.undo(RunConfig()) is None
    start = RunConfig.from_dict({"data": {"dataset": 1}, "model": {"n_layer": 5}})
    cfg = undo.apply("shakespeare-char", start)
    assert cfg.model.n_embd == 384 and cfg.data.dataset == 1 and undo
    cfg.data.dataset = 2  # chosen after the preset
    cfg.tokenizer.tokenizer, cfg.tokenizer.kind = 3, "bpe"
    back = undo.undo(cfg)
    assert back.model.n_layer == 5 and back.data.dataset == 2 and back.tokenizer.tokenizer == 3
    assert not undo


def test_decay_follows_the_steps_only_when_they_were_equal():
    before = {("train", "max_iters"): 100, ("train", "lr_decay_iters"): 100}
    after = {("train", "max_iters"): 200, ("train", "lr_decay_iters"): 100}
    changed = changed_fields(before, after)
    assert changed == [("train", "max_iters")]
    assert decay_follows_steps(before, changed)
    assert not decay_follows_steps({**before, ("train", "lr_decay_iters"): 50}, changed)
    cfg = config_with(RunConfig(), after)
    assert cfg.train.max_iters == 200 and RunConfig().train.max_iters != 200


def test_marked_fields_come_from_the_errors_keys_never_its_text():
    known = {f.key for f in ALL_FIELDS}
    both = ConfigError("Width (128) must be a multiple of Attention heads (3)", "model.n_embd", also=("model.n_head",))
    assert marked_fields(both, [("model", "n_layer")], known) == [("model", "n_embd"), ("model", "n_head")]
    # a message that names a field but carries no key: the field just changed is marked, not the one named
    keyless = ConfigError("model.n_head and RoPE do not fit")
    assert marked_fields(keyless, [("model", "n_layer")], known) == [("model", "n_layer")]
    # keys the form has no field for (the dataset) fall back to the change too
    other = ConfigError("Choose a dataset", "data.dataset")
    assert marked_fields(other, [("train", "seed")], known) == [("train", "seed")]


def test_a_rope_error_marks_every_field_it_is_about():
    cfg = RunConfig.from_dict({"model": {"pos_encoding": "rope", "n_head": 2, "n_embd": 66}})
    try:
        cfg.validate(need_data=False)
    except ConfigError as e:
        error = e
    assert error_keys(error) == ("model.pos_encoding", "model.n_head", "model.n_embd")
    assert marked_fields(error, [("model", "n_embd")], {f.key for f in ALL_FIELDS}) == [
        ("model", "pos_encoding"),
        ("model", "n_head"),
        ("model", "n_embd"),
    ]


def test_estimates_and_why_there_are_none():
    cfg = preset("baby")
    est = estimate(cfg, 65)
    assert est.problem == "" and est.params == param_count(cfg.model, 65)
    assert est.tokens_per_step == cfg.train.batch_size * cfg.model.block_size
    assert est.memory["total"] > est.memory["weights"] > 0 and est.flops_per_token > 6 * est.params // 2
    cfg.model.n_head = 3
    assert "multiple of Attention heads (3)" in estimate(cfg, 65).problem


def test_vocab_for_estimates_names_where_the_size_comes_from():
    cfg = RunConfig()
    assert vocab_for_estimates(None, cfg)[0] == ASSUMED_CHAR_VOCAB
    n, words = vocab_for_estimates({"id": 4, "name": "bytes", "vocab_size": 1000}, cfg)
    assert n == 1000 and "from tokenizer “bytes”" in words
    cfg.tokenizer.kind, cfg.tokenizer.vocab_size = "bytebpe", 4096
    assert vocab_for_estimates(None, cfg) == (
        4096,
        "Vocabulary assumed: 4,096 tokens, the byte-level BPE size to be trained.",
    )


def test_diagram_boxes_describe_the_model():
    m = ModelConfig(n_head=2, n_embd=64, pos_encoding="rope", norm="rmsnorm", mlp="swiglu", tie_embeddings=False)
    boxes = diagram_boxes(m, 1000)
    assert [role for role, _ in boxes] == ["io", "embed", "norm", "attn", "norm", "mlp", "norm", "head", "io"]
    texts = dict(enumerate(t for _, t in boxes))
    assert texts[1] == "Token embedding 1,000 × 64 (RoPE in attention)"
    assert texts[3] == "Causal self-attention: 2 heads × 32" and texts[2] == "RMSNorm"
    assert texts[5] == f"MLP (SwiGLU, 64 → {m.mlp_hidden} → 64)" and texts[7] == "LM head 64 → 1,000"
