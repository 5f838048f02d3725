"""JSON in and out on the hot paths (Ollama's lines, answers, chunks, log lines), by orjson: about ten times faster
than the json module, written the same compact UTF-8 way as ``json.dumps(ensure_ascii=False, separators=(",", ":"))``.

Request bodies are parsed by app.schemas.parsing instead, whose rules (nesting, NaN, surrogates) need the json module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS  # {1: "a"} gives {"1":"a"}, as json.dumps does


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """`value` as compact UTF-8 JSON; `default` turns what JSON has no type for into something it has."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except TypeError:  # what orjson refuses and json writes: an integer past 64 bits, a subclass of a str key
        return json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":")).encode()


def loads(data: bytes | str) -> Any:
    """The value of a JSON text (raises ValueError for one that is not JSON, NaN or Infinity included)."""
    return orjson.loads(data)
