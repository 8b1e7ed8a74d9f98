"""Classification through the real loop in a real workspace: a labelled CSV (the label column kept at import) is
learned to >= 90 % validation accuracy on each architecture, the confusion matrix counts every validation text
once, the class names come from the data, `classify` answers with probabilities, a pre-trained run without a head
starts a classifier (LoRA trains the new head and leaves the base alone), and impossible requests are one clear
message that leaves the workspace as it was."""

import csv
import random
import re

import pytest
import torch

from engine.config import ConfigError, RunConfig
from engine.estimates import param_count
from engine.infer_classify import classify
from engine.model import build_model
from engine.prompt_eval import prompt_eval
from engine.objectives.classification import class_names
from engine.run_generation import load_run
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training
from engine.training_records import confusion_metrics
from tests.test_cli import assert_one_error_line, cli

ANIMALS = "cat dog horse bird fish mouse lion tiger wolf bear".split()
FOODS = "bread apple cheese rice soup cake pear plum milk egg".split()
FILLER = "the a my your one that this we saw had likes near under big small old new".split()


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


def _write_csv(path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for _ in range(n):
            label = rng.choice(["animal", "food"])
            words = rng.choices(FILLER, k=5) + rng.choices(ANIMALS if label == "animal" else FOODS, k=3)
            rng.shuffle(words)
            w.writerow([" ".join(words) + ".", label])


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    _write_csv(root / "things.csv", 800)
    (root / "plain.txt").write_text("a text without labels.\n\nand another one.\n" * 30, encoding="utf-8")
    with Workspace(root / "ws") as w:
        w.import_dataset([root / "things.csv"], "things", 0.125, label_column="label", split="documents", seed=1)
        w.import_dataset([root / "plain.txt"], "plain", 0.1)
        yield w


def _cfg(arch: str, steps: int = 160, **objective) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": "things"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"arch": arch, "n_layer": 2, "n_head": 2, "n_embd": 48, "block_size": 64},
            "objective": {"name": "classification", **objective},
            "train": {"batch_size": 16, "learning_rate": 3e-3, "min_lr": 3e-4, "weight_decay": 0.0, "eval_iters": 4,
                      "log_interval": 20, "device": "cpu", "seed": 3, "max_iters": steps, "lr_decay_iters": steps,
                      "eval_interval": steps // 2, "warmup_iters": 10, "keep_checkpoints": 0},
        }
    )  # fmt: skip


def _train(ws, cfg) -> int:
    run = prepare_run(ws, cfg)
    assert run_training(ws, run["id"], on_event=lambda e: None) == "finished", ws.run(run["id"])["message"]
    return run["id"]


def _last_val(ws, run_id: int) -> dict:
    return ws.metrics(run_id, "val")[-1]["metrics"]


@pytest.fixture(scope="module")
def encoder_run(ws):
    return _train(ws, _cfg("encoder"))


def test_an_encoder_learns_the_classes_and_counts_every_validation_text(ws, encoder_run):
    run = ws.run(encoder_run)
    assert run["config"]["objective"]["classes"] == ["animal", "food"]  # from the data, in a stable order
    assert run["config"]["model"]["n_classes"] == 2
    val = _last_val(ws, encoder_run)
    assert val["val_class_accuracy"] >= 0.9 and val["val_macro_f1"] >= 0.9
    confusion = val["val_confusion"]
    n_val = len(ws.labelled_documents("things", "val")[0])
    assert sum(map(sum, confusion)) == n_val == 100  # every labelled validation text once
    correct = confusion[0][0] + confusion[1][1]
    assert val["val_class_accuracy"] == pytest.approx(correct / n_val)


@pytest.mark.parametrize("arch", ["decoder", "encoder-decoder"])
def test_a_decoder_and_an_encoder_decoder_learn_the_classes_too(ws, arch):
    assert _last_val(ws, _train(ws, _cfg(arch)))["val_class_accuracy"] >= 0.9


def test_classify_gives_each_class_a_probability_best_first(ws, encoder_run):
    out = classify(ws, encoder_run, "the old lion saw my big dog and a wolf.", device="cpu")
    assert out["label"] == "animal" and [c[0] for c in out["classes"]] == ["animal", "food"]
    assert sum(p for _, p in out["classes"]) == pytest.approx(1.0)
    assert out["classes"][0][1] > 0.8
    assert classify(ws, encoder_run, "rice cheese and soup.", device="cpu")["label"] == "food"


def test_the_cli_prints_each_class_probability(ws, encoder_run):
    r = cli("classify", "--run", encoder_run, "--text", "a cake and milk.", workspace=ws.path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("food ") and lines[0].endswith("%") and lines[1].startswith("animal ")


def test_cli_train_prints_accuracy_macro_f1_and_the_confusion_matrix(ws):
    r = cli(
        "train", "--preset", "tiny", "--set", "data.dataset=things", "--set", "objective.name=classification",
        "--set", "model.arch=encoder", "--set", "train.max_iters=20", "--set", "train.eval_interval=10",
        "--set", "train.device=cpu", workspace=ws.path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    evals = [line for line in out if line.startswith("step ")]
    assert evals and all(", val accuracy " in line and ", val macro-F1 " in line for line in evals)
    assert "confusion matrix on the validation split:" in out
    table = out[out.index("confusion matrix on the validation split:") + 1 :]
    assert table[0].split()[-2:] == ["animal", "food"] and table[1].startswith("animal")
    assert sum(int(v) for row in table[1:3] for v in row.split()[1:]) == 100


def test_a_pretrained_run_starts_a_classifier_and_lora_trains_only_the_adapters_and_the_head(ws):
    parent = _train(ws, _cfg("encoder", 40, name="masked_lm"))
    assert ws.run(parent)["config"]["model"]["n_classes"] == 0
    child_cfg = _cfg("encoder", 60)
    child_cfg.train.init_from.run, child_cfg.train.finetune = parent, "lora"
    child = _train(ws, child_cfg)
    base = load_run(ws, parent).model.state_dict()
    tuned = load_run(ws, child).model.state_dict()  # LoRA merged: the base moved only by the adapters
    assert "classifier.weight" in tuned and "classifier.weight" not in base
    assert torch.equal(tuned["transformer.wte.weight"], base["transformer.wte.weight"])  # not a LoRA target
    assert _last_val(ws, child)["val_class_accuracy"] > 0.6


def test_classifying_an_unlabelled_dataset_is_one_clear_message_and_writes_nothing(ws):
    runs = len(ws.runs())
    cfg = _cfg("encoder")
    cfg.data.dataset = "plain"
    with pytest.raises(ConfigError) as e:
        prepare_run(ws, cfg)
    assert e.value.key == "data.dataset" and "'plain' has no labels" in e.value.message
    assert len(ws.runs()) == runs
    r = cli("train", "--preset", "tiny", "--set", "data.dataset=plain", "--set", "objective.name=classification",
            workspace=ws.path)  # fmt: skip
    assert_one_error_line(r, 2)
    assert "has no labels" in r.stderr and len(ws.runs()) == runs


def test_classify_refuses_a_run_that_was_not_trained_to_classify(ws):
    lm = _train(ws, _cfg("decoder", 10, name="causal_lm"))
    with pytest.raises(Exception, match="Classify needs a run trained with the classification objective"):
        classify(ws, lm, "a cat.", device="cpu")


def test_macro_f1_averages_the_classes_that_occur():
    m = confusion_metrics("val", [[8, 2, 0], [1, 9, 0], [0, 0, 0]])  # the third class never occurs
    f1_a, f1_b = 2 * 8 / (10 + 9), 2 * 9 / (10 + 11)
    assert m["val_class_accuracy"] == pytest.approx(17 / 20)
    assert m["val_macro_f1"] == pytest.approx((f1_a + f1_b) / 2)
    assert confusion_metrics("val", [[0, 0], [0, 0]]) == {}


def test_class_names_sort_numbers_by_value_and_the_rest_as_text():
    assert class_names([10, 2, 1, 2]) == ["1", "2", "10"]
    assert class_names(["pos", "neg", "pos"]) == ["neg", "pos"]
    assert class_names([True, False]) == ["false", "true"]


@pytest.mark.parametrize("arch", ["decoder", "encoder", "encoder-decoder"])
def test_the_parameter_estimate_counts_the_head(arch):
    cfg = _cfg(arch).model
    cfg.n_classes = 5
    model = build_model(cfg, 40)
    assert param_count(cfg, 40) == sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------- prompting (no training)


@pytest.fixture(scope="module")
def pattern_lm(ws, tmp_path_factory):
    """A causal LM trained on the same kind of texts each followed by 'kind: <label>': prompting can read it."""
    src = tmp_path_factory.mktemp("pattern") / "pattern.csv"
    _write_csv(src, 800, seed=5)
    with open(src, encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    lines = src.with_suffix(".txt")
    lines.write_text("".join(f"{text} kind: {label}\n" for text, label in rows), encoding="utf-8")
    ws.import_dataset([lines], "pattern", 0.1)
    cfg = _cfg("decoder", 600, name="causal_lm")
    cfg.data.dataset = "pattern"
    return _train(ws, cfg)


def test_prompting_a_causal_lm_classifies_without_training(ws, pattern_lm):
    out = prompt_eval(ws, pattern_lm, "things", "{text} kind:", "animal=animal,food=food", device="cpu")
    assert out["class_accuracy"] >= 0.85, out
    assert sum(map(sum, out["confusion"])) == out["n_texts"] == 100 and out["classes"] == ["animal", "food"]
    shot = prompt_eval(ws, pattern_lm, "things", "{text} kind:", "animal=animal,food=food", shots=2, device="cpu")
    parts = shot["prompt"].split("\n\n")  # two examples, each with its word, one of each class, then the text
    assert shot["shots"] == 2 and len(parts) == 3 and parts[2].endswith(" kind:")
    assert {part.rsplit(" kind: ", 1)[1] for part in parts[:2]} == {"animal", "food"}


def test_the_cli_prints_the_prompting_accuracy_and_its_matrix(ws, pattern_lm):
    r = cli("prompt-eval", "--run", pattern_lm, "--dataset", "things", "--template", "{text} kind:",
            "--verbalizer", "animal=animal,food=food", "--shots", "1", workspace=ws.path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("prompting (1 shots): val accuracy ") and "confusion matrix" in r.stdout


@pytest.mark.parametrize(
    "template,verbalizer,words",
    [
        ("{text} kind:", "animal=animal", "at least two labels"),
        ("{text} kind:", "animal=animal,fruit=fruit", "it lacks food; it names fruit, which the data does not have"),
        ("kind:", "animal=animal,food=food", "needs {text}"),
        ("{text} kind:", "animal=animal,food", "label=word pairs"),
    ],
)
def test_a_prompt_that_cannot_work_is_one_clear_message(ws, encoder_run, template, verbalizer, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        prompt_eval(ws, encoder_run, "things", template, verbalizer, device="cpu")


def test_prompting_needs_a_decoder_and_labels(ws, encoder_run, pattern_lm):
    with pytest.raises(Exception, match="a prompt is scored by a decoder"):
        prompt_eval(ws, encoder_run, "things", "{text} kind:", "animal=animal,food=food", device="cpu")
    with pytest.raises(ConfigError, match="'plain' has no labels"):
        prompt_eval(ws, pattern_lm, "plain", "{text} kind:", "animal=animal,food=food", device="cpu")
