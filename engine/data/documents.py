"""Cutting a plain text file's line batches into documents: one per non-blank line, or one per paragraph."""

from __future__ import annotations

from typing import Iterator


def _lines_as_docs(batches: Iterator[list[str]]) -> Iterator[Iterator[list[str]]]:
    for lines in batches:
        for ln in lines:
            if ln.strip():
                yield iter([[ln]])


def _paragraphs(batches: Iterator[list[str]]) -> Iterator[Iterator[list[str]]]:
    """Blank-line separated blocks, each streamed as line batches (a paragraph can be as long as the file)."""
    it = iter(batches)
    pending: list[str] = []  # lines of the current batch not yet handed out
    done = False

    def next_batch() -> bool:
        nonlocal pending, done
        for lines in it:
            pending = lines
            return True
        done = True
        return False

    def paragraph() -> Iterator[list[str]]:
        nonlocal pending
        while True:
            end = next((i for i, ln in enumerate(pending) if not ln.strip()), None)
            if end is not None:
                part, pending = pending[:end], pending[end:]
                if part:
                    yield part
                return
            if pending:
                part, pending = pending, []
                yield part
            if not next_batch():
                return

    while True:
        while pending and not pending[0].strip():
            pending = pending[1:]
        if not pending and (done or not next_batch()):
            return
        if not pending or not pending[0].strip():
            continue
        doc = paragraph()
        yield doc
        for _ in doc:  # a consumer that stopped early must not leave lines behind
            pass
