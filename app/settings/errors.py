"""ConfigError, and turning marshmallow's nested messages into its one operator line."""

from __future__ import annotations

import re
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

MISSING: Any = object()
_SCALARS = (str, int, float, bool)
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)?[^/?#@\s]*@")
_QUERY = re.compile(r"\?[^#\s]*")


class ConfigError(Exception):
    """A setting, config file or server entry is invalid; ``str(err)`` is one line meant for the operator.

    ``param`` is the key path of the bad value: a setting (``TIMEOUT``), a place in the file
    (``mcp.servers[1].url``), an environment variable (``MCP_MAX_TOOL_ROUNDS``), or, for a server
    entry checked at runtime, the path inside the entry (``url``, ``args[0]``, ``transport``).
    ``problem`` says what is wrong or allowed (``must be an http:// or https:// URL ...``).
    Secret values (API keys, env and header values, URL credentials) never appear in either.
    """

    def __init__(self, message: str, *, param: str = "", problem: str = "") -> None:
        super().__init__(message)
        self.param = param
        self.problem = problem or message


class HiddenValue(str):
    """A problem message after which the offending value is not shown (it is about the key, or may be secret)."""

    __slots__ = ()


def first_problem(messages: Any, *, sort: bool = False) -> tuple[tuple[str | int, ...], str]:
    """The key path and message of the first error in marshmallow's ``err.messages``.

    ``sort`` orders the top level by name; below it the schema's own order is kept (field
    declaration order, list indexes ascending). ``_schema`` (an error about the whole mapping)
    adds nothing to the path.
    """
    path: list[str | int] = []
    while True:
        if isinstance(messages, Mapping):
            items = sorted(messages.items(), key=lambda kv: str(kv[0])) if sort else list(messages.items())
            key, messages = items[0]
            if key != "_schema":
                path.append(key)
            sort = False
        elif isinstance(messages, (list, tuple)):
            messages = messages[0]
        else:
            return tuple(path), messages if isinstance(messages, str) else str(messages)


def key_path(parts: Sequence[str | int]) -> str:
    """``("mcp", "servers", 1, "url")`` as ``mcp.servers[1].url``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def value_at(data: Any, path: Sequence[str | int]) -> Any:
    """The raw value at ``path`` inside ``data``, or ``MISSING``."""
    for part in path:
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(part, int) and isinstance(data, (list, tuple)) and 0 <= part < len(data):
            data = data[part]
        else:
            return MISSING
    return data


def mask(value: Any) -> Any:
    """A string with what looks like URL credentials (``user:pw@``, the query) masked; anything else unchanged."""
    if not isinstance(value, str):
        return value
    masked = _USERINFO.sub(r"\1***@", value)
    return _QUERY.sub("?…", masked) if "://" in masked else masked


def got(problem: str, value: Any) -> str:
    """``"; got 'x'"`` for a value that may be shown, else ``""`` (missing or empty values, containers, secrets)."""
    if value is MISSING or isinstance(problem, HiddenValue) or not isinstance(value, _SCALARS):
        return ""
    return f"; got {mask(value)!r}"
