"""Text a vocabulary lacks, in words: the warning before training on a vocabulary that reads much of its dataset
as [UNK], and the line for prompt characters a model never saw. Standard library only (a shared module): the
studio and the engine (its Log message, the CLI's line) say the same.
"""

from __future__ import annotations


# More of a corpus than this reading as [UNK] is worth a warning before training: the model learns to write
# [UNK] and its validation loss looks better than it is (an [UNK] is easy to predict).
UNKNOWN_WARN_SHARE = 0.01
_VISIBLE_CHARS = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}


def visible_char(c: str) -> str:
    """A character as it can be read in a message: a space as ␣, a newline as ⏎, a control character as its
    Unicode picture."""
    if c in _VISIBLE_CHARS:
        return _VISIBLE_CHARS[c]
    return chr(0x2400 + ord(c)) if len(c) == 1 and ord(c) < 32 else c


def _and_list(items: list[str], most: int = 6) -> str:
    """'a', 'a and b', 'a, b and c', 'a, b, c and 4 more'."""
    if len(items) > most:
        return f"{', '.join(items[:most])} and {len(items) - most} more"
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def percent(share: float) -> str:
    """0.123 -> '12 %', 0.015 -> '1.5 %'."""
    pct = 100 * share
    return f"{pct:.0f} %" if pct >= 10 else f"{pct:.1f} %"


def unknown_share_warning(share: float | None, dataset_name: str, examples: list[str] | None = None) -> str | None:
    """The warning for a vocabulary that leaves more than UNKNOWN_WARN_SHARE of its dataset's text unknown, in
    plain words; None when it covers the text (or the share was never measured). The studio and the engine
    (its Log message, the CLI's line) say the same."""
    if share is None or share <= UNKNOWN_WARN_SHARE:
        return None
    which = f" (for example {_and_list([visible_char(c) for c in examples], 5)})" if examples else ""
    return (
        f"{percent(share)} of the text in '{dataset_name}' is not in this vocabulary and reads as "
        f"[UNK]{which}; train a larger vocabulary"
    )


def unknown_prompt_message(chars: list[str]) -> str | None:
    """'☃ is not in this model's vocabulary; it reads as [UNK]' for the prompt characters a model never saw."""
    if not chars:
        return None
    shown = [visible_char(c) for c in chars]
    if len(shown) == 1:
        return f"{shown[0]} is not in this model's vocabulary; it reads as [UNK]"
    return f"{_and_list(shown)} are not in this model's vocabulary; they read as [UNK]"
