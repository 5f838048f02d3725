"""Shared command line for the test servers: `python server.py [stdio|http|sse] [PORT]`."""

from __future__ import annotations

import sys
from typing import Any


def serve(server: Any, argv: list[str] | None = None) -> None:
    """Run `server` (an MCPServer) on the transport named on the command line."""
    args = sys.argv[1:] if argv is None else argv
    transport = args[0] if args else "stdio"
    if transport == "stdio":
        server.run()
    elif transport == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(args[1]))
    elif transport == "sse":
        server.run("sse", host="127.0.0.1", port=int(args[1]))
    else:
        raise SystemExit(f"unknown transport {transport!r}")
