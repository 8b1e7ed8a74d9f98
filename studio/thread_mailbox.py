"""Hand-over from the engine client's worker threads to the GUI thread, with no Qt object in the threads.

The accept thread (waits for the engine to connect) and the reader thread (Windows: pipes cannot be watched by a
QSocketNotifier) used to emit Qt signals on the EngineClient itself. That kept the client alive inside the
thread, so the last reference could drop there and the QObject was destroyed on the wrong thread while events
for it were still queued: the interpreter crashed in the event loop (reproduced in the test suite under load).

Here the threads see only a `Post` (a queue and the write end of a socket pair) and plain Python data. The GUI
thread owns the read end, watches it with a QSocketNotifier (which works on Windows too: it is a socket) and takes
the items off the queue. When the GUI side goes away, a thread's post simply fails quietly and the thread ends at
EOF, touching nothing that is gone.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import weakref
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from typing import Callable

from PySide6.QtCore import QObject, QSocketNotifier

from engine import protocol as p
from engine.peers import accept_peer

MAX_FRAMES_PER_DRAIN = 256  # so a flood cannot starve the event loop


class Post:
    """What a worker thread holds: put an item on the queue and wake the GUI thread. Never blocks."""

    def __init__(self, items: queue.SimpleQueue, wake: socket.socket):
        self._items = items
        self._wake = wake

    def __call__(self, item: tuple) -> None:
        self._items.put(item)
        try:
            self._wake.send(b"\0")
        except BlockingIOError:
            pass  # the buffer is full of wake-ups already: the GUI thread will get to this item
        except OSError:
            pass  # the GUI side is gone; nobody will read it

    def wake_again(self) -> None:
        """Re-arm the notifier when a drain stopped at its limit with items left."""
        try:
            self._wake.send(b"\0")
        except OSError:
            pass


class Mailbox:
    """The GUI-thread end: calls `deliver(items)` from the event loop with what the threads posted."""

    def __init__(self, parent: QObject, deliver: Callable[[list[tuple]], None]):
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._read_end, write_end = socket.socketpair()
        self._read_end.setblocking(False)
        write_end.setblocking(False)
        self.post = Post(self._items, write_end)
        # Weak, so the notifier's connection (owned by `parent`) does not keep `parent` alive through us.
        self._deliver = weakref.WeakMethod(deliver)
        self._notifier = QSocketNotifier(self._read_end.fileno(), QSocketNotifier.Type.Read, parent)
        self._notifier.activated.connect(self._on_wake)
        keep_open_while_watched(self._notifier, self._read_end, write_end)
        # Nobody reads the wake-ups once this object is gone: stop the notifier, or unread bytes keep it firing.
        weakref.finalize(self, _disable_quietly, self._notifier)

    def pending(self) -> bool:
        return not self._items.empty()

    def _on_wake(self, *_) -> None:
        try:
            while self._read_end.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return
        items: list[tuple] = []
        frames = 0
        while frames < MAX_FRAMES_PER_DRAIN:
            try:
                item = self._items.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            frames += item[-1] if item[0] == "frames" else 1
        if not self._items.empty():
            self.post.wake_again()
        deliver = self._deliver()
        if deliver is None:
            self._notifier.setEnabled(False)  # the client is gone; nobody will take these
        elif items:
            deliver(items)


def _disable_quietly(notifier: QSocketNotifier) -> None:
    try:
        notifier.setEnabled(False)
    except RuntimeError:
        pass  # its C++ side is gone already, and with it the watching


def keep_open_while_watched(notifier: QSocketNotifier, *files) -> None:
    """Close `files` when `notifier` is destroyed, never before.

    Qt polls a notifier's descriptor for as long as the notifier lives, and the notifier is a C++ child that can
    outlive the Python objects holding the files (the garbage collector frees those in any order). A descriptor
    closed under a live notifier made Qt print "QSocketNotifier: Invalid socket" in a loop and stop delivering,
    which hung the suite under load. The lambda below is the files' owner: the connection keeps it until the
    notifier's destroyed signal, which fires after Qt has stopped watching."""
    notifier.destroyed.connect(lambda *_: [close_quietly(f) for f in files])


def accept_connection(listener: Listener, gen: int, post: Post, cancelled: threading.Event) -> None:
    """Accept thread: wait for the engine to connect, then post ("accepted", gen, conn) or ("accept_failed", ...)."""
    try:
        while True:
            try:
                conn = accept_peer(listener)
            except (EOFError, ConnectionError, TimeoutError, BlockingIOError, AuthenticationError):
                # A stray local peer (no key, closed at once, silent): ignore it and keep waiting for ours.
                if cancelled.is_set():
                    return
                continue
            except (p.ProtocolError, OSError) as e:
                post(("accept_failed", gen, str(e)))
                return
            close_quietly(listener)
            if cancelled.is_set():
                conn.close()  # the poke that cancelled the wait
                return
            post(("accepted", gen, conn))
            return
    finally:
        close_quietly(listener)


def read_frames(conn: Connection, post: Post) -> None:
    """Reader thread: block for a frame, take whatever else is waiting, decode, post as one drain.

    The thread owns the connection's end: it closes it when the engine is gone (EOF), so its number is never
    reused under a blocked read."""
    try:
        while True:
            frames = [conn.recv_bytes(p.MAX_FRAME_BYTES)]
            while len(frames) < MAX_FRAMES_PER_DRAIN and conn.poll(0):
                frames.append(conn.recv_bytes(p.MAX_FRAME_BYTES))
            post(("frames", conn, decode_frames(frames), len(frames)))
    except (EOFError, OSError):
        post(("ended", conn))
    finally:
        close_quietly(conn)


def decode_frames(frames: list[bytes]) -> list[p.Message]:
    msgs: list[p.Message] = []
    for data in frames:
        try:
            msgs.extend(p.decode_batch(data))
        except Exception as e:  # a bad frame is reported, never the end of the reader
            msgs.append(p.Log(level="error", message=f"bad frame from the engine: {e}"))
    return msgs


def close_quietly(thing) -> None:
    try:
        thing.close()  # a Listener also unlinks its socket file
    except OSError:
        pass


def connect_to(address: str, authkey: bytes, gen: int, post: Post) -> None:
    """Connect thread (reattaching to an engine that trains in the background): post ("accepted", gen, conn) or
    ("accept_failed", gen, reason) as the accept thread does, so the rest of the start-up is the same."""
    family = "AF_PIPE" if os.name == "nt" else "AF_UNIX"
    try:
        conn = Client(address, family=family, authkey=authkey)
    except (OSError, EOFError, AuthenticationError, p.ProtocolError) as e:
        post(("accept_failed", gen, str(e) or type(e).__name__))
        return
    post(("accepted", gen, conn))
