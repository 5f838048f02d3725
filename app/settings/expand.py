"""`${VAR}` and `${VAR:-default}` in the config file's strings, replaced from the environment at load time."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError

_TOKEN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def expand_strings(value: Any, environ: Mapping[str, str], source: str, path: str) -> Any:
    """Return ``value`` with ``${VAR}`` replaced in every string inside it (mapping keys are left alone).

    ``${VAR:-default}`` uses ``default`` when VAR is unset or empty; an unset VAR without a default
    is an error (an empty one expands to ``""``); ``$${`` is a literal ``${``.

    :raises ConfigError: ``source: path: problem``, naming the variable but never a value.
    """
    if isinstance(value, str):
        return _expand(value, environ, source, path)
    if isinstance(value, Mapping):
        return {k: expand_strings(v, environ, source, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [expand_strings(v, environ, source, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _expand(text: str, environ: Mapping[str, str], source: str, path: str) -> str:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{source}: {path}: {problem}", param=path, problem=problem)

    def replace(match: re.Match[str]) -> str:
        token, name, default = match.group(0), match.group(1), match.group(2)
        if token == "$${":
            return "${"
        if name is None:
            raise fail("malformed '${' (write ${NAME} or ${NAME:-default}, or $${ for a literal)")
        found = environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        if found is not None:
            return found
        raise fail(f"environment variable {name!r} is not set (write ${{{name}:-default}} for a fallback)")

    return _TOKEN.sub(replace, text)
