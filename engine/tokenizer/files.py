"""Saving a tokenizer.json atomically and loading one back, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path

from tokenizers import Tokenizer

from engine.tokenizer.errors import TokenizerError


def save_tokenizer(tok: Tokenizer, path: Path) -> None:
    """Write tokenizer.json atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(tok.to_str(), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise TokenizerError(f"cannot save the tokenizer to {path}: {e.strerror or e}") from None


def load_tokenizer(path: Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"no tokenizer file at {path}")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust side raises a bare Exception with its parser's message
        raise TokenizerError(f"cannot load the tokenizer {path}: {str(e).splitlines()[0] if str(e) else e!r}") from None
