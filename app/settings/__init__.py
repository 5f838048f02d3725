"""Settings from defaults < YAML file < `.env` < environment < overrides, validated in one pass, loaded once per process."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from ..plugins.loader import discover_plugins
from .backends import backend_configs
from .backends import prepare_section as prepare_backends_section
from .backends import section_error as backends_section_error
from .errors import ConfigError
from .errors import first_problem
from .errors import mask
from .keys import prepare_section as prepare_keys_section
from .keys import section_error as keys_section_error
from .mcp import prepare_section
from .mcp import section_error
from .plugins import prepare_section as prepare_plugins_section
from .plugins import section_error as plugins_section_error
from .schema import SECRET_SETTINGS
from .schema import SETTING_NAMES
from .schema import SettingsSchema
from .sources import config_file_path
from .sources import read_config_file
from .sources import read_dotenv
from .workflows import load_workflows_section
from .workflows import prepare_section as prepare_workflows_section
from .workflows import section_error as workflows_section_error

__all__ = ["ConfigError", "load_settings", "process_settings", "reload_process_settings"]

_SCHEMA = SettingsSchema()
_KNOWN = frozenset(SETTING_NAMES)
_lock = threading.Lock()
_process: dict | None = None


def load_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Merge every source and validate it; the `mcp:` section is under ``MCP`` (an MCPSettings), the listed
    plugins under ``PLUGINS`` (a PluginsSettings: found, imported and their config checked), the workflow
    files under ``WORKFLOWS`` (a WorkflowsSettings: every ``*.yaml`` of `workflows.dirs`, checked), the
    Ollama servers under ``BACKENDS`` (BackendConfigs: the file's `backends:` list, else each ``OLLAMA_HOST`` URL).

    ``environ`` defaults to ``os.environ``. It names the `.env` file (``ENV_FILE``, default
    ``.env``) and the config file (``CONFIG_FILE``, also read from `.env`; default
    ``llamagate.yaml`` when it exists). ``${VAR}`` in the file's `mcp:` strings, in `plugins.dirs`,
    `workflows.dirs` and each plugin's `config`, and the ``MCP_*`` overrides are read from `.env`
    and ``environ``. ``PLUGINS_ENABLED`` from any source beats the file's `plugins.enabled`; false
    imports nothing. Relative `plugins.dirs` and `workflows.dirs` are taken from the config file's
    folder (without one, the working directory); the default `workflows` dir may be missing, a
    named one may not. ``overrides`` entries that are not settings are added unvalidated.
    ``CONFIG_FILE`` in the result is the file read (or ``""``).

    :raises ConfigError: naming the setting or key path, and what is allowed.
    """
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(environ.get("ENV_FILE", ".env"))
    config_file = config_file_path(environ.get("CONFIG_FILE") or dotenv.get("CONFIG_FILE") or "")
    file_values, sections = read_config_file(config_file, _KNOWN)
    variables = {**dotenv, **environ}
    source = config_file or "config"

    raw: dict[str, Any] = dict(file_values)
    for layer in (dotenv, environ, overrides or {}):
        raw.update({name: value for name, value in layer.items() if name in _KNOWN})
    raw["MCP"], origins = prepare_section(sections.get("mcp"), variables, source)
    raw["PLUGINS"] = prepare_plugins_section(sections.get("plugins"), variables, source)
    raw["WORKFLOWS"] = prepare_workflows_section(sections.get("workflows"), variables, source)
    raw["BACKENDS"] = prepare_backends_section(sections.get("backends"), variables, source)
    raw["KEYS"] = prepare_keys_section(sections.get("keys"), variables, source)
    try:
        settings = _SCHEMA.load(raw)
    except ValidationError as err:
        raise _error(err.messages, raw, source, origins) from None
    settings["CONFIG_FILE"] = config_file
    settings["BACKENDS"] = backend_configs(settings["BACKENDS"], settings["OLLAMA_HOST"])
    base_dir = os.path.dirname(os.path.abspath(config_file)) if config_file else os.getcwd()
    if "MAX_CONCURRENT_REQUESTS" not in raw:  # two threads are kept for /health, metrics and quick refusals
        settings["MAX_CONCURRENT_REQUESTS"] = max(1, settings["THREADS"] - 2)
    if "RATE_LIMIT_STORAGE_URI" not in raw and settings["REDIS_URL"]:  # Redis, once named, holds the counts too
        settings["RATE_LIMIT_STORAGE_URI"] = settings["REDIS_URL"]
    section = settings["PLUGINS"]
    if "PLUGINS_ENABLED" not in raw and section.enabled is not None:
        settings["PLUGINS_ENABLED"] = section.enabled
    settings["PLUGINS"] = discover_plugins(
        section, enabled=settings["PLUGINS_ENABLED"], source=source, base_dir=base_dir,
        reserved=frozenset(server.name for server in settings["MCP"].servers))
    settings["WORKFLOWS"] = load_workflows_section(settings["WORKFLOWS"], base_dir=base_dir, source=source)
    settings.update({key: value for key, value in (overrides or {}).items() if key not in _KNOWN})
    return settings


def process_settings() -> dict:
    """This process's settings: loaded from the environment on the first call, the same dict afterwards.

    Forked workers inherit the dict their master loaded.

    :raises ConfigError: when the first load fails (the next call tries again).
    """
    with _lock:
        if _process is None:
            return _store(load_settings())
        return _process


def reload_process_settings() -> dict:
    """Load the settings afresh and keep them as this process's (gunicorn's config file, run again on SIGHUP).

    :raises ConfigError: the previous settings are kept.
    """
    with _lock:
        return _store(load_settings())


def _store(settings: dict) -> dict:
    global _process
    _process = settings
    return settings


def _error(messages: Any, raw: Mapping[str, Any], source: str, origins: Mapping[str, str]) -> ConfigError:
    path, problem = first_problem(messages, sort=True)
    name = str(path[0]) if path else ""
    if name == "MCP":
        return section_error(messages["MCP"], raw["MCP"], source, origins)
    if name == "PLUGINS":
        return plugins_section_error(messages["PLUGINS"], raw["PLUGINS"], source)
    if name == "WORKFLOWS":
        return workflows_section_error(messages["WORKFLOWS"], raw["WORKFLOWS"], source)
    if name == "BACKENDS":
        return backends_section_error(messages["BACKENDS"], raw["BACKENDS"], source)
    if name == "KEYS":
        return keys_section_error(messages["KEYS"], raw["KEYS"], source)
    shown = "***" if name in SECRET_SETTINGS else repr(mask(raw.get(name, "")))
    return ConfigError(f"invalid setting {name}={shown}: {problem}", param=name, problem=problem)
