"""One-line log texts of the MCP layer: an exception, a finished tool call."""

from __future__ import annotations

import time
from typing import Any

from mcp import MCPError as SDKError

from .errors import MCPError


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


def log_tool_call(log: Any, server: str, tool: str, started: float, outcome: str, request_id: str | None) -> float:
    """Log one finished tool call at info level and return its duration in ms.

    Never the arguments or the result: they can carry user data or secrets.
    """
    duration = round((time.monotonic() - started) * 1000, 1)
    log.info("MCP tool {}.{} {} in {} ms (request {})", server, tool, outcome, duration, request_id or "-")
    return duration
