"""Server-sent events framing for OpenAI-style streams."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response
from flask import stream_with_context

from .errors import APIError
from .errors import error_body

DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def sse_error(err: APIError) -> bytes:
    """The in-band error event sent once the status line has gone out."""
    return sse(error_body(err.message, err.type, err.param, err.code))


def sse_response(events: Iterator[bytes], headers: dict | None = None) -> Response:
    """Stream `events` unbuffered; the request context stays available to the generator."""
    return Response(stream_with_context(events), mimetype="text/event-stream",
                    headers={**SSE_HEADERS, **(headers or {})})
