"""How much of its dataset's text a tokenizer reads as [UNK], in words for the Train and Vocabulary panels.

The engine measures the share when it trains a tokenizer and keeps it on the tokenizer's row ("unk_share", the
fraction of the text's characters; "unk_examples", the most common of those characters), so this needs no
torch and no tokenizer file. Rows from before that was measured have no share: then nothing is said.
"""

from __future__ import annotations

import html
import math

from engine.config import percent, unknown_share_warning


def _dataset_name(tokenizer_row: dict, dataset_row: dict | None) -> str:
    if (
        dataset_row
        and dataset_row.get("name")
        and dataset_row.get("id", tokenizer_row.get("dataset_id")) == tokenizer_row.get("dataset_id")
    ):
        return str(dataset_row["name"])
    return f"dataset {tokenizer_row.get('dataset_id')}"


def coverage_warning(tokenizer_row: dict | None, dataset_row: dict | None) -> str | None:
    """The warning to show before training on this tokenizer, or None when it covers the text (at most
    UNKNOWN_WARN_SHARE unknown) or its coverage was never measured. The engine logs the same words when a run
    starts on it."""
    if not tokenizer_row:
        return None
    return unknown_share_warning(
        tokenizer_row.get("unk_share"), _dataset_name(tokenizer_row, dataset_row), tokenizer_row.get("unk_examples")
    )


def coverage_note(tokenizer_row: dict | None, dataset_row: dict | None) -> tuple[str, str]:
    """(one line about the tokenizer's coverage, "warning" or "info"); ("", "") when it was never measured."""
    share = (tokenizer_row or {}).get("unk_share")
    if share is None:
        return "", ""
    warning = coverage_warning(tokenizer_row, dataset_row)
    if warning:
        return warning[0].upper() + warning[1:] + ".", "warning"
    if share == 0:
        return "Every character of the text is in this vocabulary: nothing reads as [UNK].", "info"
    # Rounded down, so a little unknown text never reads as "100 %".
    covered = f"{math.floor((1 - share) * 1000) / 10:.1f} %"
    unknown = percent(share) if share >= 0.001 else "less than 0.1 %"
    return f"{covered} of the text is in this vocabulary; {unknown} reads as [UNK].", "info"


def coverage_html(tokenizer_row: dict | None, dataset_row: dict | None, warning_color: str = "") -> str:
    """coverage_note as a rich-text line to append to a summary ("<br>…"), a warning in `warning_color`."""
    text, level = coverage_note(tokenizer_row, dataset_row)
    if not text:
        return ""
    if level == "warning" and warning_color:
        return f"<br><span style='color: {warning_color};'>{html.escape(text, quote=False)}</span>"
    return f"<br>{html.escape(text, quote=False)}"
