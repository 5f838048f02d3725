"""Reading the raw sources: the `.env` file and the YAML config file."""

from __future__ import annotations

import io
import os
from collections.abc import Collection
from typing import Any

from .errors import ConfigError

DEFAULT_CONFIG_FILE = "llamagate.yaml"
# The file's nested sections, validated by their own schemas (app.settings.mcp, .plugins, .workflows, .backends, .keys).
SECTIONS = ("mcp", "plugins", "workflows", "backends", "keys")
LIST_SECTIONS = ("backends", "keys")  # lists of entries; their schema checks the type


def read_dotenv(path: str) -> dict[str, str]:
    """The variables of a `.env` file (none when the path is empty or not a file); bare names are left out."""
    if not path or not os.path.isfile(path):
        return {}
    from dotenv import dotenv_values

    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def config_file_path(named: str) -> str:
    """The config file to read: the one named, else ``llamagate.yaml`` when it exists, else ``""``."""
    return named or (DEFAULT_CONFIG_FILE if os.path.isfile(DEFAULT_CONFIG_FILE) else "")


def read_config_file(path: str, known: Collection[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's top-level settings (keys in any case, returned upper-cased) and its sections by name
    (`mcp`, `plugins`, `workflows`, `backends`, `keys`).

    A section the file does not have is missing from the second mapping; one left empty is ``None``.

    :raises ConfigError: the file cannot be read or parsed, is not a mapping, has an unknown key, or
        a section is not a mapping.
    """
    if not path:
        return {}, {}
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}", param="CONFIG_FILE", problem=err.strerror) from None
    # YAML reads a file of only spaces and line breaks as nothing; the parser (a megabyte) is loaded for real content.
    # Not str.strip(): a tab or a form feed alone is a YAML error.
    if not text.strip(" \r\n"):
        return {}, {}
    import yaml

    stream = io.StringIO(text)
    stream.name = path  # named in YAML's messages, as the file itself would be
    try:
        data = yaml.safe_load(stream)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"config file {path}{where}: {problem}", param="CONFIG_FILE", problem=problem) from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        problem = "the top level must be a mapping of settings"
        raise ConfigError(f"config file {path}: {problem}", param="CONFIG_FILE", problem=problem)
    values: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).upper()
        if name.lower() in SECTIONS:
            if value is not None and not isinstance(value, dict) and name.lower() not in LIST_SECTIONS:
                raise ConfigError(f"config file {path}: {name.lower()!r} must be a mapping", param=name.lower(),
                                  problem="must be a mapping")
            sections[name.lower()] = value
        elif name in known:
            values[name] = value
        else:
            raise ConfigError(f"config file {path}: unknown setting '{key}'", param=str(key), problem="unknown setting")
    return values, sections
