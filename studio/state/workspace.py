"""What the studio knows about the open workspace, without Qt: the engine's lists of datasets, tokenizers and runs,
the dataset, tokenizer and run the user chose, the RunConfig being edited, and the panels' saved settings.

Session (studio/session.py) owns one WorkspaceState and turns what it tells into Qt signals; here it is tested
without a window (tests/test_state_workspace.py). The lists are the engine's workspace summary
{"path", "datasets", "tokenizers", "runs"}, rows as the engine sends them. Every change is told, in the order it
happens, to `notify(event, value)` with one of EVENTS:

    "workspace"    the lists were replaced (value: the summary)
    "config"       the RunConfig changed (value: None)
    "dataset", "tokenizer", "run"   another row was chosen (value: the row, or None)
    "run_updated"  a run's row changed while it trains (value: the row)
    "ui"           a panel's saved setting changed (value: the key)

The order matters: a panel that hears "dataset" reads the config, which is already updated.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Callable

from engine.config import DEFAULT_PRESET, ConfigError, RunConfig, preset
from studio.state import selections
from studio.state.model_form import ASSUMED_CHAR_VOCAB

EVENTS = ("workspace", "config", "dataset", "tokenizer", "run", "run_updated", "ui")
KINDS = ("datasets", "tokenizers", "runs")

Notify = Callable[[str, object], None]


def empty_summary(path: str) -> dict:
    return {"path": path, "datasets": [], "tokenizers": [], "runs": []}


class WorkspaceState:
    def __init__(self, path: str, notify: Notify | None = None):
        self.path = path
        self.summary: dict = empty_summary(path)
        self.config: RunConfig = preset(DEFAULT_PRESET)
        self.dataset: dict | None = None
        self.tokenizer: dict | None = None
        self.run: dict | None = None
        self.ui_state: dict = {}
        self._notify = notify or (lambda event, value: None)
        self._restore: dict | None = None  # saved selections, applied with the first summary
        self._adopt_tokenizer: int | None = None
        self.load_saved()

    def _tell(self, event: str, value=None) -> None:
        self._notify(event, value)

    # ------------------------------------------------------------------------------------------------ lists
    def find(self, kind: str, ref) -> dict | None:
        """The workspace's row of `kind` ("datasets", "tokenizers", "runs") for an id, a name or a row."""
        if ref is None:
            return None
        if isinstance(ref, dict):
            ref = ref.get("id")
        rows = self.summary.get(kind, [])
        for row in rows:
            if row.get("id") == ref:
                return row
        if isinstance(ref, str):
            matches = [row for row in rows if row.get("name") == ref]
            if matches:
                return matches[-1]
        return None

    def apply_summary(self, summary: dict) -> None:
        """Take the engine's workspace summary; selections follow the fresh rows (or sensible defaults)."""
        self.summary = {"path": summary.get("path", self.path), **{k: summary.get(k, []) for k in KINDS}}
        if self._restore is not None:
            self._restore_selections(self._restore)
            self._restore = None
            return
        # Keep selections pointing at fresh rows; drop ones that are gone; pick sensible defaults so a newcomer
        # who only presses Train gets the sample dataset.
        old_dataset, old_tokenizer, old_run = self.dataset, self.tokenizer, self.run
        self.dataset = self.find("datasets", self.dataset)
        self.tokenizer = self.find("tokenizers", self.tokenizer)
        self.run = self.find("runs", self.run)
        self._tell("workspace", self.summary)
        self._follow_datasets(old_dataset)
        if self.tokenizer is None and old_tokenizer is not None:
            # Deleted (or gone with its dataset): fall back to the newest tokenizer of the dataset in use.
            self.tokenizer = old_tokenizer
            self.select_tokenizer(self._newest_tokenizer_of(self.dataset))
        if self._adopt_tokenizer is not None and self.find("tokenizers", self._adopt_tokenizer):
            adopt, self._adopt_tokenizer = self._adopt_tokenizer, None
            if self.tokenizer is None:
                self.select_tokenizer(adopt)
        if self.run is None and self.summary["runs"]:
            self.select_run(self.summary["runs"][-1])
        elif self.run is None and old_run is not None:
            self.run = old_run  # deleted, and no run is left: panels forget it
            self.select_run(None)

    def _follow_datasets(self, old_dataset: dict | None) -> None:
        if self.dataset is None and self.summary["datasets"]:
            self.select_dataset(self._default_dataset())
        elif self.dataset is None and old_dataset is not None:
            self.dataset = old_dataset  # it was deleted: say so, so panels and the config forget it
            self.select_dataset(None)

    def _default_dataset(self) -> dict:
        wanted = self.config.data.dataset
        for row in self.summary["datasets"]:
            if wanted is not None and wanted in (row.get("id"), row.get("name")):
                return row
        return self.summary["datasets"][-1]

    def _newest_tokenizer_of(self, dataset: dict | None) -> dict | None:
        own = [t for t in self.summary.get("tokenizers", []) if t.get("dataset_id") == _id(dataset)]
        return own[-1] if own else None

    # ------------------------------------------------------------------------------------------------ runs
    def run_started(self, run: dict) -> None:
        """The engine accepted a training: list its run and choose it."""
        if self.tokenizer is None:
            # The engine trains a vocabulary for this run: use it from now on (the next run reuses it).
            self._adopt_tokenizer = run.get("tokenizer_id")
        runs = self.summary.setdefault("runs", [])
        for i, row in enumerate(runs):
            if row.get("id") == run.get("id"):
                runs[i] = run
                break
        else:
            runs.append(run)
        self.select_run(run)

    def update_run(self, run_id: int, **values) -> None:
        """Keep the row of a training run (and the selection) live, so every view of it agrees."""
        rows = self.summary.setdefault("runs", [])
        row = next((r for r in rows if r.get("id") == run_id), None)
        if row is None:
            return
        best = values.get("best_val_loss")
        if best is not None and isinstance(row.get("best_val_loss"), (int, float)):
            values["best_val_loss"] = min(best, row["best_val_loss"])
        changed = {k: v for k, v in values.items() if v is not None and row.get(k) != v}
        if not changed:
            return
        row.update(changed)
        if self.run is not None and self.run.get("id") == run_id:
            self.run = dict(self.run, **changed)
        self._tell("run_updated", row)

    def metrics_arrived(self, run_id: int, rows: list[dict]) -> None:
        """A batch of a run's metric rows: its row shows the step and best validation loss they reach."""
        if rows:
            self.update_run(run_id, **progress_of(rows))

    def status_arrived(self, run: int | None, state: str | None, step: int, max_iters: int) -> None:
        """The engine's Status of a training run (`state` its run_state): its row shows the step and how the run
        stands. A Status about the engine alone (no run, or no run state) changes no row."""
        if run is None or state is None:
            return
        status = "running" if state in ("starting", "training") else state
        if state == "stopping":
            status = None  # still the run's own status until the engine says how it ended
        # Step 0 is news only when paused (the health guard went back to the start); else it is a default.
        step_now = step if step or state == "paused" else None
        self.update_run(run, step=step_now, status=status, max_iters=max_iters or None)

    # ------------------------------------------------------------------------------------------------ choices
    def _resolve(self, kind: str, row_or_id) -> dict | None:
        if row_or_id is None:
            return None
        found = self.find(kind, row_or_id)
        if found is None and isinstance(row_or_id, dict):
            return row_or_id  # a row the workspace list does not hold yet (a fresh reply)
        if found is None:
            raise KeyError(f"no {kind[:-1]} {row_or_id!r} in this workspace")
        return found

    def select_dataset(self, row_or_id) -> None:
        row = self._resolve("datasets", row_or_id)
        changed = _id(row) != _id(self.dataset)
        self.dataset = row
        if self.config.data.dataset != _id(row):
            self.config.data.dataset = _id(row)
            self._tell("config")
        if changed:
            self._tell("dataset", row)
            # A tokenizer is trained on one dataset; follow the dataset to its newest tokenizer (or none).
            if self.tokenizer is not None and self.tokenizer.get("dataset_id") != _id(row):
                self.select_tokenizer(self._newest_tokenizer_of(row))

    def select_tokenizer(self, row_or_id) -> None:
        row = self._resolve("tokenizers", row_or_id)
        changed = _id(row) != _id(self.tokenizer)
        self.tokenizer = row
        tc = self.config.tokenizer
        new = (
            (_id(row), row.get("kind", tc.kind), int(row.get("vocab_size", tc.vocab_size)))
            if row
            else (None, tc.kind, tc.vocab_size)
        )
        if (tc.tokenizer, tc.kind, tc.vocab_size) != new:
            tc.tokenizer, tc.kind, tc.vocab_size = new
            self._tell("config")
        if changed:
            self._tell("tokenizer", row)

    def select_run(self, row_or_id) -> None:
        row = self._resolve("runs", row_or_id)
        changed = _id(row) != _id(self.run)
        self.run = row
        if changed:
            self._tell("run", row)

    def clear_selection(self) -> None:
        for kind in ("dataset", "tokenizer", "run"):
            if getattr(self, kind) is not None:
                setattr(self, kind, None)
                self._tell(kind, None)

    # ------------------------------------------------------------------------------------------------ config
    def set_config(self, cfg: RunConfig) -> None:
        self.config = cfg
        self._tell("config")

    def update_config(self, section: str, **values) -> None:
        if section not in RunConfig.SECTIONS:
            raise ConfigError(f"unknown config section {section!r}")
        part = getattr(self.config, section)
        unknown = set(values) - {f.name for f in fields(part)}
        if unknown:
            raise ConfigError(f"unknown field(s) in {section}: {', '.join(sorted(unknown))}")
        changed = False
        for key, value in values.items():
            if getattr(part, key) != value:
                setattr(part, key, value)
                changed = True
        if changed:
            self._tell("config")

    @property
    def vocab_size(self) -> int | None:
        """The selected tokenizer's vocabulary size, when one is selected."""
        if self.tokenizer and self.tokenizer.get("vocab_size"):
            return int(self.tokenizer["vocab_size"])
        return None

    def estimated_vocab_size(self) -> tuple[int, bool]:
        """(vocabulary size for estimates, exact?): the tokenizer's when chosen, else a fair guess."""
        if self.vocab_size is not None:
            return self.vocab_size, True
        if self.config.tokenizer.kind == "char":
            return ASSUMED_CHAR_VOCAB, False
        return int(self.config.tokenizer.vocab_size), False

    # ------------------------------------------------------------------------------------------ saved choices
    def load_saved(self) -> None:
        """Read what was chosen in this workspace last time; applied once the engine has sent the workspace."""
        saved = selections.load(self.path)
        self.ui_state = dict(saved.get("ui") or {})
        self._restore = saved
        try:
            if isinstance(saved.get("config"), dict):
                self.config = RunConfig.from_dict(saved["config"])
        except (ConfigError, TypeError, ValueError, KeyError):
            self.config = preset(DEFAULT_PRESET)  # a file from an incompatible version: start from defaults

    def reopen(self, path: str) -> None:
        """Another workspace folder: forget the choices made here and read the ones saved there."""
        self.path = path
        self.clear_selection()
        self.load_saved()
        self._tell("config")

    def _restore_selections(self, saved: dict) -> None:
        """Select the saved dataset, tokenizer and run (each only if it still exists; defaults otherwise)."""
        self._tell("workspace", self.summary)
        dataset = self.find("datasets", saved.get("dataset"))
        if dataset is None and self.summary["datasets"]:
            dataset = self._default_dataset()
        self.select_dataset(dataset)
        tokenizer = self.find("tokenizers", saved.get("tokenizer"))
        if tokenizer is not None and tokenizer.get("dataset_id") == _id(self.dataset):
            self.select_tokenizer(tokenizer)
        elif (
            self.config.tokenizer.tokenizer is not None
            and self.find("tokenizers", self.config.tokenizer.tokenizer) is None
        ):
            self.select_tokenizer(None)  # the saved config named a tokenizer that is gone
        run = self.find("runs", saved.get("run"))
        if run is None and self.summary["runs"]:
            run = self.summary["runs"][-1]
        self.select_run(run)

    def ui(self, key: str, default=None):
        """A panel's saved setting in this workspace (playground settings, the page shown, ...)."""
        return self.ui_state.get(key, default)

    def set_ui(self, key: str, value) -> None:
        if self.ui_state.get(key) != value:
            self.ui_state[key] = value
            self._tell("ui", key)

    def save(self) -> bool:
        """Write the choices to the workspace folder; False when not written."""
        if self._restore is not None:
            return False  # the saved state has not been applied yet: do not overwrite it with defaults
        return selections.save(
            self.path,
            {
                "dataset": _id(self.dataset),
                "tokenizer": _id(self.tokenizer),
                "run": _id(self.run),
                "config": self.config.to_dict(),
                "ui": self.ui_state,
            },
        )


def progress_of(rows: list[dict]) -> dict:
    """The step and best validation loss that a batch of metric rows shows (for the run's row)."""
    step = max((int(r.get("step") or 0) for r in rows), default=None)
    vals = [
        float(r.get("val_loss", r.get("loss")))
        for r in rows
        if r.get("split") == "val" and r.get("val_loss", r.get("loss")) is not None
    ]
    return {"step": step, "best_val_loss": None} if not vals else {"step": step, "best_val_loss": min(vals)}


def _id(row: dict | None):
    return row.get("id") if row else None
