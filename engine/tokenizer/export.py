"""Exporting a trained tokenizer for use elsewhere: its tokenizer.json, or a folder that transformers loads."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from engine.tokenizer.errors import TokenizerError


def export_tokenizer(ws, ref: int | str, out_path: Path | str) -> Path:
    """Write the tokenizer for use elsewhere; returns what was written.

    out_path ending in .json: that one file, the tokenizer.json as trained (tokenizers.Tokenizer.from_file
    and transformers.PreTrainedTokenizerFast(tokenizer_file=...) load it). Otherwise a folder that
    transformers.AutoTokenizer.from_pretrained loads with the special token roles: tokenizer.json,
    tokenizer_config.json and special_tokens_map.json.
    """
    row = ws.tokenizer(ref)
    src = ws.tokenizer_path(row["id"])
    out = Path(out_path).expanduser()
    try:
        if out.suffix.lower() == ".json":
            if not out.parent.is_dir():
                raise TokenizerError(f"cannot export to {out}: the folder {out.parent} does not exist")
            _copy_atomic(src, out)
            return out
        out.mkdir(parents=True, exist_ok=True)
        _copy_atomic(src, out / "tokenizer.json")
        roles = {f"{role}_token": token for role, token in (row.get("spec") or {}).get("special_tokens", {}).items()}
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "clean_up_tokenization_spaces": False,
            "model_max_length": 1_000_000_000,
            **roles,
        }
        _write_atomic(out / "tokenizer_config.json", json.dumps(config, indent=2, ensure_ascii=False))
        _write_atomic(out / "special_tokens_map.json", json.dumps(roles, indent=2, ensure_ascii=False))
        return out
    except OSError as e:
        raise TokenizerError(f"cannot export the tokenizer to {out}: {e.strerror or e}") from None


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def _write_atomic(dst: Path, text: str) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
