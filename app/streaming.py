"""Server-sent events framing for OpenAI-style streams: chunks, keep-alive comments, in-band errors, [DONE]."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Response
from flask import stream_with_context
from loguru import logger

from .errors import APIError
from .metrics import open_stream

DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def sse_error(err: APIError) -> bytes:
    """The in-band error event sent once the status line has gone out."""
    return sse(err.body())


def sse_events(chunks: Iterator[dict | bytes]) -> Iterator[bytes]:
    """Frame chunk objects as events (bytes such as KEEP_ALIVE pass as they are), then `[DONE]`.

    A failure part-way is sent as one error event and ends the stream without `[DONE]`; the chunk
    iterator is closed however the stream ends (a client that leaves closes it too).
    """
    try:
        for chunk in chunks:
            yield chunk if isinstance(chunk, bytes) else sse(chunk)
        yield DONE
    except APIError as err:
        logger.bind(code=err.code).warning("stream failed after it started: {}", err.message)
        yield sse_error(err)
    except Exception:
        logger.exception("stream failed")
        yield sse_error(APIError("The gateway failed during the stream.", code="internal_error"))
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def sse_response(events: Iterator[bytes], headers: dict | None = None) -> Response:
    """Stream `events` unbuffered, counted in OPEN_STREAMS; the request context stays available to the generator."""
    return Response(stream_with_context(open_stream(events)), mimetype="text/event-stream",
                    headers={**SSE_HEADERS, **(headers or {})})
