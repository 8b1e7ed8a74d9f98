"""Where to compute and in which precision: the choices behind TrainConfig.device and TrainConfig.dtype."""

from __future__ import annotations

import contextlib

import torch

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(pref: str = "auto") -> torch.device:
    """ "auto": the GPU when PyTorch sees one, else the CPU. Asking for "cuda" without a GPU is an error."""
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref == "cpu":
        return torch.device("cpu")
    if pref == "cuda" or pref.startswith("cuda:"):
        if not torch.cuda.is_available():
            why = (
                "this PyTorch build has no CUDA support"
                if torch.version.cuda is None
                else "PyTorch finds no usable NVIDIA GPU or driver"
            )
            raise RuntimeError(f"the GPU (cuda) was chosen but {why}; choose 'auto' or 'cpu'")
        device = torch.device(pref)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeError(f"there is no GPU {device.index}; this machine has {torch.cuda.device_count()}")
        return device
    raise ValueError(f"unknown device {pref!r}; choose auto, cpu or cuda")


def autocast_dtype(device, pref: str = "auto") -> torch.dtype | None:
    """The dtype to autocast to, or None for plain float32 (no autocast).

    "auto": bfloat16 on a GPU that supports it, else float16 on the GPU (which needs a GradScaler when
    training); float32 on the CPU, where mixed precision rarely pays off for small models.
    """
    device = torch.device(device)
    if pref == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if pref == "float32":
        return None
    if pref in _DTYPES:
        if pref == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError("this GPU cannot compute in bfloat16; choose float16 or float32")
        return _DTYPES[pref]
    raise ValueError(f"unknown dtype {pref!r}; choose auto, float32, bfloat16 or float16")


def autocast_context(device, dtype: torch.dtype | None):
    """torch.autocast for `dtype`, or a do-nothing context when dtype is None (float32)."""
    device = torch.device(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def device_description(device) -> str:
    """A name for people: "CPU (2 threads)" or the GPU's name, e.g. "NVIDIA H100 80GB HBM3"."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"CPU ({n} thread{'s' if n != 1 else ''})"
    return str(device)
