"""Python's cycle collector runs on the GUI thread only.

CPython runs its cyclic garbage collector on whichever thread happens to allocate when a generation's count
passes its threshold. A Qt object caught in a reference cycle (a closed panel whose slot refers back to it, a
session a test dropped) is then destroyed on that thread: with the engine's reader thread decoding a flood of
frames, that was a QObject with live timers and notifiers deleted off the GUI thread while the event loop used
them, and the suite crashed (SIGSEGV) or hung (a corrupted allocator looping) at random under load. The reader
thread is the Windows transport, so the app would have crashed the same way there.

So automatic collection is switched off and a GUI-thread timer does the same work: when the counts pass the
same thresholds, it collects the same generation the interpreter would have. Threads still allocate and free by
reference counting as before; only cycles wait (at most one tick) for the GUI thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

TICK_MS = 250  # how long a cycle may wait for the GUI thread; a gen-0 check costs microseconds


class GuiThreadCollector(QObject):
    """Owns the switch: automatic collection is off while it lives, and back on once it is gone."""

    def __init__(self, parent: QObject, tick_ms: int = TICK_MS):
        super().__init__(parent)
        self.setObjectName("gui-thread-gc")
        self.thresholds = gc.get_threshold()
        self.collections = 0
        gc.disable()
        self.destroyed.connect(_enable_collection)
        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold, as the interpreter would; returns
        the number of objects found unreachable (0 when nothing was due)."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation] > 0:
                self.collections += 1
                return gc.collect(generation)
        return 0


def _enable_collection(*_) -> None:
    gc.enable()


def collect_on_gui_thread(app: QObject) -> GuiThreadCollector:
    """Install the collector on `app` (the QApplication, created on the GUI thread); once per application."""
    existing = app.findChild(GuiThreadCollector, "gui-thread-gc")
    return existing if existing is not None else GuiThreadCollector(app)
