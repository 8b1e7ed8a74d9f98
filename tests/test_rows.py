"""The row shapes in engine.rows match what a real workspace returns, key for key, and travel as JSON."""

import ast
import json
import sys
from pathlib import Path

import pytest

import engine.rows as rows
from engine.config import preset
from engine.store import Workspace


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A workspace with one of everything: the sample dataset, a tokenizer, a run with metrics and a checkpoint,
    and a deleted run in the trash."""
    with Workspace(tmp_path_factory.mktemp("rows") / "ws") as ws:
        ds = ws.ensure_sample_dataset()
        tok = ws.train_tokenizer(ds["id"], "char", 128)
        run = ws.create_run("shapes", preset("tiny").to_dict(), ds["id"], tok["id"])
        ws.add_metrics(
            run["id"],
            [
                {
                    "step": 1,
                    "split": "train",
                    "loss": 3.5,
                    "lr": 1e-3,
                    "grad_norm": 0.5,
                    "tokens_per_sec": 100.0,
                    "elapsed_s": 0.1,
                },
                {"step": 1, "split": "val", "loss": float("nan")},
            ],
        )
        ws.add_checkpoint(run["id"], 1, ws.run_dir(run["id"]) / "step1.safetensors", "0" * 64, val_loss=3.6)
        gone = ws.create_run("gone", {}, ds["id"], tok["id"])
        ws.delete("run", gone["id"])
        yield ws, run["id"]


def keys_of(shape) -> set[str]:
    return set(shape.__annotations__)


def test_every_row_has_exactly_the_keys_its_shape_names(filled):
    ws, run_id = filled
    got = {
        rows.DatasetRow: ws.datasets(),
        rows.TokenizerRow: ws.tokenizers(),
        rows.RunRow: ws.runs(),
        rows.MetricRow: ws.metrics(run_id),
        rows.CheckpointRow: ws.checkpoints(run_id),
        rows.TrashEntry: ws.trash(),
    }
    for shape, found in got.items():
        assert found, shape.__name__
        for row in found:
            assert set(row) == keys_of(shape), shape.__name__
    assert set(ws.summary()) == keys_of(rows.WorkspaceSummary)
    assert set(ws.latest_checkpoint(run_id)) == keys_of(rows.CheckpointRow)


def test_rows_are_json_as_they_go_over_the_wire(filled):
    ws, _ = filled
    summary = ws.summary()
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def test_the_shapes_module_uses_the_standard_library_only():
    # The studio may import it, like engine.protocol: it must never pull numpy, sqlite_utils or torch in.
    tree = ast.parse(Path(rows.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}
