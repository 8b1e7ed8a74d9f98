"""The Runs panel through a real engine: rename a run, open it with a double-click, read its settings as a
table and compare two runs; the engine's rename request, the store's rule for names and `studio-engine runs
rename`; and the table following a run while it trains."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit

from tests.conftest import shown
from engine import protocol as p
from engine.config import preset
from engine.store import Workspace, WorkspaceError
from studio.panels.runs import RunsPanel
from studio.state.model_form import ALL_FIELDS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(180)


def make_run(ws: Workspace, name: str, *overrides: str) -> dict:
    """A run row on the sample text (no training): what the Runs panel lists."""
    ds = ws.ensure_sample_dataset()
    tokenizers = ws.tokenizers(ds["id"])
    tok = tokenizers[-1] if tokenizers else ws.train_tokenizer(ds["id"], "char", 512)
    cfg = preset("tiny").with_overrides([f"data.dataset={ds['id']}", f"tokenizer.tokenizer={tok['id']}", *overrides])
    return ws.create_run(name, cfg.to_dict(), ds["id"], tok["id"])


def panel_on(qtbot, session, *runs):
    """A Runs panel on `session` once its workspace lists the runs just written to disk."""
    panel = shown(qtbot, RunsPanel(session))
    session.refresh_workspace()
    qtbot.waitUntil(lambda: panel.table.rowCount() == len(runs), timeout=10_000)
    return panel


def table_text(table) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def type_name(qtbot, panel, text: str) -> None:
    """F2 on the table, then type `text` over the name and press Enter, as a user does."""
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit), "F2 did not open the name for typing"
    editor.selectAll()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


# -------------------------------------------------------------------------------------------------- rename


def test_store_trims_a_new_name_and_refuses_empty_long_or_digit_names(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run = make_run(ws, "first")
    assert ws.rename_run(run["id"], "  bigger   model\n")["name"] == "bigger model"
    assert Workspace(tmp_path / "ws").run(run["id"])["name"] == "bigger model"  # on disk
    for bad, words in (("   ", "needs a name"), ("x" * 81, "at most 80"), ("42", "only digits")):
        with pytest.raises(WorkspaceError, match=words):
            ws.rename_run(run["id"], bad)
    assert ws.run(run["id"])["name"] == "bigger model"


def test_cli_renames_a_run_and_says_why_a_name_is_refused(tmp_path):
    ws_path = tmp_path / "ws"
    run = make_run(Workspace(ws_path), "first")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
        )

    r = cli("runs", "--workspace", str(ws_path), "rename", str(run["id"]), "wide and shallow")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(run["id"]) and "renamed run 1 from 'first' to 'wide and shallow'" in r.stderr
    listed = cli("runs", "--workspace", str(ws_path))
    assert "wide and shallow" in listed.stdout and "first" not in listed.stdout
    r = cli("runs", "rename", "--workspace", str(ws_path), "wide and shallow", "")
    assert r.returncode == 1 and r.stderr.strip() == "error: a run needs a name; type at least one letter"


def test_the_engine_renames_and_an_old_peer_ignores_the_new_kind(session):
    run = make_run(Workspace(Path(session.workspace_path)), "first")
    replies = []
    session.request(p.RenameRequest(ref=run["id"], name="renamed"), replies.append)
    session.request(p.RenameRequest(item_kind="dataset", ref=1, name="x"), replies.append)
    from tests.conftest import wait_until

    wait_until(lambda: len(replies) == 2, 10, "the rename replies")
    assert replies[0].ok and replies[0].row["name"] == "renamed"
    assert not replies[1].ok and "only runs can be renamed" in replies[1].error
    # The protocol grows by its minor number: a 1.2 peer still talks to this side.
    assert p.PROTOCOL_VERSION.startswith("1.") and p.compatible("1.2")


def test_f2_renames_the_selected_run_in_the_table_and_on_disk(qtbot, session):
    ws = Workspace(Path(session.workspace_path))
    run = make_run(ws, "first")
    panel = panel_on(qtbot, session, run)
    type_name(qtbot, panel, "my first model")
    qtbot.waitUntil(lambda: session.run is not None and session.run["name"] == "my first model", timeout=10_000)
    assert panel.table.item(0, 1).text() == "my first model"
    assert "Renamed run 1 to “my first model”" in panel.error_label.text()
    assert ws.run(run["id"])["name"] == "my first model"


def test_an_empty_or_too_long_name_is_refused_with_a_clear_message(qtbot, session):
    ws = Workspace(Path(session.workspace_path))
    run = make_run(ws, "keep me")
    panel = panel_on(qtbot, session, run)
    type_name(qtbot, panel, "   ")
    qtbot.waitUntil(lambda: panel.error_label.isVisible() and "Could not" in panel.error_label.text(), timeout=10_000)
    assert panel.error_label.text() == "Could not rename run 1: a run needs a name; type at least one letter."
    assert panel.table.item(0, 1).text() == "keep me"  # the cell shows the name the run still has
    panel.rename_button.click()  # the button opens the same editor
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit) and editor.text() == "keep me"
    editor.setText("y" * 200)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "200 characters long" in panel.error_label.text(), timeout=10_000)
    assert "at most 80" in panel.error_label.text() and panel.table.item(0, 1).text() == "keep me"
    assert ws.run(run["id"])["name"] == "keep me"


# ---------------------------------------------------------------------------------------- open and config


def test_double_click_opens_the_run_and_shows_its_curves(qtbot, session):
    ws = Workspace(Path(session.workspace_path))
    first, second = make_run(ws, "first"), make_run(ws, "second")
    panel = panel_on(qtbot, session, first, second)
    assert session.run["id"] == second["id"]
    cell = panel.table.visualItemRect(panel.table.item(0, 2)).center()
    with qtbot.waitSignal(panel.showCurves, timeout=2000) as opened:
        # A real double-click: press and release, then the double-click event (Qt's views need the first press).
        qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
        qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    assert opened.args == [first["id"]] and session.run["id"] == first["id"]
    assert panel.table.state() != panel.table.State.EditingState  # a double-click opens, it does not edit


def test_the_config_is_a_readable_table_not_json(qtbot, session):
    ws = Workspace(Path(session.workspace_path))
    run = make_run(ws, "first", "model.n_layer=2", "train.max_iters=12000", "model.pos_encoding=rope")
    panel = panel_on(qtbot, session, run)
    rows = table_text(panel.config_table)
    assert [panel.config_table.horizontalHeaderItem(c).text() for c in range(3)] == ["Section", "Setting", "Value"]
    for row in (
        ["Model", "Layers", "2"],
        ["Model", "Positions", "RoPE"],
        ["Training", "Training steps", "12,000"],
        ["Data", "Dataset", "sample"],
        ["Model", "Tie embeddings", "Yes"],
    ):
        assert row in rows
    assert not any("{" in cell or "_" in cell for row in rows for cell in row[:2])
    layers = next(r for r in range(len(rows)) if rows[r][1] == "Layers")
    assert panel.config_table.item(layers, 1).toolTip() == "model.n_layer"  # the CLI name, for CLI users
    assert '"n_layer": 2' in panel.config_json()


def test_comparing_two_runs_shows_only_the_settings_that_differ(qtbot, session):
    ws = Workspace(Path(session.workspace_path))
    a = make_run(ws, "narrow", "model.n_embd=64", "train.learning_rate=0.003")
    b = make_run(ws, "wide", "model.n_embd=128", "train.learning_rate=0.001")
    panel = panel_on(qtbot, session, a, b)
    assert session.run["id"] == b["id"]
    assert panel.compare_combo.count() == 2  # nothing, or the one other run
    panel.compare_with(a["id"])
    headers = [panel.config_table.horizontalHeaderItem(c).text() for c in range(4)]
    assert headers == ["Section", "Setting", "Run 2 “wide”", "Run 1 “narrow”"]
    width = next(f[2] for f in ALL_FIELDS if f[:2] == ("model", "n_embd"))  # as the Model panel says it
    assert table_text(panel.config_table) == [
        ["Model", width, "128", "64"],
        ["Training", "Learning rate", "0.001", "0.003"],
    ]
    assert "2 settings differ" in panel.config_note.text()
    panel.compare_with(None)
    assert panel.config_table.columnCount() == 3 and panel.config_table.rowCount() > 20


# ------------------------------------------------------------------------------------------------------- live


def test_steps_status_and_best_loss_follow_a_run_while_it_trains(qtbot, session):
    panel = shown(qtbot, RunsPanel(session))
    sample = session.workspace["datasets"][0]
    cfg = preset("tiny").with_overrides(
        [
            f"data.dataset={sample['id']}",
            "model.n_layer=1",
            "model.n_embd=32",
            "model.n_head=2",
            "model.block_size=16",
            "train.batch_size=4",
            "train.max_iters=300",
            "train.lr_decay_iters=300",
            "train.eval_interval=100",
            "train.eval_iters=2",
            "train.log_interval=5",
            "train.device=cpu",
        ]
    )
    seen = []  # (status, steps, best) as the table shows them after each broadcast

    def look(*_):
        row = panel.table.rowCount() - 1
        if row >= 0 and session.training_run is not None:
            seen.append(tuple(panel.table.item(row, c).text() for c in (2, 3, 4)))

    # Connected after the panel's own slots, so each look sees what the panel made of that broadcast.
    session.metricsReceived.connect(look)
    session.evalReceived.connect(look)
    ended = []
    session.statusReceived.connect(lambda st: ended.append(st.state) if st.state in ("finished", "failed") else None)
    session.request(p.TrainRequest(config=cfg.to_dict(), name="live"))
    qtbot.waitUntil(lambda: bool(ended), timeout=120_000)
    assert ended == ["finished"]
    mid = [s for s in seen if s[0] == "training" and 0 < int(s[1].split(" / ")[0].replace(",", "")) < 300]
    assert mid, f"the Steps cell never moved while training: {seen[:5]}"
    assert all(s[1].endswith(" / 300") for s in mid)
    assert any(s[2] != "—" for s in mid), "the best validation loss appeared only after the run"
    steps = [int(s[1].split(" / ")[0].replace(",", "")) for s in mid]
    assert steps == sorted(steps) and len(set(steps)) > 3
    # After the run the workspace is read again: the cells then show what the workspace stored.
    qtbot.waitUntil(lambda: session.workspace["runs"][0]["status"] == "finished", timeout=10_000)
    assert panel.table.item(0, 3).text() == "300 / 300"
    assert panel.table.item(0, 2).text() == "finished"
    assert float(panel.table.item(0, 4).text()) == pytest.approx(
        session.workspace["runs"][0]["best_val_loss"], abs=5e-4
    )


# ------------------------------------------------------------------------------------- objectives and overlay


def _losses(ws: Workspace, run: dict, start: float) -> None:
    """Stored curves for a run that was never trained here: three training rows and two evaluations."""
    rows = [{"step": s, "split": "train", "loss": start - s / 100, "lr": 1e-3, "grad_norm": 1.0} for s in (10, 20, 30)]
    rows += [{"step": s, "split": "val", "loss": start + 0.1 - s / 100} for s in (15, 30)]
    ws.add_metrics(run["id"], rows)


def test_the_table_names_each_runs_objective_and_architecture(qtbot, session):
    ws = Workspace(Path(session.workspace_path))
    gpt = make_run(ws, "gpt")
    bert = make_run(ws, "bert", "model.arch=encoder", "objective.name=masked_lm")
    panel = panel_on(qtbot, session, gpt, bert)
    headers = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    objective, arch = headers.index("Objective"), headers.index("Architecture")
    assert [panel.table.item(0, c).text() for c in (objective, arch)] == ["Causal language modelling", "Decoder"]
    assert [panel.table.item(1, c).text() for c in (objective, arch)] == ["Masked language modelling", "Encoder"]


def test_overlaid_curves_of_a_causal_and_a_masked_lm_run_say_their_losses_are_not_comparable(qtbot, session):
    ws = Workspace(Path(session.workspace_path))
    gpt, gpt2 = make_run(ws, "gpt"), make_run(ws, "gpt wider", "model.n_embd=64")
    bert = make_run(ws, "bert", "model.arch=encoder", "objective.name=masked_lm")
    for run, start in ((gpt, 3.0), (gpt2, 2.8), (bert, 4.0)):
        _losses(ws, run, start)
    panel = panel_on(qtbot, session, gpt, gpt2, bert)
    panel.tabs.setCurrentWidget(panel.overlay)
    overlay = panel.overlay
    overlay.tick([gpt["id"], bert["id"]])
    qtbot.waitUntil(lambda: overlay.note.isVisible(), timeout=10_000)
    note = overlay.note.text()
    assert "not comparable" in note and "run 1 (Causal language modelling) over every token" in note
    assert "run 3 (Masked language modelling) over the masked tokens" in note

    def drawn():
        return {name: [] if c.getData()[1] is None else list(c.getData()[1]) for name, c in overlay.plot.curves.items()}

    qtbot.waitUntil(lambda: all(len(v) == 2 for v in drawn().values()) and len(drawn()) == 2, timeout=10_000)
    assert drawn()["Run 1 “gpt”"] == pytest.approx([2.95, 2.8])  # the validation losses, per run
    overlay.tick([gpt["id"], gpt2["id"]])  # two causal runs: their losses can be read against each other
    qtbot.waitUntil(lambda: set(drawn()) == {"Run 1 “gpt”", "Run 2 “gpt wider”"}, timeout=10_000)
    assert not overlay.note.isVisible()
    overlay.series_combo.setCurrentIndex(overlay.series_combo.findData("train"))
    qtbot.waitUntil(lambda: len(drawn()["Run 2 “gpt wider”"]) == 3, timeout=10_000)
