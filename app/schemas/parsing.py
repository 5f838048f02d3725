"""Request bodies parsed as JSON the gateway can pass on: bounded nesting, finite numbers, strings that are UTF-8."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import InvalidRequest

MAX_DEPTH = 64
# A lone surrogate can only reach a str through a \uD800-\uDFFF escape, a UTF-8-encoded surrogate (json decodes
# with surrogatepass) or a UTF-16/32 body (a NUL byte in the first four): only then are the strings walked.
_MAY_HOLD_SURROGATES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_MAY_HOLD_SURROGATES_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadJSON(ValueError):
    """Why a text is not JSON the gateway accepts; `param` names the string at fault, if one is."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param


def parse_json(raw: bytes) -> Any:
    """The parsed body.

    :raises InvalidRequest: code invalid_json for a body that is not JSON, nests deeper than MAX_DEPTH, or holds
        NaN, Infinity or a number too large for a double; naming the field, for a string with a lone surrogate.
    """
    try:
        return loads(raw)
    except BadJSON as err:
        if err.param is not None:
            raise InvalidRequest(f"Invalid value for '{err.param}': {err.message}", param=err.param) from None
        raise InvalidRequest(f"The request body is not valid JSON: {err.message}", code="invalid_json") from None


def check_nesting(raw: bytes) -> None:
    """For a body relayed as it is (whether it is JSON is Ollama's to say): no deeper than MAX_DEPTH, as the
    gateway's own look at it (its model) would otherwise hit Python's recursion limit.

    :raises InvalidRequest: code invalid_json, for a body nested too deep.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return
    try:
        too_deep = _deeper_than_max(json.loads(raw))
    except RecursionError:
        too_deep = True
    except ValueError:
        return
    if too_deep:
        raise InvalidRequest(f"The request body is not valid JSON: {_too_deep().message}", code="invalid_json")


def loads(raw: bytes | str) -> Any:
    """`json.loads` with the rules of `parse_json`.

    :raises BadJSON: for what `parse_json` refuses.
    """
    try:
        text = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw), "surrogatepass")  # as json.loads
        value = _DECODER.decode(text)
    except BadJSON:
        raise
    except RecursionError:
        raise _too_deep() from None
    except ValueError as err:
        raise BadJSON(str(err).partition(":")[0].lower() or "malformed") from None
    if isinstance(raw, str):
        strings = bool(_MAY_HOLD_SURROGATES_TEXT.search(raw))
        brackets = raw.count("[") + raw.count("{")
    else:
        strings = bool(_MAY_HOLD_SURROGATES.search(raw)) or b"\x00" in raw[:4]
        brackets = raw.count(b"[") + raw.count(b"{")
    if brackets > MAX_DEPTH and _deeper_than_max(value):
        raise _too_deep()
    if strings:
        _find_lone_surrogate(value)
    return value


def _refuse_constant(name: str):
    raise BadJSON(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise BadJSON(f"the number {text[:40]} is too large")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)  # made once, not per body


def _too_deep() -> BadJSON:
    return BadJSON(f"it is nested more than {MAX_DEPTH} levels deep")


def _deeper_than_max(value: Any) -> bool:
    """Level by level, containers only: cheap even for a long conversation."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(MAX_DEPTH):
        level = [child for node in level for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, (dict, list))]
        if not level:
            return False
    return True


def _find_lone_surrogate(body: Any) -> None:
    """Depth first without recursion, every key and string, raising for the first lone surrogate."""
    stack: list[tuple[Any, str]] = [(body, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if _SURROGATE.search(key):
                    raise _lone_surrogate(where)
                stack.append((item, where))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str) and _SURROGATE.search(value):
            raise _lone_surrogate(path)


def _lone_surrogate(param: str) -> BadJSON:
    return BadJSON("the string holds a lone UTF-16 surrogate, which is not valid Unicode", param or None)
