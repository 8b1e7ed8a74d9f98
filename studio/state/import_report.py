"""A dataset row's import, in words for the details page: how the validation text was chosen, what the files
were read as, what cleaning did, which records were left out (engine/store.py Workspace._dataset_row fields
"format", "split", "options", "cleaning", "stats"). What one cleaning step did is worded here for both the
details page and the import preview's summary, so the two say it alike."""

from __future__ import annotations

from engine.choices import CLEANING_STEPS
from engine.format import human_count, plural

STEP_ORDER = list(CLEANING_STEPS)  # the order the engine runs the steps in
STEP_NAMES = {
    "normalize": "Unicode normalization",
    "strip_control": "Strip control characters",
    "collapse_whitespace": "Collapse whitespace",
    "lowercase": "Lowercase",
    "regex": "Regex filter",
    "dedupe_lines": "Drop duplicate lines",
    "length": "Document length",
    "dedupe_docs": "Drop duplicate documents",
}

FORMAT_NAMES = {
    "txt": "plain text",
    "csv": "CSV",
    "tsv": "TSV",
    "jsonl": "JSONL",
    "parquet": "Parquet",
    "mixed": "mixed formats",
}
DOC_UNIT_WORDS = {
    "file": "one document per file",
    "line": "one document per line",
    "paragraph": "one document per paragraph",
}


def step_effect(stats: dict) -> str:
    """'removed 1 document, changed 60' - what one cleaning step did, in words."""
    parts = []
    if stats.get("removed_docs"):
        parts.append(f"removed {plural(stats['removed_docs'], 'document')}")
    if stats.get("removed_lines"):
        parts.append(f"removed {plural(stats['removed_lines'], 'line')}")
    if stats.get("changed_docs"):
        parts.append(f"changed {plural(stats['changed_docs'], 'document')}")
    return ", ".join(parts) or "no change"


def split_text(ds: dict) -> str:
    """How a dataset's validation text was chosen, in words."""
    if ds.get("split") == "documents":
        seed = ds.get("seed", (ds.get("options") or {}).get("seed"))
        docs = ds.get("n_val_docs")
        return (
            "random whole documents"
            + (f" (seed {seed})" if seed is not None else "")
            + (f": {human_count(docs)} held out" if docs is not None else "")
        )
    return "the last part of the text (as nanoGPT)"


def format_text(ds: dict) -> str:
    fmt = ds.get("format") or "txt"
    unit = (ds.get("options") or {}).get("doc_unit") or "file"
    return FORMAT_NAMES.get(fmt, fmt) + (f", {DOC_UNIT_WORDS.get(unit, unit)}" if fmt == "txt" else "")


def cleaning_text(ds: dict) -> str:
    """'Lowercase: changed 60 documents; Document length: removed 1 document', or 'none'."""
    report = (ds.get("stats") or {}).get("cleaning") or {}
    if report:
        steps = sorted(report, key=lambda k: STEP_ORDER.index(k) if k in STEP_ORDER else len(STEP_ORDER))
        return "; ".join(f"{STEP_NAMES.get(step, step)}: {step_effect(report[step])}" for step in steps)
    steps = [k for k, v in (ds.get("cleaning") or {}).items() if v and k != "regex_action"]
    return ", ".join(steps) if steps else "none"


def records_text(stats: dict) -> str:
    """'61 read, 1 bad record skipped, 2 empty left out' from a dataset row's stats."""
    if not stats:
        return ""
    parts = [f"{human_count(stats.get('docs_read') or 0)} read"]
    bad, empty = stats.get("bad_records") or 0, stats.get("empty_records") or 0
    skipped = stats.get("skipped_files") or []
    if bad:
        parts.append(f"{plural(bad, 'bad record')} skipped")
    if empty:
        parts.append(f"{empty:,} empty left out")
    if skipped:
        parts.append(f"{plural(len(skipped), 'file')} skipped")
    return ", ".join(parts)
