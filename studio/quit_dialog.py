"""Closing the window while a run trains: keep it training in the background (the default: nothing stops, a later
window reattaches), stop it with a checkpoint and quit, or stay."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

BACKGROUND, STOP, CANCEL = "background", "stop", "cancel"


def ask_quit_while_training(parent: QWidget, run_words: str) -> str:
    """BACKGROUND, STOP or CANCEL (Escape) for closing while `run_words` ("Run 3 (baby)") trains."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Quit")
    box.setText(f"{run_words} is training. Keep it training after the window closes?")
    box.setInformativeText(
        "In the background the engine goes on training and saving checkpoints; open the studio again on this "
        "workspace to watch it live. Stopping saves a checkpoint after the current step, so you can resume later."
    )
    keep = box.addButton("Keep training in the background", QMessageBox.ButtonRole.AcceptRole)
    stop = box.addButton("Stop training and quit", QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    return BACKGROUND if clicked is keep else STOP if clicked is stop else CANCEL
