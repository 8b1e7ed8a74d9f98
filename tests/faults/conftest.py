"""What the fault tests share: a workspace with a small dataset of repeated lines, and one torch thread (their
models are tiny, and one thread keeps them fast beside other processes)."""

from pathlib import Path

import pytest

from engine.store import Workspace

LINES = "the cat sat on the mat. the dog ran to the log.\n" * 100


def lines_workspace(tmp_path: Path) -> Path:
    """A workspace folder under tmp_path with the dataset "lines" imported; its path."""
    (tmp_path / "lines.txt").write_text(LINES, encoding="utf-8")
    with Workspace(tmp_path / "ws") as w:
        w.import_dataset([tmp_path / "lines.txt"], "lines", 0.1)
    return tmp_path / "ws"


@pytest.fixture
def ws(tmp_path):
    with Workspace(lines_workspace(tmp_path)) as w:
        yield w


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Tiny models: one torch thread (tests/conftest.py)."""
