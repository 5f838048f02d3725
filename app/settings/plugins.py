"""The `plugins:` section as nested marshmallow schemas: where to look, which plugins to load, and their options."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import post_load
from marshmallow import pre_load
from marshmallow import validate
from marshmallow.fields import Field

from .errors import ConfigError
from .errors import HiddenValue
from .errors import first_problem
from .errors import got
from .errors import key_path
from .errors import value_at
from .expand import expand_strings
from .fields import Duration
from .fields import Flag
from .fields import Number
from .fields import StringList
from .fields import Text
from .mcp import reject_unknown_keys

PLUGIN_NAME_RE = re.compile(r"^[a-z0-9_-]{1,64}\Z")
ON_ERROR = ("fail_closed", "fail_open")
MAX_TIMEOUT = 600.0

_NAME_RULE = "must be 1-64 characters of lower-case letters, digits, '_' or '-'"
_TIMEOUT_RULE = "must be a duration of more than 0 and at most 10m, e.g. 2s, 500ms or 1m30s"
_ON_ERROR_RULE = "must be one of " + ", ".join(ON_ERROR)


@dataclass(frozen=True)
class PluginEntry:
    """One entry of `plugins.items` after validation, before its plugin is found and imported."""

    name: str
    priority: int = 0
    timeout: float = 2.0
    on_error: str = "fail_closed"
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets from ${VAR}


@dataclass(frozen=True)
class PluginsSection:
    """The validated `plugins:` section; ``enabled`` is None when the file does not say."""

    enabled: bool | None = None
    dirs: tuple[str, ...] = ("plugins",)
    items: tuple[PluginEntry, ...] = ()


class OptionMap(Field):
    """A plugin's `config`: a mapping with string keys (empty when left out or null), checked later by its `Config`."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise ValidationError(HiddenValue("must be a mapping of option names to values"))
        for key in value:
            if not isinstance(key, str):
                raise ValidationError(HiddenValue(f"{key!r} is not a valid option name (must be a string)"))
        return dict(value)


class Folders(StringList):
    """`dirs:`, a list of folder paths, none of them blank."""

    default_error_messages = {"invalid": "must be a list of folder paths", "blank": "must not be empty"}

    def _deserialize(self, value, attr, data, **kwargs):
        folders = super()._deserialize(value, attr, data, **kwargs)
        for index, folder in enumerate(folders):
            if not folder.strip():
                raise ValidationError({index: [self.error_messages["blank"]]})
        return folders


class PluginEntrySchema(Schema):
    """One entry of `plugins.items`: the plugin's name and how the gateway calls it."""

    error_messages = {"type": "must be a mapping with at least a name, e.g. {name: shout}"}

    name = Text(strip=False, required=True, validate=validate.Regexp(PLUGIN_NAME_RE, error=_NAME_RULE),
                error_messages={"required": _NAME_RULE, "invalid": _NAME_RULE, "null": _NAME_RULE})
    priority = Number(integer=True, load_default=0)
    timeout = Duration(load_default=2.0, error_messages={"invalid": _TIMEOUT_RULE},
                       validate=validate.Range(min=0, max=MAX_TIMEOUT, min_inclusive=False, error=_TIMEOUT_RULE))
    on_error = Text(strip=False, load_default="fail_closed", validate=validate.OneOf(ON_ERROR, error=_ON_ERROR_RULE),
                    error_messages={"invalid": _ON_ERROR_RULE})
    config = OptionMap(allow_none=True)

    @pre_load
    def _known_keys(self, data, **kwargs):
        return reject_unknown_keys(self, data)

    @post_load
    def _entry(self, data, **kwargs) -> PluginEntry:
        return PluginEntry(**{**data, "config": data.get("config") or {}})


class PluginItems(Field):
    """`items:` as a list of entries with distinct names, loaded as a tuple of PluginEntry."""

    _entry = PluginEntrySchema()

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("must be a list of plugin entries, e.g. [{name: shout}]")
        errors: dict[int, Any] = {}
        entries: list[PluginEntry] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(value):
            try:
                entry = self._entry.load(raw)
            except ValidationError as err:
                errors[index] = err.messages
                continue
            if entry.name in seen:
                errors[index] = {"name": [f"duplicate plugin name (also plugins.items[{seen[entry.name]}])"]}
            seen.setdefault(entry.name, index)
            entries.append(entry)
        if errors:
            raise ValidationError(errors)
        return tuple(entries)


class PluginsSchema(Schema):
    """The `plugins:` section: safe-mode switch, the folders of dir plugins, and the plugins to load."""

    enabled = Flag()
    dirs = Folders(allow_none=True)
    items = PluginItems(allow_none=True)

    @pre_load
    def _known_keys(self, data, **kwargs):
        return reject_unknown_keys(self, data)

    @post_load
    def _section(self, data, **kwargs) -> PluginsSection:
        dirs = data.get("dirs")
        return PluginsSection(enabled=data.get("enabled"), dirs=("plugins",) if dirs is None else dirs,
                              items=data.get("items") or ())


_PLUGINS = PluginsSchema()


def prepare_section(section: Any, environ: Mapping[str, str], source: str) -> dict[str, Any]:
    """The `plugins:` section ready for PluginsSchema, with ``${VAR}`` expanded in `dirs` and each entry's `config`.

    :raises ConfigError: the section is not a mapping, or a ``${VAR}`` cannot be expanded.
    """
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{source}: plugins: must be a mapping", param="plugins", problem="must be a mapping")
    data = dict(section)
    if "dirs" in data:
        data["dirs"] = expand_strings(data["dirs"], environ, source, "plugins.dirs")
    items = data.get("items")
    if isinstance(items, list):
        data["items"] = [_expand_entry(items, index, environ, source) for index in range(len(items))]
    return data


def _expand_entry(items: list, index: int, environ: Mapping[str, str], source: str) -> Any:
    entry = items[index]
    if not isinstance(entry, Mapping) or "config" not in entry:
        return entry
    where = key_path(("plugins", *entry_path(items, index), "config"))
    return {**entry, "config": expand_strings(entry["config"], environ, source, where)}


def entry_path(items: Any, index: int) -> tuple[str | int, ...]:
    """Where an entry is, for messages: ``(name,)`` when its name is valid and unique, else ``("items", index)``."""
    name = items[index].get("name") if isinstance(items[index], Mapping) else None
    names = [entry.get("name") for entry in items if isinstance(entry, Mapping)]
    if isinstance(name, str) and PLUGIN_NAME_RE.match(name) and names.count(name) == 1:
        return (name,)
    return ("items", index)


def section_error(messages: Any, data: Mapping[str, Any], source: str) -> ConfigError:
    """The ConfigError for PluginsSchema's messages: ``source: plugins.<name>.<key>: problem; got value``."""
    path, problem = first_problem(messages)
    shown: tuple[str | int, ...] = path
    if len(path) >= 2 and path[0] == "items" and isinstance(path[1], int) and isinstance(data.get("items"), list):
        shown = (*entry_path(data["items"], path[1]), *path[2:])
    param = key_path(("plugins", *shown))
    return ConfigError(f"{source}: {param}: {problem}{got(problem, value_at(data, path))}", param=param, problem=problem)


def load_plugins_section(section: Any, environ: Mapping[str, str] | None = None, source: str = "config") -> PluginsSection:
    """Validate a `plugins:` section on its own, without finding or importing anything (tests, tools).

    :raises ConfigError: naming ``source`` and the key path of the first problem.
    """
    data = prepare_section(section, environ or {}, source)
    try:
        return _PLUGINS.load(data)
    except ValidationError as err:
        raise section_error(err.messages, data, source) from None
