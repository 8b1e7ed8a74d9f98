"""What the Fine-tune dialog and the Runs and Train panels say about a run started from another (studio/state/
finetune.py), without a window: the defaults, the config the choices make, the lineage, the faded curves."""

import pytest

from engine.config import ConfigError, preset
from studio.state.finetune import (
    FinetuneChoices,
    default_choices,
    finetune_config,
    from_cell,
    labels_problem,
    lineage_text,
    objective_choices,
    parent_series,
    trainable_text,
)
from studio.state.runs import setting_value
from studio.state.train_summary import config_html


def _run(run_id: int, **train) -> dict:
    cfg = preset("tiny").with_overrides(["data.dataset=1", "tokenizer.tokenizer=2"]).to_dict()
    cfg["train"].update(train)
    return {"id": run_id, "name": f"run-{run_id}", "dataset_id": 1, "tokenizer_id": 2, "config": cfg}


def test_the_defaults_take_a_tenth_of_the_rate_and_a_quarter_of_the_steps():
    parent = _run(3, learning_rate=1e-3, max_iters=2000)
    c = default_choices(parent)
    assert (c.dataset, c.objective, c.checkpoint, c.mode) == (1, "causal_lm", "latest", "full")
    assert c.steps == 500 and c.learning_rate == pytest.approx(1e-4)
    assert default_choices(_run(4, max_iters=100)).steps == 100  # never fewer than 100
    assert "masked_lm" not in objective_choices(parent) and "prefix_lm" in objective_choices(parent)
    assert "distillation" not in objective_choices(parent)  # it needs a teacher: the Objective panel offers it


def test_the_choices_make_a_config_that_starts_from_the_parent():
    parent = _run(3)
    cfg = finetune_config(parent, FinetuneChoices(dataset=5, objective="prefix_lm", mode="lora", lora_rank=4,
                                                  steps=300, learning_rate=5e-4, checkpoint="step-00000100"))  # fmt: skip
    t = cfg.train
    assert (t.init_from.run, t.init_from.checkpoint, t.finetune, t.lora_rank) == (3, "step-00000100", "lora", 4)
    assert (t.max_iters, t.lr_decay_iters, t.learning_rate) == (300, 300, 5e-4)
    assert t.min_lr <= t.learning_rate and t.warmup_iters <= 30 and t.eval_interval <= 75
    assert cfg.data.dataset == 5 and cfg.tokenizer.tokenizer is None and cfg.objective.name == "prefix_lm"
    assert cfg.model == preset("tiny").model
    with pytest.raises(ConfigError, match="Training steps"):
        finetune_config(parent, FinetuneChoices(dataset=1, objective="causal_lm", steps=0))


def test_reinforce_choices_fit_the_samples_in_the_context_and_keep_evaluations_cheap():
    parent = _run(3, eval_iters=20, eval_interval=250)
    block = preset("tiny").model.block_size
    choices = FinetuneChoices(dataset=1, objective="reinforce", steps=200, reward=" avoids:the ", kl_coef=0.2,
                              samples_per_prompt=1, prompts=("Once", "", " The king "))  # fmt: skip
    cfg = finetune_config(parent, choices)
    o, t = cfg.objective, cfg.train
    assert (o.reward, o.kl_coef, o.prompts) == ("avoids:the", 0.2, ["Once", "The king"])
    assert o.baseline == "moving_average"  # one sample per prompt has no others to be compared with
    assert o.max_new_tokens + o.prompt_length <= block
    assert t.eval_iters == 4 and t.eval_interval == 20  # ten evaluations, each a few batches of samples
    with pytest.raises(ConfigError, match="is not a reward"):
        finetune_config(parent, FinetuneChoices(dataset=1, objective="reinforce", reward="love"))


def test_lora_says_how_few_parameters_train():
    parent = _run(3)
    full = trainable_text(parent, FinetuneChoices(dataset=1, objective="causal_lm"), 65)
    lora = trainable_text(parent, FinetuneChoices(dataset=1, objective="causal_lm", mode="lora", lora_rank=2), 65)
    assert full.startswith("Every one of the ") and lora.startswith("LoRA trains ") and "frozen" in lora


def test_prompt_tuning_says_what_trains_and_what_the_model_gives_up():
    parent = _run(3)
    cfg = finetune_config(parent, FinetuneChoices(dataset=1, objective="causal_lm", mode="prompt_tuning",
                                                  prompt_tokens=8))  # fmt: skip
    assert (cfg.train.finetune, cfg.train.prompt_tokens) == ("prompt_tuning", 8)
    text = trainable_text(parent, FinetuneChoices(dataset=1, objective="causal_lm", mode="prompt_tuning"), 65)
    assert text.startswith("Prompt tuning trains ") and "16 fewer tokens of text" in text
    with pytest.raises(ConfigError, match="causal mask only"):
        finetune_config(parent, FinetuneChoices(dataset=1, objective="prefix_lm", mode="prompt_tuning"))


def test_a_labelled_objective_on_an_unlabelled_dataset_is_refused_in_words():
    plain, labelled = {"id": 1, "name": "plain", "has_labels": False}, {"id": 2, "name": "reviews", "has_labels": True}
    assert "needs a label for each text, and 'plain' was imported without" in labels_problem("classification", plain)
    assert "needs a response for each prompt" in labels_problem("sft", plain)
    assert labels_problem("classification", labelled) == "" and labels_problem("causal_lm", plain) == ""
    assert "classification" in objective_choices(_run(3)) and "sft" in objective_choices(_run(3))


def test_the_lineage_reads_both_ways_and_survives_a_deleted_parent():
    parent, other = _run(3), _run(4)
    child = _run(7, init_from={"run": 3, "checkpoint": "latest", "step": 400}, finetune="lora")
    grandchild = _run(9, init_from={"run": 7, "checkpoint": "step-00000050", "step": 50})
    runs = [parent, other, child, grandchild]
    assert lineage_text(child, runs) == "Started from run 3 (run-3) at latest, with LoRA · run 9 started from it"
    assert lineage_text(parent, runs) == "Run 7 started from it"
    assert lineage_text(other, runs) == ""
    assert lineage_text(grandchild, [grandchild]) == "Started from run 7 (deleted) at step-00000050"
    assert (from_cell(child), from_cell(grandchild), from_cell(parent)) == ("← 3 LoRA", "← 7", "")
    assert setting_value("train", "init_from", child["config"]["train"]["init_from"]) == "run 3 at step 400"
    assert setting_value("train", "init_from", parent["config"]["train"]["init_from"]) == "— (random weights)"


def test_the_train_summary_says_where_a_run_starts():
    cfg = finetune_config(_run(3), FinetuneChoices(dataset=1, objective="causal_lm", mode="lora"))
    cfg.train.init_from.step = 400
    assert " · <b>from run 3</b> at step 400, LoRA rank 8 on attention" in config_html(cfg, None, None, 65)
    assert "from run" not in config_html(preset("tiny"), None, None, 65)


def test_the_parent_curves_end_where_the_child_begins():
    rows = [{"step": s, "split": "train", "loss": 5 - s / 100} for s in range(0, 300, 50)]
    rows += [{"step": s, "split": "val", "loss": 5 - s / 90} for s in (100, 200)]
    tx, ty, vx, vy = parent_series(rows, 200)
    assert tx == [-200, -150, -100, -50, 0] and ty[0] == 5
    assert vx == [-100, 0] and vy == [pytest.approx(5 - 100 / 90), pytest.approx(5 - 200 / 90)]
