"""Basic test server: echo/add tools, a readme resource, a greeting prompt, plus probes."""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _serve import serve  # noqa: E402

mcp = MCPServer("basic")
_active = {"now": 0, "peak": 0}


@mcp.tool()
def echo(message: str) -> str:
    """Return the message unchanged."""
    return message


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool()
def env_keys() -> str:
    """Return the sorted names of this process's environment variables, comma-separated."""
    return ",".join(sorted(os.environ))


@mcp.tool()
def pid() -> int:
    """Return this server's process id."""
    return os.getpid()


@mcp.tool()
async def overlap(seconds: float = 0.5) -> int:
    """Sleep, and return the peak number of overlapping overlap() calls seen so far."""
    _active["now"] += 1
    _active["peak"] = max(_active["peak"], _active["now"])
    try:
        await asyncio.sleep(seconds)
    finally:
        _active["now"] -= 1
    return _active["peak"]


@mcp.tool()
def request_id(ctx: Context) -> str:
    """Return the X-Request-ID header of the HTTP request that carried this call ('' if none)."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return (headers.get("x-request-id") if headers is not None else None) or ""


@mcp.tool()
def fail(reason: str = "boom") -> str:
    """Always raise, so the result comes back with isError set."""
    raise ValueError(reason)


@mcp.resource("file:///readme.txt", mime_type="text/plain")
def readme() -> str:
    """The readme."""
    return "Read me first.\nSecond line."


@mcp.prompt()
def greet(name: str) -> str:
    """Greet someone by name."""
    return f"Please greet {name} warmly."


if __name__ == "__main__":
    serve(mcp)
