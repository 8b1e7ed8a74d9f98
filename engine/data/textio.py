"""Reading one file as text, in bounded pieces, with a precise message for whatever is wrong with it.

UTF-8 (with or without a byte-order mark) and UTF-16/32 with a mark are decoded strictly; the first bad byte is
reported with its file offset and line. Newlines become \\n (\\r\\n and a lone \\r too). A NUL character means
binary data. Lines are handed on in batches and checked against a length limit, because `tokenizers` takes
gigabytes of memory on one huge line (docs/DESIGN.md).
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.data.errors import BinaryFileError, DataError, DecodeError

# Checked longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", 4),
    (codecs.BOM_UTF32_BE, "utf-32-be", 4),
    (codecs.BOM_UTF8, "utf-8", 1),
    (codecs.BOM_UTF16_LE, "utf-16-le", 2),
    (codecs.BOM_UTF16_BE, "utf-16-be", 2),
)
LATIN1 = "latin-1"


def detect_bom(head: bytes) -> tuple[str, int, int]:
    """(encoding, code unit size, length of the mark) for the first bytes of a file; UTF-8 without a mark."""
    for bom, encoding, unit in BOMS:
        if head.startswith(bom):
            return encoding, unit, len(bom)
    return "utf-8", 1, 0


def _find_unit(data: bytes, nul: bytes, unit: int, rel: int) -> int:
    """Index of the first all-zero code unit in `data`; `rel` is data's offset from the start of the text."""
    i = data.find(nul)
    while i >= 0 and (rel + i) % unit:
        i = data.find(nul, i + 1)
    return i


class TextReader:
    """The text of one file in chunks of about `chunk_bytes` bytes, newlines as \\n.

    encoding: "auto" (a byte-order mark, else UTF-8) or "latin-1" (every byte is a character; a UTF-8 mark is
    still dropped). After a full pass, `n_bytes` is how many bytes were read and `encoding` what was used.
    `on_bytes(n)` is called after each read (progress and cancellation hook in).
    """

    def __init__(
        self, path: Path, *, chunk_bytes: int, encoding: str = "auto", on_bytes: Callable[[int], None] | None = None
    ):
        self.path = Path(path)
        self.chunk_bytes = max(1, int(chunk_bytes))
        self.forced = encoding if encoding != "auto" else None
        self.on_bytes = on_bytes
        self.encoding = self.forced or "utf-8"
        self.n_bytes = 0

    def chunks(self) -> Iterator[str]:
        try:
            with open(self.path, "rb") as f:
                yield from self._decode(f)
        except OSError as e:
            raise DataError(f"cannot read {self.path}: {e.strerror or e}") from None

    def _decode(self, f) -> Iterator[str]:
        path = self.path
        head = f.read(4)
        encoding, unit, bom_len = detect_bom(head)
        if self.forced:
            encoding, unit = self.forced, 1
            bom_len = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        self.encoding = encoding
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        nul = b"\0" * unit
        n_newlines = 0
        pending_cr = False  # a \r at the end of one chunk may pair with a \n at the start of the next
        offset = bom_len  # file offset of `data[0]`
        first = f.read(self.chunk_bytes)
        self.n_bytes = len(head) + len(first)
        data = head[bom_len:] + first
        while True:
            final = not data
            pos = _find_unit(data, nul, unit, offset - bom_len)
            if pos >= 0:
                raise BinaryFileError(binary_message(path, offset + pos), path, offset + pos)
            buffered = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as e:
                bad = offset - buffered + e.start
                prefix = e.object[: e.start].decode(encoding, "replace")
                line = n_newlines + prefix.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
                what = encoding.upper().removesuffix("-LE").removesuffix("-BE")
                raise DecodeError(
                    f"{path} is not {what} text: bad byte at offset {bad} (line {line})", path, bad, line, encoding
                ) from None
            if pending_cr:
                text = "\r" + text
            pending_cr = text.endswith("\r") and not final
            if pending_cr:
                text = text[:-1]
            # Universal newlines, as Python's text mode: \r\n and a lone \r (old Mac files) both end a line.
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            n_newlines += text.count("\n")
            if self.on_bytes is not None and data:
                self.on_bytes(len(data))
            if text:
                yield text
            if final:
                return
            offset += len(data)
            data = f.read(self.chunk_bytes)
            self.n_bytes += len(data)


def binary_message(name: Path | str, offset: int) -> str:
    """What a NUL character means to a user; the offset is in brackets at the end for whoever wants to look."""
    return f"{name} looks like a program or binary file, not text (NUL byte at offset {offset})"


def line_too_long(path: Path, line: int, limit: int) -> DataError:
    return DataError(
        f"{path} line {line} is longer than {limit:,} characters "
        f"(is it text with line breaks? raise the line length limit if it is)"
    )


def line_batches(chunks: Iterable[str], path: Path, max_line_chars: int) -> Iterator[list[str]]:
    """The lines of the text (without their \\n), in batches; as iterating a file: no empty line after a final \\n.

    A line longer than max_line_chars is a DataError naming the file and the line number.
    """
    carry = ""
    first = 1  # line number of the first line in the next batch
    for chunk in chunks:
        text = carry + chunk if carry else chunk
        cut = text.rfind("\n")
        if cut < 0:
            if len(text) > max_line_chars:
                raise line_too_long(path, first, max_line_chars)
            carry = text
            continue
        lines = text[:cut].split("\n")
        carry = text[cut + 1 :]
        if max(map(len, lines)) > max_line_chars:
            i = next(i for i, ln in enumerate(lines) if len(ln) > max_line_chars)
            raise line_too_long(path, first + i, max_line_chars)
        if len(carry) > max_line_chars:
            raise line_too_long(path, first + len(lines), max_line_chars)
        yield lines
        first += len(lines)
    if carry:
        yield [carry]
