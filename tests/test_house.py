"""Rooms stay small: no module under engine/ or studio/ over about 500 lines, no function over about 80.

A file or function may be longer when it says why at its top: a module docstring (or a function docstring) with a
line starting "Long file:" (or "Long function:") and the reason. That keeps the exception visible to whoever
opens it, instead of a list of exemptions here that nobody reads.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_LINES = 550
MAX_FUNCTION_LINES = 80


def _sources():
    for package in ("engine", "studio"):
        yield from sorted((ROOT / package).rglob("*.py"))


def _says_why(docstring: str | None, label: str) -> bool:
    return bool(docstring) and any(line.strip().startswith(label) for line in docstring.splitlines())


def _long_functions(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES and not _says_why(ast.get_docstring(node), "Long function:"):
                yield node.name, node.lineno, length


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_its_functions_are_short(path):
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.count("\n") + 1
    assert lines <= MAX_FILE_LINES or _says_why(ast.get_docstring(tree), "Long file:"), (
        f"{path.name} has {lines} lines: split it, or say why at its top ('Long file: …')"
    )
    long = [f"{name} (line {at}, {n} lines)" for name, at, n in _long_functions(tree)]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines in {path.name}: {', '.join(long)}"


def test_the_checks_see_the_whole_tree():
    """The parametrisation above must not silently shrink to nothing (a moved folder, a bad glob)."""
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {"engine/protocol.py", "engine/config.py", "studio/app.py"} <= names
    assert len(names) > 60
