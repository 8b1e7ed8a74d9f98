"""Optional cleaning of documents on their way into a dataset, step by step, with what each step changed.

A document is fed to a `Cleaner` as batches of lines (a file of any size streams through), and the cleaner says
at the end whether the document is kept. The same code runs in `clean_preview` on a few records, so a preview
shows exactly what the import will do.

Steps, in the order they run (line steps first, then document steps):
    normalize            Unicode NFC or NFKC
    strip_control        control characters (C0/C1, DEL, a stray U+FEFF) except tab
    collapse_whitespace  runs of spaces/tabs become one space, lines are trimmed, blank-line runs become one,
                         leading blank lines go
    lowercase            str.lower()
    regex                drop the lines that match, or drop / keep only the documents that have a matching line
    dedupe_lines         drop a non-blank line seen before anywhere in the corpus
    length               drop documents shorter than min_chars or longer than max_chars (after the steps above)
    dedupe_docs          drop a document identical to one kept before
A document left with no visible character after the line steps is dropped and counted under the step that
emptied it. Duplicates are remembered as digests in compact tables (about 20 bytes per distinct line or
document, whatever its length).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from array import array
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterable

from engine.data.errors import DataError
from engine.choices import CLEANING_STEPS as STEPS
from engine.choices import NORMAL_FORMS, REGEX_ACTIONS

EXAMPLE_CHARS = 200

# Control characters (C0 and C1, DEL) except tab; newlines never reach a step (they separate lines).
# U+FEFF is a format character, but a byte-order mark left inside text by concatenated files is always noise.
_CONTROL = {c: None for c in [*range(0, 9), *range(11, 32), *range(127, 160), 0xFEFF]}


@dataclass
class CleaningConfig:
    normalize: str | None = None  # None, "NFC" or "NFKC"
    strip_control: bool = False
    collapse_whitespace: bool = False
    lowercase: bool = False
    regex: str | None = None
    regex_action: str = "drop_lines"  # "drop_lines" | "drop_docs" | "keep_docs"
    dedupe_lines: bool = False
    dedupe_docs: bool = False
    min_chars: int = 0  # documents shorter than this (in characters, after cleaning) are dropped
    max_chars: int | None = None  # documents longer than this are dropped; None: no limit

    def __post_init__(self) -> None:
        if isinstance(self.normalize, str):
            self.normalize = self.normalize.strip().upper() or None
        if self.normalize not in (None, *NORMAL_FORMS):
            raise DataError(f"cleaning: normalize must be NFC, NFKC or none, not {self.normalize!r}")
        if self.regex_action not in REGEX_ACTIONS:
            raise DataError(
                f"cleaning: regex_action must be one of {', '.join(REGEX_ACTIONS)}, not {self.regex_action!r}"
            )
        if self.regex == "":
            self.regex = None
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except (re.error, TypeError) as e:
                raise DataError(f"cleaning: the regex {self.regex!r} is not valid: {e}") from None
        try:
            self.min_chars = int(self.min_chars or 0)
            self.max_chars = None if self.max_chars in (None, 0) else int(self.max_chars)
        except (TypeError, ValueError):
            raise DataError("cleaning: min_chars and max_chars must be whole numbers") from None
        if self.min_chars < 0 or (self.max_chars is not None and self.max_chars < max(1, self.min_chars)):
            raise DataError(f"cleaning: need 0 <= min_chars <= max_chars, not {self.min_chars} and {self.max_chars}")
        for name in ("strip_control", "collapse_whitespace", "lowercase", "dedupe_lines", "dedupe_docs"):
            setattr(self, name, bool(getattr(self, name)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: "CleaningConfig | dict | None") -> "CleaningConfig":
        if d is None:
            return cls()
        if isinstance(d, cls):
            return d
        if not isinstance(d, dict):
            raise DataError(f"cleaning must be a CleaningConfig or a dict, not {type(d).__name__}")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise DataError(f"cleaning has no option(s) {', '.join(sorted(unknown))}")
        return cls(**d)

    def steps(self) -> list[str]:
        """The enabled steps, in the order they run."""
        on = {
            "normalize": self.normalize is not None,
            "strip_control": self.strip_control,
            "collapse_whitespace": self.collapse_whitespace,
            "lowercase": self.lowercase,
            "regex": self.regex is not None,
            "dedupe_lines": self.dedupe_lines,
            "length": self.min_chars > 0 or self.max_chars is not None,
            "dedupe_docs": self.dedupe_docs,
        }
        return [s for s in STEPS if on[s]]


class DigestSet:
    """A set of 16-byte digests kept as 96 bits each (an 8-byte and a 4-byte array slot), in 256 open-addressing
    tables chosen by another digest byte.

    12 bytes a slot, tables 47-70 % full: 17-26 bytes per entry, against about 100 for a Python set of bytes
    objects. A table grows by half when 70 % full; with 256 of them, growing never needs more than a sliver of
    extra memory at once. Two different texts share 96 digest bits with odds of about 1 in 10^28.
    """

    PARTS = 256
    MAX_LOAD = 0.7

    def __init__(self, capacity: int = 1 << 12):
        per = max(16, capacity // self.PARTS)
        self._lo_code = "I" if array("I").itemsize == 4 else "L"
        self._hi = [array("Q", bytes(8 * per)) for _ in range(self.PARTS)]
        self._lo = [array(self._lo_code, bytes(array(self._lo_code).itemsize * per)) for _ in range(self.PARTS)]
        self._n = [0] * self.PARTS
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def add(self, digest: bytes) -> bool:
        """Add a 16-byte digest; True when it was not there before."""
        part = digest[15]
        hi = int.from_bytes(digest[:8], "little")
        lo = int.from_bytes(digest[8:12], "little") | 1  # never 0: 0 marks an empty slot
        his, los = self._hi[part], self._lo[part]
        if not _insert(his, los, hi, lo):
            return False
        self.n += 1
        self._n[part] += 1
        if self._n[part] > len(his) * self.MAX_LOAD:
            self._grow(part)
        return True

    def _grow(self, part: int) -> None:
        old_hi, old_lo = self._hi[part], self._lo[part]
        cap = len(old_hi) * 3 // 2
        his = array("Q", bytes(8 * cap))
        los = array(self._lo_code, bytes(old_lo.itemsize * cap))
        for hi, lo in zip(old_hi, old_lo):
            if lo:
                _insert(his, los, hi, lo)
        self._hi[part], self._lo[part] = his, los

    @property
    def nbytes(self) -> int:
        return sum(h.itemsize * len(h) + lo.itemsize * len(lo) for h, lo in zip(self._hi, self._lo))


def _insert(his: array, los: array, hi: int, lo: int) -> bool:
    cap = len(his)
    i = hi % cap
    while True:
        slot = los[i]
        if slot == 0:
            his[i], los[i] = hi, lo
            return True
        if slot == lo and his[i] == hi:
            return False
        i += 1
        if i == cap:
            i = 0


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _clip(text: str, n: int = EXAMPLE_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _has_content(lines: list[str]) -> bool:
    return any(not ln.isspace() for ln in lines if ln)


class Cleaner:
    """Runs the enabled steps on documents fed as batches of lines, keeping per-step counts and examples.

        cleaner.start_doc(); out = cleaner.feed(lines) ...; keep = cleaner.finish_doc()

    `feed` returns the cleaned lines to write now (trailing blank lines are held back until text follows them,
    so a document never ends with a blank line). When `finish_doc` returns False, whatever was written for the
    document must be taken back. `raw_empty` then tells whether the input itself had no visible character.
    """

    def __init__(self, cleaning: CleaningConfig | dict | None = None, n_examples: int = 3):
        self.cfg = CleaningConfig.from_dict(cleaning)
        self.enabled = self.cfg.steps()
        self.n_examples = n_examples
        self.stats: dict[str, dict[str, Any]] = {
            s: {"removed_docs": 0, "changed_docs": 0, "removed_lines": 0, "examples": []} for s in self.enabled
        }
        self._line_steps = [
            s
            for s in ("normalize", "strip_control", "collapse_whitespace", "lowercase", "regex", "dedupe_lines")
            if s in self.enabled
        ]
        self._pattern = re.compile(self.cfg.regex) if self.cfg.regex is not None else None
        self._seen_lines = DigestSet() if self.cfg.dedupe_lines else None
        self._seen_docs = DigestSet() if self.cfg.dedupe_docs else None
        self.docs_in = self.docs_kept = 0
        self.raw_empty = False
        self.start_doc()

    # ------------------------------------------------------------------------------------------- per document

    def start_doc(self) -> None:
        self._changed: set[str] = set()
        self._content: set[str] = set()  # line steps whose output had a visible character
        self._raw_content = False
        self._raw_head = ""
        self._pending_blank = 0
        self._out_lines = 0
        self._doc_chars = 0
        self._doomed: str | None = None
        self._matched = False
        self._prev_blank = True  # collapse_whitespace drops blank lines at the start of a document
        self._collapsed_blanks = 0  # blank lines collapse_whitespace dropped since the last line of text
        self._hash = hashlib.blake2b(digest_size=16) if self._seen_docs is not None else None

    def feed(self, lines: list[str]) -> list[str]:
        if not lines:
            return []
        if not self._raw_content:
            self._raw_content = _has_content(lines)
        if len(self._raw_head) < EXAMPLE_CHARS:
            self._raw_head = _clip((self._raw_head + "\n" if self._raw_head else "") + "\n".join(lines[:50]))
        if self._doomed:
            return []
        for step in self._line_steps:
            lines = getattr(self, f"_step_{step}")(lines)
            if step not in self._content and _has_content(lines):
                self._content.add(step)
            if not lines:
                return []
        if self._pattern is not None and self.cfg.regex_action != "drop_lines" and not self._matched:
            if any(self._pattern.search(ln) for ln in lines):
                self._matched = True
                if self.cfg.regex_action == "drop_docs":
                    self._doomed = "regex"
                    return []
        return self._emit(lines)

    def finish_doc(self) -> bool:
        self.docs_in += 1
        self.raw_empty = not self._raw_content
        for step in self._changed:
            self.stats[step]["changed_docs"] += 1
        if self.raw_empty:
            return False
        if self._doomed is None:
            emptied = next((s for s in self._line_steps if s not in self._content), None)
            if emptied is not None:
                self._doomed = emptied
            elif self._pattern is not None and self.cfg.regex_action == "keep_docs" and not self._matched:
                self._doomed = "regex"
            elif self._doc_chars < self.cfg.min_chars:
                self._doomed = "length"
            elif self._hash is not None and not self._seen_docs.add(self._hash.digest()):
                self._doomed = "dedupe_docs"
        if self._doomed is not None:
            self._record(self._doomed, self._raw_head, None, removed_docs=1)
            return False
        self.docs_kept += 1
        return True

    # ------------------------------------------------------------------------------------------- steps

    def _record(
        self, step: str, before: str | None, after: str | None, removed_docs: int = 0, removed_lines: int = 0
    ) -> None:
        s = self.stats[step]
        s["removed_docs"] += removed_docs
        s["removed_lines"] += removed_lines
        if before is not None and len(s["examples"]) < self.n_examples:
            s["examples"].append((_clip(before), None if after is None else _clip(after)))

    def _changed_pairwise(self, step: str, before: list[str], after: list[str]) -> None:
        self._changed.add(step)
        if len(self.stats[step]["examples"]) < self.n_examples:
            i = next((i for i, (a, b) in enumerate(zip(before, after)) if a != b), None)
            if i is not None:
                self._record(step, before[i], after[i])

    def _whole(self, step: str, lines: list[str], fn) -> list[str]:
        # One call on the joined batch is many times faster than one per line; none of these functions
        # creates or removes a \n, and if one ever did the line-by-line result is used instead.
        joined = "\n".join(lines)
        done = fn(joined)
        if done == joined:
            return lines
        out = done.split("\n")
        if len(out) != len(lines):
            out = [fn(ln) for ln in lines]
        self._changed_pairwise(step, lines, out)
        return out

    def _step_normalize(self, lines: list[str]) -> list[str]:
        form = self.cfg.normalize
        return self._whole(
            "normalize", lines, lambda s: s if unicodedata.is_normalized(form, s) else unicodedata.normalize(form, s)
        )

    def _step_strip_control(self, lines: list[str]) -> list[str]:
        return self._whole("strip_control", lines, lambda s: s.translate(_CONTROL))

    def _step_lowercase(self, lines: list[str]) -> list[str]:
        return self._whole("lowercase", lines, str.lower)

    def _step_collapse_whitespace(self, lines: list[str]) -> list[str]:
        squeezed = [" ".join(ln.split()) for ln in lines]
        out = []
        for ln in squeezed:
            if not ln:
                if self._prev_blank:
                    self._collapsed_blanks += 1
                    continue
                self._prev_blank = True
            else:
                if self._collapsed_blanks:
                    self._count_collapsed_blanks()
                self._prev_blank = False
            out.append(ln)
        if squeezed != lines:
            self._changed_pairwise("collapse_whitespace", lines, squeezed)
        return out

    def _count_collapsed_blanks(self) -> None:
        # Counted only once text follows them: blank lines at the end of a document never reach the dataset,
        # with or without this step, so dropping them changes nothing (and a preview, which reads records
        # without their trailing line breaks, would rightly say so).
        self._changed.add("collapse_whitespace")
        self.stats["collapse_whitespace"]["removed_lines"] += self._collapsed_blanks
        self._collapsed_blanks = 0

    def _drop_where(self, step: str, lines: list[str], drop: list[bool]) -> list[str]:
        if not any(drop):
            return lines
        self._changed.add(step)
        removed = [ln for ln, d in zip(lines, drop) if d]
        self._record(step, removed[0], None, removed_lines=len(removed))
        return [ln for ln, d in zip(lines, drop) if not d]

    def _step_regex(self, lines: list[str]) -> list[str]:
        if self.cfg.regex_action != "drop_lines":
            return lines
        search = self._pattern.search
        return self._drop_where("regex", lines, [search(ln) is not None for ln in lines])

    def _step_dedupe_lines(self, lines: list[str]) -> list[str]:
        add = self._seen_lines.add
        # Blank lines are never duplicates: they separate paragraphs.
        return self._drop_where(
            "dedupe_lines", lines, [bool(ln) and not ln.isspace() and not add(_digest(ln)) for ln in lines]
        )

    def _emit(self, lines: list[str]) -> list[str]:
        last = len(lines) - 1
        while last >= 0 and not lines[last]:
            last -= 1
        if last < 0:
            self._pending_blank += len(lines)
            return []
        out = [""] * self._pending_blank + lines[: last + 1] if self._pending_blank else lines[: last + 1]
        self._pending_blank = len(lines) - 1 - last
        self._doc_chars += sum(map(len, out)) + len(out) - (0 if self._out_lines else 1)
        self._out_lines += len(out)
        if self.cfg.max_chars is not None and self._doc_chars > self.cfg.max_chars:
            self._doomed = "length"
            return []
        if self._hash is not None:
            self._hash.update("\n".join(out).encode("utf-8", "surrogatepass"))
            self._hash.update(b"\n")
        return out

    # ------------------------------------------------------------------------------------------- results

    def report(self) -> dict[str, dict[str, Any]]:
        """{step: {"removed_docs", "changed_docs", "removed_lines", "examples": [(before, after), ...]}}, in
        the order the steps run; `after` is None where the line or document was removed."""
        return {s: {**v, "examples": list(v["examples"])} for s, v in self.stats.items()}


def _lines_of(text: str) -> list[str]:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def clean_records(records: Iterable[str | dict | None], cleaning: CleaningConfig | dict | None) -> list[str | None]:
    """Each record's text after cleaning, or None where it is dropped (duplicates are found across records)."""
    return _run(records, Cleaner(cleaning))


def _run(records: Iterable[str | dict | None], cleaner: Cleaner) -> list[str | None]:
    out: list[str | None] = []
    for r in records:
        text = r.get("text") if isinstance(r, dict) else r
        if text is None:
            out.append(None)
            continue
        cleaner.start_doc()
        kept = cleaner.feed(_lines_of(str(text)))
        out.append("\n".join(kept) if cleaner.finish_doc() else None)
    return out


def clean_text(text: str, cleaning: CleaningConfig | dict | None) -> str | None:
    """One document after cleaning, or None if cleaning drops it."""
    return clean_records([text], cleaning)[0]


def clean_preview(
    records: Iterable[str | dict | None], cleaning: CleaningConfig | dict | None, n_examples: int = 5
) -> dict[str, dict[str, Any]]:
    """What each enabled cleaning step does to these records (strings, or dicts with "text" as from
    preview_records): {step: {"removed_docs", "changed_docs", "removed_lines", "examples": [(before, after)]}}."""
    cleaner = Cleaner(cleaning, n_examples=n_examples)
    _run(records, cleaner)
    return cleaner.report()
