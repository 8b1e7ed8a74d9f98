"""Help and File menus of the real window: About with the versions it runs on (torch from the real engine), the
Keyboard shortcuts page built from the window's real shortcuts, Read the README, and File → Import… / Export…."""

from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog

from tests.conftest import main_window
from engine import protocol as p
from studio.shortcuts_dialog import undescribed

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def win(qtbot, session, qsettings):
    """The main window on a real engine."""
    return main_window(qtbot, session, qsettings)


def menu_actions(window, title: str) -> list[str]:
    menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == title)
    return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]


# ------------------------------------------------------------------------------------------------------ about


def test_about_names_the_version_and_the_torch_qt_and_device_it_runs_on(win):
    import PySide6
    import torch
    from PySide6.QtCore import qVersion

    from studio.app import app_version

    assert win.session.hello.torch_version == torch.__version__  # told by the engine in its hello
    box = win.show_about()
    # Shown with open(), not exec(): the call returned, and the rest of the app keeps running.
    assert box.isVisible() and box.windowModality() != Qt.WindowModality.ApplicationModal
    text = box.text()
    for part in (app_version(), torch.__version__, qVersion(), PySide6.__version__, win.session.device_name):
        assert part and part in text, part
    assert app_version() == "0.1.0"  # pyproject's version, installed
    box.close()


def test_the_version_falls_back_to_pyproject_when_not_installed(monkeypatch, tmp_path):
    from studio import app

    monkeypatch.setattr(app, "DIST_NAME", "transformer-studio-that-is-not-installed")
    assert app.app_version() == "0.1.0 (not installed)"
    toml = tmp_path / "pyproject.toml"
    toml.write_text('[tool.x]\nversion = "9"\n[project]\nname = "x"\nversion = "2.5.1"  # the one\n')
    assert app.pyproject_version(toml) == "2.5.1 (not installed)"
    monkeypatch.setattr(app, "ROOT", tmp_path / "nowhere")
    assert app.app_version() == "unknown (not installed)"


def test_an_engine_too_old_to_send_its_torch_version_still_connects(offline_window):
    # An older engine's hello has no torch_version: the field is optional, the About box says so.
    hello = p.decode_message(
        {
            "kind": "hello_reply",
            "parent": "1",
            "device": "cpu",
            "device_name": "CPU",
            "workspace": {"path": "/w", "datasets": [], "tokenizers": [], "runs": []},
        }
    )
    offline_window.session.deliver_hello(hello)
    assert dict(offline_window.about_lines())["torch (in the engine)"] == "an engine too old to say"
    assert "Engine ready" in offline_window.engine_status_text()


# -------------------------------------------------------------------------------------------------- shortcuts


def test_f1_opens_a_non_modal_page_listing_every_shortcut_of_the_window(qtbot, offline_window):
    window = offline_window
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F1)
    dialog = window._shortcuts_dialog
    assert dialog.isVisible() and not dialog.isModal()
    keys = {k for row in dialog.rows() for k in row[0].split(" or ")}
    expected = {f"Ctrl+{i}" for i in range(1, 9)} | {
        "Ctrl+Return",
        "Esc",
        "Ctrl+.",
        "Ctrl+Z",
        "Del",
        "Ctrl+F",
        "Ctrl+O",
        "Ctrl+Q",
        "F1",
        "F2",
        "Ctrl+T",
        "Ctrl+I",
    }
    assert expected <= keys, expected - keys
    rows = {(r[0], r[2]): r[1] for r in dialog.rows()}
    assert rows[("Ctrl+5", "Anywhere")] == "Show the Train panel"
    assert rows[("F1", "Anywhere")] == "Keyboard shortcuts"
    assert rows[("Esc or Ctrl+.", "Train")] == "Stop training"
    assert rows[("F2", "Runs")] == "Rename the selected run"
    assert undescribed(window) == []  # every shortcut the window has says what it does
    window.sidebar.setCurrentRow(2)  # the window still takes clicks and keys while the page is open
    assert window.current_page() == "model"


def test_the_page_follows_the_real_shortcuts_so_it_cannot_go_stale(offline_window):
    window = offline_window
    extra = QShortcut(QKeySequence("Ctrl+Shift+K"), window.panels["runs"])
    extra.setWhatsThis("Keep the selected run")
    dialog = window.show_shortcuts()
    assert ("Ctrl+Shift+K", "Keep the selected run", "Runs") in dialog.rows()
    extra.setParent(None)
    del extra
    dialog.hide()
    dialog = window.show_shortcuts()
    assert not [r for r in dialog.rows() if r[0] == "Ctrl+Shift+K"]
    nameless = QShortcut(QKeySequence("Ctrl+Shift+J"), window.panels["data"])
    assert undescribed(window) == ["Ctrl+Shift+J (Data)"]  # a new shortcut must say what it does
    nameless.setParent(None)


# ------------------------------------------------------------------------------------------------------ README


class _UrlCatcher(QObject):
    def __init__(self):
        super().__init__()
        self.urls = []

    @Slot(QUrl)
    def open(self, url):
        self.urls.append(url)


def test_read_the_readme_opens_the_projects_readme(offline_window):
    assert "Read the README" in menu_actions(offline_window, "Help")
    catcher = _UrlCatcher()
    # Qt's own hook for file URLs: the system viewer is not started in a test.
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        offline_window.readme_action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert len(catcher.urls) == 1
    opened = Path(catcher.urls[0].toLocalFile())
    assert opened == ROOT / "README.md" and "Transformer Studio" in opened.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------- import, export


def test_file_import_goes_to_the_data_panel_and_opens_its_chooser(qtbot, offline_window, tmp_path, monkeypatch):
    text = tmp_path / "poems.txt"
    text.write_text("roses are red\nviolets are blue\n" * 50, encoding="utf-8")
    asked = []
    # The OS file chooser cannot be clicked in a test: it answers with the file a user would pick.
    monkeypatch.setattr(
        QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: asked.append(a) or ([str(text)], ""))
    )
    offline_window.show_page("runs")
    assert menu_actions(offline_window, "File")[2:4] == ["Import…", "Export tokenizer…"]
    offline_window.import_action.trigger()
    data = offline_window.panels["data"]
    assert asked and offline_window.current_page() == "data"
    assert data.stack.currentIndex() == 1 and data.name_edit.text() == "poems"


def test_file_export_saves_the_tokenizer_in_use(qtbot, win, tmp_path, monkeypatch):
    session = win.session
    trained = []
    session.request(
        p.TokenizerTrainRequest(dataset=session.dataset["id"], tokenizer_kind="char", vocab_size=100), trained.append
    )
    qtbot.waitUntil(lambda: bool(trained), timeout=30_000)
    assert trained[0].ok, trained[0].error
    session.refresh_workspace()
    qtbot.waitUntil(lambda: bool(session.workspace["tokenizers"]), timeout=10_000)
    session.select_tokenizer(trained[0].tokenizer["id"])
    target = tmp_path / "out" / "chars.json"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(target), "")))
    win.export_action.trigger()
    assert win.current_page() == "vocab"
    qtbot.waitUntil(target.exists, timeout=20_000)
    assert '"model"' in target.read_text(encoding="utf-8")
