"""urllib3 connections that send a request's head and its body in one write: urllib3 sends them apart, which costs
one more send per call and gives Ollama two segments to read. Plain HTTP ones keep their timeouts in the kernel
(app.socket_timeouts): no poll before each send and receive, no mode switch at each of urllib3's two `settimeout`."""

from __future__ import annotations

from typing import Any

from urllib3.connection import HTTPConnection
from urllib3.connection import HTTPSConnection

from .. import socket_timeouts


class _OneSend:
    """A bytes body is held back from urllib3's `request` (which then sends no body of its own) and joined to the
    head when http.client sends that."""

    _body: bytes = b""

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **options: Any) -> None:
        if not isinstance(body, bytes) or not body:
            super().request(method, url, body, headers, **options)  # type: ignore[misc]
            return
        self._body = body
        try:  # an explicit Content-Length: urllib3 adds none of its own for the body it does not see
            super().request(method, url, None, {**(headers or {}), "Content-Length": str(len(body))},  # type: ignore[misc]
                            **options)
        finally:
            self._body = b""

    def send(self, data: Any) -> None:
        """http.client's first send of a request is its whole head."""
        if self._body:
            data, self._body = data + self._body, b""
        super().send(data)  # type: ignore[misc]


class OneSendHTTPConnection(_OneSend, HTTPConnection):
    def connect(self) -> None:
        super().connect()  # under CONNECT_TIMEOUT, as urllib3 does it
        if socket_timeouts.AVAILABLE and not self._tunnel_host:
            self.sock = socket_timeouts.KernelTimedSocket(self.sock)


class OneSendHTTPSConnection(_OneSend, HTTPSConnection):
    pass


def one_send(pool: Any) -> Any:
    """`pool` (from `urllib3.connection_from_url`) making its connections of the one-send kind."""
    pool.ConnectionCls = OneSendHTTPSConnection if pool.scheme == "https" else OneSendHTTPConnection
    return pool
