"""The one HTTP client for Ollama's native API: a pool of kept-alive connections, timeouts, error mapping.

urllib3's pool is used directly: requests' Session costs about 70 µs per call (preparing, merging settings, cookies,
adapters) for nothing the gateway uses.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable
from typing import Any

import urllib3
from loguru import logger
from urllib3.exceptions import ConnectTimeoutError
from urllib3.exceptions import HTTPError
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import ReadTimeoutError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from ..client_socket import client_watch
from ..errors import UpstreamError
from ..errors import UpstreamTimeout
from ..errors import UpstreamUnavailable
from ..errors import from_ollama
from ..json_codec import dumps
from ..json_codec import loads
from .body import DEFAULT_LIMIT
from .body import BodyBroken
from .body import read_body
from .error_text import client_text
from .error_text import ollama_error
from .error_text import without_addresses
from .one_send import one_send

_ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body read
# Idle connections kept per Ollama server: as many as THREADS allows at most, so that none is ever dropped (urllib3
# would warn about each); only as many are made as requests run at once.
POOL_SIZE = 1024
TRANSPORT_ERRORS = (HTTPError, OSError)  # what a round trip raises when it fails before Ollama's answer


class UpstreamResponse:
    """Ollama's answer as it arrives: `status_code`, `headers`, and `raw`, the urllib3 response its body is read from.

    Always `close()` it (more than once is harmless): a body read to its end leaves its connection in the pool for the
    next call, one closed part-way drops the connection. `on_close` runs once, at the first close or when the response
    is dropped unclosed.
    """

    def __init__(self, raw: urllib3.BaseHTTPResponse):
        self.raw = raw
        self.status_code = raw.status
        self.headers = raw.headers
        self._finalizer: weakref.finalize | None = None

    def on_close(self, release: Callable[[], None]) -> None:
        self._finalizer = weakref.finalize(self, release)

    def close(self) -> None:
        try:
            self.raw.close()
            self.raw.release_conn()
        finally:
            if self._finalizer is not None:
                self._finalizer()


class OllamaClient:
    """Talks to one Ollama server; safe to share between threads (they share one connection pool)."""

    def __init__(self, base_url: str, *, connect_timeout: float, read_timeout: float,
                 max_line: int = DEFAULT_LIMIT):
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_line = max_line
        url = urllib3.util.parse_url(self.base_url)
        self._prefix = (url.path or "").rstrip("/")  # an Ollama behind a proxy's sub-path
        self._auth = urllib3.util.make_headers(basic_auth=url.auth) if url.auth else {}  # http://user:pass@host
        self._pool = one_send(urllib3.connection_from_url(self.base_url, maxsize=POOL_SIZE, block=False, retries=False))

    def request(self, method: str, path: str, *, body: Any = None, request_id: str | None = None,
                timeout: float | None = None) -> UpstreamResponse:
        """Send one request; a non-2xx answer or a transport failure raises the mapped APIError."""
        headers, data = encode(body, request_id)
        connect, read = self.timeouts(timeout)
        return raise_for_status(self._send(method, path, headers, data, connect=connect, read=read))

    def relay(self, method: str, path: str, *, data: bytes | None, content_type: str | None = None,
              request_id: str | None = None) -> UpstreamResponse:
        """Send a client's body as it is and return Ollama's answer as it arrives, whatever its status.

        Only a transport failure raises (UpstreamUnavailable, UpstreamTimeout); close the response when done.
        """
        return self._send(method, path, relay_headers(content_type, request_id), data or None,
                          connect=self.connect_timeout, read=self.read_timeout)

    def timeouts(self, timeout: float | None) -> tuple[float, float]:
        """(connect, read) seconds for a call with an optional overall `timeout`."""
        connect = min(self.connect_timeout, timeout) if timeout else self.connect_timeout
        return connect, timeout or self.read_timeout

    def send(self, method: str, path: str, headers: dict, data: bytes | None, *, connect: float,
             read: float) -> UpstreamResponse:
        """The bare round trip up to the answer's headers, raising urllib3's own exceptions (`transport_error` maps
        them); the body is read from the response as it arrives."""
        if self._auth:
            headers = {**self._auth, **headers}
        raw = self._pool.urlopen(method, self._prefix + path, body=data, headers=headers, retries=False,
                                 redirect=False, timeout=urllib3.Timeout(connect=connect, read=read),
                                 preload_content=False)
        return UpstreamResponse(raw)

    def transport_error(self, err: Exception) -> UpstreamError:
        """The APIError for a round trip that failed; its message names no address (the warning line does)."""
        kind = failure_kind(err)
        if kind == "connect_timeout":
            failure: UpstreamError = UpstreamTimeout("Timed out connecting to Ollama (CONNECT_TIMEOUT)")
        elif kind == "timeout":
            failure = UpstreamTimeout("Ollama did not answer in time (TIMEOUT)")
        else:
            failure = UpstreamUnavailable(f"Ollama is unreachable: {_reason(err)}")
        logger.bind(code=failure.code, upstream=self.base_url).warning("Ollama request to {} failed: {}",
                                                                        self.base_url, failure.message)
        return failure

    def _send(self, method: str, path: str, headers: dict, data: bytes | None, *, connect: float,
              read: float) -> UpstreamResponse:
        try:
            return self.send(method, path, headers, data, connect=connect, read=read)
        except TRANSPORT_ERRORS as err:
            raise self.transport_error(err) from None

    def get_json(self, path: str, *, request_id: str | None = None, timeout: float | None = None) -> dict:
        return read_json(self.request("GET", path, request_id=request_id, timeout=timeout), self.max_line)

    def post_json(self, path: str, body: Any, *, request_id: str | None = None, timeout: float | None = None) -> dict:
        return read_json(self.request("POST", path, body=body, request_id=request_id, timeout=timeout),
                         self.max_line)


def failure_kind(err: Exception) -> str:
    """How a round trip failed: `unreachable` (refused, reset, no such host), `connect_timeout`, `timeout` (no
    answer within TIMEOUT) or `broken` (anything else)."""
    if isinstance(err, NewConnectionError):  # a subclass of ConnectTimeoutError, for history's sake
        return "unreachable"
    if isinstance(err, ConnectTimeoutError):
        return "connect_timeout"
    if isinstance(err, (ReadTimeoutError, Urllib3Timeout)):
        return "timeout"
    if isinstance(err, (urllib3.exceptions.ProtocolError, urllib3.exceptions.SSLError, OSError)):
        return "unreachable"
    return "broken"


def answered(err: Exception) -> bool:
    """Whether Ollama may have started on the request (so it must not be sent again): it timed out reading, or
    failed in some other way than not getting through."""
    return failure_kind(err) in ("timeout", "broken")


def encode(body: Any, request_id: str | None) -> tuple[dict, bytes | None]:
    """The headers and bytes of a JSON request (no body for a GET)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if request_id:
        headers["X-Request-ID"] = request_id
    data = None if body is None else dumps(body)
    return headers, data


def relay_headers(content_type: str | None, request_id: str | None) -> dict:
    headers = {"Content-Type": content_type} if content_type else {}
    if request_id:
        headers["X-Request-ID"] = request_id
    return headers


def raise_for_status(response: UpstreamResponse) -> UpstreamResponse:
    """The response when it is not an error; else it is closed and Ollama's error raised as an APIError."""
    if response.status_code >= 400:
        try:
            raise from_ollama(error_text(response), response.status_code)
        finally:
            response.close()
    return response


def read_json(response: UpstreamResponse, limit: int = DEFAULT_LIMIT) -> dict:
    """A whole reply's JSON object, at most `limit` bytes.

    :raises UpstreamError: not a JSON object; UpstreamTimeout: a stalled body; UpstreamLineTooLong: too long.
    """
    try:
        data = loads(read_body(response, limit, gone=client_watch()))
    except BodyBroken as err:
        if err.timed_out:
            raise UpstreamTimeout("Ollama stopped sending its reply (TIMEOUT)") from None
        raise UpstreamError("The connection to Ollama broke during the reply.") from None
    except ValueError:
        raise UpstreamError("Ollama returned a reply that is not JSON") from None
    finally:
        response.close()
    if not isinstance(data, dict):
        raise UpstreamError("Ollama returned a reply that is not a JSON object")
    return data


def _reason(err: Exception) -> str:
    text = str(err)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo" in text:
        return "host name not found"
    return type(err).__name__


def error_text(response: UpstreamResponse) -> str:
    """The client's message for an error answer: Ollama's own `{"error": "..."}` as it is (secrets redacted),
    any other body reduced by `client_text` and stripped of addresses. The whole text goes to the debug log."""
    status = response.status_code
    try:
        raw = read_body(response, _ERROR_BODY_LIMIT, cut=True, gone=client_watch())
    except BodyBroken:
        return f"Ollama answered HTTP {status}"
    text = raw.decode("utf-8", "replace")
    logger.bind(status=status).debug("Ollama answered HTTP {}: {}", status, text)
    return ollama_message(text) or without_addresses(client_text(text)) or f"Ollama answered HTTP {status}"


def ollama_message(text: str) -> str | None:
    """The message of Ollama's own `{"error": "..."}` body or line (secrets redacted), else None."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("error"), str):
        return None
    return ollama_error(data["error"])
