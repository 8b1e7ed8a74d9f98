"""The two worlds stay apart: the studio never loads torch, the engine never loads Qt (docs/DESIGN.md rule 1)."""

import importlib.util
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fresh_modules(imports: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {imports!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _studio_modules() -> list[str]:
    import studio

    names = ["studio.app", "studio.main_window", "studio.session", "studio.engine_client"]
    for pkg in ("studio.panels", "studio.widgets"):
        path = ROOT / pkg.replace(".", "/")
        names += [f"{pkg}.{m.name}" for m in pkgutil.iter_modules([str(path)])]
    assert "studio.panels.training" in names and studio
    return names


def test_studio_never_imports_torch():
    loaded = _fresh_modules(_studio_modules())
    assert "torch" not in loaded
    assert "studio.panels.playground" in loaded and "PySide6.QtWidgets" in loaded
    # From the engine, only the standard-library modules the import contract names.
    engine_mods = {m for m in loaded if m == "engine" or m.startswith("engine.")}
    # A package whose module is shared is loaded too (its __init__ imports nothing).
    assert engine_mods <= {"engine", "engine.objectives", *_shared_modules()}, engine_mods


def _shared_modules() -> list[str]:
    """The modules pyproject.toml's import contract holds to the standard library: the only engine code the
    studio may load. Read from there so the contract and this runtime check cannot drift apart."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (shared,) = [c for c in contracts if c["name"].startswith("The shared modules")]
    assert "engine.protocol" in shared["source_modules"]
    return shared["source_modules"]


def test_engine_never_imports_qt():
    wanted = ["engine.worker", "engine.cli", "engine.train"]
    present = [m for m in wanted if importlib.util.find_spec(m) is not None]
    assert "engine.worker" in present
    loaded = _fresh_modules(present)
    assert not {m for m in loaded if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph")}


def test_mypy_checks_every_shared_module():
    """`mypy` (in .ci/run) checks the files pyproject.toml lists; they are the contract's shared modules."""
    tomllib = pytest.importorskip("tomllib")
    files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert sorted(f.removesuffix(".py").replace("/", ".") for f in files) == sorted(_shared_modules())
