"""Pre-flight: before a run is made, what one training step will need in memory and in time, against this
machine, so an impossible model is refused in words instead of sitting at step 0 for minutes.

Memory is the Model panel's estimate (engine/estimates.py: weights, gradients, AdamW's moments, activations),
plus the attention bias an ALiBi model builds (heads x context x context) and a margin for the framework.
It is held against the memory the device has free now (the GPU's, or the RAM the OS calls available): more
than that is refused ("this needs about 41 GiB, this machine has 19 GiB free"), more than WARN_SHARE of it is
a warning. Time is the step's FLOPs over this device's matmul speed, measured once per process in a few
milliseconds and discounted to a typical utilisation; a step longer than SLOW_STEP_S is a warning that also says
what would make it faster.
"""

from __future__ import annotations

import functools
import os
import time

import torch

from engine.config import ConfigError, RunConfig
from engine.estimates import flops_per_token, memory_estimate
from engine.format import human_duration

WARN_SHARE = 0.8
SLOW_STEP_S = 30.0
FRAMEWORK_BYTES = 300 << 20  # torch's own buffers and allocator slack, measured ~250 MiB on the baby here
UTILISATION = 0.3  # of the measured matmul speed that a whole training step reaches on small models


def step_bytes(cfg: RunConfig, vocab_size: int) -> int:
    m, t = cfg.model, cfg.train
    need = memory_estimate(m, vocab_size, t.batch_size)["total"] + FRAMEWORK_BYTES
    if m.pos_encoding == "alibi":
        need += m.n_head * m.block_size * m.block_size * 4
    return int(need)


def step_flops(cfg: RunConfig, vocab_size: int) -> float:
    t = cfg.train
    return (
        float(flops_per_token(cfg.model, vocab_size))
        * t.batch_size
        * cfg.model.block_size
        * t.gradient_accumulation_steps
    )


def free_memory(device: torch.device) -> int | None:
    """Bytes free on `device` now (None when it cannot be told)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=4)
def matmul_flops_per_s(device_type: str) -> float:
    """This device's float32 matmul speed, from a few 256x256 products (about 10 ms on this CPU)."""
    device = torch.device(device_type)
    a = torch.randn(256, 256, device=device)
    (a @ a).sum().item()  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < 8 or time.perf_counter() - t0 < 0.01:
        a @ a
        n += 1
    if device_type == "cuda":
        torch.cuda.synchronize()
    return 2 * 256**3 * n / max(time.perf_counter() - t0, 1e-9)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def preflight(cfg: RunConfig, vocab_size: int, device: torch.device) -> list[str]:
    """Warnings for a run that will barely fit or train slowly; ConfigError for one that cannot fit."""
    need, free = step_bytes(cfg, vocab_size), free_memory(device)
    where = "the GPU has" if device.type == "cuda" else "this machine has"
    fix = "a smaller Context length, Batch size or model"
    warnings = []
    if free is not None and need > free:
        raise ConfigError(
            f"this model needs about {_gib(need)} to train, and {where} {_gib(free)} free: choose {fix}",
            "model.block_size",
            also=("train.batch_size", "model.n_embd", "model.n_layer"),
        )
    if free is not None and need > WARN_SHARE * free:
        warnings.append(f"this model needs about {_gib(need)} to train, most of the {_gib(free)} {where} free")
    seconds = step_flops(cfg, vocab_size) / (UTILISATION * matmul_flops_per_s(device.type))
    if seconds > SLOW_STEP_S:
        warnings.append(
            f"one training step will take about {human_duration(seconds)} here, so Stop answers only that often: "
            f"{fix} trains faster"
        )
    return warnings
