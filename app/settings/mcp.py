"""The `mcp:` section as nested marshmallow schemas, loading into MCPSettings and ServerConfig."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from loguru import logger
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import post_load
from marshmallow import pre_load
from marshmallow import validate
from marshmallow import validates_schema
from marshmallow.fields import Field

from ..mcp.config import PROTOCOLS
from ..mcp.config import TRANSPORTS
from ..mcp.config import MCPSettings
from ..mcp.config import ServerConfig
from .errors import ConfigError
from .errors import HiddenValue
from .errors import first_problem
from .errors import got
from .errors import key_path
from .errors import value_at
from .expand import expand_strings
from .fields import Duration
from .fields import Flag
from .fields import Globs
from .fields import HttpUrl
from .fields import Number
from .fields import StringList
from .fields import StringMap
from .fields import Text

SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
TRANSPORT_ALIASES = {"stdio": "stdio", "http": "http", "streamable-http": "http", "streamable_http": "http",
                     "streamablehttp": "http", "sse": "sse"}
STDIO_ONLY = ("command", "args", "env", "cwd")
HTTP_ONLY = ("url", "headers")
# Keys the Go original documented under `mcp:`; accepted so old files load, but they do nothing here.
IGNORED_KEYS = frozenset({"cache_ttl", "connection_pool_size", "connection_idle_time", "health_check_interval",
                          "health_check_timeout", "resource_fetch_timeout", "tool_execution_timeout"})
# `mcp:` keys an environment variable overrides (a set, non-blank variable beats the file).
ENV_VARIABLES = {"enabled": "MCP_ENABLED", "max_tool_rounds": "MCP_MAX_TOOL_ROUNDS",
                 "max_tool_calls_per_round": "MCP_MAX_TOOL_CALLS_PER_ROUND",
                 "max_total_tool_calls": "MCP_MAX_TOTAL_TOOL_CALLS", "default_tool_timeout": "MCP_DEFAULT_TOOL_TIMEOUT",
                 "max_tool_result_size": "MCP_MAX_TOOL_RESULT_SIZE", "allow_tools": "MCP_ALLOW_TOOLS",
                 "deny_tools": "MCP_DENY_TOOLS", "allow_runtime_stdio": "MCP_ALLOW_RUNTIME_STDIO"}

_AT_LEAST_ONE = "must be a whole number of at least 1"
_UP_TO_A_DAY = "must be a positive duration up to 24h, e.g. 30s, 5m, 2m30s or seconds"
_NAME_RULE = "must be 1-64 characters of letters, digits, '_' or '-'"
_COMMAND_RULE = "is required for stdio servers (a program name or path)"
_TRANSPORT_RULE = "must be one of " + ", ".join(TRANSPORTS)
_PROTOCOL_RULE = "must be one of " + ", ".join(PROTOCOLS)


def _count() -> Number:
    return Number(integer=True, validate=validate.Range(min=1, error=_AT_LEAST_ONE),
                  error_messages={"integer": _AT_LEAST_ONE})


def _timeout() -> Duration:
    return Duration(validate=validate.Range(min=0, max=86400, min_inclusive=False, error=_UP_TO_A_DAY),
                    error_messages={"invalid": _UP_TO_A_DAY})


def reject_unknown_keys(schema: Schema, data: Any) -> Any:
    """A schema's `pre_load` check: the first key it does not declare is an error listing the allowed keys."""
    if isinstance(data, Mapping):
        unknown = [key for key in data if key not in schema.fields]
        if unknown:
            allowed = ", ".join(sorted(schema.fields))
            raise ValidationError(HiddenValue(f"unknown key; allowed keys are {allowed}"), str(unknown[0]))
    return data


def _not_blank(text: str) -> None:
    if not text.strip():
        raise ValidationError(_COMMAND_RULE)


class Transport(Text):
    """A transport name or alias (`streamable-http`, any case), loaded as stdio, http or sse."""

    def _deserialize(self, value, attr, data, **kwargs):
        transport = TRANSPORT_ALIASES.get(value.lower()) if isinstance(value, str) else None
        if transport is None:
            raise ValidationError(_TRANSPORT_RULE)
        return transport


def _transport(data: Mapping[str, Any]) -> str:
    """The given transport, or the one implied: a command is stdio; a URL is http, or sse when it ends in /sse."""
    given = data.get("transport") or data.get("type")
    if given:
        return given
    if "command" in data:
        return "stdio"
    if "url" in data:
        return "sse" if urlsplit(data["url"]).path.rstrip("/").endswith("/sse") else "http"
    raise ValidationError("is required: one of " + ", ".join(TRANSPORTS), "transport")


class ServerSchema(Schema):
    """One entry of `mcp.servers` (or a runtime add): how to reach an MCP server and how long to wait for it."""

    error_messages = {"type": "must be a mapping"}

    name = Text(strip=False, required=True, validate=validate.Regexp(SERVER_NAME_RE, error=_NAME_RULE),
                error_messages={"required": _NAME_RULE, "invalid": _NAME_RULE, "null": _NAME_RULE})
    transport = Transport()
    type = Transport()
    command = Text(strip=False, validate=_not_blank, error_messages={"invalid": _COMMAND_RULE, "null": _COMMAND_RULE})
    args = StringList()
    env = StringMap(key_pattern=ENV_NAME_RE, key_kind="variable name")
    cwd = Text(strip=False, allow_none=True)
    url = HttpUrl()
    headers = StringMap(key_pattern=HEADER_NAME_RE, key_kind="header name")
    timeout = _timeout()
    enabled = Flag()
    protocol = Text(strip=False, validate=validate.OneOf(PROTOCOLS, error=_PROTOCOL_RULE),
                    error_messages={"invalid": _PROTOCOL_RULE})
    max_concurrency = _count()

    @pre_load
    def _known_keys(self, data, **kwargs):
        return reject_unknown_keys(self, data)

    @validates_schema
    def _transport_keys(self, data, **kwargs):
        if "transport" in data and "type" in data:
            raise ValidationError(HiddenValue("give either 'transport' or 'type', not both"), "type")
        transport = _transport(data)
        for key in HTTP_ONLY if transport == "stdio" else STDIO_ONLY:
            if key in data:
                raise ValidationError(HiddenValue(f"is not used with transport {transport!r}"), key)
        if transport == "stdio" and "command" not in data:
            raise ValidationError(_COMMAND_RULE, "command")
        if transport != "stdio" and "url" not in data:
            raise ValidationError("is required for http/sse servers (an http:// or https:// URL)", "url")

    @post_load
    def _server(self, data, **kwargs) -> ServerConfig:
        values = {key: value for key, value in data.items() if key != "type" and value is not None}
        values["transport"] = _transport(data)
        return ServerConfig(**values)


class Servers(Field):
    """`servers:` as a list of entries with `name`, or a mapping of name to entry; loaded as a tuple of ServerConfig."""

    _entry = ServerSchema()

    def _deserialize(self, value, attr, data, **kwargs):
        errors: dict[str | int, Any] = {}
        if isinstance(value, Mapping):
            items: list[tuple[str | int, Any]] = []
            for key, entry in value.items():
                if isinstance(entry, Mapping) and "name" in entry and entry["name"] != key:
                    errors[str(key)] = {"name": [f"differs from its key {key!r}"]}
                items.append((str(key), {"name": key, **entry} if isinstance(entry, Mapping) else entry))
        elif isinstance(value, list):
            items = list(enumerate(value))
        else:
            raise ValidationError("must be a list of server entries or a mapping of name to entry")
        servers: list[ServerConfig] = []
        seen: dict[str, str] = {}
        for key, entry in items:
            if key in errors:
                continue
            try:
                server = self._entry.load(entry)
            except ValidationError as err:
                errors[key] = err.messages
                continue
            if server.name in seen:  # only the list form can repeat a name
                errors[key] = {"name": [f"duplicate server name (also at {seen[server.name]})"]}
            seen.setdefault(server.name, key_path(("mcp", "servers", key)))
            servers.append(server)
        if errors:
            raise ValidationError(errors)
        return tuple(servers)


class MCPSchema(Schema):
    """The `mcp:` section: tool-loop limits, tool filters and the servers to connect."""

    enabled = Flag()
    max_tool_rounds = _count()
    max_tool_calls_per_round = _count()
    max_total_tool_calls = _count()
    default_tool_timeout = _timeout()
    max_tool_result_size = _count()
    allow_tools = Globs()
    deny_tools = Globs()
    allow_runtime_stdio = Flag()
    servers = Servers(allow_none=True)

    @pre_load
    def _known_keys(self, data, **kwargs):
        return reject_unknown_keys(self, data)

    @post_load
    def _settings(self, data, **kwargs) -> MCPSettings:
        return MCPSettings(**{key: value for key, value in data.items() if value is not None})


_MCP = MCPSchema()
_SERVER = ServerSchema()


def prepare_section(section: Any, environ: Mapping[str, str], source: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The `mcp:` section ready for MCPSchema, and which of its keys came from which `MCP_*` variable.

    ``${VAR}`` is expanded from ``environ`` first; the Go original's unused keys are dropped with a
    warning; then every set, non-blank ``MCP_*`` variable replaces its key.

    :raises ConfigError: the section is not a mapping, or a ``${VAR}`` cannot be expanded.
    """
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: mcp: must be a mapping", param="mcp", problem="must be a mapping")
    data = expand_strings(dict(section), environ, source, "mcp")
    for key in sorted(set(data) & IGNORED_KEYS):
        logger.warning("{}: mcp.{} is not used by this gateway and is ignored", source, key)
        del data[key]
    origins: dict[str, str] = {}
    for key, variable in ENV_VARIABLES.items():
        value = environ.get(variable)
        if isinstance(value, str) and value.strip():
            data[key] = value
            origins[key] = variable
    return data, origins


def section_error(messages: Any, data: Mapping[str, Any], source: str, origins: Mapping[str, str]) -> ConfigError:
    """The ConfigError for MCPSchema's messages: ``source: mcp.path: problem; got value``, or names the variable."""
    path, problem = first_problem(messages)
    if path and path[0] in origins:
        where, param = "environment", key_path((origins[str(path[0])], *path[1:]))
    else:
        where, param = source, key_path(("mcp", *path))
    return ConfigError(f"{where}: {param}: {problem}{got(problem, value_at(data, path))}", param=param, problem=problem)


def load_mcp_section(section: Any, environ: Mapping[str, str] | None = None, source: str = "config") -> MCPSettings:
    """Validate an `mcp:` section on its own (tests, tools); load_settings does this as part of every setting.

    :raises ConfigError: naming ``source`` and the key path (or the ``MCP_*`` variable) of the first problem.
    """
    data, origins = prepare_section(section, environ or {}, source)
    try:
        return _MCP.load(data)
    except ValidationError as err:
        raise section_error(err.messages, data, source, origins) from None


def parse_server_entry(entry: Mapping[str, Any]) -> ServerConfig:
    """Validate a server entry that arrives at runtime (the admin API) exactly like the file's, without ``${VAR}``.

    Whether stdio entries may be added at runtime is the caller's decision (``allow_runtime_stdio``).

    :raises ConfigError: ``param`` is the path inside the entry (``url``, ``args[0]``, ``transport``);
        the message is ``param: problem``.
    """
    if not isinstance(entry, Mapping):
        raise ConfigError("a server entry must be a mapping", problem="must be a mapping")
    try:
        return _SERVER.load(dict(entry))
    except ValidationError as err:
        path, problem = first_problem(err.messages)
        param = key_path(path)
        text = f"{param}: {problem}" if param else problem
        raise ConfigError(text + got(problem, value_at(entry, path)), param=param, problem=problem) from None
