"""A labelled dataset of real text for classification: the speeches of tinyshakespeare, each labelled with the
play its speaker belongs to (four plays whose characters the corpus names often), the speaker's name left out so
the model must tell the play from the words. Writes a CSV with the columns text and play.

    python tools/plays_dataset.py ../shared/data/tinyshakespeare.txt plays.csv
"""

from __future__ import annotations

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


def speeches(text: str) -> list[tuple[str, str]]:
    """(speech, play) for every speech of a listed character, in the corpus's order."""
    play_of = {who: play for play, cast in PLAYS.items() for who in cast}
    out = []
    for block in text.split("\n\n"):
        m = _SPEECH.match(block.strip("\n"))
        if m and m.group(1) in play_of:
            out.append((" ".join(m.group(2).split()), play_of[m.group(1)]))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    rows = speeches(Path(argv[0]).read_text(encoding="utf-8"))
    with open(argv[1], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "play"])
        w.writerows(rows)
    print(f"{len(rows):,} speeches of {len(PLAYS)} plays")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
