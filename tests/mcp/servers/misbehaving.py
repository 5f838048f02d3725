"""Test server that misbehaves on request: slow tools, a crash mid-call, huge results, stderr noise."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from mcp.server import MCPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _serve import serve  # noqa: E402

mcp = MCPServer("misbehaving")


@mcp.tool()
async def slow(seconds: float) -> str:
    """Sleep for `seconds`, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@mcp.tool()
def crash() -> str:
    """Exit the whole server process at once, in the middle of the call."""
    sys.stderr.write("crashing now\n")
    sys.stderr.flush()
    os._exit(3)


@mcp.tool()
def huge(size: int) -> str:
    """Return `size` characters: 'é' repeated (2 bytes each in UTF-8)."""
    return "é" * size


@mcp.tool()
def noisy(lines: int, text: str = "") -> str:
    """Write `lines` numbered lines, then `text` (if any), to stderr; then answer."""
    for i in range(lines):
        sys.stderr.write(f"noise line {i}\n")
    if text:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()
    return "done"


@mcp.tool()
def spawn_child() -> int:
    """Start a long sleeper child (same process group) that ignores stdin; return its pid."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.DEVNULL)
    return child.pid


@mcp.tool()
def pid() -> int:
    """Return this server's process id."""
    return os.getpid()


if __name__ == "__main__":
    sys.stderr.write("misbehaving server starting\n")
    serve(mcp)
