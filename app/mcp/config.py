"""The `mcp:` configuration section, validated into frozen dataclasses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from loguru import logger

from .errors import MCPConfigError
from .values import Location
from .values import convert
from .values import expand_strings
from .values import http_url
from .values import redact_url
from .values import str_list
from .values import str_map
from .values import string

TRANSPORTS = ("stdio", "http", "sse")
PROTOCOLS = ("auto", "legacy")
SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_TRANSPORT_ALIASES = {
    "stdio": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "sse": "sse",
}
_SERVER_KEYS = {
    "name",
    "transport",
    "type",
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "timeout",
    "enabled",
    "protocol",
    "max_concurrency",
}
_STDIO_ONLY = ("command", "args", "env", "cwd")
_HTTP_ONLY = ("url", "headers")
# Keys the Go original documented under `mcp:`; accepted so old files load, but they do nothing here.
_IGNORED_KEYS = {
    "cache_ttl",
    "connection_pool_size",
    "connection_idle_time",
    "health_check_interval",
    "health_check_timeout",
    "resource_fetch_timeout",
    "tool_execution_timeout",
}
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


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


_SCALARS: dict[str, tuple[str, str]] = {
    # key: (kind, environment variable)
    "enabled": ("bool", "MCP_ENABLED"),
    "max_tool_rounds": ("int", "MCP_MAX_TOOL_ROUNDS"),
    "max_tool_calls_per_round": ("int", "MCP_MAX_TOOL_CALLS_PER_ROUND"),
    "max_total_tool_calls": ("int", "MCP_MAX_TOTAL_TOOL_CALLS"),
    "default_tool_timeout": ("duration", "MCP_DEFAULT_TOOL_TIMEOUT"),
    "max_tool_result_size": ("int", "MCP_MAX_TOOL_RESULT_SIZE"),
    "allow_tools": ("globs", "MCP_ALLOW_TOOLS"),
    "deny_tools": ("globs", "MCP_DENY_TOOLS"),
    "allow_runtime_stdio": ("bool", "MCP_ALLOW_RUNTIME_STDIO"),
}


def load_mcp_settings(
    section: Mapping[str, Any] | None, environ: Mapping[str, str], source: str = "<config>"
) -> MCPSettings:
    """Validate the `mcp:` section (already parsed from YAML/JSON) and apply `MCP_*` overrides.

    ``MCP_*`` environment variables beat the file (an empty one counts as unset). ``${VAR}`` in
    any string of the section is replaced from ``environ``; an unset variable is an error unless
    written ``${VAR:-default}``; ``$${`` is a literal ``${``. ``servers`` is a list of entries with
    ``name`` (the Go original's format) or a mapping of name to entry.

    :raises MCPConfigError: naming the source, the key path (``mcp.servers[1].url``), the value
        and what is allowed.
    """
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise MCPConfigError(f"{source}: mcp: must be a mapping; got {section!r}")
    section = expand_strings(dict(section), environ, Location(source, "mcp"))
    unknown = sorted(set(section) - set(_SCALARS) - {"servers"} - _IGNORED_KEYS)
    if unknown:
        raise MCPConfigError(
            f"{source}: mcp.{unknown[0]}: unknown key; allowed keys are " + ", ".join(sorted([*_SCALARS, "servers"]))
        )
    for key in sorted(set(section) & _IGNORED_KEYS):
        logger.warning("{}: mcp.{} is not used by this gateway and is ignored", source, key)
    values: dict[str, Any] = {}
    for key, (kind, env_name) in _SCALARS.items():
        if environ.get(env_name, "").strip():
            values[key] = convert(kind, environ[env_name], Location("environment", env_name))
        elif key in section:
            values[key] = convert(kind, section[key], Location(source, f"mcp.{key}"))
    servers = _parse_servers(section.get("servers"), Location(source, "mcp.servers"))
    return MCPSettings(servers=servers, **values)


def parse_server_config(
    entry: Mapping[str, Any],
    source: str = "<runtime>",
    *,
    environ: Mapping[str, str] | None = None,
    path: str = "server",
) -> ServerConfig:
    """Validate one server entry (a config list item, or a body for a runtime add).

    ``${VAR}`` is expanded only when ``environ`` is given: entries that arrive at runtime must not
    be able to read the gateway's environment.

    :raises MCPConfigError: with the source and key path of the first problem.
    """
    where = Location(source, path)
    if not isinstance(entry, Mapping):
        raise where.error("must be a mapping", entry)
    data = dict(entry)
    if environ is not None:
        data = expand_strings(data, environ, where)
    unknown = sorted(set(data) - _SERVER_KEYS)
    if unknown:
        raise where.child(unknown[0]).error("unknown key; allowed keys are " + ", ".join(sorted(_SERVER_KEYS)))
    name = data.get("name")
    if not isinstance(name, str) or not SERVER_NAME_RE.match(name):
        raise where.child("name").error("must be 1-64 characters of letters, digits, '_' or '-'", name)
    transport = _transport(data, where)
    wrong = _HTTP_ONLY if transport == "stdio" else _STDIO_ONLY
    for key in wrong:
        if key in data:
            raise where.child(key).error(f"is not used with transport {transport!r}")
    kwargs: dict[str, Any] = {"name": name, "transport": transport}
    if transport == "stdio":
        command = data.get("command")
        if not isinstance(command, str) or not command.strip():
            raise where.child("command").error("is required for stdio servers (a program name or path)", command)
        kwargs["command"] = command
        kwargs["args"] = str_list(data.get("args", []), where.child("args"))
        kwargs["env"] = str_map(data.get("env", {}), where.child("env"), _ENV_NAME_RE, "variable name")
        if data.get("cwd") is not None:
            kwargs["cwd"] = string(data["cwd"], where.child("cwd"))
    else:
        kwargs["url"] = http_url(data.get("url"), where.child("url"))
        kwargs["headers"] = str_map(data.get("headers", {}), where.child("headers"), _HEADER_NAME_RE, "header name")
    if "timeout" in data:
        kwargs["timeout"] = convert("duration", data["timeout"], where.child("timeout"))
    if "enabled" in data:
        kwargs["enabled"] = convert("bool", data["enabled"], where.child("enabled"))
    if "protocol" in data:
        if data["protocol"] not in PROTOCOLS:
            raise where.child("protocol").error("must be one of " + ", ".join(PROTOCOLS), data["protocol"])
        kwargs["protocol"] = data["protocol"]
    if "max_concurrency" in data:
        kwargs["max_concurrency"] = convert("int", data["max_concurrency"], where.child("max_concurrency"))
    return ServerConfig(**kwargs)


def _parse_servers(value: Any, where: Location) -> tuple[ServerConfig, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = []
        for key, entry in value.items():
            if isinstance(entry, Mapping) and "name" in entry and entry["name"] != key:
                raise where.child(str(key)).child("name").error(f"differs from its key {key!r}", entry["name"])
            items.append((where.child(str(key)), {"name": key, **entry} if isinstance(entry, Mapping) else entry))
    elif isinstance(value, list):
        items = [(where.index(i), entry) for i, entry in enumerate(value)]
    else:
        raise where.error("must be a list of server entries or a mapping of name to entry", value)
    servers: list[ServerConfig] = []
    seen: dict[str, str] = {}
    for loc, entry in items:
        server = parse_server_config(entry, loc.source, path=loc.path)
        if server.name in seen:
            raise loc.child("name").error(f"duplicate server name (also at {seen[server.name]})", server.name)
        seen[server.name] = loc.path
        servers.append(server)
    return tuple(servers)


def _transport(data: Mapping[str, Any], where: Location) -> str:
    if "transport" in data and "type" in data:
        raise where.child("type").error("give either 'transport' or 'type', not both")
    key = "transport" if "transport" in data else "type"
    raw = data.get(key)
    if raw is None:
        # Not given: a command means stdio; a URL means Streamable HTTP, or SSE when it ends in /sse.
        if "command" in data:
            return "stdio"
        if isinstance(data.get("url"), str):
            return "sse" if urlsplit(data["url"]).path.rstrip("/").endswith("/sse") else "http"
        raise where.child("transport").error("is required: one of " + ", ".join(TRANSPORTS))
    transport = _TRANSPORT_ALIASES.get(raw.lower()) if isinstance(raw, str) else None
    if transport is None:
        raise where.child(key).error("must be one of " + ", ".join(TRANSPORTS), raw)
    return transport
