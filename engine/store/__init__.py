"""The workspace: one folder with a SQLite database (datasets, tokenizers, runs, metrics, checkpoints) and files.

    workspace.db                    WAL mode, so the engine writes while the studio reads
    datasets/<id>/train.txt, val.txt                 documents apart by a blank line
    datasets/<id>/train.idx, val.idx                 byte offset where each document starts (uint64 LE)
    datasets/<id>/train.labels.jsonl, val...         one JSON label per document, when a label column was chosen
    tokenizers/<id>/tokenizer.json, train.bin, val.bin, counts.npy
    runs/<id>/                      checkpoints and whatever else a run keeps

Long work (import, tokenizer training) happens in a temporary folder inside the workspace; only when it succeeded
is the folder renamed to its id and the row inserted, so a failure or a cancel leaves the workspace as it was.

Rows are plain JSON-safe dicts, shaped as engine/rows.py names them. Each thread must use its own Workspace (a
sqlite3 connection belongs to the thread that opened it); opening one is cheap.

The package splits Workspace by what it keeps: workspace.py (opening, transactions, publishing a finished
folder), schema.py (the tables and their upgrades), datasets.py, tokenizers.py, runs.py (runs, metrics,
checkpoints) and trash.py; each of the last four is a mixin of Workspace's methods for that table.
"""

from engine.store.errors import WorkspaceError, WorkspaceFull
from engine.store.runs import RUN_NAME_MAX, check_run_name
from engine.store.schema import SCHEMA_VERSION
from engine.store.trash import TRASH_KEEP_DAYS
from engine.store.workspace import Workspace

__all__ = [
    "RUN_NAME_MAX",
    "SCHEMA_VERSION",
    "TRASH_KEEP_DAYS",
    "Workspace",
    "WorkspaceError",
    "WorkspaceFull",
    "check_run_name",
]
