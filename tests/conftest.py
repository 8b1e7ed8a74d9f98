import os
import sys
from pathlib import Path

# Qt must run headless in tests; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never let tests touch the user's real workspace.
os.environ.setdefault("STUDIO_WORKSPACE", str(Path(__file__).parent / ".." / ".pytest_cache" / "no-default-workspace"))

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


# ------------------------------------------------------------------------------------- studio fixtures (Qt)
import time  # noqa: E402

import pytest  # noqa: E402

# QSettings must never read or write the user's real settings during tests.
os.environ.setdefault("XDG_CONFIG_HOME", str(ROOT / ".pytest_cache" / "xdg-config"))

ENGINE_START_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def qapp(qapp):
    """pytest-qt's application, with the app's rule that Python's cycle collector runs on the GUI thread only
    (studio/gui_thread_gc.py): tests drop windows and sessions in cycles, and the engine reader thread must never
    be the one that frees them."""
    from studio.gui_thread_gc import collect_on_gui_thread

    collect_on_gui_thread(qapp)
    return qapp


@pytest.fixture(autouse=True)
def _collect_cycles_between_tests():
    """Tests that never run an event loop still have their cycles collected (on this, the GUI thread)."""
    yield
    widgets = sys.modules.get("PySide6.QtWidgets")
    app = widgets.QApplication.instance() if widgets else None
    if app is not None:
        from studio.gui_thread_gc import GuiThreadCollector

        collector = app.findChild(GuiThreadCollector, "gui-thread-gc")
        if collector is not None:
            collector.collect_due()


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    """Process Qt events until predicate() is true (for fixtures, where qtbot is not available)."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)


def start_session(path):
    """A Session with a real engine process on the workspace `path`, ready (hello answered)."""
    from studio.session import Session

    session = Session(str(path))
    session.start_engine()
    # The engine's first `status` (idle) can arrive before its hello reply, which carries the workspace.
    wait_until(
        lambda: session.hello is not None or session.engine_state == "dead",
        ENGINE_START_TIMEOUT_S,
        "the engine's hello",
    )
    assert session.engine_state == "ready", session.engine_detail
    return session


def stop_session(session) -> None:
    session.client.stop()
    session.client.wait_stopped()
    session.client.kill_now()


@pytest.fixture
def session(qapp, tmp_path):
    """A Session with a real engine on a fresh workspace in tmp_path (one engine start: ~3 s)."""
    s = start_session(tmp_path / "workspace")
    yield s
    stop_session(s)


@pytest.fixture(scope="module")
def module_session(qapp, tmp_path_factory):
    """One real engine shared by a test module (engine starts cost seconds each)."""
    s = start_session(tmp_path_factory.mktemp("ws") / "workspace")
    yield s
    stop_session(s)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread for a module's tests: tiny models train and generate fastest so, and stay fast when
    other processes keep the cores busy (344 s -> 27 s for test_generate.py on a loaded 2-core machine)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def qsettings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def train_until_stopped(ws, run_id: int, step: int, event: str = "Metrics") -> str:
    """run_training of `run_id`, asked to stop at the first `event` (a training event class name) of step >= `step`;
    returns its final state ("stopped" when the stop came in time)."""
    from engine.train import Control, run_training

    control = Control()

    def on_event(e) -> None:
        if type(e).__name__ == event and getattr(e, "step", -1) >= step:
            control.request_stop()

    return run_training(ws, run_id, on_event=on_event, control=control)


def shown(qtbot, widget, size=(1000, 700)):
    """A panel under test: owned by qtbot (closed after the test), at a realistic size, on screen."""
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    return widget


# ------------------------------------------------------------------------------ the whole studio (Qt window)
from contextlib import contextmanager  # noqa: E402


def main_window(qtbot, session, qsettings, size=None, active=False, show=True):
    """The real MainWindow on `session`, owned by qtbot. size: resized first; active: also waited for until it
    is the active window (its shortcuts only fire then); show=False leaves it unshown."""
    from PySide6.QtWidgets import QApplication

    from studio.main_window import MainWindow

    win = MainWindow(session, qsettings)
    qtbot.addWidget(win)
    if size:
        win.resize(*size)
    if show:
        win.show()
    if active:
        qtbot.waitExposed(win)
        win.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    return win


@contextmanager
def window_on(qtbot, session, qsettings, **how):
    """main_window(...) on a session the test made; leaving closes the window (which stops the engine as quitting
    does) and kills what is left of the engine, whatever the test did or failed at."""
    win = main_window(qtbot, session, qsettings, **how)
    try:
        yield win
    finally:
        win.ask_quit_while_training = lambda: "stop"  # a failed test must not leave a modal question open
        win.close()
        session.client.kill_now()


@contextmanager
def open_studio(qtbot, qsettings, workspace, **how):
    """The studio as a user starts it: a real engine on `workspace` (ready), then the window; yields (window,
    session) and closes both on leaving, as window_on does."""
    session = start_session(workspace)
    with window_on(qtbot, session, qsettings, **how) as win:
        yield win, session


@pytest.fixture
def offline_window(qtbot, tmp_path, qsettings):
    """The main window on a session with no engine: the test plays the engine's messages."""
    from studio.session import Session

    return main_window(qtbot, Session(str(tmp_path / "ws")), qsettings)


def ended_runs(session) -> list:
    """The status of every run that ends from now on (finished, stopped or failed), in the order they come."""
    from engine.protocol import RUN_OUTCOMES

    ended: list = []
    session.statusReceived.connect(
        lambda st: ended.append(st) if st.run is not None and st.state in RUN_OUTCOMES else None
    )
    return ended


def kill_engine_unnoticed(session) -> None:
    """SIGKILL the real engine's process group and wait until it has exited, before any Qt event runs: the
    Session has not noticed yet, so the next request fails while it is being sent (its reply comes before
    `request` returns)."""
    import signal

    os.killpg(os.getpgid(session.client.pid), signal.SIGKILL)
    session.client.proc.wait(10)
    assert session.engine_state != "dead"


def use_a_seconds_long_run(session) -> None:
    """Model and training settings for a run that finishes in seconds (1 layer, 20 steps, evaluations at 10)."""
    session.update_config("model", n_layer=1, n_head=2, n_embd=32, block_size=32)
    session.update_config(
        "train",
        batch_size=4,
        max_iters=20,
        eval_interval=10,
        eval_iters=2,
        log_interval=2,
        warmup_iters=2,
        lr_decay_iters=20,
        checkpoint_interval=1000,
    )
