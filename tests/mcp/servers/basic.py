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
_active: dict[str, tuple[int, int]] = {}


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
    """Names of the environment variables this process was started with, sorted, comma-separated."""
    try:
        with open("/proc/self/environ", "rb") as f:  # the exact environment given at exec time
            names = [item.split(b"=", 1)[0].decode() for item in f.read().split(b"\0") if item]
    except OSError:
        names = list(os.environ)
    return ",".join(sorted(names))


@mcp.tool()
def pid() -> int:
    """Return this server's process id."""
    return os.getpid()


@mcp.tool()
async def overlap(key: str, seconds: float = 0.5) -> int:
    """Sleep; return the peak number of overlap() calls with this `key` that were running at once."""
    now, peak = _active.get(key, (0, 0))
    _active[key] = (now + 1, max(peak, now + 1))
    try:
        await asyncio.sleep(seconds)
    finally:
        now, peak = _active[key]
        _active[key] = (now - 1, peak)
    return _active[key][1]


@mcp.tool()
def header(name: str, ctx: Context) -> str:
    """Return the named header of the HTTP request that carried this call ('<none>' if absent or not HTTP)."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    return (headers.get(name) if headers is not None else None) or "<none>"


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
