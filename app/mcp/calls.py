"""Requests on a live server connection: tool calls, paginated listings, and SDK error mapping."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import anyio
import httpx2
from mcp import MCPError as SDKError
from mcp_types import CONNECTION_CLOSED
from mcp_types import REQUEST_TIMEOUT
from pydantic import ValidationError

from .errors import MCPError
from .errors import ServerUnavailable
from .errors import ToolCallFailed
from .errors import ToolNotFound
from .errors import ToolTimeout
from .transports import REQUEST_ID

if TYPE_CHECKING:
    from .supervisor import ServerSupervisor

MAX_PAGES = 100
# Transport-level failures that mean the connection is gone, whatever the request was.
_DEAD = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, httpx2.TransportError, OSError)


async def request(server: ServerSupervisor, call: Awaitable[Any], request_id: str | None = None) -> Any:
    """Await one SDK request under the server's semaphore, with ``request_id`` sent as X-Request-ID.

    A closed or broken connection marks the server dead and raises ServerUnavailable; an invalid
    reply raises ToolCallFailed; other SDK errors pass through.
    """
    name = server.cfg.name
    token = REQUEST_ID.set(request_id)
    try:
        async with server.semaphore:
            return await call
    except SDKError as exc:
        if exc.code != CONNECTION_CLOSED:
            raise
        server.mark_dead("connection closed")
        detail = f" ({server.last_error})" if server.last_error else ""
        raise ServerUnavailable(f"MCP server {name!r} closed the connection{detail}", server=name) from exc
    except ValidationError as exc:
        raise ToolCallFailed(f"MCP server {name!r} sent an invalid reply", server=name) from exc
    except _DEAD as exc:
        server.mark_dead(describe_error(exc))
        raise ServerUnavailable(f"MCP server {name!r} is unreachable: {describe_error(exc)}", server=name) from exc
    finally:
        REQUEST_ID.reset(token)


async def call_tool(
    server: ServerSupervisor, tool: str, arguments: dict[str, Any], timeout: float, request_id: str | None
) -> Any:
    """``tools/call`` on a ready server; returns the SDK ``CallToolResult``.

    :raises ServerUnavailable, ToolNotFound, ToolTimeout, ToolCallFailed:
    """
    name = server.cfg.name
    client = server.connected()
    if tool not in {t.name for t in server.tools}:
        await server.refresh()  # added since the last listing, and the change notice was missed
        if tool not in {t.name for t in server.tools}:
            raise ToolNotFound(f"MCP server {name!r} has no tool {tool!r}", server=name, tool=tool)
    started = time.monotonic()
    try:
        return await request(server, client.call_tool(tool, arguments, read_timeout_seconds=timeout), request_id)
    except SDKError as exc:
        if exc.code == REQUEST_TIMEOUT:
            raise ToolTimeout(f"tool {tool!r} timed out after {timeout:g}s", server=name, tool=tool) from exc
        raise ToolCallFailed(f"tool {tool!r} failed: {exc.message} (code {exc.code})", server=name, tool=tool) from exc
    except MCPError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. input-required rounds exhausted: still this call's failure
        raise ToolCallFailed(f"tool {tool!r} failed: {describe_error(exc)}", server=name, tool=tool) from exc
    finally:
        server.last_call_latency_ms = round((time.monotonic() - started) * 1000, 1)


async def paginate(server: ServerSupervisor, fetch: Callable[..., Awaitable[Any]], field: str) -> list[Any]:
    """Every item of a ``*/list`` method, following ``nextCursor`` (at most 100 pages, loop-safe)."""
    items: list[Any] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page = await fetch(cursor=cursor)
        items.extend(getattr(page, field))
        cursor = page.next_cursor
        if not cursor:
            return items
        if cursor in seen:
            server.log.warning("MCP server {} repeated a {} cursor; stopping", server.cfg.name, field)
            return items
        seen.add(cursor)
    server.log.warning("MCP server {} sent over {} pages of {}; stopping", server.cfg.name, MAX_PAGES, field)
    return items


async def list_all(server: ServerSupervisor, capability: str, method: str, field: str) -> list[Any]:
    """All items of ``client.<method>`` on a ready server, or [] if it lacks the capability."""
    client = server.connected()
    if getattr(client.server_capabilities, capability) is None:
        return []
    return await request(server, paginate(server, getattr(client, method), field))


def log_tool_call(log: Any, server: str, tool: str, started: float, outcome: str, request_id: str | None) -> float:
    """Log one finished tool call at info level and return its duration in ms.

    Never the arguments or the result: they can carry user data or secrets.
    """
    duration = round((time.monotonic() - started) * 1000, 1)
    log.info("MCP tool {}.{} {} in {} ms (request {})", server, tool, outcome, duration, request_id or "-")
    return duration


def describe_error(exc: BaseException) -> str:
    """One line for an exception, unwrapping exception groups to their first leaf."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    if isinstance(exc, SDKError):
        return f"{exc.message} (code {exc.code})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
