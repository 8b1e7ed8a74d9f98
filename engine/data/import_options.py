"""What an import can be told (ImportOptions, stored with the dataset's row) and what it found (ImportStats)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.data import formats as fm
from engine.data.cleaning import CleaningConfig
from engine.data.errors import DataError
from engine.choices import BAD_RECORD_CHOICES, DECODE_CHOICES, DOC_UNITS, SPLITS

# Longer lines are refused: `tokenizers` needs about 75 bytes of memory per character of one line (docs/DESIGN.md).
MAX_LINE_CHARS = 1 << 23


@dataclass
class ImportStats:
    n_docs: int
    n_chars: int
    n_lines: int
    n_bytes: int  # UTF-8 size of the imported text (train.txt + val.txt)
    train_chars: int
    val_chars: int
    files: list[str] = field(default_factory=list)
    format: str = "txt"  # the format of the files, "mixed" when they differ
    n_train_docs: int = 0
    n_val_docs: int = 0
    docs_read: int = 0  # documents (files, records, lines or paragraphs) read, before cleaning
    empty_records: int = 0  # records with no text (an empty cell, a null), left out
    bad_records: int = 0  # records skipped as unreadable (on_bad_record="skip")
    skipped_files: list[str] = field(default_factory=list)
    cleaning: dict = field(default_factory=dict)  # per step: removed_docs, changed_docs, removed_lines, examples
    warnings: list[str] = field(default_factory=list)
    has_labels: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ImportOptions:
    """Everything about an import except the paths and the validation fraction; JSON-safe (stored with the row).

    fmt: "txt" | "csv" | "tsv" | "jsonl" | "parquet", or None to go by each file's extension (folders: *.txt).
    column / label_column: CSV/TSV/Parquet column (name or 0-based number) or JSONL field (dotted path) holding
        the text / a label kept for fine-tuning. None: a column named "text", or the only (string) column.
    include / exclude: glob patterns for files found in folders, matched against the file name and the path
        below the folder ("*.md", "drafts/*"); files named explicitly are always taken.
    doc_unit: what one document is in a plain text file: the whole "file", each non-blank "line", or each
        "paragraph" (separated by blank lines).
    on_decode_error: a file that is not UTF-8 (nor UTF-16/32 with a byte-order mark): "error" stops, "latin-1"
        decodes it as Latin-1, "skip" leaves it out (binary files too). Either way it is named in the warnings.
    on_bad_record: a malformed JSONL line, a ragged CSV row, a non-text field, or an empty text file: "error"
        stops with their line numbers, "skip" leaves them out and counts them.
    split: "tail" (the last val_fraction of the characters, as nanoGPT) or "documents" (whole documents chosen
        at random with `seed`).
    max_line_chars: longest line accepted (a one-line 100 MB file is an error, not a memory blow-up).
    """

    fmt: str | None = None
    column: str | int | None = None
    label_column: str | int | None = None
    include: list[str] | None = None
    exclude: list[str] | None = None
    doc_unit: str = "file"
    delimiter: str | None = None
    on_decode_error: str = "error"
    on_bad_record: str = "error"
    cleaning: dict | None = None
    split: str = "tail"
    seed: int = 0
    max_line_chars: int = MAX_LINE_CHARS

    def __post_init__(self) -> None:
        self.fmt = fm.check_format(self.fmt)
        if isinstance(self.include, str):
            self.include = [self.include]
        if isinstance(self.exclude, str):
            self.exclude = [self.exclude]
        self.include = [str(p) for p in self.include] if self.include else None
        self.exclude = [str(p) for p in self.exclude] if self.exclude else None
        for name, value, choices in (
            ("doc_unit", self.doc_unit, DOC_UNITS),
            ("on_decode_error", self.on_decode_error, DECODE_CHOICES),
            ("on_bad_record", self.on_bad_record, BAD_RECORD_CHOICES),
            ("split", self.split, SPLITS),
        ):
            if value not in choices:
                raise DataError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise DataError(f"the CSV delimiter must be one character, not {self.delimiter!r}")
        try:
            self.seed = int(self.seed)
            self.max_line_chars = int(self.max_line_chars)
        except (TypeError, ValueError):
            raise DataError("seed and max_line_chars must be whole numbers") from None
        if self.max_line_chars < 1:
            raise DataError(f"max_line_chars must be at least 1, not {self.max_line_chars}")
        self.cleaning = CleaningConfig.from_dict(self.cleaning).to_dict()

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "ImportOptions":
        unknown = set(kwargs) - {f.name for f in fields(cls)}
        if unknown:
            raise DataError(f"unknown import option(s): {', '.join(sorted(unknown))}")
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return asdict(self)
