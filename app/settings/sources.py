"""Reading the raw sources: the `.env` file and the YAML config file."""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Any

import yaml
from dotenv import dotenv_values

from .errors import ConfigError

DEFAULT_CONFIG_FILE = "llamagate.yaml"


def read_dotenv(path: str) -> dict[str, str]:
    """The variables of a `.env` file (none when the path is empty or not a file); bare names are left out."""
    if not path or not os.path.isfile(path):
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def config_file_path(named: str) -> str:
    """The config file to read: the one named, else ``llamagate.yaml`` when it exists, else ``""``."""
    return named or (DEFAULT_CONFIG_FILE if os.path.isfile(DEFAULT_CONFIG_FILE) else "")


def read_config_file(path: str, known: Collection[str]) -> tuple[dict[str, Any], Any]:
    """The file's top-level settings (keys in any case, returned upper-cased) and its `mcp` section (or None).

    :raises ConfigError: the file cannot be read or parsed, is not a mapping, has an unknown key, or
        its `mcp` is not a mapping.
    """
    if not path:
        return {}, None
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}", param="CONFIG_FILE", problem=err.strerror) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"config file {path}{where}: {problem}", param="CONFIG_FILE", problem=problem) from None
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        problem = "the top level must be a mapping of settings"
        raise ConfigError(f"config file {path}: {problem}", param="CONFIG_FILE", problem=problem)
    values: dict[str, Any] = {}
    mcp_section = None
    for key, value in data.items():
        name = str(key).upper()
        if name == "MCP":
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"config file {path}: 'mcp' must be a mapping", param="mcp", problem="must be a mapping")
            mcp_section = value
        elif name in known:
            values[name] = value
        else:
            raise ConfigError(f"config file {path}: unknown setting '{key}'", param=str(key), problem="unknown setting")
    return values, mcp_section

