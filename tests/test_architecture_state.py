"""The Model panel's Qt-free state (studio/state/model_form.py, architecture_diagram.py): presets, undo, marked
fields, estimates, the fields that do not apply, the objective that follows the architecture, the diagram of each
architecture. No window is needed."""

import subprocess
import sys
from pathlib import Path

from engine import config as C
from engine.config import ConfigError, ModelConfig, RunConfig, param_count, preset
from studio.state.architecture_diagram import diagram, diagram_boxes
from studio.state.model_form import (
    ALL_FIELDS,
    ASSUMED_CHAR_VOCAB,
    CONDITIONAL_FIELDS,
    CUSTOM,
    PresetUndo,
    changed_fields,
    config_with,
    decay_follows_steps,
    error_keys,
    estimate,
    fit_objective,
    inapplicable,
    marked_fields,
    matching_preset,
    preset_description,
    vocab_for_estimates,
)


ROOT = Path(__file__).resolve().parents[1]


def test_the_state_loads_no_qt():
    code = "import sys, studio.state.model_form, studio.state.architecture_diagram; print('PySide6' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_choice_fields_offer_exactly_the_engines_values():
    choices = {f.key: [v for v, _ in f.options] for f in ALL_FIELDS if f.kind == "choice"}
    assert choices == {
        ("model", "arch"): list(C.ARCHITECTURES),
        ("model", "pos_encoding"): list(C.POS_ENCODINGS),
        ("model", "norm"): list(C.NORMS),
        ("model", "norm_position"): list(C.NORM_POSITIONS),
        ("model", "mlp"): list(C.MLPS),
        ("train", "optimizer"): list(C.OPTIMIZERS),
        ("train", "lr_schedule"): list(C.LR_SCHEDULES),
        ("train", "device"): list(C.DEVICES),
        ("train", "dtype"): list(C.DTYPES),
        ("train", "on_divergence"): list(C.DIVERGENCE_POLICIES),
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


def test_the_form_offers_every_new_model_and_training_field():
    keys = {f.key for f in ALL_FIELDS}
    for key in ("arch", "n_decoder_layer", "n_segments", "norm_position"):
        assert ("model", key) in keys
    for key in ("optimizer", "momentum", "nesterov", "lr_schedule", "label_smoothing"):
        assert ("train", key) in keys
    assert dict(next(f for f in ALL_FIELDS if f.name == "pos_encoding").options)["alibi"] == "ALiBi"


def test_fields_that_do_not_apply_say_why():
    cfg = RunConfig()
    off = inapplicable(cfg)
    assert off[("model", "n_decoder_layer")] == "encoder-decoder only"
    assert off[("model", "n_segments")] == "encoder only"
    assert off[("train", "momentum")] == "SGD only" and ("train", "beta1") not in off
    cfg.model.arch, cfg.train.optimizer, cfg.train.lr_schedule = "encoder-decoder", "sgd", "inverse_sqrt"
    off = inapplicable(cfg)
    assert ("model", "n_decoder_layer") not in off and ("model", "n_segments") in off
    assert ("train", "momentum") not in off and ("train", "beta2") in off
    assert ("train", "min_lr") in off and ("train", "lr_decay_iters") in off
    assert set(off) <= CONDITIONAL_FIELDS


def test_an_architecture_the_objective_cannot_train_switches_the_objective_and_back():
    remembered: dict[str, str] = {}
    before = RunConfig.from_dict({"objective": {"name": "prefix_lm"}})
    cfg = before.copy()
    cfg.model.arch = "encoder"
    note = fit_objective(cfg, before, remembered)
    assert cfg.objective.name == "masked_lm"
    assert note.startswith("Prefix language modelling does not train an encoder, so the objective is now Masked")
    cfg.validate(need_data=False)
    back = cfg.copy()
    back.model.arch = "decoder"
    assert fit_objective(back, cfg, remembered) and back.objective.name == "prefix_lm"  # the one used there
    # span corruption trains a decoder too: nothing to switch
    fim = RunConfig.from_dict({"objective": {"name": "span_corruption"}, "model": {"arch": "encoder-decoder"}})
    after = fim.copy()
    after.model.arch = "decoder"
    assert fit_objective(after, fim, {}) == "" and after.objective.name == "span_corruption"
    # a pair task loses its segments: masked LM still trains the encoder
    pairs = RunConfig.from_dict({"objective": {"name": "nsp"}, "model": {"arch": "encoder", "n_segments": 2}})
    fewer = pairs.copy()
    fewer.model.n_segments = 0
    assert "needs Segments 2" in fit_objective(fewer, pairs, {}) and fewer.objective.name == "masked_lm"


def test_each_architecture_has_its_own_diagram():
    m = ModelConfig(n_head=2, n_embd=32, n_layer=3)
    dec = diagram(m, 100)
    assert [s.title for s in dec.stacks] == ["Decoder"] and dec.stacks[0].causal and not dec.cross
    enc_cfg = ModelConfig(arch="encoder", n_head=2, n_embd=32, n_segments=2)
    enc = diagram(enc_cfg, 100)
    (stack,) = enc.stacks
    assert stack.title == "Encoder" and not stack.causal
    texts = [t for _, t in stack.boxes()]
    assert "Self-attention, both ways: 2 heads × 16" in texts
    assert any("+ 2 segments" in t for t in texts) and any("pair head" in t for t in texts)
    assert any(t.startswith("Masked-LM head 32 → 100") for t in texts)
    ed = diagram(ModelConfig(arch="encoder-decoder", n_head=2, n_embd=32, n_layer=3, n_decoder_layer=2), 100)
    assert [s.title for s in ed.stacks] == ["Encoder", "Decoder"] and ed.cross
    assert [s.n_layers for s in ed.stacks] == [3, 2]
    assert [r for r, _ in ed.stacks[1].block] == ["norm", "attn", "norm", "cross", "norm", "mlp"]
    assert not ed.stacks[0].causal and ed.stacks[1].causal
    assert len({tuple(d.boxes()) for d in (dec, enc, ed)}) == 3


def test_pre_and_post_norm_put_the_norm_on_either_side_of_the_residual_addition():
    pre = diagram(ModelConfig(), 65).stacks[0]
    post = diagram(ModelConfig(norm_position="post"), 65).stacks[0]
    assert [r for r, _ in pre.block] == ["norm", "attn", "norm", "mlp"]
    assert pre.residuals == ((0, 1), (2, 3))  # the branch skips the norm and the sub-layer
    assert [r for r, _ in post.block] == ["attn", "norm", "mlp", "norm"]
    assert post.residuals == ((0, 0), (2, 2))  # the branch skips the sub-layer; the norm follows the addition
    assert pre.outputs[0] == ("norm", "Final LayerNorm") and post.outputs[0][0] == "head"
    alibi = diagram_boxes(ModelConfig(pos_encoding="alibi"), 65)
    assert alibi[1] == ("embed", "Token embedding 65 × 128 (ALiBi in attention)")


def test_a_recipe_preset_brings_its_objective_and_others_keep_a_fitting_one():
    undo = PresetUndo()
    start = RunConfig.from_dict({"data": {"dataset": 1}, "objective": {"name": "prefix_lm"}})
    recipes = [name for name, spec in C.PRESETS.items() if "objective" in spec]
    for name in recipes:
        cfg = undo.apply(name, start)
        assert cfg.objective == preset(name).objective and cfg.data.dataset == 1
        cfg.validate(need_data=False)
        assert undo.note == f"The {name} preset trains {C.objective_info(cfg.objective.name).label}."
    cfg = undo.apply("tiny", start)  # no objective of its own: the chosen one stays
    assert cfg.objective.name == "prefix_lm" and undo.note == ""
    assert undo.undo(cfg).objective.name == "prefix_lm"
