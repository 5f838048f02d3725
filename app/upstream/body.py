"""Reading Ollama's reply bodies in linear time and bounded memory: NDJSON lines one by one, whole bodies at
once, each at most MAX_UPSTREAM_LINE bytes."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

from urllib3.exceptions import HTTPError
from urllib3.exceptions import ReadTimeoutError

from ..errors import ClientGone
from ..errors import UpstreamLineTooLong

READ_SIZE = 64 * 1024  # at most this much per read; a read returns what has arrived, it never waits to fill up
DEFAULT_LIMIT = 32 * 1000**2


class BodyBroken(Exception):
    """The body could not be read to its end: `timed_out` (silent for longer than TIMEOUT) or broken."""

    def __init__(self, timed_out: bool):
        super().__init__("timed out" if timed_out else "broken")
        self.timed_out = timed_out


def pieces(response: Any, gone: Callable[[], bool] | None = None) -> Iterator[bytes]:
    """The body of `response` (anything whose `raw` is a urllib3 response) as it arrives, decoded and without the
    chunked framing, each piece at most READ_SIZE bytes.

    :raises BodyBroken: a read timed out or the connection broke.
    :raises ClientGone: `gone()`, asked as each piece arrives, says the client has left.
    """
    raw = response.raw
    try:
        if raw.chunked and raw.supports_chunked_reads():  # Ollama's streams: one piece per chunk, as it comes
            arrived = raw.read_chunked(READ_SIZE, decode_content=True)
        else:
            arrived = iter(lambda: raw.read1(READ_SIZE, decode_content=True), b"")  # what has come, no waiting
        for piece in arrived:
            if gone is not None and gone():
                raise ClientGone("The client closed the connection before the reply was complete.")
            yield piece
    except (HTTPError, OSError, ValueError) as err:  # ValueError: a read on a connection closed meanwhile
        raise BodyBroken(isinstance(err, (ReadTimeoutError, TimeoutError))) from None


def lines(response: Any, limit: int = DEFAULT_LIMIT, gone: Callable[[], bool] | None = None, *,
          flagged: bool = False) -> Iterator[bytes] | Iterator[tuple[bytes, bool]]:
    """The body's lines without their newline; each byte is looked at once, however long a line gets.

    `flagged` gives (line, ready) pairs instead: `ready` when the next line has come in the same piece and is not
    blank, so that a reader leaving blank lines out can take it without a read.

    :raises UpstreamLineTooLong: a line is longer than `limit` bytes (raised as soon as that many have come).
    :raises BodyBroken, ClientGone: see `pieces`.
    """
    pending: list[bytes] = []  # the pieces of a line that has not ended yet
    size = 0
    for piece in pieces(response, gone):
        end = piece.find(b"\n")
        if end >= 0 and end == len(piece) - 1 and not pending:  # the usual piece: one whole line
            if end > limit:
                raise too_long(limit)
            yield (piece[:end], False) if flagged else piece[:end]
            continue
        start = 0
        while end >= 0:
            if pending:
                pending.append(piece[start:end])
                line = b"".join(pending)
                pending, size = [], 0
            else:
                line = piece[start:end]
            if len(line) > limit:
                raise too_long(limit)
            start = end + 1
            end = piece.find(b"\n", start)
            if flagged:  # a JSON line's first byte is seldom a space: only then is the whole line looked at
                yield line, end > start and (piece[start] not in b" \t\r\x0b\x0c" or bool(piece[start:end].strip()))
            else:
                yield line
        if start < len(piece):
            pending.append(piece[start:] if start else piece)
            size += len(piece) - start
            if size > limit:
                raise too_long(limit)
    if pending:
        yield (b"".join(pending), False) if flagged else b"".join(pending)


def read_body(response: Any, limit: int = DEFAULT_LIMIT, *, cut: bool = False,
              gone: Callable[[], bool] | None = None) -> bytes:
    """The whole body; past `limit` bytes it is cut there (`cut`) or refused.

    :raises UpstreamLineTooLong: the body is longer than `limit` (unless `cut`).
    :raises BodyBroken, ClientGone: see `pieces`.
    """
    parts: list[bytes] = []
    size = 0
    for piece in pieces(response, gone):
        parts.append(piece)
        size += len(piece)
        if size > limit:
            if cut:
                return b"".join(parts)[:limit]
            raise too_long(limit)
    return b"".join(parts)


def too_long(limit: int) -> UpstreamLineTooLong:
    return UpstreamLineTooLong(f"Ollama sent a reply line longer than MAX_UPSTREAM_LINE ({_size(limit)}).")


def _size(limit: int) -> str:
    for unit, scale in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if limit >= scale and limit % scale == 0:
            return f"{limit // scale}{unit}"
    return f"{limit} bytes"
