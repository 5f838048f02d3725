"""urllib3 connections that send a request's head and its body in one write: urllib3 sends them apart, which costs
one more send (and, with a socket timeout, one more poll) per call, and gives Ollama two segments to read."""

from __future__ import annotations

from typing import Any

from urllib3.connection import HTTPConnection
from urllib3.connection import HTTPSConnection


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
    pass


class OneSendHTTPSConnection(_OneSend, HTTPSConnection):
    pass


def one_send(pool: Any) -> Any:
    """`pool` (from `urllib3.connection_from_url`) making its connections of the one-send kind."""
    pool.ConnectionCls = OneSendHTTPSConnection if pool.scheme == "https" else OneSendHTTPConnection
    return pool
