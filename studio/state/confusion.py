"""The confusion matrix of a classification run's latest evaluation, in words and shades, without Qt: a row per
true class, a column per predicted class, each cell the count and its share of the row (how the texts of that
class were judged), which the view shades so the diagonal reads at a glance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    row: int
    column: int
    count: int
    share: float  # of the row's texts, 0..1 (0 for an empty row)
    tip: str


def confusion_cells(matrix: list[list[int]], classes: list[str]) -> list[Cell]:
    """Every cell of the matrix, row by row; class names beyond `classes` are their numbers."""
    names = [str(c) for c in classes] + [str(i) for i in range(len(classes), len(matrix))]
    cells = []
    for r, row in enumerate(matrix):
        total = sum(row)
        for c, count in enumerate(row):
            share = count / total if total else 0.0
            verdict = "right" if r == c else f"taken for {names[c]!r}"
            tip = f"{count:,} of the {total:,} validation texts labelled {names[r]!r} ({100 * share:.0f} %): {verdict}"
            cells.append(Cell(r, c, int(count), share, tip))
    return cells


def confusion_caption(matrix: list[list[int]]) -> str:
    """'Val confusion: 93 of 100 right' (the view's title; its tooltip names the step)."""
    total = sum(map(sum, matrix))
    right = sum(matrix[i][i] for i in range(min(len(matrix), len(matrix[0]) if matrix else 0)))
    return f"Val confusion: {right:,} of {total:,} right"
