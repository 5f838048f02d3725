"""Whether the client of the current request has hung up, from a peek at its socket (under gunicorn, which hands
the socket over in the WSGI environ); lets a reply that is still being read from Ollama stop early."""

from __future__ import annotations

import select
import socket
import time

from flask import has_request_context
from flask import request

CHECK_EVERY = 1.0  # seconds between two peeks


class ClientWatch:
    """Peeks at most every CHECK_EVERY seconds; a socket that cannot be peeked at is never taken for gone."""

    __slots__ = ("_next", "_sock")

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._next = time.monotonic() + CHECK_EVERY

    def __call__(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + CHECK_EVERY
        try:
            # A socket with a timeout would wait for data before peeking: ask first whether there is anything.
            if not _readable(self._sock):
                return False
            # The base class's recv: a TLS socket refuses flags, and its raw bytes are enough to see an end.
            return socket.socket.recv(self._sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        except (OSError, ValueError, TypeError):
            return False


def _readable(sock: socket.socket) -> bool:
    """Without waiting; poll() where there is one, as select() cannot take descriptors past 1023."""
    if not hasattr(select, "poll"):
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def client_watch() -> ClientWatch | None:
    """A watch on the current request's client, or None outside gunicorn (or outside a request)."""
    if not has_request_context():
        return None
    sock = request.environ.get("gunicorn.socket")
    return ClientWatch(sock) if isinstance(sock, socket.socket) else None
