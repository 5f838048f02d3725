"""Ollama's native API passed through: the client's body up, Ollama's status, type and bytes back as they come."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from loguru import logger

from ..client_socket import client_watch
from ..errors import UpstreamError
from ..errors import UpstreamTimeout
from ..tally import current as current_tally
from .backend import count_error
from .backends import Backends
from .body import BodyBroken
from .body import pieces
from .body import read_body
from .ollama import UpstreamResponse
from .ollama import error_text

NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"
MERGED = ("/api/tags", "/api/ps")  # with several backends, each backend's list in one


@dataclass
class Relayed:
    """Ollama's answer: `body` for a whole one, `chunks` (to be exhausted or closed) for an NDJSON stream."""

    status: int
    content_type: str | None
    body: bytes = b""
    chunks: Iterator[bytes] | None = None


def relay(client: Backends, method: str, path: str, data: bytes | None, *, content_type: str | None,
          request_id: str | None) -> Relayed:
    """Send one native request to Ollama; its errors come back as Ollama wrote them, with its status.

    :raises UpstreamUnavailable, UpstreamTimeout: Ollama could not be reached, or went silent before answering.
    """
    if client.several and path in MERGED and method in ("GET", "HEAD"):
        merged = json.dumps(client.merged(path, request_id), ensure_ascii=False, separators=(",", ":"))
        return Relayed(200, JSON, body=merged.encode())
    response = client.relay(method, path, data=data, content_type=content_type, request_id=request_id)
    kind = response.headers.get("Content-Type")
    status = response.status_code
    if kind and kind.split(";")[0].strip().lower() == NDJSON:
        return Relayed(status, kind, chunks=_chunks(response))
    try:
        if status >= 400 and method != "HEAD" and not _is_json(kind):  # an error page of whatever sits there
            return Relayed(status, JSON, body=json.dumps({"error": error_text(response)}).encode())
        body = read_body(response, client.max_line, gone=client_watch())
    except BodyBroken as err:
        raise _mid_body(err) from None
    finally:
        response.close()
    return Relayed(status, kind, body=body)


def _chunks(response: UpstreamResponse) -> Iterator[bytes]:
    """Each piece as Ollama sends it; a broken stream ends with an in-band `{"error"}` line, as Ollama's own do."""
    try:
        yield from pieces(response)
    except BodyBroken as err:
        failure = _mid_body(err)
        logger.bind(code=failure.code).warning("native stream failed after it started: {}", failure.message)
        yield json.dumps({"error": failure.message}).encode() + b"\n"
    finally:
        response.close()


def _is_json(kind: str | None) -> bool:
    return bool(kind) and kind.split(";")[0].strip().lower() == "application/json"  # type: ignore[union-attr]


def _mid_body(err: BodyBroken) -> UpstreamError:
    backend = current_tally().backend
    if backend:  # after the first byte: counted here, not retried
        count_error(backend, "timeout" if err.timed_out else "broken")
    if err.timed_out:
        return UpstreamTimeout("Ollama stopped sending for longer than TIMEOUT.")
    return UpstreamError("The connection to Ollama broke during the reply.")
