"""Checkpoints as safetensors + JSON: written atomically, verified by sha256 on load, resumable exactly.

A checkpoint called NAME in a directory is up to three files:
    NAME.safetensors        the model's weights (a tied matrix stored once, its other names listed in the JSON)
    NAME.optim.safetensors  the optimizer's tensors, when an optimizer was given
    NAME.json               {"format": 1, "meta", "extra", "files": {...sha256, bytes...}, "aliases", "optimizer"}

The JSON is written last and is the commit point: every file is first written in full to a temporary file
beside its target and fsynced; only then are they renamed over the old ones (os.replace), the JSON last.
A failure while serializing or writing (a full disk, say) therefore leaves the previous checkpoint of the
same name untouched. The renames themselves only touch directory entries; should one fail after another
succeeded, the sha256 check reports the checkpoint as corrupt rather than loading a mixture.

Nothing here unpickles: no pickle, no torch.load. Non-tensor optimizer state travels as JSON.

The last part is a run's registry: which checkpoints a run has in the workspace's checkpoints table (the
resumable `latest`, and weights-only `step-NNNNNNNN` ones thinned to train.keep_checkpoints), found by name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine.errors import UserError

FORMAT = 1
CHECKPOINT_NAME = "latest"  # the resumable checkpoint of a run; the others are weights only
_KEPT_NAME = re.compile(r"step-(\d+)")


class CheckpointError(UserError):
    """A checkpoint cannot be written or read; the message says which file and why, in one line."""


# ----------------------------------------------------------------------------------------------- saving


def save_checkpoint(
    directory: Path, name: str, model, optimizer=None, meta: dict | None = None, extra: dict | None = None
) -> dict:
    """Write NAME.safetensors (+ NAME.optim.safetensors) and then NAME.json into `directory`.

    Returns {"path": the JSON's path, "sha256": the weights file's sha256, "bytes": all files' bytes}.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"{name}.json"
    for label, value in (("meta", meta), ("extra", extra)):
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"cannot save checkpoint {json_path}: {label} is not plain JSON ({e})") from None

    _require_finite(model, json_path, meta)
    weights, aliases = _dedupe_shared(model.state_dict())
    blobs = {"model": (directory / f"{name}.safetensors", st_save(weights))}
    doc: dict[str, Any] = {"format": FORMAT, "meta": meta, "extra": extra, "files": {}, "aliases": aliases}
    if optimizer is not None:
        tensors: dict[str, torch.Tensor] = {}
        doc["optimizer"] = _encode(optimizer.state_dict(), tensors, "opt")
        blobs["optimizer"] = (directory / f"{name}.optim.safetensors", st_save(tensors))
    for key, (path, data) in blobs.items():
        doc["files"][key] = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    doc["sha256"] = _doc_digest(doc)
    doc_bytes = json.dumps(doc, indent=1).encode()

    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in [*blobs.values(), (json_path, doc_bytes)]:
            staged.append((_write_temp(path, data), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException as e:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)  # a no-op for those already renamed
        if isinstance(e, OSError):
            raise CheckpointError(
                f"cannot save checkpoint {json_path}: {e.strerror or e}"
            ) from e  # the cause says a full disk (engine/training_space.py)
        raise
    _fsync_dir(directory)
    total = sum(len(data) for _, data in blobs.values()) + len(doc_bytes)
    return {"path": str(json_path), "sha256": doc["files"]["model"]["sha256"], "bytes": total}


def _require_finite(model, json_path: Path, meta: dict | None) -> None:
    """CheckpointError before anything is written when a weight is infinite or NaN: such a file would replace the
    last good checkpoint with one nothing can resume from (buffers such as masks may hold -inf; weights never)."""
    bad = sum(int((~torch.isfinite(p.detach())).sum()) for p in model.parameters() if p.is_floating_point())
    if bad:
        at = f" at step {meta['step']:,}" if isinstance(meta, dict) and isinstance(meta.get("step"), int) else ""
        raise CheckpointError(
            f"{bad:,} weights became infinite or NaN{at}, so {json_path.name} was not saved and the last good "
            "checkpoint is kept: lower the Learning rate or Gradient clipping, or use float32 Precision "
            "(train.learning_rate, train.grad_clip, train.dtype)"
        )


def _write_temp(path: Path, data: bytes) -> Path:
    """Write data to a new temporary file beside `path`, flushed to disk; return the temporary's path."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    # Makes the renames durable on POSIX; directories cannot be opened like this on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _aliases(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """{later name: first name} for names that share one tensor (tied embeddings)."""
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for key, t in state.items():
        ident = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
        if t.numel() and ident in seen:
            aliases[key] = seen[ident]
        else:
            seen[ident] = key
    return aliases


def _dedupe_shared(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses two names for one tensor: keep the first, list the rest as aliases."""
    aliases = _aliases(state)
    weights = {k: t.detach().cpu().contiguous() for k, t in state.items() if k not in aliases}
    return weights, aliases


def _encode(obj, tensors: dict[str, torch.Tensor], path: str):
    """Turn a state dict into JSON, moving its tensors into `tensors` under dotted keys; exact and reversible."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        # JSON keys are text; the optimizer's per-parameter state is keyed by int, so keep the real keys.
        return {"__items__": [[k, _encode(v, tensors, f"{path}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot save optimizer state: values of type {type(obj).__name__} are not supported")


def _decode(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        return {k: _decode(v, tensors) for k, v in obj["__items__"]}
    return obj


# ---------------------------------------------------------------------------------------------- loading


def read_checkpoint_meta(json_path) -> dict:
    """The checkpoint's JSON (meta, extra, files) without reading the tensor files."""
    json_path = Path(json_path)
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {json_path} not found") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {json_path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {json_path} is corrupt: its JSON cannot be read") from None
    if not isinstance(doc, dict) or "files" not in doc or "model" not in doc.get("files", {}):
        raise CheckpointError(f"{json_path} is not a checkpoint (no list of files)")
    if doc.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {json_path} has format {doc.get('format')!r}; this version reads format {FORMAT}"
        )
    # Older checkpoints carry no digest of their JSON; they are read as before.
    if "sha256" in doc and doc["sha256"] != _doc_digest(doc):
        raise CheckpointError(
            f"checkpoint {json_path} is corrupt: its record (settings, step, random-number state) was changed after "
            "it was written, so it would not resume as it was saved"
        )
    return doc


_RESUME_NEEDS = {"meta": ("step",), "extra": ("rng", "data_rng")}


def resume_parts(doc: dict, json_path) -> tuple[dict, dict]:
    """(meta, extra) of a checkpoint to resume from; CheckpointError naming what is missing (an older checkpoint
    without a digest of its JSON, edited by hand) instead of a KeyError."""
    parts = {k: doc.get(k) if isinstance(doc.get(k), dict) else {} for k in _RESUME_NEEDS}
    missing = [f"{k}.{name}" for k, names in _RESUME_NEEDS.items() for name in names if name not in parts[k]]
    if missing:
        raise CheckpointError(
            f"checkpoint {Path(json_path).name} cannot be resumed: its record lacks {', '.join(missing)} (the step "
            "and random-number states a resumed run continues from)"
        )
    return parts["meta"], parts["extra"]


def _doc_digest(doc: dict) -> str:
    """The sha256 of a checkpoint's JSON without its own digest, keys sorted: what the digest covers."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _read_tensors(json_path: Path, doc: dict, key: str, map_location, verify: bool) -> dict[str, torch.Tensor]:
    entry = doc["files"][key]
    path = json_path.parent / entry["file"]
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {json_path} is incomplete: {path.name} is missing") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    if verify and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CheckpointError(f"checkpoint {json_path} is corrupt: {path.name} does not match its sha256")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"checkpoint {json_path} is corrupt: {path.name} cannot be read ({e})") from None
    return {k: t.to(map_location) for k, t in tensors.items()}


def load_model_state(json_path, map_location="cpu", verify: bool = True) -> dict[str, torch.Tensor]:
    """The checkpoint's weights as a state dict (tied names filled in), without building a model."""
    json_path = Path(json_path)
    doc = read_checkpoint_meta(json_path)
    state = _read_tensors(json_path, doc, "model", map_location, verify)
    for alias, target in doc.get("aliases", {}).items():
        state[alias] = state[target]
    return state


def load_checkpoint(json_path: Path, model=None, optimizer=None, map_location="cpu", verify: bool = True) -> dict:
    """Verify every file's sha256, then load weights into `model` (strictly) and state into `optimizer`.

    Returns the checkpoint's JSON (with "meta" and "extra").
    """
    json_path = Path(json_path)
    doc = read_checkpoint_meta(json_path)
    if optimizer is not None and "optimizer" not in doc["files"]:
        raise CheckpointError(f"checkpoint {json_path} holds no optimizer state")
    # Read and verify everything before changing the model, so a bad file leaves the model as it was.
    state = load_model_state(json_path, map_location, verify)
    opt_tensors = None
    if optimizer is not None:
        opt_tensors = _read_tensors(json_path, doc, "optimizer", map_location, verify)
    if model is not None:
        _check_fits(json_path, model.state_dict(), state, doc.get("aliases", {}))
        model.load_state_dict(state, strict=True)
    if optimizer is not None:
        opt_state = _decode(doc["optimizer"], opt_tensors)
        try:
            optimizer.load_state_dict(opt_state)
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"checkpoint {json_path}: the optimizer state does not fit ({e})") from None
    return doc


def _check_fits(
    json_path: Path, expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], aliases: dict[str, str]
) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} is {tuple(state[k].shape)} in the file but {tuple(t.shape)} in the model"
        for k, t in expected.items()
        if k in state and state[k].shape != t.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}")
    if wrong:
        problems.append(wrong[0] + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""))
    # Loading two different matrices into one tied parameter would silently keep only the last.
    for alias, target in _aliases(expected).items():
        if aliases.get(alias) != target and aliases.get(target) != alias:
            problems.append(f"{alias} and {target} are one tied matrix in the model but two in the file")
            break
    if problems:
        raise CheckpointError(f"checkpoint {json_path} does not fit this model: {'; '.join(problems)}")


# ------------------------------------------------------------------------------------------ RNG states


def _b64(t: torch.Tensor) -> str:
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def _unb64(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state() -> dict:
    """Python's, NumPy's and torch's (CPU and every GPU's) RNG states as JSON-safe values."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available():
        state["cuda"] = [_b64(s.cpu()) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(d: dict) -> None:
    """Restore what rng_state() returned, so the run continues with exactly the same random numbers."""
    version, internal, gauss = d["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = d["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_unb64(d["torch"]))
    if "cuda" in d and torch.cuda.is_available():
        states = [_unb64(s) for s in d["cuda"]]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


# ------------------------------------------------------------------------------------- a run's registry


def kept_checkpoint_name(step: int) -> str:
    return f"step-{int(step):08d}"


def checkpoint_name(path) -> str:
    """A checkpoint's name: its JSON file's name without ".json" ("latest", "step-00000250")."""
    name = Path(path).name
    return name[:-5] if name.endswith(".json") else name


def list_checkpoints(ws, run_ref) -> list[dict]:
    """The run's checkpoints on disk: [{"name", "step", "val_loss", "path", "created"}], oldest first.

    "latest" (the resumable one) is listed once, at the step it holds now; a file that is gone is left out.
    """
    run_id = ws.run(run_ref)["id"]
    newest: dict[str, dict] = {}
    for row in ws.checkpoints(run_id):  # by step, then id: a later row of one file replaces an earlier one
        newest[row["path"]] = row
    rows = [
        {
            "name": checkpoint_name(r["path"]),
            "step": int(r["step"]),
            "val_loss": r["val_loss"],
            "path": r["path"],
            "created": r["created"],
        }
        for r in newest.values()
        if Path(r["path"]).is_file()
    ]
    return sorted(rows, key=lambda r: (r["step"], r["name"] == CHECKPOINT_NAME))


def find_checkpoint(ws, run_ref, name: str | None = None) -> dict:
    """The checkpoint row called `name` (None: the newest checkpoint) of a run; CheckpointError if none."""
    run = ws.run(run_ref)
    if name in (None, ""):
        ck = ws.latest_checkpoint(run["id"])
        if ck is None:
            raise CheckpointError(f"run {run['id']} ({run['name']}) has no checkpoint yet: train it first")
        return ck
    rows = list_checkpoints(ws, run["id"])
    wanted = str(name).strip()
    step = re.fullmatch(r"step-0*(\d+)", wanted)
    if step:  # "step-250" names the file step-00000250 too
        wanted = kept_checkpoint_name(int(step.group(1)))
    for row in reversed(rows):
        if row["name"] == wanted:
            return row
    names = ", ".join(r["name"] for r in rows) or "none yet"
    raise CheckpointError(f"run {run['id']} ({run['name']}) has no checkpoint {name!r}; it has: {names}")


def resumable_checkpoint(ws, run_id: int) -> dict | None:
    """The newest row of the run's "latest" checkpoint (weights-only checkpoints cannot resume a run)."""
    rows = [r for r in ws.checkpoints(run_id) if checkpoint_name(r["path"]) == CHECKPOINT_NAME]
    return rows[-1] if rows else None


def thin_kept_checkpoints(ws, run_id: int, keep: int, interval: int) -> None:
    """Remove weights-only checkpoints of the run so that at most `keep` remain, evenly spaced (_thinned)."""
    kept = [c for c in list_checkpoints(ws, run_id) if _KEPT_NAME.fullmatch(c["name"])]
    _forget_checkpoints(ws, run_id, _thinned(kept, keep, interval))


def forget_checkpoints_after(ws, run_id: int, step: int) -> None:
    """Remove the run's weights-only checkpoints past `step`: a resumed run makes those steps again."""
    _forget_checkpoints(
        ws, run_id, [c for c in list_checkpoints(ws, run_id) if c["step"] > step and c["name"] != CHECKPOINT_NAME]
    )


def _thinned(kept: list[dict], keep: int, interval: int) -> list[dict]:
    """Which of `kept` (rows by step, the newest last) to remove so that at most `keep` remain, evenly spaced:
    the newest, and the steps before it at multiples of a stride, the evaluation interval times 1, 2, 4, ...,
    the smallest that fits. The stride only grows as the run does, so nothing removed is wanted later."""
    if not kept:
        return []
    if keep <= 1:
        return kept[:-1]
    newest = kept[-1]["step"]
    stride = max(1, int(interval))
    while -(-newest // stride) + 1 > keep:  # multiples of stride below the newest, and the newest
        stride *= 2
    return [r for r in kept[:-1] if r["step"] % stride]


def _forget_checkpoints(ws, run_id: int, rows: list[dict]) -> None:
    """Delete checkpoints' files (the JSON, their commit point, first) and their rows."""
    for row in rows:
        json_path = Path(row["path"])
        try:
            files = [f["file"] for f in (read_checkpoint_meta(json_path).get("files") or {}).values()]
        except CheckpointError:
            files = [f"{checkpoint_name(json_path)}.safetensors"]
        json_path.unlink(missing_ok=True)
        for f in files:
            (json_path.parent / f).unlink(missing_ok=True)
    ws.delete_checkpoints(run_id, [r["path"] for r in rows])
