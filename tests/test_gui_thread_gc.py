"""Qt objects in reference cycles are freed on the GUI thread, whichever thread allocates (studio/gui_thread_gc.py).

Without this, CPython's collector ran on the engine reader thread while it decoded a flood of frames, and freed
windows and engine clients the tests had dropped there: the suite crashed (SIGSEGV) or hung under load."""

import gc
import threading
import weakref

from PySide6.QtCore import QObject, QTimer

from studio.gui_thread_gc import GuiThreadCollector, collect_on_gui_thread


class _Cyclic(QObject):
    """A Qt object only the cycle collector can free (it refers to itself), with a live timer as panels have."""

    def __init__(self, freed_on: list):
        super().__init__()
        self.me = self
        self._freed_on = freed_on
        self.timer = QTimer(self)
        self.timer.start(5)

    def __del__(self):
        self._freed_on.append(threading.current_thread().name)


def _allocate_on_a_worker_thread() -> list:
    """What the engine reader does with a flood: make many objects that live on (decoded messages for the GUI).
    That passes gen-0's threshold there, where the interpreter would run the collector."""
    kept: list = []

    def decode_a_flood():
        kept.extend([] for _ in range(20_000))

    t = threading.Thread(target=decode_a_flood, name="engine-reader")
    t.start()
    t.join()
    return kept


def test_a_cycle_holding_a_qt_object_is_freed_on_the_gui_thread_not_the_allocating_one(qapp, qtbot):
    freed_on: list[str] = []
    _Cyclic(freed_on)
    alive = weakref.ref(next(o for o in gc.get_objects() if isinstance(o, _Cyclic) and o._freed_on is freed_on))
    delivered = _allocate_on_a_worker_thread()
    assert freed_on == [], "the worker thread's allocations ran the collector and freed a Qt object there"
    qtbot.waitUntil(lambda: alive() is None, timeout=5000)  # the GUI thread's tick collects it
    assert freed_on == ["MainThread"]
    assert len(delivered) == 20_000


def test_the_collector_is_installed_once_and_collects_what_is_due(qapp):
    collector = collect_on_gui_thread(qapp)
    assert collect_on_gui_thread(qapp) is collector
    assert len(qapp.findChildren(GuiThreadCollector)) == 1
    assert not gc.isenabled()
    before = collector.collections
    junk = [[] for _ in range(collector.thresholds[0] + 100)]
    assert collector.collect_due() >= 0 and collector.collections == before + 1
    del junk
    gc.collect()
    assert collector.collect_due() == 0 and collector.collections == before + 1  # nothing due just after


def test_automatic_collection_comes_back_when_the_collector_goes(qapp):
    owner = QObject()
    assert not gc.isenabled()
    own = GuiThreadCollector(owner)
    del own
    owner.deleteLater()
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    try:
        assert gc.isenabled()
    finally:
        gc.disable()  # the session's collector (on qapp) is still there
