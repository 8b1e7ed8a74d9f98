"""Accepting a peer on a listening socket without letting a stray one hold the door (standard library only; the
studio's listener for its engine and a background engine's listener for a later studio both use it)."""

from __future__ import annotations

import os
import socket
import struct
import tempfile
from multiprocessing.connection import Connection, Listener, answer_challenge, deliver_challenge

HANDSHAKE_S = 5.0


def accept_peer(listener: Listener) -> Connection:
    """Listener.accept(), with the key handshake bounded on POSIX: a local process that connects and says nothing
    must not hold the door while the real peer waits behind it (its read times out as BlockingIOError).
    Listener has no timeout of its own; this does its two steps itself."""
    inner = getattr(listener, "_listener", None)
    key = getattr(listener, "_authkey", None)
    if os.name != "posix" or inner is None or key is None:
        return listener.accept()
    conn = inner.accept()
    try:
        with socket.socket(fileno=os.dup(conn.fileno())) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(HANDSHAKE_S), 0))
            deliver_challenge(conn, key)
            answer_challenge(conn, key)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 0))
    except BaseException:
        conn.close()
        raise
    return conn


def private_address(tag: str) -> tuple[str, str | None]:
    """A fresh address only this user can reach, and the folder holding it (None on Windows): a Unix socket in a
    new 0700 temporary folder, or a named pipe with a random name."""
    if os.name == "nt":
        return rf"\\.\pipe\transformer-studio-{tag}{os.getpid()}-{os.urandom(8).hex()}", None
    sockdir = tempfile.mkdtemp(prefix=f"studio-{tag}")
    return os.path.join(sockdir, "engine.sock"), sockdir
