"""Settings from defaults < YAML file < `.env` < environment, validated once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml
from dotenv import dotenv_values
from marshmallow import ValidationError

from .schemas.settings import SettingsSchema

DEFAULT_CONFIG_FILE = "llamagate.yaml"
SECRET_SETTINGS = ("API_KEY", "ADMIN_API_KEY")
_SCHEMA = SettingsSchema()
_KNOWN = frozenset(_SCHEMA.fields)


class ConfigError(Exception):
    """A setting or config file is invalid; the message is one line meant for the operator."""


def load_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Merge every source and validate it; the validated `mcp` section is under `MCP` (an MCPSettings).

    :raises ConfigError: naming the setting, its value and what is allowed.
    """
    environ = os.environ if environ is None else environ
    dotenv = _read_dotenv(environ.get("ENV_FILE", ".env"))
    config_file = environ.get("CONFIG_FILE") or dotenv.get("CONFIG_FILE") or ""
    file_values, mcp_section = _read_config_file(config_file)

    raw: dict[str, Any] = dict(file_values)
    raw.update({k: v for k, v in dotenv.items() if k in _KNOWN and v is not None})
    raw.update({k: v for k, v in environ.items() if k in _KNOWN})
    raw.update({k: v for k, v in (overrides or {}).items() if k in _KNOWN})
    settings = _validate(raw)
    settings["CONFIG_FILE"] = config_file or (DEFAULT_CONFIG_FILE if os.path.isfile(DEFAULT_CONFIG_FILE) else "")
    settings["ENVIRON"] = {**{k: v for k, v in dotenv.items() if v is not None}, **environ}
    settings["MCP"] = _mcp_settings(mcp_section, settings["ENVIRON"], settings["CONFIG_FILE"] or "config")
    for key, value in (overrides or {}).items():
        if key not in _KNOWN:
            settings[key] = value
    return settings


def _mcp_settings(section: dict | None, environ: Mapping[str, str], source: str):
    from .mcp.config import load_mcp_settings
    from .mcp.errors import MCPConfigError

    try:
        return load_mcp_settings(section, environ, source=source)
    except MCPConfigError as err:
        raise ConfigError(str(err)) from None


def _validate(raw: dict[str, Any]) -> dict:
    try:
        return _SCHEMA.load(raw)
    except ValidationError as err:
        name, problems = next(iter(sorted(err.messages.items())))
        problem = problems[0] if isinstance(problems, list) else problems
        shown = "***" if name in SECRET_SETTINGS else repr(raw.get(name, ""))
        raise ConfigError(f"invalid setting {name}={shown}: {problem}") from None


def _read_dotenv(path: str) -> dict[str, str | None]:
    if not path or not os.path.isfile(path):
        return {}
    return dict(dotenv_values(path))


def _read_config_file(path: str) -> tuple[dict[str, Any], dict | None]:
    """Return the top-level settings (keys are the variable names, any case) and the `mcp` section."""
    if not path:
        if not os.path.isfile(DEFAULT_CONFIG_FILE):
            return {}, None
        path = DEFAULT_CONFIG_FILE
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"config file {path}{where}: {problem}") from None
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of settings")
    values: dict[str, Any] = {}
    mcp_section = None
    for key, value in data.items():
        name = str(key).upper()
        if name == "MCP":
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"config file {path}: 'mcp' must be a mapping")
            mcp_section = value
        elif name in _KNOWN:
            values[name] = value
        else:
            raise ConfigError(f"config file {path}: unknown setting '{key}'")
    return values, mcp_section


def redacted(settings: Mapping[str, Any]) -> dict:
    """A copy safe to log: secrets masked, internal entries dropped."""
    shown = {k: v for k, v in settings.items() if k in _KNOWN}
    for name in SECRET_SETTINGS:
        if shown.get(name):
            shown[name] = "***"
    return shown
