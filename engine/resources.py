"""Where the files the product ships are found: presets, the sample play's word lists, the theme and the icons.

They live in resources/ at the top of the project, and both a checkout and an editable install (which runs from
the checkout) read them there. An installed wheel carries the same folder as the data-only package
`transformer_studio_resources`, beside engine/ and studio/ in site-packages (pyproject.toml, [tool.setuptools]),
so it is found wherever pip put the code: a venv, --user, --target or --prefix. Its import name is not
`resources`, a top-level name that another distribution or a user's own module could hold (docs/DESIGN.md,
"Resources").

Standard library only: engine.config reads the presets through it, and the studio (studio/theme.py,
studio/icons.py) imports it without pulling in torch.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

PACKAGE = "transformer_studio_resources"
FOLDER = "resources"

# The folder that holds engine/: the checkout (or the editable install's source), or site-packages.
_ABOVE_ENGINE = Path(__file__).resolve().parents[1]


class ResourcesMissing(FileNotFoundError):
    """The product's resources cannot be found: an installation without its data (a broken or partial copy)."""


@functools.lru_cache(maxsize=None)
def resources_dir() -> Path:
    """The resources folder: the checkout's resources/, else the installed package's folder."""
    # site-packages has no pyproject.toml; a checkout has, and its own resources/ wins over any installed copy.
    if (_ABOVE_ENGINE / "pyproject.toml").is_file() and (_ABOVE_ENGINE / FOLDER).is_dir():
        return _ABOVE_ENGINE / FOLDER
    spec = importlib.util.find_spec(PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    raise ResourcesMissing(
        f"Transformer Studio's resources are missing: neither {_ABOVE_ENGINE / FOLDER} nor an "
        f"installed {PACKAGE} package was found; reinstall transformer-studio"
    )


def resource_path(*parts: str) -> Path:
    """resources/<parts> (which may not exist)."""
    return resources_dir().joinpath(*parts)


def read_text(*parts: str) -> str:
    """The text of resources/<parts>; ResourcesMissing names the file when it is not there."""
    path = resource_path(*parts)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResourcesMissing(
            f"Transformer Studio's resource file {path} is missing; reinstall transformer-studio"
        ) from None


def read_json(*parts: str) -> Any:
    """resources/<parts> parsed as JSON."""
    return json.loads(read_text(*parts))
