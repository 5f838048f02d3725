"""MAX_REQUEST_BODY for bodies of unknown length (chunked): one byte past the limit is a 413, never a cut body."""

from __future__ import annotations

import typing as t
from functools import cached_property

from flask import Flask
from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream
from werkzeug.wsgi import get_input_stream


class _CappedStream(LimitedStream):
    """Reads up to one byte more than `maximum`; that byte means the body is too large.

    werkzeug's own stream for a chunked body stops at MAX_CONTENT_LENGTH and returns what it read, as if the body
    ended there.
    """

    def __init__(self, stream: t.IO[bytes], maximum: int):
        super().__init__(stream, maximum + 1, is_max=True)

    def readinto(self, b) -> int | None:  # type: ignore[override]
        size = super().readinto(b)
        if self.is_exhausted:
            raise RequestEntityTooLarge()
        return size


class BoundedRequest(Request):
    """The request of every route: `get_data()`, `get_json()` and `stream` all read through the capped stream."""

    @cached_property
    def stream(self) -> t.IO[bytes]:
        maximum = self.max_content_length
        if maximum is not None and self.content_length is None and "wsgi.input_terminated" in self.environ:
            return _CappedStream(self.environ["wsgi.input"], maximum)  # type: ignore[return-value]
        return get_input_stream(self.environ, max_content_length=maximum)


def init_app(app: Flask) -> None:
    app.request_class = BoundedRequest
