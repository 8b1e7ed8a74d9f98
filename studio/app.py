"""`studio` / `python -m studio`: the Transformer Studio window.

The window opens in about a second because torch loads only in the engine process, which starts in the background
at launch so it is warm when the user presses Train.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

APP_DISPLAY_NAME = "Transformer Studio"
ORG_NAME = "TransformerStudio"
DIST_NAME = "transformer-studio"
ROOT = Path(__file__).resolve().parents[1]


def app_version() -> str:
    """The installed distribution's version; from a checkout that was never installed, pyproject.toml's."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(DIST_NAME)
    except PackageNotFoundError:
        return pyproject_version(ROOT / "pyproject.toml") or "unknown (not installed)"


def pyproject_version(path: Path) -> str | None:
    """`version = "..."` of the [project] table (a line scan: tomllib is not in Python 3.10)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    section = ""
    for line in lines:
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[project]" and line.startswith("version") and "=" in line:
            value = line.split("=", 1)[1].split("#", 1)[0].strip().strip("\"'")
            return f"{value} (not installed)" if value else None
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="studio", description="Transformer Studio: train small language models.")
    ap.add_argument("--workspace", metavar="DIR",
                    help="workspace folder (datasets, vocabularies, runs); default: the last one opened, or "
                         "$STUDIO_WORKSPACE, or the per-user data folder")
    return ap.parse_args(argv)


def choose_workspace(arg: str | None, last: str | None) -> Path:
    """--workspace, then $STUDIO_WORKSPACE, then the last workspace opened, then the per-user default."""
    from studio.session import default_workspace
    if arg:
        return Path(arg).expanduser().resolve()
    if os.environ.get("STUDIO_WORKSPACE"):
        return default_workspace()
    if last:
        return Path(str(last))
    return default_workspace()


def install_sigint_handler(app, window) -> None:
    """Ctrl-C in the terminal asks the window to close (which asks before stopping a run).

    Qt's event loop runs in C++; a do-nothing timer lets the interpreter run Python signal handlers."""
    from PySide6.QtCore import QTimer

    def on_sigint(*_):
        QTimer.singleShot(0, window.request_quit)
    signal.signal(signal.SIGINT, on_sigint)
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(200)
    app._sigint_timer = timer


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio import theme
    from studio.icons import app_icon
    from studio.main_window import MainWindow
    from studio.session import Session

    QApplication.setApplicationName(APP_DISPLAY_NAME)
    QApplication.setOrganizationName(ORG_NAME)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationDisplayName(APP_DISPLAY_NAME)
    app.setWindowIcon(app_icon())     # every window and dialog, and the task bar
    theme.apply_theme(app)

    settings = QSettings()
    workspace = choose_workspace(args.workspace, settings.value("workspace"))
    session = Session(str(workspace))
    session.start_engine()
    window = MainWindow(session, settings)
    window.show()
    install_sigint_handler(app, window)
    try:
        return app.exec()
    finally:
        session.client.kill_now()   # never leave an engine behind, whatever happened


if __name__ == "__main__":
    sys.exit(main())
