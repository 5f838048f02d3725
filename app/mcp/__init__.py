"""MCP client layer: configuration, a supervised connection pool, tool naming and result formatting."""

from __future__ import annotations

from .config import MCPSettings
from .config import ServerConfig
from .config import load_mcp_settings
from .config import parse_server_config
from .errors import MCPConfigError
from .errors import MCPError
from .errors import PromptError
from .errors import ResourceError
from .errors import ServerExists
from .errors import ServerNotFound
from .errors import ServerUnavailable
from .errors import ToolCallFailed
from .errors import ToolDenied
from .errors import ToolNotFound
from .errors import ToolTimeout
from .pool import MCPPool
from .tools import ExposedTool
from .tools import ToolResult

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
