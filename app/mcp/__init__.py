"""MCP client layer: configuration dataclasses, a supervised connection pool, tool naming and result formatting.

Names are loaded on first use, so that loading the settings (app.settings) does not load the MCP SDK.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MCPSettings": "config", "ServerConfig": "config",
    "MCPError": "errors", "PromptError": "errors", "ResourceError": "errors", "ServerExists": "errors",
    "ServerNotFound": "errors", "ServerUnavailable": "errors", "ToolCallFailed": "errors", "ToolDenied": "errors",
    "ToolNotFound": "errors", "ToolTimeout": "errors",
    "MCPPool": "pool", "ExposedSnapshot": "tools", "ExposedTool": "tools", "ToolResult": "tools",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
