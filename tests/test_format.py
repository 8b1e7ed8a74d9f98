"""engine/format.py: the words for numbers, sizes, durations and dates, pinned as the panels and the CLI show them
(including the odd corners, such as 999,950 reading '1000.0 k': changing one changes what users see)."""

import math
import time

import pytest

from engine.format import (
    eta_text,
    fmt_created,
    fmt_grad,
    fmt_loss,
    fmt_lr,
    fmt_speed,
    human_bytes,
    human_count,
    human_duration,
    human_exact,
    human_flops,
    plural,
)


def test_human_count():
    assert [human_count(n) for n in (0, 1, -1, 999, 1000, 1234, -1234, 1_234_567, 2.5e9)] == [
        "0",
        "1",
        "-1",
        "999",
        "1.0 k",
        "1.2 k",
        "-1.2 k",
        "1.2 M",
        "2.5 G",
    ]
    # Rounding happens after the unit is chosen, so a value just under a unit keeps the smaller one.
    assert human_count(999.4) == "999" and human_count(999.5) == "1000" and human_count(999_950) == "1000.0 k"
    assert human_count(1e15) == "1000000.0 G"  # no unit above G
    assert human_count(0.5) == "0" and human_count(1.5) == "2"  # the whole number rounds half to even


def test_human_exact():
    assert human_exact(None) == "—"
    assert human_exact(0) == "0" and human_exact(300) == "300" and human_exact(-5) == "-5"
    assert human_exact(12_345) == "12.3 k (12,345)" and human_exact(1000) == "1.0 k (1,000)"
    assert human_exact(123_456_789_012) == "123.5 G (123,456,789,012)"
    assert human_exact(999.5) == "1000 (999)"  # the exact part is the whole number, cut


def test_plural():
    assert plural(0, "file") == "0 files" and plural(1, "file") == "1 file" and plural(2, "file") == "2 files"
    assert plural(1.0, "file") == "1.0 file" and plural(-1, "step") == "-1 steps"
    assert plural(12_345, "document") == "12,345 documents"
    assert plural(12_345, "document", human=True) == "12.3 k documents"
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == "3 entries"


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1, -1, 1023, 1024, 2048, 1 << 20, (1 << 30) - 1, 1 << 30)] == [
        "0 B",
        "1 B",
        "-1 B",
        "1023 B",
        "1.0 KiB",
        "2.0 KiB",
        "1.0 MiB",
        "1024.0 MiB",
        "1.0 GiB",
    ]
    assert human_bytes(-1234) == "-1.2 KiB" and human_bytes(1e15) == "931322.6 GiB"


def test_human_flops():
    assert [human_flops(n) for n in (0, 999, 1000, 5.2e6, 3e9, 1e12, 1e15)] == [
        "0 FLOP",
        "999 FLOP",
        "1.0 kFLOP",
        "5.2 MFLOP",
        "3.0 GFLOP",
        "1.0 TFLOP",
        "1000.0 TFLOP",
    ]


def test_human_duration():
    assert [human_duration(s) for s in (0, 1, 0.4, 59, 59.5, 60, 65, 3599, 3599.5, 3600, 3700, 86400 * 3)] == [
        "0 s",
        "1 s",
        "0 s",
        "59 s",
        "1 m 00 s",
        "1 m 00 s",
        "1 m 05 s",
        "59 m 59 s",
        "1 h 00 m",
        "1 h 00 m",
        "1 h 01 m",
        "72 h 00 m",
    ]
    assert [human_duration(s) for s in (None, -1, math.inf, math.nan)] == ["—"] * 4


def test_eta_text():
    assert eta_text(0.25, 20) == "about 1 m 00 s left" and eta_text(0.5, 3) == "about 3 s left"
    # Too early to tell (hardly started, or not for two seconds), or already done: nothing.
    assert eta_text(0.02, 100) == "" and eta_text(0.03, 1.9) == "" and eta_text(1, 100) == ""
    assert eta_text(-1, 100) == "" and eta_text(0.5, 0) == ""


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset to pick a clock")
def test_fmt_created_on_the_users_clock(monkeypatch):
    monkeypatch.setenv("TZ", "UTC-2")  # POSIX: two hours east of UTC, no summer time
    time.tzset()
    try:
        assert fmt_created("2024-05-01T12:03:59+00:00") == "2024-05-01 14:03"  # stored UTC, read locally
        assert fmt_created("2024-05-01T12:03:59") == "2024-05-01 12:03"  # no zone: as it is
        assert fmt_created(0) == "1970-01-01 02:00" and fmt_created(1.5) == "1970-01-01 02:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_fmt_created_unknown_and_odd():
    assert fmt_created(None) == "" and fmt_created("") == ""
    assert fmt_created("yesterdayTat noon, roughly") == "yesterday at noo"  # not a date: shown, cut


def test_a_trainings_numbers():
    assert [fmt_loss(x) for x in (None, math.nan, math.inf, 0, 2.34567, -1)] == [
        "—",
        "—",
        "—",
        "0.000",
        "2.346",
        "-1.000",
    ]
    assert [fmt_lr(x) for x in (None, 0, 6e-4, 1, math.nan)] == ["—", "0.00e+00", "6.00e-04", "1.00e+00", "nan"]
    assert [fmt_grad(x) for x in (None, math.inf, 0, 0.125, 12.3456)] == ["—", "—", "0.00", "0.12", "12.35"]
    assert [fmt_speed(x) for x in (None, 0, 1, 999, 12_345, 2.5e6)] == [
        "—",
        "—",
        "1 tok/s",
        "999 tok/s",
        "12.3 k tok/s",
        "2.5 M tok/s",
    ]
