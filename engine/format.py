"""Numbers, sizes, durations and dates in words for people: the one place the studio and the CLI take them from.

Standard library only (both sides import it; pyproject.toml's shared-modules contract and mypy hold it to that),
so every panel and every CLI line writes "1.2 M", "3.0 MiB" or "1 m 05 s" the same way. "—" stands for a value
that is not known (yet); the functions never raise on one.
"""

from __future__ import annotations

import datetime as _dt
import math

UNKNOWN = "—"

# ------------------------------------------------------------------------------------------------------- counts


def human_count(n: float) -> str:
    """1234567 -> '1.2 M'; below a thousand, the whole number."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f}"


def human_exact(n: float | None) -> str:
    """'12.3 k (12,345)': short for reading, exact for checking; just '123' when both are the same."""
    if n is None:
        return UNKNOWN
    short = human_count(n)
    exact = f"{int(n):,}"
    return short if short.replace(",", "") == exact.replace(",", "") else f"{short} ({exact})"


def plural(n: float, word: str, many: str | None = None, *, human: bool = False) -> str:
    """A count of things for people: "1 document", "2 documents", "1.2 k documents" (human=True).

    `many`: the plural when it is not `word` + "s" ("entries")."""
    number = human_count(n) if human else f"{n:,}"
    return f"{number} {word if n == 1 else many or word + 's'}"


# -------------------------------------------------------------------------------------------- sizes and work


def human_bytes(n: float) -> str:
    """3145728 -> '3.0 MiB' (powers of 1024, as file managers show them)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def human_flops(n: float) -> str:
    """5.2e6 -> '5.2 MFLOP'."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}FLOP"
    return f"{n:.0f} FLOP"


# ----------------------------------------------------------------------------------------------- time and dates


def human_duration(seconds: float | None) -> str:
    """65 -> '1 m 05 s', 3700 -> '1 h 01 m'; '—' when unknown or negative."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return UNKNOWN
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} m"
    if m:
        return f"{m} m {s:02d} s"
    return f"{s} s"


def eta_text(fraction: float, elapsed_s: float) -> str:
    """'about 1 m 20 s left' from how far a job is and how long it has run; '' while too early to tell."""
    if fraction <= 0.02 or fraction >= 1 or elapsed_s < 2:
        return ""
    return f"about {human_duration(elapsed_s * (1 - fraction) / fraction)} left"


def fmt_created(value: object) -> str:
    """When something was made, to the minute on the user's clock: '2024-05-01 14:03'; '' when unknown.

    `value` is a Unix time or an ISO 8601 string (the workspace stores UTC); a string that is neither is shown
    as it is, cut to the minute."""
    if value in (None, ""):
        return ""
    if isinstance(value, (int, float)):
        return _dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
    try:
        stamp = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value).replace("T", " ")[:16]
    return (stamp.astimezone() if stamp.tzinfo else stamp).strftime("%Y-%m-%d %H:%M")


# ---------------------------------------------------------------------------------------- a training's numbers


def fmt_loss(x: float | None) -> str:
    return UNKNOWN if x is None or not math.isfinite(x) else f"{x:.3f}"


def fmt_lr(x: float | None) -> str:
    return UNKNOWN if x is None else f"{x:.2e}"


def fmt_grad(x: float | None) -> str:
    return UNKNOWN if x is None or not math.isfinite(x) else f"{x:.2f}"


def fmt_speed(tokens_per_sec: float | None) -> str:
    """'12.3 k tok/s'; '—' before the first measure (None or 0)."""
    return UNKNOWN if not tokens_per_sec else f"{human_count(tokens_per_sec)} tok/s"


def lower_first(label: str) -> str:
    """A label inside a sentence: 'Token accuracy' -> 'token accuracy'; 'KL to the teacher' keeps its capitals."""
    return label if label[1:2].isupper() else label[:1].lower() + label[1:]
