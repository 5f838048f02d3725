"""Socket timeouts kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO) rather than by Python, on Linux.

Python's own timeout makes the socket non-blocking and polls before every send and receive, and each `settimeout`
switches the socket's mode: a system call, and a hand-over of the GIL to another thread, each time. A blocking socket
whose stalled call the kernel fails with EAGAIN costs none of these.
"""

from __future__ import annotations

import socket
import struct
import sys

AVAILABLE = sys.platform.startswith("linux")  # elsewhere a stalled call may not fail as EAGAIN
_OPTIONS = (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO)


def timeval(seconds: float | None) -> bytes:
    """A `struct timeval`; None (no timeout) is the kernel's zero, so a zero timeout becomes the shortest one."""
    if seconds is None:
        return struct.pack("ll", 0, 0)
    return struct.pack("ll", *divmod(max(1, round(seconds * 1_000_000)), 1_000_000))


def kernel_timeouts(sock: socket.socket, seconds: float | None) -> None:
    """`seconds` as both kernel timeouts of a blocking socket: a stalled call then fails with EAGAIN (BlockingIOError)."""
    value = timeval(seconds)
    for option in _OPTIONS:
        sock.setsockopt(socket.SOL_SOCKET, option, value)


class KernelTimedSocket(socket.socket):
    """A connected socket, blocking, whose `settimeout` the kernel applies: to each direction at its first call after
    a change. A client that sets the same timeouts before every request (urllib3: the connect timeout for sending,
    the read timeout for the answer) makes no system call for them after the first. A stalled call raises
    TimeoutError, as under Python's own timeout."""

    __slots__ = ("_timeout", "_receiving", "_sending")

    def __init__(self, connected: socket.socket):
        timeout = connected.gettimeout()
        super().__init__(connected.family, connected.type, connected.proto, connected.detach())
        super().setblocking(True)  # a connect under a timeout leaves the descriptor non-blocking
        self._timeout = timeout
        self._receiving: float | None = None  # what the kernel has now (None: no timeout, its default)
        self._sending: float | None = None

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        if self._receiving != self._timeout:
            self._receiving = self._apply(socket.SO_RCVTIMEO)
        try:
            return super().recv_into(buffer, nbytes, flags)
        except BlockingIOError:
            raise TimeoutError("timed out") from None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self._receiving != self._timeout:
            self._receiving = self._apply(socket.SO_RCVTIMEO)
        try:
            return super().recv(bufsize, flags)
        except BlockingIOError:
            raise TimeoutError("timed out") from None

    def send(self, data, flags: int = 0) -> int:
        if self._sending != self._timeout:
            self._sending = self._apply(socket.SO_SNDTIMEO)
        try:
            return super().send(data, flags)
        except BlockingIOError:
            raise TimeoutError("timed out") from None

    def sendall(self, data, flags: int = 0) -> None:
        if self._sending != self._timeout:
            self._sending = self._apply(socket.SO_SNDTIMEO)
        try:
            super().sendall(data, flags)
        except BlockingIOError:
            raise TimeoutError("timed out") from None

    def _apply(self, option: int) -> float | None:
        self.setsockopt(socket.SOL_SOCKET, option, timeval(self._timeout))
        return self._timeout
