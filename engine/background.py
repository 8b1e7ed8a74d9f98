"""Training on after the window closed: the endpoint a later studio reattaches to.

On a detach request the engine opens a listener of its own (a Unix socket in a private folder, a named pipe on
Windows) with a fresh random key, records both in `<workspace>/engine-endpoint.json` (engine/endpoint.py) and
waits on a thread. The first peer that proves the key becomes the engine's studio: the listener closes and the
file goes, so one window at a time is attached; a peer without the key, or one that closes or stays silent
during the handshake, is ignored (the same rules as the studio's own listener).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Callable

from engine.endpoint import remove_endpoint, write_endpoint
from engine.peers import accept_peer, private_address

WINDOWS = sys.platform == "win32"


class BackgroundEndpoint:
    """One listener, its recorded endpoint and the thread that waits for a studio."""

    def __init__(self, workspace: Path, run: int | None, on_studio: Callable[[Connection], None]):
        self.workspace = Path(workspace)
        self.authkey = os.urandom(32)
        self.address, self.sockdir = private_address("bg-")
        self.family = "AF_PIPE" if WINDOWS else "AF_UNIX"
        self.listener = Listener(self.address, family=self.family, authkey=self.authkey)
        self._on_studio = on_studio
        self._closed = threading.Event()
        write_endpoint(self.workspace, self.address, self.authkey, run)
        threading.Thread(target=self._wait_for_studio, name="background-accept", daemon=True).start()

    def _wait_for_studio(self) -> None:
        """The accept thread owns the listener: it alone closes it (closing it under a blocked accept() from
        another thread could let its descriptor number be reused beneath the call)."""
        try:
            while not self._closed.is_set():
                conn = self._accept_one()
                if conn is None:
                    continue
                if self._closed.is_set():
                    conn.close()  # close()'s own knock, or a studio that came too late
                    return
                self._closed.set()
                remove_endpoint(self.workspace)
                self._on_studio(conn)
                return
        finally:
            try:
                self.listener.close()
            except OSError:
                pass
            if self.sockdir:
                shutil.rmtree(self.sockdir, ignore_errors=True)

    def _accept_one(self) -> Connection | None:
        try:
            return accept_peer(self.listener)
        except (AuthenticationError, EOFError, OSError, ValueError):
            if not self._closed.is_set():
                self._closed.wait(0.05)  # a stray peer: keep waiting for the real studio
            return None

    def close(self) -> None:
        """Stop listening and remove the record (the engine exits); knocks so that the accept thread returns."""
        if self._closed.is_set():
            return
        self._closed.set()
        remove_endpoint(self.workspace)
        try:
            Client(self.address, family=self.family, authkey=self.authkey).close()
        except Exception:  # the thread has gone already
            pass
