"""Build the SDK transport for a server config; HTTP transports carry the caller's X-Request-ID."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import anyio
import httpx2
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from .config import ServerConfig
from .stdio import stdio_transport

# Set inside the coroutine that serves one gateway request. The SDK starts the task that POSTs a
# message in the sender's context, so the httpx2 hook below sees the value of the request that
# caused the message.
REQUEST_ID: ContextVar[str | None] = ContextVar("mcp_request_id", default=None)
SSE_READ_TIMEOUT = 300.0
_REQUEST_ID_RE = re.compile(r"^[\x21-\x7e]{1,200}$")


async def add_request_id(request: httpx2.Request) -> None:
    """httpx2 request hook: copy the current request id (if printable ASCII) into X-Request-ID."""
    request_id = REQUEST_ID.get()
    if request_id and _REQUEST_ID_RE.match(request_id):
        request.headers["X-Request-ID"] = request_id


def _http_client(
    headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: httpx2.Auth | None = None
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks={"request": [add_request_id]})


@asynccontextmanager
async def _streamable_http(cfg: ServerConfig) -> AsyncIterator[Any]:
    timeout = httpx2.Timeout(cfg.timeout, read=max(SSE_READ_TIMEOUT, cfg.timeout))
    async with _http_client(dict(cfg.headers), timeout) as client:
        async with streamable_http_client(cfg.url or "", http_client=client) as streams:
            yield streams


def open_transport(
    cfg: ServerConfig,
    on_start: Callable[[int], None],
    on_exit: Callable[[int | None], None],
    on_eof: Callable[[], None],
) -> AbstractAsyncContextManager[Any]:
    """The transport context manager to hand to ``mcp.Client`` (entered by the owner task).

    stdio reports the child's pid (``on_start``) and its death (``on_exit``); HTTP and SSE
    report the end of their inbound stream (``on_eof``), e.g. when the SSE connection drops.
    """
    if cfg.transport == "stdio":
        return stdio_transport(cfg, on_start, on_exit)
    if cfg.transport == "sse":
        transport = sse_client(
            cfg.url or "",
            headers=dict(cfg.headers),
            timeout=cfg.timeout,
            sse_read_timeout=SSE_READ_TIMEOUT,
            httpx_client_factory=_http_client,
        )
    else:
        transport = _streamable_http(cfg)
    return _watch_eof(transport, on_eof)


@asynccontextmanager
async def _watch_eof(transport: AbstractAsyncContextManager[Any], on_eof: Callable[[], None]) -> AsyncIterator[Any]:
    async with transport as (read_stream, write_stream):
        yield WatchedReadStream(read_stream, on_eof), write_stream


class WatchedReadStream:
    """A ``ReadStream`` (see ``mcp.shared._stream_protocols``) that calls ``on_eof`` at end of stream."""

    def __init__(self, inner: Any, on_eof: Callable[[], None]) -> None:
        self._inner = inner
        self._on_eof = on_eof

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except anyio.EndOfStream:
            self._on_eof()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def close(self) -> None:
        self._inner.close()

    def __aiter__(self) -> WatchedReadStream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> WatchedReadStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
