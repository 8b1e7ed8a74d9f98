"""`studio` / `python -m studio`: the Transformer Studio window.

The window opens in about a second because torch loads only in the engine process, which starts in the background
at launch so it is warm when the user presses Train.
"""

from __future__ import annotations

import argparse
import gc
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


# What Qt's xcb platform plugin (X11) loads, and the Debian/Ubuntu package of each: a bare server or container
# image often lacks the xcb-util ones, and Qt then aborts with a message that names no package.
XCB_LIBRARIES = (
    ("libxcb.so.1", "libxcb1"),
    ("libX11.so.6", "libx11-6"),
    ("libX11-xcb.so.1", "libx11-xcb1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"),
    ("libxcb-icccm.so.4", "libxcb-icccm4"),
    ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-randr.so.0", "libxcb-randr0"),
    ("libxcb-render.so.0", "libxcb-render0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"),
    ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-shm.so.0", "libxcb-shm0"),
    ("libxcb-sync.so.1", "libxcb-sync1"),
    ("libxcb-util.so.1", "libxcb-util1"),
    ("libxcb-xfixes.so.0", "libxcb-xfixes0"),
    ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon.so.0", "libxkbcommon0"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
    ("libGL.so.1", "libgl1"),
    ("libEGL.so.1", "libegl1"),
    ("libfontconfig.so.1", "libfontconfig1"),
    ("libdbus-1.so.3", "libdbus-1-3"),
)
SKIP_CHECK_ENV = "STUDIO_SKIP_XCB_CHECK"


def can_load(soname: str) -> bool:
    """Whether the dynamic linker finds and loads `soname` (as Qt's plugin will)."""
    import ctypes

    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def will_use_xcb(platform: str, env) -> bool:
    """Whether Qt is about to load its xcb plugin: Linux, and QT_QPA_PLATFORM unset (outside Wayland) or xcb."""
    if not platform.startswith("linux") or env.get(SKIP_CHECK_ENV):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        return chosen.split(";")[0].split(":")[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")  # on Wayland Qt takes its wayland plugin


def missing_xcb_libraries(loadable=None, libraries=XCB_LIBRARIES) -> list[tuple[str, str]]:
    """(library file, Debian package) of each library the xcb plugin needs that `loadable` (default: the dynamic
    linker) says is not there."""
    loadable = loadable or can_load
    return [(soname, package) for soname, package in libraries if not loadable(soname)]


def xcb_help(missing: list[tuple[str, str]]) -> str | None:
    """What to tell a user whose system lacks `missing`: the libraries and the one command that installs them."""
    if not missing:
        return None
    files = ", ".join(soname for soname, _ in missing)
    packages = " ".join(dict.fromkeys(package for _, package in missing))
    return (
        f"studio: Qt cannot open a window: its X11 (xcb) platform plugin needs system libraries that are not "
        f"installed ({files}).\n"
        f"On Debian or Ubuntu, install them with:\n\n"
        f"    sudo apt-get install -y {packages}\n\n"
        f"On other systems, install the packages that provide those files. If they are installed after all, "
        f"set {SKIP_CHECK_ENV}=1 to start without this check."
    )


def check_display_libraries(platform: str | None = None, env=None, loadable=None) -> str | None:
    """The help text when Qt's xcb plugin would fail to load for want of system libraries, else None."""
    if not will_use_xcb(sys.platform if platform is None else platform, os.environ if env is None else env):
        return None
    return xcb_help(missing_xcb_libraries(loadable))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="studio", description="Transformer Studio: train small language models.")
    ap.add_argument(
        "--workspace",
        metavar="DIR",
        help="workspace folder (datasets, vocabularies, runs); default: the last one opened, or "
        "$STUDIO_WORKSPACE, or the per-user data folder",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="build the window, check that its theme, icons and presets loaded, say where they came "
        "from, and quit (the engine is not started)",
    )
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


def check_window(app, window) -> int:
    """`studio --check`: show the window once, then 0 and a line naming the resources folder when the theme,
    every icon and the presets loaded, else 1 and what is missing (on stderr). An installed copy is checked so,
    without a display (QT_QPA_PLATFORM=offscreen) and without starting the engine (tests/test_wheel.py)."""
    from PySide6.QtGui import QPalette

    from engine.config import PRESETS
    from engine.resources import resources_dir
    from studio import theme

    window.show()
    app.processEvents()
    sidebar = window.sidebar
    icons = sum(not sidebar.item(i).icon().isNull() for i in range(sidebar.count()))
    missing = [
        what
        for what, ok in (
            ("the app icon", not window.windowIcon().isNull()),
            (f"{sidebar.count() - icons} panel icons", icons == sidebar.count()),
            ("the theme", app.palette().color(QPalette.ColorRole.Highlight) == theme.ACCENT),
            ("the presets", bool(PRESETS)),
            ("garbage collection on the GUI thread", not gc.isenabled()),
        )
        if not ok
    ]
    if missing:
        print(f"studio: the window opened without {', '.join(missing)}", file=sys.stderr, flush=True)
        return 1
    print(
        f"studio: the window opens with its theme, the app icon, {icons} panel icons and {len(PRESETS)} presets "
        f"from {resources_dir()}",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before Qt: once QApplication fails to load its platform plugin it aborts the process.
    problem = check_display_libraries()
    if problem:
        print(problem, file=sys.stderr, flush=True)
        return 1
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio import theme
    from studio.gui_thread_gc import collect_on_gui_thread
    from studio.icons import app_icon
    from studio.main_window import MainWindow
    from studio.session import Session

    QApplication.setApplicationName(APP_DISPLAY_NAME)
    QApplication.setOrganizationName(ORG_NAME)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    collect_on_gui_thread(app)  # Qt objects in cycles are freed on this thread, never on the engine reader's
    app.setApplicationDisplayName(APP_DISPLAY_NAME)
    app.setWindowIcon(app_icon())  # every window and dialog, and the task bar
    theme.apply_theme(app)

    settings = QSettings()
    workspace = choose_workspace(args.workspace, settings.value("workspace"))
    session = Session(str(workspace))
    if args.check:
        return check_window(app, MainWindow(session, settings))
    session.start_engine()
    window = MainWindow(session, settings)
    window.show()
    install_sigint_handler(app, window)
    try:
        return app.exec()
    finally:
        session.client.kill_now()  # never leave an engine behind, whatever happened


if __name__ == "__main__":
    sys.exit(main())
