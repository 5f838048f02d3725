"""Finding, importing and checking the listed plugins at start-up, from plugin dirs and `llamagate.plugins` entry points."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Collection
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from marshmallow import Schema
from marshmallow import ValidationError

from ..settings.errors import MISSING
from ..settings.errors import ConfigError
from ..settings.errors import first_problem
from ..settings.errors import key_path
from ..settings.errors import mask
from ..settings.errors import value_at
from ..settings.plugins import PLUGIN_NAME_RE
from ..settings.plugins import PluginEntry
from ..settings.plugins import PluginsSection
from .api import Plugin
from .spec import PluginSpec
from .spec import PluginsSettings

ENTRY_POINT_GROUP = "llamagate.plugins"
MODULE_PREFIX = "llamagate_plugins"
# Config fields named like these never have their value shown in a message.
SECRET_NAME_RE = re.compile(r"(?i)key|token|secret|passw|credential|auth")
_SCALARS = (str, int, float, bool)


def discover_plugins(section: PluginsSection, *, enabled: bool, base_dir: str, reserved: Collection[str] = (),
                     source: str = "config") -> PluginsSettings:
    """Find and import every listed plugin and validate its config; nothing at all when ``enabled`` is false.

    Relative ``dirs`` are taken from ``base_dir`` (the config file's folder). Each name is looked up
    as ``<dir>/<name>.py`` or ``<dir>/<name>/__init__.py`` (the first dir that has it wins) and as
    an entry point of the `llamagate.plugins` group; only listed names are imported. An import that
    fails, or a module without a ``Plugin`` class, gives a spec with ``cls=None`` and ``error``.

    :raises ConfigError: a name is also an MCP server in ``reserved``, is found in a dir and as an
        entry point, or is found nowhere; or the plugin's ``Config`` schema rejects its ``config``.
    """
    if not enabled:
        return PluginsSettings(enabled=False)
    dirs = tuple(os.path.abspath(os.path.join(base_dir, os.path.expanduser(folder))) for folder in section.dirs)
    if not section.items:
        return PluginsSettings(enabled=True, dirs=dirs)
    for entry in section.items:
        if entry.name in reserved:
            problem = (f"is also the name of an MCP server in mcp.servers; rename one (tool names {entry.name}__* "
                       "would clash)")
            raise _entry_error(entry, problem, source)
    entry_points: dict[str, metadata.EntryPoint] = {}
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry_points.setdefault(point.name, point)
    found = [_locate(entry, dirs, entry_points, source) for entry in section.items]  # every name, before any import
    specs = tuple(_load(entry, where) for entry, where in zip(section.items, found, strict=True))
    return PluginsSettings(enabled=True, dirs=dirs, items=specs)


def _locate(entry: PluginEntry, dirs: tuple[str, ...], entry_points: Mapping[str, metadata.EntryPoint],
            source: str) -> str | metadata.EntryPoint:
    """The plugin's file, or its entry point."""
    path = _find_in_dirs(entry.name, dirs)
    point = entry_points.get(entry.name)
    if path and point:
        problem = f"is both {path} and the entry point {_describe_entry_point(point)}; remove one"
        raise _entry_error(entry, problem, source)
    if path or point:
        return path or point  # type: ignore[return-value]
    searched = ", ".join(dirs) if dirs else "no plugins.dirs"
    available = ", ".join(sorted(_names_in_dirs(dirs) | set(entry_points))) or "none"
    problem = f"not found in {searched} nor as a {ENTRY_POINT_GROUP!r} entry point; available: {available}"
    raise _entry_error(entry, problem, source)


def _find_in_dirs(name: str, dirs: tuple[str, ...]) -> str | None:
    for folder in dirs:
        # A package beats a module of the same name, as in Python's own import.
        for path in (os.path.join(folder, name, "__init__.py"), os.path.join(folder, f"{name}.py")):
            if os.path.isfile(path):
                return path
    return None


def _names_in_dirs(dirs: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for folder in dirs:
        try:
            children = os.listdir(folder)
        except OSError:
            continue
        for child in children:
            if child.endswith(".py") and os.path.isfile(os.path.join(folder, child)):
                names.add(child[:-3])
            elif os.path.isfile(os.path.join(folder, child, "__init__.py")):
                names.add(child)
    return {name for name in names if PLUGIN_NAME_RE.match(name)}


def _describe_entry_point(point: metadata.EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    owner = f" of {dist.name}" if dist is not None and dist.name else ""
    return f"{point.name} = {point.value}{owner}"


def _entry_error(entry: PluginEntry, problem: str, source: str) -> ConfigError:
    param = key_path(("plugins", entry.name))
    return ConfigError(f"{source}: {param}: {problem}", param=param, problem=problem)


def _load(entry: PluginEntry, where: str | metadata.EntryPoint) -> PluginSpec:
    """Import the plugin and check its config; a failing import is reported in the spec, not raised."""
    # Nothing is logged here: this runs before logging is set up (in gunicorn's master); the worker logs
    # a failed plugin, with `detail`, when it starts.
    if isinstance(where, str):
        source, (cls, error, detail) = where, _import_file(entry.name, where)
    else:
        source, (cls, error, detail) = f"entry point {where.value}", _load_entry_point(where)
    config: Mapping[str, Any] = entry.config
    if cls is not None:
        config, error = _check_config(entry, cls)
        if error:
            cls = None
    return PluginSpec(name=entry.name, source=source, cls=cls, error=error, priority=entry.priority,
                      timeout=entry.timeout, on_error=entry.on_error, config=config, detail=detail)


def _import_file(name: str, path: str) -> tuple[type | None, str | None, str | None]:
    """Import a dir plugin under a private module name of its own; the name depends on the file, so two
    gateways in one process with different plugins of the same name do not share modules."""
    digest = hashlib.sha256(path.encode()).hexdigest()[:8]
    module_name = f"{MODULE_PREFIX}.{name.replace('-', '_')}_{digest}"
    package = os.path.basename(path) == "__init__.py"
    _forget(module_name)  # a reload imports the files afresh, submodules too
    _ensure_parent()
    try:
        spec = importlib.util.spec_from_file_location(
            module_name, path, submodule_search_locations=[os.path.dirname(path)] if package else None)
        if spec is None or spec.loader is None:
            return None, f"cannot import {path}", None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # the gateway starts; the plugin shows as failed
        _forget(module_name)
        return None, f"import failed: {_one_line(err)}", _traceback_text(err)
    cls = getattr(module, "Plugin", None)
    if not isinstance(cls, type) or cls is Plugin:
        _forget(module_name)
        return None, f"{path} has no top-level class Plugin", None
    return cls, None, None


def _load_entry_point(point: metadata.EntryPoint) -> tuple[type | None, str | None, str | None]:
    try:
        loaded = point.load()
    except (Exception, SystemExit) as err:
        return None, f"import failed: {_one_line(err)}", _traceback_text(err)
    if not isinstance(loaded, type):
        return None, f"entry point {point.value} is a {type(loaded).__name__}, not a class", None
    return loaded, None, None


def _ensure_parent() -> None:
    """The empty package the dir plugins' modules live under, so their relative imports resolve."""
    if MODULE_PREFIX not in sys.modules:
        spec = importlib.util.spec_from_loader(MODULE_PREFIX, loader=None, is_package=True)
        sys.modules[MODULE_PREFIX] = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]


def _forget(module_name: str) -> None:
    for loaded in [key for key in sys.modules if key == module_name or key.startswith(module_name + ".")]:
        del sys.modules[loaded]


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def _traceback_text(err: BaseException) -> str:
    """Formatted here, without local variables, whatever the log handler's settings."""
    return "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()


def _check_config(entry: PluginEntry, cls: type) -> tuple[Mapping[str, Any], str | None]:
    """The config as the class's ``Config`` schema loads it (as given when there is none), or the plugin's error.

    :raises ConfigError: the schema rejects the config.
    """
    schema_class = getattr(cls, "Config", None)
    if not (isinstance(schema_class, type) and issubclass(schema_class, Schema)):
        return entry.config, None
    try:
        schema = schema_class()
        loaded = schema.load(dict(entry.config))
    except ValidationError as err:
        raise _config_error(entry, schema, err.messages) from None
    except Exception as err:  # a broken Config is the plugin's fault: it shows as failed
        return entry.config, f"Config failed: {_one_line(err)}"
    if not isinstance(loaded, Mapping):
        return entry.config, f"Config loaded a {type(loaded).__name__}, expected a mapping"
    return loaded, None


def _config_error(entry: PluginEntry, schema: Schema, messages: Any) -> ConfigError:
    """``invalid setting plugins.<name>.config.<field>=<value>: problem``, the value only when it may be shown."""
    path, problem = first_problem(messages)
    param = key_path(("plugins", entry.name, "config", *path))
    declared = schema.fields.get(str(path[0])) if path else None
    value = value_at(entry.config, path)
    if value is MISSING or declared is None or not isinstance(value, _SCALARS):
        shown = ""  # missing, unknown (maybe a misspelt secret) or a container
    elif declared.metadata.get("secret") or any(isinstance(part, str) and SECRET_NAME_RE.search(part) for part in path):
        shown = "=***"
    else:
        shown = f"={mask(value)!r}"
    return ConfigError(f"invalid setting {param}{shown}: {problem}", param=param, problem=problem)
