"""A dataset row in words, without Qt: the Data panel's table columns and the lines of its details page
(documents, characters, split, format, cleaning, records, size, sources) and its import warnings."""

from __future__ import annotations

from engine.format import human_bytes, human_count, human_exact
from studio.state.import_report import cleaning_text, format_text, records_text, split_text

WARNINGS_SHOWN = 3
# (row key, header) of the datasets table
DATASET_COLUMNS = (("name", "Name"), ("n_docs", "Documents"), ("n_chars", "Characters"), ("n_lines", "Lines"))
# Lines that show a count from the row, short and exact ('18.2 k (18,190)')
COUNT_ROWS = ("n_docs", "n_chars", "n_lines")
# (key, label, tooltip) of each line of the details page, top to bottom
DETAIL_ROWS = (
    ("n_docs", "Documents", "How many documents (files, records, lines or paragraphs) the dataset has."),
    ("n_chars", "Characters", "Characters of text in the dataset, training and validation together."),
    ("n_lines", "Lines", "Lines of text (line breaks) in the dataset."),
    (
        "split",
        "Train / validation",
        "Characters the model trains on, and characters held out to measure how well it generalises.",
    ),
    (
        "split_kind",
        "Held out",
        "How the validation text was chosen: the end of the text, or whole documents at random.",
    ),
    ("format", "Format", "What the files were read as, and what one document is."),
    ("labels", "Labels", "Whether each document keeps a label (for fine-tuning a classifier later)."),
    ("cleaning", "Cleaning", "The cleaning steps applied on import, and what each removed or changed."),
    ("records", "Records", "Documents read before cleaning, and those left out as unreadable or empty."),
    ("n_bytes", "Size", "Size of the imported text on disk (UTF-8)."),
    ("sources", "Imported from", "The files or folder the text came from."),
)


def sources_text(ds: dict) -> str:
    """Where a dataset came from: its first source, and how many more."""
    src = ds.get("sources")
    if isinstance(src, (list, tuple)):
        if not src:
            return ""
        return str(src[0]) + (f" and {len(src) - 1} more" if len(src) > 1 else "")
    return str(src or "")


def labels_text(ds: dict) -> str:
    label = (ds.get("options") or {}).get("label_column")
    if ds.get("has_labels") and label is not None:
        return f"yes, from “{label}”"
    return "yes" if ds.get("has_labels") else "no"


def detail_texts(ds: dict) -> dict[str, str]:
    """The text of each DETAIL_ROWS line for a dataset row."""
    frac = ds.get("val_fraction")
    pct = f" ({100 * float(frac):.0f} % held out)" if frac is not None else ""
    return {
        **{key: human_exact(ds.get(key)) for key in COUNT_ROWS},
        "split": f"{human_count(ds.get('train_chars') or 0)} / {human_count(ds.get('val_chars') or 0)} characters{pct}",
        "split_kind": split_text(ds),
        "format": format_text(ds),
        "labels": labels_text(ds),
        "cleaning": cleaning_text(ds),
        "records": records_text(ds.get("stats") or {}) or "—",
        "n_bytes": human_bytes(ds.get("n_bytes") or 0),
        "sources": sources_text(ds) or "—",
    }


def import_warnings_text(ds: dict) -> str:
    """The first few warnings of a dataset's import in one line ('' when there were none)."""
    warnings = (ds.get("stats") or {}).get("warnings") or []
    if not warnings:
        return ""
    more = f"; … and {len(warnings) - WARNINGS_SHOWN} more" if len(warnings) > WARNINGS_SHOWN else ""
    return "Import warnings: " + "; ".join(warnings[:WARNINGS_SHOWN]) + more
