"""An installed wheel works on its own: built from this checkout, installed into a fresh venv, and run from a
folder outside the checkout, its CLI lists the presets and its window opens with the theme and icons, all read
from the installed resources (docs/DESIGN.md, "Resources").

The venv borrows torch, PySide6 and the other dependencies from this environment through a .pth file, which adds
this environment's site-packages after the venv's own and runs none of its .pth files, so this checkout's
editable install stays invisible: every test asserts that the code and the resources came from the venv. About
half a minute: the wheel and the venv are made once for the module.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from engine.config import PRESETS
from engine.data.sample import sample_text
from studio.icons import PANEL_ICONS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("engine", "studio")
RUN = dict(capture_output=True, text=True, timeout=240, check=False)


def _build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of this checkout (pip writes build/ and *.egg-info beside the sources it builds)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in (*PACKAGE_FOLDERS, "resources"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        import setuptools  # noqa: F401  (the build backend, when this environment has it: no download)

        isolation = ["--no-build-isolation"]
    except ImportError:
        isolation = []
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(tmp / "dist"), str(src)], **RUN
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return next((tmp / "dist").glob("*.whl"))


def _venv_with(wheel: Path, venv: Path) -> Path:
    """A fresh venv with the wheel installed and this environment's packages behind it; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], **RUN).check_returncode()
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        **RUN,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], **RUN
    ).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    Path(site, "borrowed-dependencies.pth").write_text("".join(f"{path}\n" for path in ours), encoding="utf-8")
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv, its python, the environment to run it in, a folder outside the checkout to run it from)."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(tmp)
    venv = tmp / "venv"
    python = _venv_with(wheel, venv)
    outside = tmp / "elsewhere"
    outside.mkdir()
    env = {
        "PATH": os.pathsep.join([str(python.parent), os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": str(outside),
        "XDG_CONFIG_HOME": str(outside / "config"),
        "XDG_DATA_HOME": str(outside / "data"),
        "QT_QPA_PLATFORM": "offscreen",
        "STUDIO_WORKSPACE": str(outside / "workspace"),
    }
    if sys.platform == "win32":
        env.update({k: os.environ[k] for k in ("SYSTEMROOT", "TEMP", "TMP") if k in os.environ})
    return wheel, venv, python, env, outside


def _script(venv: Path, name: str) -> str:
    return str(venv / ("Scripts" if sys.platform == "win32" else "bin") / name)


def _inside(path: str, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_the_wheel_holds_every_module_and_every_resource_and_no_top_level_resources(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {
        p.relative_to(ROOT).as_posix()
        for folder in PACKAGE_FOLDERS
        for p in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = sorted(modules - names)
    assert not missing, (
        f"{missing} are not in the wheel: add their package to [tool.setuptools] packages in pyproject.toml"
    )
    data = {
        "transformer_studio_resources/" + p.relative_to(ROOT / "resources").as_posix()
        for p in (ROOT / "resources").rglob("*")
        if p.is_file()
    }
    assert data <= names, sorted(data - names)
    assert "resources" not in {name.split("/")[0] for name in names}, "a top-level `resources` would shadow others"


def test_the_installed_cli_lists_the_presets_read_from_the_installed_resources(installed):
    _, venv, python, env, outside = installed
    r = subprocess.run([_script(venv, "studio-engine"), "config", "presets"], cwd=outside, env=env, **RUN)
    assert r.returncode == 0, r.stderr[-3000:]
    width = max(map(len, PRESETS))
    assert r.stdout.splitlines() == [f"{name:<{width}}  {spec['description']}" for name, spec in PRESETS.items()]
    probe = (
        "import hashlib, json, engine, engine.resources as r\n"
        "from engine.data.sample import sample_text\n"
        "print(json.dumps({'engine': engine.__file__, 'resources': str(r.resources_dir()),\n"
        "                  'words': str(r.resource_path('sample', 'words.json')),\n"
        "                  'sample': hashlib.sha256(sample_text(20_000, 3).encode()).hexdigest()}))\n"
    )
    r = subprocess.run([str(python), "-c", probe], cwd=outside, env=env, **RUN)
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads(r.stdout)
    assert _inside(found["engine"], venv), found  # the wheel's code, not this checkout's
    assert _inside(found["resources"], venv) and Path(found["resources"]).name == "transformer_studio_resources"
    assert Path(found["words"]).is_file() and _inside(found["words"], venv)
    # The sample play from the installed word lists is the one this checkout writes.
    assert found["sample"] == hashlib.sha256(sample_text(20_000, 3).encode()).hexdigest()


def test_the_installed_window_opens_offscreen_with_its_theme_icons_and_readme(installed):
    _, venv, python, env, outside = installed
    r = subprocess.run(
        [_script(venv, "studio"), "--check", "--workspace", str(outside / "ws")], cwd=outside, env=env, **RUN
    )
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith(
        f"studio: the window opens with its theme, the app icon, {len(PANEL_ICONS)} panel icons "
        f"and {len(PRESETS)} presets from "
    ), line
    assert _inside(line.rsplit(" from ", 1)[1], venv), line
    assert not (outside / "ws" / "logs").exists(), "--check started the engine"
    probe = "import studio, studio.icons as i; print(studio.__file__); print(i.readme_path())"
    r = subprocess.run([str(python), "-c", probe], cwd=outside, env=env, **RUN)
    assert r.returncode == 0, r.stderr[-3000:]
    module, readme = r.stdout.split()
    assert _inside(module, venv) and Path(readme) == venv / "share" / "transformer-studio" / "README.md"
