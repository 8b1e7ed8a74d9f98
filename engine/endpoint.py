"""Where an engine that trains in the background can be reached: a small file in the workspace, read by the
studio when it opens the workspace (standard library only; both sides import it).

`<workspace>/engine-endpoint.json` holds {"pid", "host", "address", "authkey" (hex), "run", "since"}. It is written
(atomically, readable by its owner only) when the window closes with "Keep training in the background", and
removed when a studio attaches (one window at a time) or when that engine exits. A file left by an engine that
died is recognised by its process being gone and is removed by the next reader; a file from another host of a
synced folder is not ours to use (that host's studio reattaches there; this one shows the run as training
elsewhere).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

ENDPOINT_FILE = "engine-endpoint.json"
HOST = socket.gethostname()


def endpoint_path(workspace: str | Path) -> Path:
    return Path(workspace) / ENDPOINT_FILE


def write_endpoint(workspace: str | Path, address: str, authkey: bytes, run: int | None) -> Path:
    path = endpoint_path(workspace)
    record = {
        "pid": os.getpid(),
        "host": HOST,
        "address": address,
        "authkey": authkey.hex(),
        "run": run,
        "since": time.time(),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the key is a secret: owner only
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(record, f)
    os.replace(tmp, path)
    return path


def remove_endpoint(workspace: str | Path, pid: int | None = None) -> None:
    """Remove the file if it is this process's (or `pid`'s): never another engine's newer record."""
    path = endpoint_path(workspace)
    record = _read(path)
    if record is None or (record.get("pid") == (pid or os.getpid()) and record.get("host") == HOST):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def read_endpoint(workspace: str | Path) -> dict | None:
    """The live background engine of this workspace on this computer, or None (a dead one's file is removed)."""
    path = endpoint_path(workspace)
    record = _read(path)
    if record is None or record.get("host") != HOST:
        return None
    try:
        pid, address, key = int(record["pid"]), str(record["address"]), bytes.fromhex(str(record["authkey"]))
    except (KeyError, TypeError, ValueError):
        _unlink(path)  # unreadable: nobody can attach with it
        return None
    if not pid_alive(pid):
        _unlink(path)
        return None
    return {**record, "pid": pid, "address": address, "authkey": key}


def _read(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def pid_alive(pid: int) -> bool:
    """Whether process `pid` still runs here (a zombie its parent has not reaped counts as gone)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there; the connection attempt decides instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
