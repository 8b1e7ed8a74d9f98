"""The choices and defaults both sides need, defined once: import formats and their file patterns, import and
cleaning options, tokenizer kinds, special-token roles (and the tokens an objective adds), normalizers and
pre-tokenizers.

The engine checks input against them (engine/data/, engine/tokenizer.py); the studio builds its forms from them.
The studio may not import engine.data or engine.tokenizer (they load numpy, pyarrow and `tokenizers`), so they
live here, in the standard-library layer beside engine/protocol.py and engine/config.py. Only the values are
here: the words a form shows for each value are the studio's.
"""

from __future__ import annotations

from pathlib import Path

# ------------------------------------------------------------------------------------------------- importing

IMPORT_FORMATS = ("txt", "csv", "tsv", "jsonl", "parquet")
# Formats whose records have columns (or fields) to choose the text from.
TABULAR_FORMATS = ("csv", "tsv", "jsonl", "parquet")
EXTENSIONS = {
    ".txt": "txt",
    ".text": "txt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# What a folder is searched for when no include patterns are given.
DEFAULT_GLOBS = {
    "txt": ["*.txt"],
    "csv": ["*.csv"],
    "tsv": ["*.tsv", "*.tab"],
    "jsonl": ["*.jsonl", "*.ndjson"],
    "parquet": ["*.parquet", "*.pq"],
}
# ImportOptions choices (engine/data/importers.py); the first of each is the default.
DOC_UNITS = ("file", "line", "paragraph")
DECODE_CHOICES = ("error", "latin-1", "skip")
BAD_RECORD_CHOICES = ("error", "skip")
SPLITS = ("tail", "documents")

# Cleaning steps (engine/data/cleaning.py), in the order they run.
CLEANING_STEPS = (
    "normalize",
    "strip_control",
    "collapse_whitespace",
    "lowercase",
    "regex",
    "dedupe_lines",
    "length",
    "dedupe_docs",
)
NORMAL_FORMS = ("NFC", "NFKC")
REGEX_ACTIONS = ("drop_lines", "drop_docs", "keep_docs")


def format_of_extension(path: str | Path) -> str:
    """The format a file's extension says; anything unknown is read as plain text."""
    return EXTENSIONS.get(Path(path).suffix.lower(), "txt")


# ------------------------------------------------------------------------------------------------ tokenizers

TOKENIZER_KINDS = ("char", "bpe", "bytebpe", "wordpiece", "unigram")
UNK = "[UNK]"
EOT = "<|endoftext|>"
# Special token roles, in the order their tokens take the first ids.
SPECIAL_ROLES = ("pad", "unk", "bos", "eos", "mask", "cls", "sep")
DEFAULT_SPECIALS: dict[str, dict[str, str]] = {
    "char": {"unk": UNK},
    "bpe": {"unk": UNK, "eos": EOT},
    "bytebpe": {"eos": EOT},
    "wordpiece": {"pad": "[PAD]", "unk": UNK, "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"},
    "unigram": {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>"},
}
# The token a role gets when an objective needs it and the tokenizer's kind has none (a run's own vocabulary
# adds them; engine/run_setup.py). BERT's names, and GPT-2's end of text.
ROLE_TOKENS: dict[str, str] = {
    "pad": "[PAD]",
    "unk": UNK,
    "eos": EOT,
    "mask": "[MASK]",
    "cls": "[CLS]",
    "sep": "[SEP]",
}
# T5's sentinels: the placeholders of span corruption, <extra_id_0> ... <extra_id_{SENTINELS - 1}>, added after the
# other special tokens. T5 has 100; 32 cover every span of a context of up to ~640 tokens at the default density.
SENTINELS = 32
SENTINEL_PREFIX = "<extra_id_"


def sentinel_tokens(n: int) -> list[str]:
    """The first n sentinel tokens, in id order."""
    return [f"{SENTINEL_PREFIX}{i}>" for i in range(n)]


NORMALIZERS = ("none", "nfc", "nfkc", "lowercase", "nfkc_lowercase", "bert")
PRE_TOKENIZERS = ("none", "bytelevel", "metaspace", "whitespace", "whitespace_split", "bert")
DEFAULT_PRE_TOKENIZER = {
    "char": "none",
    "bpe": "metaspace",
    "bytebpe": "bytelevel",
    "wordpiece": "whitespace",
    "unigram": "metaspace",
}
# Kinds whose pre-tokenizer cannot be changed; the others may use any but these two.
FIXED_PRE_TOKENIZER = {"char": "none", "bytebpe": "bytelevel"}
