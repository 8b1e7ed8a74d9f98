"""Starting a run from another run's weights (train.init_from) and LoRA (train.finetune=lora), trained through the
real loop in a real workspace: the child starts exactly where the parent ended, LoRA never touches a base weight
and merges to the same logits, another dataset reads with the parent's vocabulary, and each wrong request gets
one clear message."""

import pytest
import torch

from engine.checkpoint import find_checkpoint, load_model_state
from engine.config import ConfigError, RunConfig
from engine.lora import LoRALinear
from engine.run_generation import load_run
from engine.run_setup import prepare_run
from engine.store import Workspace
from engine.train import run_training
from tests.test_cli import assert_one_error_line, cli

LINE = "to be or not to be, that is the question.\n"
OTHER = "the quick brown fox jumps over the lazy dog, then naps.\n"


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (conftest)."""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    (root / "hamlet.txt").write_text(LINE * 200, encoding="utf-8")
    (root / "fox.txt").write_text(OTHER * 200, encoding="utf-8")
    with Workspace(root / "ws") as w:
        w.import_dataset([root / "hamlet.txt"], "hamlet", 0.1)
        w.import_dataset([root / "fox.txt"], "fox", 0.1)
        yield w


def _cfg(steps: int = 30, dataset: str = "hamlet", **train) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": dataset},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"arch": "decoder", "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16},
            "train": {
                "batch_size": 8,
                "learning_rate": 1e-2,
                "min_lr": 1e-3,
                "weight_decay": 0.0,
                "eval_iters": 2,
                "log_interval": 10,
                "device": "cpu",
                "seed": 3,
                "max_iters": steps,
                "lr_decay_iters": steps,
                "eval_interval": steps,
                "warmup_iters": 5,
                **train,
            },
        }
    )


def _train(ws, cfg: RunConfig, events: list | None = None) -> int:
    run = prepare_run(ws, cfg, on_event=(events.append if events is not None else None))
    assert run_training(ws, run["id"], on_event=(events.append if events is not None else lambda e: None)) == "finished"
    return run["id"]


@pytest.fixture(scope="module")
def parent(ws):
    return _train(ws, _cfg(40))


def _logits(ws, run_id: int, checkpoint: str, batch: torch.Tensor) -> torch.Tensor:
    model = load_run(ws, run_id, "cpu", checkpoint).model
    with torch.no_grad():
        return model(batch)[0]


BATCH = torch.randint(0, 12, (2, 16), generator=torch.Generator().manual_seed(0))


def test_a_child_starts_exactly_where_its_parent_ended(ws, parent):
    child = _train(ws, _cfg(10, **{"init_from": {"run": parent}}))
    # The child's step-0 weights are the parent's last ones, so the two give the same logits and loss.
    assert torch.equal(_logits(ws, child, "step-0", BATCH), _logits(ws, parent, "latest", BATCH))
    row = ws.run(child)
    assert row["tokenizer_id"] == ws.run(parent)["tokenizer_id"]
    assert row["config"]["model"] == ws.run(parent)["config"]["model"]
    assert row["config"]["train"]["init_from"] == {"run": parent, "checkpoint": "latest", "step": 40}
    # Ten more steps on the same text move the weights on from there.
    assert not torch.equal(_logits(ws, child, "latest", BATCH), _logits(ws, parent, "latest", BATCH))


def test_a_child_can_start_from_an_earlier_checkpoint(ws, parent):
    child = _train(ws, _cfg(5, **{"init_from": {"run": parent, "checkpoint": "step-0"}}))
    assert torch.equal(_logits(ws, child, "step-0", BATCH), _logits(ws, parent, "step-0", BATCH))


def test_lora_trains_only_its_updates_and_merges_to_the_same_logits(ws, parent):
    events: list = []
    child = _train(ws, _cfg(30, **{"init_from": {"run": parent}, "finetune": "lora", "lora_rank": 4}), events)
    base = load_model_state(find_checkpoint(ws, parent, "latest")["path"])
    state = load_model_state(find_checkpoint(ws, child, "latest")["path"])
    lora = {k for k in state if ".lora_" in k}
    assert lora and set(state) - lora == set(base)
    for key, tensor in base.items():
        assert torch.equal(state[key], tensor), key  # every base weight bit for bit the parent's
    assert any(state[k].abs().sum() > 0 for k in lora if k.endswith("lora_B"))  # the updates did learn
    # Generation folds the updates into the weights; the logits are those of the unmerged model.
    merged = load_run(ws, child, "cpu").model
    assert all(m.merged for m in merged.modules() if isinstance(m, LoRALinear))
    cfg = RunConfig.from_dict(ws.run(child)["config"])
    from engine.finetune import build_run_model
    from engine.model import build_model

    unmerged = build_run_model(build_model, cfg, merged.vocab_size)
    unmerged.load_state_dict(state)
    unmerged.eval()
    with torch.no_grad():
        assert torch.allclose(merged(BATCH)[0], unmerged(BATCH)[0], atol=1e-5)
        assert not torch.allclose(merged(BATCH)[0], _logits(ws, parent, "latest", BATCH), atol=1e-3)
    status = [e.message for e in events if type(e).__name__ == "Status" and "trainable of" in e.message]
    assert status and "(LoRA rank 4 on attention)" in status[0]


def test_a_run_from_a_lora_run_starts_from_its_merged_weights(ws, parent):
    lora = _train(ws, _cfg(20, **{"init_from": {"run": parent}, "finetune": "lora", "lora_targets": "all"}))
    child = _train(ws, _cfg(3, **{"init_from": {"run": lora}}))
    assert torch.allclose(_logits(ws, child, "step-0", BATCH), _logits(ws, lora, "latest", BATCH), atol=1e-5)


def test_another_dataset_reads_with_the_parent_vocabulary(ws, parent):
    before = {t["id"] for t in ws.tokenizers()}
    child = _train(ws, _cfg(5, dataset="fox", **{"init_from": {"run": parent}}))
    tok = ws.tokenizer(ws.run(child)["tokenizer_id"])
    parent_tok = ws.tokenizer(ws.run(parent)["tokenizer_id"])
    assert tok["id"] not in before and tok["dataset_id"] == ws.dataset("fox")["id"]
    assert tok["copied_from"] == parent_tok["id"] and tok["name"] == f"{parent_tok['name']} on fox"
    assert ws.load_tokenizer(tok["id"]).get_vocab() == ws.load_tokenizer(parent_tok["id"]).get_vocab()
    assert tok["unk_share"] > 0  # letters of the fox line that Hamlet's line lacks read as [UNK]
    again = _train(ws, _cfg(2, dataset="fox", **{"init_from": {"run": parent}}))
    assert ws.run(again)["tokenizer_id"] == tok["id"]  # encoded once
    # A run from random weights on fox learns its own vocabulary, not the copy.
    assert ws.find_tokenizer("fox", "char", 64) is None


@pytest.mark.parametrize(
    "change, words",
    [
        ({"train": {"init_from": {"run": 999}}}, "Start from run: no run"),
        ({"train": {"init_from": {"run": "parent", "checkpoint": "step-7"}}}, "has no checkpoint 'step-7'; it has:"),
        ({"train": {"finetune": "lora"}}, "LoRA adapts a trained model: choose a run to start from"),
        ({"model": {"arch": "encoder"}, "objective": {"name": "masked_lm"}}, "trains encoder models, and run"),
        ({"train": {"lora_rank": 0, "finetune": "lora"}}, "LoRA rank must be at least 1"),
    ],
)
def test_a_wrong_start_gets_one_clear_message_and_writes_nothing(ws, parent, change, words):
    d = _cfg(5).to_dict()
    d["train"]["init_from"] = {"run": parent, "checkpoint": "latest"}
    for section, values in change.items():
        for key, value in values.items():
            d[section][key] = value
    if d["train"]["init_from"]["run"] == "parent":
        d["train"]["init_from"]["run"] = parent
    if change.get("train", {}).get("finetune") == "lora" and "lora_rank" not in change["train"]:
        d["train"]["init_from"] = {"run": None, "checkpoint": "latest"}
    runs = len(ws.runs())
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        prepare_run(ws, RunConfig.from_dict(d))
    assert len(ws.runs()) == runs


def test_another_chosen_vocabulary_is_refused(ws, parent):
    other = ws.train_tokenizer("hamlet", "char", 40, name="other")
    cfg = _cfg(5, **{"init_from": {"run": parent}})
    cfg.tokenizer.tokenizer = other["id"]
    with pytest.raises(ConfigError, match="reads text with its own vocabulary"):
        prepare_run(ws, cfg)


def test_the_command_line_fine_tunes_with_lora(ws, parent, tmp_path):
    config = tmp_path / "child.json"
    config.write_text(_cfg(10).to_json(), encoding="utf-8")
    r = cli("train", str(config), "--set", f"train.init_from.run={parent}", "--set", "train.finetune=lora",
            "--set", "train.lora_targets=all", workspace=ws.path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "trainable of" in r.stderr and "(LoRA rank 8 on all)" in r.stderr  # the status lines
    assert "starts from the weights of run" in r.stderr
    assert "step 10: train loss" in r.stdout
    bad = cli("train", str(config), "--set", "train.init_from=no-such-run", workspace=ws.path)
    assert_one_error_line(bad)
    assert "Start from run: no run" in bad.stderr


@pytest.mark.parametrize("arch", ["decoder", "encoder", "encoder-decoder"])
@pytest.mark.parametrize("targets", ["attention", "mlp", "all"])
@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
def test_the_lora_estimate_counts_what_lora_trains(arch, targets, mlp):
    from engine.config import InitFrom, ModelConfig, TrainConfig, lora_param_count, param_count
    from engine.finetune import prepare_for_finetune
    from engine.model import build_model

    m = ModelConfig(arch=arch, n_layer=2, n_decoder_layer=1, n_head=2, n_embd=16, block_size=8, mlp=mlp)
    model = build_model(m, 30)
    tc = TrainConfig(finetune="lora", lora_rank=3, lora_targets=targets, init_from=InitFrom(run=1))
    prepare_for_finetune(model, tc)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == lora_param_count(m, 3, targets) > 0
    assert sum(p.numel() for p in model.parameters()) == param_count(m, 30) + trainable


def test_the_command_line_fine_tunes_a_run_with_its_own_settings_and_no_file(ws, parent):
    r = cli("train", "--set", f"train.init_from.run={parent}", "--set", "train.max_iters=4",
            "--set", "train.lr_decay_iters=4", "--set", "train.eval_interval=2", workspace=ws.path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "step 4: train loss" in r.stdout
    child = ws.run(int(r.stdout.strip().splitlines()[-1]))
    assert child["config"]["train"]["init_from"]["run"] == parent
    assert child["config"]["train"]["batch_size"] == 8  # the parent's own setting, not a preset's
    alone = cli("train", workspace=ws.path)
    assert_one_error_line(alone)
    assert "give a CONFIG.json file" in alone.stderr


def test_a_lora_run_stopped_half_way_resumes_with_its_base_weights_untouched(ws, parent):
    from tests.conftest import train_until_stopped

    cfg = _cfg(20, **{"init_from": {"run": parent}, "finetune": "lora", "checkpoint_interval": 5})
    run = prepare_run(ws, cfg)
    assert train_until_stopped(ws, run["id"], 8) == "stopped"
    assert 8 <= ws.run(run["id"])["step"] < 20
    base = load_model_state(find_checkpoint(ws, parent, "latest")["path"])
    entry = ws.delete("run", parent)  # the child resumes from its own checkpoint, without its parent
    try:
        assert run_training(ws, run["id"], on_event=lambda e: None, resume=True) == "finished"
    finally:
        ws.restore(entry["id"])
    state = load_model_state(find_checkpoint(ws, run["id"], "latest")["path"])
    assert all(torch.equal(state[k], t) for k, t in base.items())


def test_a_corrupt_parent_checkpoint_fails_the_child_clearly_and_leaves_the_parent_as_it_was(ws, tmp_path):
    import shutil

    victim = _train(ws, _cfg(5))
    ck = find_checkpoint(ws, victim, "latest")
    weights = ck["path"].replace(".json", ".safetensors")
    kept = tmp_path / "kept.safetensors"
    shutil.copy(weights, kept)
    with open(weights, "r+b") as f:  # flip bytes in the middle of the tensors
        f.seek(200)
        f.write(b"\xff" * 16)
    try:
        child = prepare_run(ws, _cfg(5, **{"init_from": {"run": victim}}))
        events: list = []
        assert run_training(ws, child["id"], on_event=events.append) == "failed"
        message = ws.run(child["id"])["message"]
        assert "corrupt" in message and "checkpoint" in message and "Traceback" not in message
        assert ws.run(victim)["status"] == "finished"
    finally:
        shutil.copy(kept, weights)
    bad_json = find_checkpoint(ws, victim, "step-0")["path"]
    with open(bad_json, "w") as f:
        f.write("{not json")
    with pytest.raises(ConfigError, match="Start from run: checkpoint .* is corrupt"):
        prepare_run(ws, _cfg(5, **{"init_from": {"run": victim, "checkpoint": "step-0"}}))
