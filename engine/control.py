"""Stop, pause and resume requests from another thread (the engine's command lane, the CLI's signal handlers),
read by the training loop between optimizer steps."""

from __future__ import annotations

import threading


class Control:
    """Stop / pause / resume requests from another thread, read by the loop between optimizer steps."""

    def __init__(self):
        self._stop = threading.Event()
        self._running = threading.Event()  # cleared while paused
        self._running.set()

    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    def request_pause(self) -> None:
        if not self._stop.is_set():
            self._running.clear()

    def request_resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_while_paused(self, timeout: float | None = 0.1) -> None:
        """Block while paused, at most `timeout` seconds (None: until resumed); returns at once on stop."""
        self._running.wait(timeout)

    # A divergence (engine/health.py) goes back to the last good checkpoint; with no one to ask (the CLI, a script)
    # the advice is applied at once, while the engine of a window sets this False to pause and let the user choose.
    auto_apply_advice = True
    _apply_advice = False

    def request_apply_advice(self) -> None:
        self._apply_advice = True
        self.request_resume()

    def take_apply_advice(self) -> bool:
        asked, self._apply_advice = self._apply_advice, False
        return asked
