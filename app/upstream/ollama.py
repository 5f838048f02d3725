"""The one HTTP client for Ollama's native API: pooled per-thread sessions, timeouts, error mapping."""

from __future__ import annotations

import json
import threading
from typing import Any

import requests
from loguru import logger
from requests.adapters import HTTPAdapter

from ..client_socket import client_watch
from ..errors import UpstreamError
from ..errors import UpstreamTimeout
from ..errors import UpstreamUnavailable
from ..errors import from_ollama
from .body import DEFAULT_LIMIT
from .body import BodyBroken
from .body import read_body
from .error_text import client_text
from .error_text import ollama_error
from .error_text import without_addresses

_ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error body read


class OllamaClient:
    """Talks to one Ollama server; safe to share between threads (each thread gets its own Session)."""

    def __init__(self, base_url: str, *, connect_timeout: float, read_timeout: float,
                 max_line: int = DEFAULT_LIMIT):
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_line = max_line
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # a proxy from the environment must not capture local traffic
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=2)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def request(self, method: str, path: str, *, body: Any = None, request_id: str | None = None,
                stream: bool = False, timeout: float | None = None) -> requests.Response:
        """Send one request; a non-2xx answer or a transport failure raises the mapped APIError."""
        headers, data = encode(body, request_id)
        connect, read = self.timeouts(timeout)
        return raise_for_status(self._send(method, path, headers, data, stream=stream, connect=connect, read=read))

    def relay(self, method: str, path: str, *, data: bytes | None, content_type: str | None = None,
              request_id: str | None = None) -> requests.Response:
        """Send a client's body as it is and return Ollama's answer streamed, whatever its status.

        Only a transport failure raises (UpstreamUnavailable, UpstreamTimeout); close the response when done.
        """
        return self._send(method, path, relay_headers(content_type, request_id), data or None, stream=True,
                          connect=self.connect_timeout, read=self.read_timeout)

    def timeouts(self, timeout: float | None) -> tuple[float, float]:
        """(connect, read) seconds for a call with an optional overall `timeout`."""
        connect = min(self.connect_timeout, timeout) if timeout else self.connect_timeout
        return connect, timeout or self.read_timeout

    def send(self, method: str, path: str, headers: dict, data: bytes | None, *, stream: bool, connect: float,
             read: float) -> requests.Response:
        """The bare round trip, raising requests' own exceptions (`transport_error` maps them)."""
        # A prepared request skips the Session's per-call merging of defaults the gateway never sets.
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=self.base_url + path, headers=headers, data=data)
        return self._session().send(prepared, stream=stream, timeout=(connect, read))

    def transport_error(self, err: requests.RequestException) -> UpstreamError:
        """The APIError for a round trip that failed; its message names no address (the warning line does)."""
        if isinstance(err, requests.Timeout):
            failure: UpstreamError = UpstreamTimeout(_timeout_message(err))
        else:
            failure = UpstreamUnavailable(f"Ollama is unreachable: {_reason(err)}")
        logger.bind(code=failure.code, upstream=self.base_url).warning("Ollama request to {} failed: {}",
                                                                        self.base_url, failure.message)
        return failure

    def _send(self, method: str, path: str, headers: dict, data: bytes | None, *, stream: bool, connect: float,
              read: float) -> requests.Response:
        try:
            return self.send(method, path, headers, data, stream=stream, connect=connect, read=read)
        except requests.RequestException as err:
            raise self.transport_error(err) from None

    # Whole replies are streamed too, so that their size is checked while they are read.
    def get_json(self, path: str, *, request_id: str | None = None, timeout: float | None = None) -> dict:
        return read_json(self.request("GET", path, request_id=request_id, timeout=timeout, stream=True),
                         self.max_line)

    def post_json(self, path: str, body: Any, *, request_id: str | None = None, timeout: float | None = None) -> dict:
        return read_json(self.request("POST", path, body=body, request_id=request_id, timeout=timeout, stream=True),
                         self.max_line)


def encode(body: Any, request_id: str | None) -> tuple[dict, bytes | None]:
    """The headers and bytes of a JSON request (no body for a GET)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if request_id:
        headers["X-Request-ID"] = request_id
    data = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return headers, data


def relay_headers(content_type: str | None, request_id: str | None) -> dict:
    headers = {"Content-Type": content_type} if content_type else {}
    if request_id:
        headers["X-Request-ID"] = request_id
    return headers


def raise_for_status(response: requests.Response) -> requests.Response:
    """The response when it is not an error; else it is closed and Ollama's error raised as an APIError."""
    if response.status_code >= 400:
        try:
            raise from_ollama(error_text(response), response.status_code)
        finally:
            response.close()
    return response


def read_json(response: requests.Response, limit: int = DEFAULT_LIMIT) -> dict:
    """A whole reply's JSON object, at most `limit` bytes.

    :raises UpstreamError: not a JSON object; UpstreamTimeout: a stalled body; UpstreamLineTooLong: too long.
    """
    try:
        data = json.loads(read_body(response, limit, gone=client_watch()))
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


def _timeout_message(err: requests.Timeout) -> str:
    if isinstance(err, requests.ConnectTimeout):
        return "Timed out connecting to Ollama (CONNECT_TIMEOUT)"
    return "Ollama did not answer in time (TIMEOUT)"


def error_text(response: requests.Response) -> str:
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
