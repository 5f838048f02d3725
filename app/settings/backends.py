"""The Ollama backends: `OLLAMA_HOST` as one or more comma-separated URLs, or the file's `backends:` list."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import post_load
from marshmallow import pre_load
from marshmallow import validate
from marshmallow.fields import Field

from .errors import ConfigError
from .errors import first_problem
from .errors import got
from .errors import key_path
from .errors import value_at
from .expand import expand_strings
from .fields import HttpUrl
from .fields import Number
from .fields import Text
from .mcp import reject_unknown_keys

NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
_NAME_RULE = "must be 1-64 characters of letters, digits, '_', '.', ':' or '-'"
_WHOLE = "must be a whole number of at least 0 (0: no limit)"
_QUEUE = "must be a whole number of at least 0"


@dataclass(frozen=True)
class BackendConfig:
    """One Ollama server: where it is, its share of the traffic, and how many requests it takes at once."""

    name: str
    url: str
    weight: float = 1.0
    max_concurrency: int = 0  # 0: no limit
    queue: int = 0  # requests that may wait for a slot when all are taken


def short_name(url: str) -> str:
    """`host:port` of a URL (the default port of its scheme when it names none)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


class HostList(HttpUrl):
    """`OLLAMA_HOST`: one URL, or several separated by commas (each checked like one)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or "," not in value:
            return super()._deserialize(value, attr, data, **kwargs)
        urls: list[str] = []
        for i, part in enumerate(value.split(",")):
            if not part.strip():
                raise ValidationError("has an empty entry between commas")
            try:
                url = super()._deserialize(part, attr, data, **kwargs)
            except ValidationError:
                raise ValidationError(f"entry {i + 1}: {self.rule}") from None
            if short_name(url) in (short_name(u) for u in urls):
                raise ValidationError(f"entry {i + 1}: names {short_name(url)} twice")
            urls.append(url)
        return ",".join(urls)


class BackendSchema(Schema):
    """One entry of `backends:`."""

    error_messages = {"type": "must be a mapping"}

    name = Text(validate=validate.Regexp(NAME_RE, error=_NAME_RULE), error_messages={"invalid": _NAME_RULE})
    url = HttpUrl(required=True, example="http://gpu-1:11434")
    weight = Number(validate=validate.Range(min=0, min_inclusive=False, error="must be a number greater than 0"))
    max_concurrency = Number(integer=True, validate=validate.Range(min=0, error=_WHOLE),
                             error_messages={"integer": _WHOLE})
    queue = Number(integer=True, validate=validate.Range(min=0, error=_QUEUE), error_messages={"integer": _QUEUE})

    @pre_load
    def _known_keys(self, data, **kwargs):
        return reject_unknown_keys(self, data)

    @post_load
    def _backend(self, data, **kwargs) -> BackendConfig:
        values = {key: value for key, value in data.items() if value is not None}
        values.setdefault("name", short_name(values["url"]))
        return BackendConfig(**values)


class Backends(Field):
    """`backends:` as a list of entries; loaded as a tuple of BackendConfig with distinct names."""

    _entry = BackendSchema()

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None:
            return ()
        if not isinstance(value, list):
            raise ValidationError("must be a list of backend entries (each with a url)")
        errors: dict[int, Any] = {}
        backends: list[BackendConfig] = []
        seen: dict[str, int] = {}
        for i, entry in enumerate(value):
            try:
                backend = self._entry.load(entry)
            except ValidationError as err:
                errors[i] = err.messages
                continue
            if backend.name in seen:
                field = "name" if isinstance(entry, Mapping) and "name" in entry else "url"
                errors[i] = {field: [f"duplicate backend name {backend.name!r} (also backends[{seen[backend.name]}])"]}
            seen.setdefault(backend.name, i)
            backends.append(backend)
        if errors:
            raise ValidationError(errors)
        return tuple(backends)


def prepare_section(section: Any, environ: Mapping[str, str], source: str) -> Any:
    """The `backends:` list with `${VAR}` expanded (anything else is left for the schema to reject)."""
    return expand_strings(section, environ, source, "backends") if isinstance(section, list) else section


def section_error(messages: Any, data: Any, source: str) -> ConfigError:
    """``source: backends[1].url: problem; got value``."""
    path, problem = first_problem(messages)
    param = key_path(("backends", *path))
    return ConfigError(f"{source}: {param}: {problem}{got(problem, value_at(data, path))}", param=param,
                       problem=problem)


def backend_configs(section: tuple[BackendConfig, ...], ollama_host: str) -> tuple[BackendConfig, ...]:
    """The backends to use: the file's `backends:` list when it has entries, else each URL of `OLLAMA_HOST`."""
    if section:
        return section
    return tuple(BackendConfig(name=short_name(url), url=url) for url in ollama_host.split(","))
