"""MCP client layer: configuration, a supervised connection pool, tool naming and result formatting."""

from __future__ import annotations

from .config import MCPSettings, ServerConfig, load_mcp_settings, parse_server_config
from .errors import (
    MCPConfigError,
    MCPError,
    PromptError,
    ResourceError,
    ServerExists,
    ServerNotFound,
    ServerUnavailable,
    ToolCallFailed,
    ToolDenied,
    ToolNotFound,
    ToolTimeout,
)
from .pool import MCPPool
from .tools import ExposedTool, ToolResult

__all__ = [
    "ExposedTool",
    "MCPConfigError",
    "MCPError",
    "MCPPool",
    "MCPSettings",
    "PromptError",
    "ResourceError",
    "ServerConfig",
    "ServerExists",
    "ServerNotFound",
    "ServerUnavailable",
    "ToolCallFailed",
    "ToolDenied",
    "ToolNotFound",
    "ToolResult",
    "ToolTimeout",
    "load_mcp_settings",
    "parse_server_config",
]
