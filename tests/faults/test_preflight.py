"""Pre-flight (issue 12, item 9): a model that cannot fit is refused before its run is made, in the words "this
model needs about X GiB to train, and this machine has Y free", and the workspace is left as it was; one whose
steps will take long is warned about; SIGTERM stops the CLI's training at the next step, and a second one ends
it at once, the last checkpoint kept."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from engine.config import ConfigError, RunConfig
from engine.preflight import free_memory, preflight, step_bytes
from engine.run_setup import prepare_run
from engine.store import Workspace
from tests.faults.test_kill_resume import SETTINGS
from tests.test_cli import ENV, ROOT
from tests.faults.conftest import lines_workspace


def _cfg(**model) -> RunConfig:
    return RunConfig.from_dict(
        {
            "data": {"dataset": "lines"},
            "tokenizer": {"kind": "char", "vocab_size": 64},
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16, **model},
            "train": {"batch_size": 4, "max_iters": 10, "device": "cpu"},
        }
    )


def test_a_model_that_cannot_fit_is_refused_before_its_run_is_made(ws):
    huge = _cfg(n_embd=16384, n_layer=48, n_head=16)  # ~150 G parameters' worth of weights and moments
    assert step_bytes(huge, 64) > free_memory(torch.device("cpu"))
    runs_before = ws.runs()
    with pytest.raises(ConfigError) as caught:
        prepare_run(ws, huge)
    text = str(caught.value)
    assert "this model needs about" in text and "GiB to train, and this machine has" in text and "free" in text
    assert ws.runs() == runs_before  # nothing was made


def test_a_context_of_200000_is_refused_or_warned_about_instead_of_sitting_at_step_0(ws):
    long = _cfg(block_size=200_000)
    try:
        warnings = preflight(long, 64, torch.device("cpu"))
    except ConfigError as e:
        assert "needs about" in str(e)
        return
    assert any("one training step will take about" in w and "h" in w for w in warnings), warnings


def test_a_small_model_passes_without_a_word():
    assert preflight(_cfg(), 64, torch.device("cpu")) == []


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_sigterm_stops_at_the_next_step_and_a_second_signal_at_once(tmp_path):
    path = lines_workspace(tmp_path)
    sets = [f"--set={k}={v}" for k, v in {**SETTINGS, "train.max_iters": 1_000_000}.items()]
    cmd = [sys.executable, "-m", "engine.cli", "train", "--preset", "baby", "--set=data.dataset=lines",
           "--set=tokenizer.kind=char", *sets, "--workspace", str(path)]  # fmt: skip
    first = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_steps(path, 20)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0 and "stopping after this step" in err
    with Workspace(path) as w:
        run = w.runs()[-1]
        assert run["status"] == "stopped" and w.latest_checkpoint(run["id"])["step"] == run["step"]

    second = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_steps(path, 20, run_index=1)
    # Two of one signal can merge into one (POSIX does not queue them), so the second is Ctrl-C's.
    second.send_signal(signal.SIGTERM)
    second.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = second.communicate(timeout=60)
    assert time.monotonic() - started < 10
    assert second.returncode != 0 and "the last checkpoint is kept" in err


def _wait_for_steps(path, steps: int, run_index: int = 0, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Workspace(path) as w:
                runs = w.runs()
                if len(runs) > run_index and (runs[run_index]["step"] or 0) >= steps:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no run reached step {steps}")


def test_attention_snapshots_of_a_long_run_are_thinned_log_spaced(tmp_path):
    """Issue 12, item 13: a day of evaluations must not fill the disk with snapshots."""
    from engine.attention_snapshots import MAX_SNAPSHOTS, list_snapshots, snapshots_to_thin, thin_snapshots

    steps = [0, *range(250, 250 * 2000 + 1, 250)]  # 2,000 evaluations
    gone = set(snapshots_to_thin(steps))
    kept = [s for s in steps if s not in gone]
    assert len(kept) <= MAX_SNAPSHOTS and kept[0] == 0 and kept[-1] == steps[-1]
    early, late = sum(s <= steps[-1] // 10 for s in kept), sum(s > steps[-1] // 2 for s in kept)
    assert early > late  # log-spaced: the start, where attention changes fastest, keeps more
    folder = tmp_path / "attention"
    folder.mkdir()
    for s in range(0, 100 * 10, 10):
        (folder / f"step-{s:08d}.npz").write_bytes(b"x")
    assert thin_snapshots(folder) == 100 - len(list_snapshots(folder)) and len(list_snapshots(folder)) <= MAX_SNAPSHOTS
