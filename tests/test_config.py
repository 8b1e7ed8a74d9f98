import json

import pytest

from engine.config import PRESETS, ConfigError, ModelConfig, RunConfig, memory_estimate, param_count, preset
from engine.format import human_bytes, human_count, human_duration


def test_presets_are_valid_and_round_trip_through_json():
    for name in PRESETS:
        cfg = preset(name).validate(need_data=False)
        again = RunConfig.from_json(cfg.to_json())
        assert again == cfg


def test_baby_preset_matches_nanogpt_shape_and_size():
    cfg = preset("baby")
    m = cfg.model
    assert (m.n_layer, m.n_head, m.n_embd, m.block_size, m.bias, m.dropout) == (4, 4, 128, 64, False, 0.0)
    assert (cfg.train.batch_size, cfg.train.learning_rate, cfg.train.min_lr, cfg.train.beta2) == (12, 1e-3, 1e-4, 0.99)
    # nanoGPT reports 0.80M parameters for this model on the 65-character Shakespeare vocabulary.
    assert round(param_count(m, 65) / 1e6, 2) == 0.80


@pytest.mark.parametrize(
    "change, words",
    [
        ({"n_head": 3}, "must be a multiple of Attention heads"),
        ({"pos_encoding": "rope", "n_embd": 12, "n_head": 4}, "even head size"),
        ({"norm": "batchnorm"}, "model.norm"),
        ({"n_layer": 0}, "model.n_layer"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_impossible_models_are_refused_with_a_message(change, words):
    cfg = RunConfig(model=ModelConfig(**change))
    with pytest.raises(ConfigError, match=words):
        cfg.validate(need_data=False)


def test_min_lr_above_lr_is_refused():
    cfg = RunConfig.from_dict({"train": {"learning_rate": 1e-4, "min_lr": 1e-3}})
    with pytest.raises(ConfigError, match="min_lr"):
        cfg.validate(need_data=False)


def test_missing_dataset_is_reported_when_data_is_needed():
    with pytest.raises(ConfigError, match="data.dataset"):
        RunConfig().validate()


def test_from_dict_rejects_unknown_and_mistyped_fields():
    with pytest.raises(ConfigError, match="unknown field"):
        RunConfig.from_dict({"model": {"n_layers": 4}})
    with pytest.raises(ConfigError, match="unknown config section"):
        RunConfig.from_dict({"modle": {}})
    with pytest.raises(ConfigError, match="whole number"):
        RunConfig.from_dict({"model": {"n_layer": "four"}})
    with pytest.raises(ConfigError, match="true or false"):
        RunConfig.from_dict({"model": {"bias": 1}})
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{nope")


def test_overrides_parse_json_values_and_names():
    cfg = preset("baby").with_overrides(
        ["model.n_layer=2", "data.dataset=shakespeare", "train.learning_rate=3e-4", "model.bias=true"]
    )
    assert cfg.model.n_layer == 2 and cfg.data.dataset == "shakespeare"
    assert cfg.train.learning_rate == 3e-4 and cfg.model.bias is True
    with pytest.raises(ConfigError, match="unknown config field"):
        cfg.with_overrides(["model.width=3"])
    with pytest.raises(ConfigError, match="section.key=value"):
        cfg.with_overrides(["n_layer=3"])


def test_estimates_grow_with_the_model():
    small, big = ModelConfig(n_layer=2), ModelConfig(n_layer=8)
    assert param_count(big, 100) > param_count(small, 100)
    assert memory_estimate(big, 100, 8)["total"] > memory_estimate(small, 100, 8)["total"]
    mem = memory_estimate(small, 100, 8)
    assert mem["total"] == mem["weights"] + mem["gradients"] + mem["optimizer"] + mem["activations"]


def test_human_formatting():
    assert human_count(1_234_567) == "1.2 M"
    assert human_count(14_200) == "14.2 k"
    assert human_bytes(512 * 1024 * 1024) == "512.0 MiB"
    assert human_duration(125) == "2 m 05 s"
    assert human_duration(None) == "—"
    assert human_duration(3 * 3600 + 60) == "3 h 01 m"


def test_config_json_is_the_documented_shape():
    d = json.loads(preset("baby").to_json())
    assert list(d) == ["data", "tokenizer", "model", "objective", "train"]
    for key in ("n_layer", "n_head", "n_embd", "block_size", "dropout", "bias"):
        assert key in d["model"]
    for key in (
        "batch_size",
        "max_iters",
        "learning_rate",
        "min_lr",
        "warmup_iters",
        "lr_decay_iters",
        "weight_decay",
        "beta1",
        "beta2",
        "grad_clip",
        "gradient_accumulation_steps",
        "eval_interval",
        "eval_iters",
        "seed",
    ):
        assert key in d["train"]
