"""What the user chose in a workspace, kept in the workspace folder so it comes back exactly after a restart.

One small JSON file beside the SQLite database (not in QSettings, which is per machine): a workspace copied or
moved to another folder or computer opens with the same dataset, tokenizer, model form, objective, run, panel
and playground settings. Qt-free; written atomically (temp file + rename), so a crash never leaves half a file,
and a file that cannot be read is ignored (the studio then starts with defaults, and says nothing is lost).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

STATE_FILE = "studio-state.json"
VERSION = 1


def state_path(workspace: str | Path) -> Path:
    return Path(workspace) / STATE_FILE


def load(workspace: str | Path) -> dict:
    """The saved state of `workspace`, or {} when there is none or it cannot be read."""
    try:
        data = json.loads(state_path(workspace).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    return data


def save(workspace: str | Path, state: dict) -> bool:
    """Write `state` for `workspace` atomically; False when the folder cannot be written (nothing else changes)."""
    folder = Path(workspace)
    if not folder.is_dir():
        return False
    data = dict(state, version=VERSION)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".studio-state-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            os.replace(tmp, state_path(folder))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, TypeError, ValueError):
        return False
    return True
