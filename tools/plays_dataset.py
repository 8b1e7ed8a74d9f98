"""A labelled dataset of real text for classification: the speeches of tinyshakespeare, each labelled with the
play its speaker belongs to (four plays whose characters the corpus names often), the speaker's name left out so
the model must tell the play from the words. Writes a CSV with the columns text and play.

    python tools/plays_dataset.py ../shared/data/tinyshakespeare.txt plays.csv [--plays "Coriolanus,Romeo and Juliet"]
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

PLAYS = {
    "Coriolanus": ("CORIOLANUS", "MARCIUS", "MENENIUS", "SICINIUS", "BRUTUS", "COMINIUS", "VOLUMNIA", "AUFIDIUS"),
    "Romeo and Juliet": (
        "ROMEO", "JULIET", "Nurse", "BENVOLIO", "MERCUTIO", "FRIAR LAURENCE", "CAPULET", "LADY CAPULET", "TYBALT",
    ),
    "Measure for Measure": ("DUKE VINCENTIO", "ISABELLA", "LUCIO", "ANGELO", "ESCALUS", "Provost", "POMPEY"),
    "The Taming of the Shrew": (
        "PETRUCHIO", "TRANIO", "KATHARINA", "BAPTISTA", "HORTENSIO", "GRUMIO", "LUCENTIO", "GREMIO",
    ),
}  # fmt: skip
_SPEECH = re.compile(r"^([A-Z][A-Za-z .']+):\n(.+)", re.DOTALL)


def speeches(text: str, plays: list[str] | None = None) -> list[tuple[str, str]]:
    """(speech, play) for every speech of a listed character (of `plays`, default all), in the corpus's order."""
    play_of = {who: play for play, cast in PLAYS.items() for who in cast if plays is None or play in plays}
    out = []
    for block in text.split("\n\n"):
        m = _SPEECH.match(block.strip("\n"))
        if m and m.group(1) in play_of:
            out.append((" ".join(m.group(2).split()), play_of[m.group(1)]))
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="speeches of tinyshakespeare labelled by play, as a CSV")
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--plays", help=f"comma-separated, of: {', '.join(PLAYS)} (default: all)")
    args = ap.parse_args(argv)
    plays = [p.strip() for p in args.plays.split(",")] if args.plays else list(PLAYS)
    unknown = [p for p in plays if p not in PLAYS]
    if unknown:
        ap.error(f"unknown play(s): {', '.join(unknown)}")
    rows = speeches(args.corpus.read_text(encoding="utf-8"), plays)
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "play"])
        w.writerows(rows)
    print(f"{len(rows):,} speeches of {len(plays)} plays")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
