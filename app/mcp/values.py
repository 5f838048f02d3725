"""Config value helpers: `${VAR}` expansion, key paths for error messages, typed converters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ..durations import parse_duration
from .errors import MCPConfigError

_MISSING: Any = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_TOKEN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


@dataclass(frozen=True)
class Location:
    """Where a value came from: a source (file name, `environment`) and a key path (`mcp.servers[1].url`)."""

    source: str
    path: str

    def child(self, key: str) -> Location:
        return Location(self.source, f"{self.path}.{key}")

    def index(self, i: int) -> Location:
        return Location(self.source, f"{self.path}[{i}]")

    def error(self, problem: str, value: Any = _MISSING) -> MCPConfigError:
        """An MCPConfigError reading `source: path: problem; got value`."""
        got = "" if value is _MISSING else f"; got {value!r}"
        return MCPConfigError(f"{self.source}: {self.path}: {problem}{got}")


def expand_strings(value: Any, environ: Mapping[str, str], where: Location) -> Any:
    """Return `value` with `${VAR}` replaced in every string inside it (dict keys are left alone).

    ``${VAR:-default}`` uses ``default`` when VAR is unset or empty; ``$${`` is a literal ``${``.

    :raises MCPConfigError: when a variable is unset and has no default, or `${` is malformed.
    """
    if isinstance(value, str):
        return _expand(value, environ, where)
    if isinstance(value, Mapping):
        return {k: expand_strings(v, environ, where.child(str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_strings(v, environ, where.index(i)) for i, v in enumerate(value)]
    return value


def _expand(text: str, environ: Mapping[str, str], where: Location) -> str:
    def replace(match: re.Match[str]) -> str:
        token, name, default = match.group(0), match.group(1), match.group(2)
        if token == "$${":
            return "${"
        if name is None:
            raise where.error("malformed '${' (write ${NAME} or ${NAME:-default}, or $${ for a literal)")
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        if found is not None:
            return found
        raise where.error(f"environment variable {name!r} is not set (write ${{{name}:-default}} for a fallback)")

    return _TOKEN.sub(replace, text)


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


def convert(kind: str, value: Any, where: Location) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, (str, int)) else None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise where.error("must be a boolean (true/false, 1/0, yes/no, on/off)", value)
    if kind == "int":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise where.error("must be a whole number of at least 1", value)
        return value
    if kind == "duration":
        try:
            seconds = parse_duration(value)
        except (ValueError, TypeError):
            seconds = None
        if seconds is None or not 0 < seconds <= 86400:
            raise where.error("must be a positive duration up to 24h, e.g. 30s, 5m, 2m30s or seconds", value)
        return seconds
    if isinstance(value, str):  # globs: comma- or space-separated
        return tuple(part for part in re.split(r"[,\s]+", value) if part)
    return tuple(str_list(value, where))


def string(value: Any, where: Location) -> str:
    if not isinstance(value, str):
        raise where.error("must be a string", value)
    return value


def str_list(value: Any, where: Location) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise where.error("must be a list of strings", value)
    out = []
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise where.index(i).error("must be a string", item)
        out.append(str(item))
    return tuple(out)


def str_map(value: Any, where: Location, key_re: re.Pattern[str], key_kind: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise where.error(f"must be a mapping of {key_kind}s to strings", value)
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key_re.match(key):
            raise where.error(f"{key!r} is not a valid {key_kind}")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise where.child(key).error("must be a string", "<hidden>")
        if "\n" in str(item) or "\r" in str(item) or "\0" in str(item):
            raise where.child(key).error("must not contain line breaks or NUL characters")
        out[key] = str(item)
    return MappingProxyType(out)


def http_url(value: Any, where: Location) -> str:
    if not isinstance(value, str) or not value:
        raise where.error("is required for http/sse servers (an http:// or https:// URL)", value)
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:
        valid = False
    if not valid:
        raise where.error("must be an http:// or https:// URL with a host (and a valid port)", value)
    return value
