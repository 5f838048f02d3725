"""The `mcp:` configuration as frozen dataclasses (app.settings.mcp validates the file and runtime entries into them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

TRANSPORTS = ("stdio", "http", "sse")
PROTOCOLS = ("auto", "legacy")


@dataclass(frozen=True)
class ServerConfig:
    """One MCP server: how to reach it and how long to wait for it.

    ``timeout`` bounds connecting (handshake) and the listing/resource/prompt requests; tool calls
    use ``MCPSettings.default_tool_timeout`` unless the caller passes its own. ``protocol`` is
    ``auto`` (probe the 2026 era, fall back to the initialize handshake) or ``legacy`` (handshake
    only, for old servers that ignore unknown requests). ``env`` and ``headers`` may hold secrets:
    use ``public_dict()`` for anything shown or logged.
    """

    name: str
    transport: str
    command: str | None = None
    # Arguments, env values, URLs and header values can carry secrets: keep them out of repr().
    args: tuple[str, ...] = field(default=(), repr=False)
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    cwd: str | None = None
    url: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    timeout: float = 30.0
    enabled: bool = True
    protocol: str = "auto"
    max_concurrency: int = 16

    def public_dict(self) -> dict[str, Any]:
        """A JSON-able description without secrets: no args, env values, header values or URL credentials."""
        out: dict[str, Any] = {
            "name": self.name,
            "transport": self.transport,
            "enabled": self.enabled,
            "timeout": self.timeout,
            "protocol": self.protocol,
        }
        if self.transport == "stdio":
            out["command"] = self.command
            out["env_keys"] = sorted(self.env)
        else:
            out["url"] = redact_url(self.url or "")
            out["header_names"] = sorted(self.headers)
        return out


def redact_url(url: str) -> str:
    """The URL without userinfo, query or fragment, which may carry credentials."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?…" if parts.query else "")


@dataclass(frozen=True)
class MCPSettings:
    """Everything under `mcp:` after validation and environment overrides.

    ``max_tool_result_size`` is in bytes; ``default_tool_timeout`` in seconds. ``allow_tools`` and
    ``deny_tools`` are globs (see ``app.mcp.naming.ToolFilter``); deny wins, an empty allow list
    allows everything. ``allow_runtime_stdio`` lets ``MCPPool.add_server`` spawn processes.
    """

    enabled: bool = True
    max_tool_rounds: int = 10
    max_tool_calls_per_round: int = 10
    max_total_tool_calls: int = 50
    default_tool_timeout: float = 30.0
    max_tool_result_size: int = 1048576
    allow_tools: tuple[str, ...] = ()
    deny_tools: tuple[str, ...] = ()
    servers: tuple[ServerConfig, ...] = ()
    allow_runtime_stdio: bool = False

