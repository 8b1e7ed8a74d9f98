"""What the Data panel's import page knows, without Qt: the files chosen and the quick look at them, which of
its engine requests are current, and the words for its info line, warnings, progress and outcome.

The panel (studio/panels/data.py) asks the engine and shows; this decides what to show.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from engine.format import eta_text, human_bytes, plural
from studio.state.import_files import FilePreview, preview_paths
from studio.state.import_report import FORMAT_NAMES

PREVIEW_RECORDS = 50  # records the engine previews
PREVIEW_DELAY_MS = 300  # the preview is asked for again this long after the last option change
WARNINGS_SHOWN = 3


def progress_line(message: str, fraction: float, elapsed_s: float) -> str:
    """The line under the progress bar: the engine's words, with a rough time left when it gives none."""
    if fraction < 0 or " left" in message:
        return message
    eta = eta_text(fraction, elapsed_s)
    return f"{message} — {eta}" if message and eta else (message or eta)


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def quick_look_info(pv: FilePreview) -> str:
    """The info line (rich text) above the options: what was chosen, how many files and how big."""
    n = len(pv.files)
    count = plural(n, "file").replace(" ", "+ ", 1) if pv.more_files else plural(n, "file")
    where = pv.paths[0] if len(pv.paths) == 1 else f"{pv.paths[0]} and {len(pv.paths) - 1} more"
    size = (
        f"the first {n:,} hold {human_bytes(pv.total_bytes)}"
        if pv.more_files
        else f"{human_bytes(pv.total_bytes)} in all"
    )
    return f"<b>{_esc(where)}</b><br>{count}, {size}" + (
        f" — “File start” shows {_esc(Path(pv.files[0]).name)}" if n > 1 else ""
    )


def preview_status(preview: dict) -> str:
    """What the records table shows, after the engine's preview answered."""
    n = len(preview.get("records") or [])
    fmt = FORMAT_NAMES.get(preview.get("format") or "", preview.get("format") or "")
    return f"The first {plural(n, 'record')} as the import would read them" + (f" ({fmt})" if fmt else "") + "."


def imported_message(row: dict) -> tuple[str, str]:
    """(line, level) once an import succeeded."""
    warn = (row.get("stats") or {}).get("warnings") or []
    text = (
        f"Imported “{row.get('name', '')}”: {plural(row.get('n_docs', 0), 'document', human=True)}, "
        f"{plural(row.get('n_chars', 0), 'character', human=True)}"
        + (f" ({plural(len(warn), 'warning')}, see the details)." if warn else ".")
    )
    return text, "warning" if warn else "info"


@dataclass
class ImportState:
    """The import page's files and requests. Only the newest preview request's reply is shown; the quick look
    is redone only when what decides the files (paths, format, patterns) changed."""

    preview: FilePreview | None = None  # the quick look at the chosen files; None: no files chosen
    last_preview_reply: object = None  # the engine's newest import_preview_reply
    preview_request_id: str | None = None
    import_request_id: str | None = None
    import_started: float = 0.0  # time.monotonic() when the import was asked for
    _quick_key: tuple | None = None

    def look(self, paths: list[str], options: dict) -> FilePreview | None:
        """A fresh quick look at `paths` with these import options, or None when the last one still holds."""
        key = (
            tuple(paths),
            options.get("fmt"),
            tuple(options.get("include") or ()),
            tuple(options.get("exclude") or ()),
        )
        if key == self._quick_key and self.preview is not None:
            return None
        self._quick_key = key
        self.preview = preview_paths(paths, options.get("fmt"), options.get("include"), options.get("exclude"))
        return self.preview

    def new_files(self) -> None:
        """Files were chosen: the next look is fresh."""
        self._quick_key = None

    def forget(self) -> None:
        """The files are put away: no preview, and the preview request still out is no longer wanted."""
        self.preview = None
        self.preview_request_id = None

    def warnings(self, decode: str | None, chosen_format: str | None) -> list[str]:
        """The quick look's warning and the engine preview's, for the one warning line. `decode`: the chosen
        'if a file is not UTF-8' choice; `chosen_format`: the format chosen, None for Auto."""
        parts = []
        pv = self.preview
        if pv is not None and pv.warning:
            if pv.decode_problem and decode == "latin-1" and "binary" not in pv.warning:
                parts.append(pv.warning + " — it will be decoded as Latin-1.")
            elif pv.decode_problem and decode == "skip":
                parts.append(pv.warning + " — it will be skipped.")
            else:
                parts.append(pv.warning + " — the import will probably be refused.")
        reply = self.last_preview_reply
        if reply is not None and not reply.ok:
            if not self.already_warned(reply.error):
                parts.append(f"Preview: {reply.error}")
        elif reply is not None:
            warnings = [w for w in reply.preview.get("warnings") or [] if not self.already_warned(w)]
            parts += warnings[:WARNINGS_SHOWN]
            if len(warnings) > WARNINGS_SHOWN:
                parts.append(f"… and {len(warnings) - WARNINGS_SHOWN} more warnings")
        if pv is not None and any(Path(x).suffix.lower() == ".json" for x in pv.paths) and not chosen_format:
            parts.append("A .json file is read as plain text unless you choose JSONL as the format.")
        return parts

    def already_warned(self, warning: str) -> bool:
        """The engine's warning says what the quick look already said: the same problem of the same file, only
        named by its full path where the quick look names the file."""
        pv = self.preview
        if pv is None or not pv.warning:
            return False
        for path in sorted({*pv.files, *pv.paths}, key=len, reverse=True):  # longest first: a folder's files
            warning = warning.replace(str(path), Path(path).name)
        return warning in pv.warning
