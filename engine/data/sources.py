"""Finding the files an import reads: files as given, folders searched recursively with include/exclude
patterns, each with its format."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from engine.data import formats as fm
from engine.data.errors import DataError
from engine.data.import_options import ImportOptions


@dataclass
class Source:
    path: Path
    fmt: str


def _matches(name: str, rel: str, patterns: list[str]) -> bool:
    name, rel = name.lower(), rel.lower()
    for p in patterns:
        p = p.lower().removeprefix("**/")
        if fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p):
            return True
    return False


def _walk(folder: Path, include: list[str], exclude: list[str], warnings: list[str]) -> list[Path]:
    """Files under folder matching the patterns; symlinked folders are followed, loops are skipped and named."""
    out: list[tuple[tuple[str, ...], Path]] = []
    try:
        top = folder.stat()
    except OSError as e:
        raise DataError(f"cannot read folder {folder}: {e.strerror or e}") from None
    visited = {(top.st_dev, top.st_ino)}

    def visit(d: Path, rel: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as e:
            raise DataError(f"cannot read folder {d}: {e.strerror or e}") from None
        for e in entries:
            if e.name.startswith("."):  # .git, editor backups, our own temp folders
                continue
            r = (*rel, e.name)
            try:
                is_dir = e.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                try:
                    st = os.stat(e.path)
                except OSError as err:
                    warnings.append(f"skipped folder {e.path}: {err.strerror or err}")
                    continue
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    if e.is_symlink():
                        warnings.append(
                            f"skipped {e.path}: a symlink loop or a second link to a folder already "
                            f"searched ({os.path.realpath(e.path)})"
                        )
                    continue
                visited.add(key)
                visit(Path(e.path), r)
            elif _matches(e.name, "/".join(r), include) and not (exclude and _matches(e.name, "/".join(r), exclude)):
                out.append((r, Path(e.path)))

    visit(folder, ())
    return [p for _, p in sorted(out, key=lambda t: t[0])]


def _collect(paths: list[Path], opts: ImportOptions, warnings: list[str]) -> list[Source]:
    if not paths:
        raise DataError("no files or folders to import")
    include = opts.include or fm.DEFAULT_GLOBS[opts.fmt or "txt"]
    found: list[Source] = []
    seen: set[str] = set()
    for p in map(Path, paths):
        if p.is_dir():
            in_dir = _walk(p, include, opts.exclude or [], warnings)
            if not in_dir:
                what = ".txt files" if include == ["*.txt"] else f"files matching {', '.join(include)}"
                raise DataError(f"folder {p} has no {what}")
        elif p.exists() or p.is_symlink():
            in_dir = [p]  # named explicitly: taken whatever its extension (its content is checked later)
        else:
            raise DataError(f"{p} does not exist")
        for f in in_dir:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                found.append(Source(f, opts.fmt or fm.detect_format(f)))
    return found


def collect_files(
    paths: list[Path], fmt: str | None = None, include: list[str] | None = None, exclude: list[str] | None = None
) -> list[Path]:
    """The files to import, in a stable order: files as given, folders searched recursively (sorted).

    A file named explicitly is taken whatever its extension (the user chose it; its content is checked later).
    Hidden files and folders inside a searched folder are skipped (.git, editor backups).
    """
    return [s.path for s in _collect(paths, ImportOptions(fmt=fmt, include=include, exclude=exclude), [])]
