"""Server-sent events framing for OpenAI-style streams: chunks, keep-alive comments, in-band errors, [DONE]."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Response
from flask import stream_with_context
from loguru import logger

from .errors import APIError
from .json_codec import dumps
from .metrics import open_stream

DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
HOLD_AT_MOST = 16  # events in one write: the first of them waits while the others are made


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


# A chunk iterator may yield these between its chunks to have the events that are made from lines already in
# memory written together. After HOLD the events may wait for the ones that follow; FLUSH, yielded before anything
# that may wait (a read, a tool call), sends what is held. A stream without them has each event written as made.
HOLD = _Marker("HOLD")
FLUSH = _Marker("FLUSH")


def sse(payload: dict) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def sse_error(err: APIError) -> bytes:
    """The in-band error event sent once the status line has gone out."""
    return sse(err.body())


def sse_events(chunks: Iterator[dict | bytes | object]) -> Iterator[bytes]:
    """Frame chunk objects as events (bytes such as KEEP_ALIVE pass as they are), then `[DONE]`.

    Events between HOLD and FLUSH go out together, HOLD_AT_MOST at a time; the first event always goes alone, at
    once. A failure part-way is sent as one error event (after the events held) and ends the stream without
    `[DONE]`; the chunk iterator is closed however the stream ends (a client that leaves closes it too).
    """
    held: list[bytes] = []
    holding = sent = False
    try:
        for chunk in chunks:
            if chunk is HOLD:
                holding = True
            elif chunk is FLUSH:
                holding = False
                if held:
                    yield b"".join(held)
                    held = []
            else:
                held.append(chunk if isinstance(chunk, bytes) else sse(chunk))
                if not holding or not sent or len(held) >= HOLD_AT_MOST:
                    yield b"".join(held)
                    held = []
                    sent = True
        held.append(DONE)
        yield b"".join(held)
    except APIError as err:
        logger.bind(code=err.code).warning("stream failed after it started: {}", err.message)
        held.append(sse_error(err))
        yield b"".join(held)
    except Exception:
        logger.exception("stream failed")
        held.append(sse_error(APIError("The gateway failed during the stream.", code="internal_error")))
        yield b"".join(held)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def sse_response(events: Iterator[bytes], headers: dict | None = None) -> Response:
    """Stream `events` unbuffered, counted in OPEN_STREAMS; the request context stays available to the generator."""
    return Response(stream_with_context(open_stream(events)), mimetype="text/event-stream",
                    headers={**SSE_HEADERS, **(headers or {})})
