"""Take the README's screenshots: a real workspace, a real engine, the real window, under Xvfb.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python tools/screenshots.py --workspace /tmp/shots-ws

Each scene is taken at 1280×720 (docs/screenshots/<name>.png, the README's) and at 1920×1080
(docs/screenshots/1080p/<name>.png), the two sizes every panel is checked at.

The first run prepares the workspace with the CLI (tinyshakespeare imported, four tokenizers, a short baby run),
which takes a few minutes on 2 cores; later runs reuse it. Each panel is shown, given time to fill, and grabbed to
docs/screenshots/<name>.png. Scenes that need clicks (an import preview, a token's contexts, the compare tab) are
set up through the panels' own methods, as a user's clicks would.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))


def cli(*args, workspace: Path) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", *map(str, args), "--workspace", str(workspace)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if r.returncode:
        raise SystemExit(f"{' '.join(map(str, args))}: {r.stderr.strip()}")
    return r.stdout.strip().splitlines()[-1]


def prepare(ws: Path, steps: int) -> None:
    if (ws / "workspace.db").exists():
        return
    ds = cli("import", SHAKESPEARE, "--name", "shakespeare", workspace=ws)
    char = cli("tokenizer", "train", "--dataset", ds, "--kind", "char", "--vocab-size", 100, workspace=ws)
    cli("tokenizer", "train", "--dataset", ds, "--kind", "bytebpe", "--vocab-size", 2048, workspace=ws)
    cli("tokenizer", "train", "--dataset", ds, "--kind", "wordpiece", "--vocab-size", 2048, workspace=ws)
    cli("tokenizer", "train", "--dataset", ds, "--kind", "unigram", "--vocab-size", 2048, workspace=ws)
    cli(
        "train",
        "--preset",
        "baby",
        "--name",
        "shakespeare-baby",
        "--set",
        f"data.dataset={ds}",
        "--set",
        f"tokenizer.tokenizer={char}",
        "--set",
        f"train.max_iters={steps}",
        "--set",
        f"train.lr_decay_iters={steps}",
        "--set",
        "train.eval_interval=100",
        workspace=ws,
    )


def prepare_masked_lm(ws: Path, steps: int) -> None:
    """A small BERT-style encoder trained with masked LM on tinyshakespeare, for the fill-mask scene (RoPE
    positions: on so short a run learned positions leave a bidirectional model guessing letter frequencies)."""
    marker = ws / "shots-mlm-run"
    if marker.exists():
        return
    run = cli(
        "train",
        "--preset",
        "baby",
        "--name",
        "shakespeare-mlm",
        "--set",
        "data.dataset=shakespeare",
        "--set",
        "model.arch=encoder",
        "--set",
        "model.pos_encoding=rope",
        "--set",
        "objective.name=masked_lm",
        "--set",
        f"train.max_iters={steps}",
        "--set",
        f"train.lr_decay_iters={steps}",
        "--set",
        "train.eval_interval=250",
        workspace=ws,
    )
    marker.write_text(run)


def prepare_finetune(ws: Path, steps: int) -> None:
    """A LoRA run started from the baby run, for the fine-tuning scenes (the Train panel draws the parent's curves
    faded behind it)."""
    marker = ws / "shots-lora-run"
    if marker.exists():
        return
    run = cli(
        "train",
        "--name",
        "baby + LoRA",
        "--set",
        "data.dataset=shakespeare",
        "--set",
        "train.init_from.run=shakespeare-baby",
        "--set",
        "train.finetune=lora",
        "--set",
        f"train.max_iters={steps}",
        "--set",
        f"train.lr_decay_iters={steps}",
        "--set",
        "train.eval_interval=50",
        workspace=ws,
    )
    marker.write_text(run)


def prepare_plays(ws: Path, steps: int) -> None:
    """The speeches of two plays (tools/plays_dataset.py), imported with their play as the label, and a
    classifier fine-tuned from the baby run on them, for the classification scenes (from the baby run it reaches
    about 67 % in 600 steps where the same model from random weights stays near chance)."""
    marker = ws / "shots-plays-run"
    if marker.exists():
        return
    sys.path.insert(0, str(ROOT / "tools"))
    from plays_dataset import main as write_plays

    csv_path = ws / "plays.csv"
    write_plays([str(SHAKESPEARE), str(csv_path), "--plays", "Coriolanus,Romeo and Juliet"])
    cli("import", "--name", "plays", "--label-column", "play", "--split", "documents", "--seed", "1", csv_path,
        workspace=ws)  # fmt: skip
    run = cli(
        "train", "--name", "plays classifier", "--set", "data.dataset=plays", "--set", "objective.name=classification",
        "--set", "train.init_from.run=shakespeare-baby", "--set", "train.learning_rate=3e-4", "--set",
        "train.min_lr=3e-5", "--set", f"train.max_iters={steps}", "--set", f"train.lr_decay_iters={steps}", "--set",
        "train.eval_interval=50", "--set", "train.warmup_iters=20",
        workspace=ws,
    )  # fmt: skip
    marker.write_text(run)


def prepare_reinforce(ws: Path, steps: int) -> None:
    """A REINFORCE run started from the baby run, rewarded for writing thou, thee, thy or love, for the REINFORCE
    scenes (the samples table and the reward, KL and entropy plots). The baby writes one of them now and then,
    so the reward has something to grow from ("love" alone it never writes in 32 characters: nothing to learn)."""
    marker = ws / "shots-reinforce-run"
    if marker.exists():
        return
    run = cli(
        "train", "--name", "baby + love", "--set", "data.dataset=shakespeare", "--set",
        "train.init_from.run=shakespeare-baby", "--set", "objective.name=reinforce", "--set",
        "objective.reward=contains:thou,thee,thy,love", "--set", "objective.kl_coef=0.02", "--set",
        "objective.max_new_tokens=32", "--set", "objective.prompt_length=16", "--set", "train.batch_size=8",
        "--set", "train.learning_rate=1e-3", "--set", "train.min_lr=1e-4", "--set", "train.warmup_iters=0",
        "--set", f"train.max_iters={steps}", "--set", f"train.lr_decay_iters={steps}", "--set",
        f"train.eval_interval={max(1, steps // 10)}", "--set", "train.eval_iters=4",
        workspace=ws,
    )  # fmt: skip
    marker.write_text(run)


def sample_csv(folder: Path) -> Path:
    """A small review corpus with a label column and some mess for the cleaning preview."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reviews.csv"
    rows = [("id", "review", "stars")]
    texts = [
        "A  wonderful film,   I LOVED every minute.",
        "Too long.",
        "The acting was fine but the plot dragged.",
        "A  wonderful film,   I LOVED every minute.",
        "Ok",
        "Would watch again with friends!",
        "The music\u00a0carried the weaker scenes.",
        "Bored stiff; left halfway through.",
    ]
    for i, t in enumerate(texts * 3):
        rows.append((str(i), t, str(1 + (i * 7) % 5)))
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def wait(seconds: float, until=None) -> None:
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        if until is not None and until():
            for _ in range(20):  # a few more rounds for the redraw timers
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
                time.sleep(0.02)
            return
        time.sleep(0.02)


SIZES = {"": (1280, 720), "1080p": (1920, 1080)}


def shoot(win, name: str, folder: str = "") -> None:
    wait(0.5)
    path = (OUT / folder if folder else OUT) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    win.grab().save(str(path))
    print("wrote", path.relative_to(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", type=Path, default=Path("/tmp/shots-ws"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--mlm-steps", type=int, default=1500)
    ap.add_argument("--only", nargs="*", help="scene names to take (default: all)")
    ap.add_argument("--sizes", nargs="*", default=list(SIZES), help="'' (1280x720) and/or 1080p")
    args = ap.parse_args()
    prepare(args.workspace, args.steps)
    if not args.only or "playground-fill-mask" in args.only:
        prepare_masked_lm(args.workspace, args.mlm_steps)
    if not args.only or "finetune-train" in args.only:
        prepare_finetune(args.workspace, 200)
    if not args.only or {"playground-classify", "train-classify"} & set(args.only):
        prepare_plays(args.workspace, 600)
    if not args.only or {"finetune-reinforce", "train-reinforce"} & set(args.only):
        prepare_reinforce(args.workspace, 150)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio import theme
    from studio.main_window import MainWindow
    from studio.session import Session

    app = QApplication(sys.argv[:1])
    app.setApplicationDisplayName("Transformer Studio")
    theme.apply_theme(app)
    settings = QSettings(str(args.workspace / "shots-settings.ini"), QSettings.Format.IniFormat)
    settings.clear()
    session = Session(str(args.workspace))
    session.start_engine()
    win = MainWindow(session, settings)
    win.resize(*SIZES[""])
    win.show()
    try:
        wait(60, lambda: session.ready and session.workspace["runs"])
        choose_shakespeare(session)
        for folder in args.sizes:
            win.resize(*SIZES[folder])
            wait(1)
            for name, scene in SCENES.items():
                if args.only and name not in args.only:
                    continue
                shown = scene(win, session, args)  # a scene that opens a dialog returns it
                shoot(shown or win, name, folder)
    finally:
        session.client.kill_now()
    return 0


# ------------------------------------------------------------------------------------------------ scenes


def choose_shakespeare(session) -> None:
    """The selection the scenes show: tinyshakespeare, its character vocabulary and the baby run (and the baby
    preset's settings, so the Train panel's summary is that run's)."""
    from engine.config import preset

    shakespeare = next(d for d in session.workspace["datasets"] if d["name"] == "shakespeare")
    session.set_config(preset("baby"))
    session.select_dataset(shakespeare)
    toks = [t for t in session.workspace["tokenizers"] if t["dataset_id"] == shakespeare["id"]]
    session.select_tokenizer(next(t for t in toks if t["kind"] == "char"))
    run = session.workspace["runs"][0]
    session.update_config(
        "train",
        max_iters=int(run.get("max_iters") or 600),
        lr_decay_iters=int(run.get("max_iters") or 600),
        eval_interval=100,
    )
    session.select_run(run)


from PySide6.QtCore import Qt  # noqa: E402  (scenes run after main() made the application)


def scene_data(win, session, args):
    win.show_page("data")
    wait(5, lambda: win.panels["data"].dataset_preview.toPlainText())


def scene_data_import(win, session, args):
    panel = win.panels["data"]
    win.show_page("data")
    path = sample_csv(args.workspace.parent / "shots-input")
    panel.preview_paths([str(path)])
    form = panel.options
    wait(10, lambda: form.column_combo.count() > 0)
    form.column_combo.setCurrentIndex(form.column_combo.findText("review"))
    form.label_combo.setCurrentIndex(form.label_combo.findText("stars"))
    form.collapse_check.setChecked(True)
    form.lowercase_check.setChecked(True)
    form.dedupe_docs_check.setChecked(True)
    form.min_chars_spin.setValue(5)
    wait(3)
    panel.preview_view.table.selectRow(0) if hasattr(panel.preview_view, "table") else None
    wait(3)


def scene_vocab(win, session, args):
    win.show_page("vocab")
    bpe = next(t for t in session.workspace["tokenizers"] if t["kind"] == "bytebpe")
    session.select_tokenizer(bpe)
    panel = win.panels["vocab"]
    wait(10, lambda: panel.vocab_model.rowCount() > 0)
    panel.tabs.setCurrentWidget(panel.browser)
    panel.vocab_view.sortByColumn(3, Qt.SortOrder.AscendingOrder)  # by merge rank: the first merges on top
    wait(1)
    proxy = panel.vocab_view.model()
    row = next(r for r in range(proxy.rowCount()) if proxy.index(r, 1).data() == "␣the")
    panel.vocab_view.selectRow(row)
    panel.vocab_view.scrollTo(proxy.index(row, 0))
    wait(10, lambda: panel.details.contexts())


def scene_lengths(win, session, args):
    """Shakespeare's speeches as documents (one per paragraph), so the histogram has a shape."""
    from engine import protocol as p

    panel = win.panels["vocab"]
    toks = [t for t in session.workspace["tokenizers"] if t["name"] == "speeches-bytebpe"]
    if not toks:
        done = []
        session.request(
            p.ImportRequest(paths=[str(SHAKESPEARE)], name="speeches", options={"doc_unit": "paragraph"}), done.append
        )
        wait(120, lambda: done)
        session.request(
            p.TokenizerTrainRequest(
                dataset=done[0].dataset["id"], tokenizer_kind="bytebpe", vocab_size=2048, name="speeches-bytebpe"
            ),
            done.append,
        )
        wait(300, lambda: len(done) == 2)
        session.refresh_workspace()
        wait(10, lambda: any(t["name"] == "speeches-bytebpe" for t in session.workspace["tokenizers"]))
        toks = [t for t in session.workspace["tokenizers"] if t["name"] == "speeches-bytebpe"]
    session.select_dataset(toks[0]["dataset_id"])
    session.select_tokenizer(toks[0])
    win.show_page("vocab")
    panel.tabs.setCurrentWidget(panel.lengths)
    wait(30, lambda: panel.lengths.histogram().get("split") == "train" and panel.lengths.histogram()["n_docs"] > 1)


def scene_compare(win, session, args):
    win.show_page("vocab")
    panel = win.panels["vocab"]
    view = panel.ensure_compare_view()
    panel.tabs.setCurrentWidget(panel.compare_tab)
    wait(2)
    view.text_edit.setText("The quick brown fox, unbidden, questioned Romeo's melancholy.")
    view.compare()
    wait(60, lambda: view.result and all(v.span_count() for v in view.split_views))


def scene_model(win, session, args):
    choose_shakespeare(session)
    win.show_page("model")


def scene_objective(win, session, args):
    win.show_page("objective")


def _objective_scene(name: str, arch: str = "decoder"):
    def scene(win, session, args):
        choose_shakespeare(session)
        session.update_config("model", arch=arch)
        win.show_page("objective")
        panel = win.panels["objective"]
        panel.choose(name)
        wait(30, lambda: panel.sample.pending is None and bool(panel.sample.view.rows))
        wait(1)

    return scene


def scene_fill_mask(win, session, args):
    win.show_page("playground")
    panel = win.panels["playground"]
    run = (args.workspace / "shots-mlm-run").read_text().strip()
    panel.pane.select_run(int(run))
    wait(10, lambda: "fill_mask" in panel.modes())
    panel.show_mode("fill_mask")
    page = panel.mode_pages["fill_mask"]
    page.edit.setPlainText(
        "ROMEO:\nWhat light through yonder w[MASK]ndow breaks? It is the e[MASK]st, and J[MASK]liet is the sun."
    )
    panel.ask(page)
    wait(60, lambda: page.request is None)
    wait(2)


def scene_train(win, session, args):
    choose_shakespeare(session)  # the objective scenes before this one changed the objective and the model
    win.show_page("train")
    wait(5)


def scene_runs(win, session, args):
    win.show_page("runs")
    panel = win.panels["runs"]
    row = panel.table.currentRow()
    panel.table.selectRow(row if row >= 0 else 0)


def scene_finetune_dialog(win, session, args):
    """Runs → Fine-tune… on the baby run, LoRA chosen: the dialog, which the next scene closes."""
    from studio.widgets.finetune_dialog import FinetuneDialog

    win.show_page("runs")
    session.select_run(session.find("runs", "shakespeare-baby")["id"])
    panel = win.panels["runs"]
    wait(2)
    panel.fine_tune_selected()
    dialog: FinetuneDialog = panel.finetune_dialog
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("lora"))
    wait(5, lambda: dialog.checkpoint_combo.count() > 1)
    return dialog


def scene_finetune_train(win, session, args):
    dialog = getattr(win.panels["runs"], "finetune_dialog", None)
    if dialog is not None and dialog.isVisible():
        dialog.reject()
    session.select_run(session.find("runs", "baby + LoRA")["id"])
    win.show_page("train")
    wait(10, lambda: win.panels["train"].loss_plot.parent_curves is not None)


def scene_objective_distillation(win, session, args):
    """Knowledge distillation chosen, the baby run as its teacher: the Teacher run list and the options."""
    win.show_page("objective")
    panel = win.panels["objective"]
    panel.buttons["distillation"].click()
    wait(2)
    box = panel.options.fields["teacher_run"]
    box.setCurrentIndex(max(0, box.findData(session.find("runs", "shakespeare-baby")["id"])))
    wait(8, lambda: panel.sample.isVisible())


def _plays_run(args) -> int:
    return int((args.workspace / "shots-plays-run").read_text().strip())


def scene_playground_classify(win, session, args):
    """The plays classifier asked about a line of Romeo and Juliet."""
    win.show_page("playground")
    panel = win.panels["playground"]
    panel.pane.select_run(_plays_run(args))
    wait(10, lambda: "classify" in panel.modes())
    panel.show_mode("classify")
    page = panel.mode_pages["classify"]
    page.edit.setPlainText("But, soft! what light through yonder window breaks? It is the east, and the sun.")
    panel.ask(page)
    wait(60, lambda: page.request is None)
    wait(2)


def scene_train_classify(win, session, args):
    """The plays classifier's curves: accuracy, macro-F1 and the confusion matrix."""
    session.select_run(_plays_run(args))
    win.show_page("train")
    wait(15, lambda: win.panels["train"].confusion_view.isVisible())


def scene_finetune_reinforce(win, session, args):
    """Runs → Fine-tune… on the baby run with REINFORCE chosen: the reward, its penalty and the prompts."""
    dialog = scene_finetune_dialog(win, session, args)
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("full"))
    dialog.objective_combo.setCurrentIndex(dialog.objective_combo.findData("reinforce"))
    dialog.reward_edit.setText("contains:thou,thee,thy,love; length:6")
    dialog.prompts_edit.setPlainText("ROMEO:\nJULIET:")
    wait(1)
    return dialog


def scene_train_reinforce(win, session, args):
    """The REINFORCE run's reward, KL and entropy, and what it writes with the rewards it earned."""
    dialog = getattr(win.panels["runs"], "finetune_dialog", None)
    if dialog is not None and dialog.isVisible():
        dialog.reject()
    session.select_run(int((args.workspace / "shots-reinforce-run").read_text().strip()))
    win.show_page("train")
    wait(15, lambda: win.panels["train"].samples_view.isVisible())


def scene_attention(win, session, args):
    win.show_page("attention")
    panel = win.panels["attention"]
    wait(20, lambda: len(panel.history) > 0)
    wait(3)


def scene_attention_heatmap(win, session, args):
    win.show_page("attention")
    panel = win.panels["attention"]
    wait(3)
    panel.select(0, 1)
    wait(3)


def scene_playground(win, session, args):
    win.show_page("playground")
    panel = win.panels["playground"]
    panel.prompt.setPlainText("ROMEO:")
    panel.max_new.setValue(160)
    panel.seed.setValue(7)
    panel.generate()
    wait(60, lambda: not panel.writing)
    if panel.pane.tokens:
        panel.show_token_details(panel.pane, min(12, len(panel.pane.tokens) - 1))
    wait(5)


SCENES = {
    "data": scene_data,
    "data-import": scene_data_import,
    "vocab": scene_vocab,
    "vocab-lengths": scene_lengths,
    "compare": scene_compare,
    "model": scene_model,
    "objective": scene_objective,
    "objective-masked-lm": _objective_scene("masked_lm"),  # from a decoder: the switch and its Undo show
    "objective-span-corruption": _objective_scene("span_corruption", "encoder-decoder"),  # T5's own layout
    "objective-permutation-lm": _objective_scene("permutation_lm"),
    "train": scene_train,
    "attention": scene_attention,
    "attention-heatmap": scene_attention_heatmap,
    "playground-details": scene_playground,
    "playground-fill-mask": scene_fill_mask,
    "runs": scene_runs,
    "finetune-dialog": scene_finetune_dialog,
    "finetune-train": scene_finetune_train,
    "objective-distillation": scene_objective_distillation,
    "playground-classify": scene_playground_classify,
    "train-classify": scene_train_classify,
    "finetune-reinforce": scene_finetune_reinforce,
    "train-reinforce": scene_train_reinforce,
}


if __name__ == "__main__":
    sys.exit(main())
