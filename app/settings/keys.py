"""The `keys:` section: a list of named API keys, each with its own limits, models and admin flag.

A key is given as its value (`key: sk-team-a-...`, or `${VAR}`) or as the SHA-256 of it (`key: sha256:<64 hex>`).
No message about a key's value ever shows it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import post_load
from marshmallow import pre_load
from marshmallow import validate
from marshmallow.fields import Field

from ..keys.spec import ApiKey
from .errors import ConfigError
from .errors import HiddenValue
from .errors import first_problem
from .errors import got
from .errors import key_path
from .errors import value_at
from .expand import expand_strings
from .fields import Flag
from .fields import Globs
from .fields import Number
from .fields import Text
from .mcp import reject_unknown_keys

KEY_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
SHA256_PREFIX = "sha256:"
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z", re.IGNORECASE)
# The names the single keys of API_KEY and ADMIN_API_KEY carry in logs and metrics.
DEFAULT_KEY_NAME = "default"
ADMIN_KEY_NAME = "admin"

_NAME_RULE = "must be 1-64 characters of letters, digits, '.', '_' or '-'"
_KEY_RULE = HiddenValue("is required: the key itself, or sha256: followed by its 64 hex digits")
_HASH_RULE = HiddenValue("must be sha256: followed by exactly 64 hex digits")
_SPACE_RULE = HiddenValue("must not contain spaces, line breaks or NUL characters")
_AT_LEAST_ONE = "must be a whole number of at least 1"


def _count() -> Number:
    return Number(integer=True, allow_none=True, validate=validate.Range(min=1, error=_AT_LEAST_ONE),
                  error_messages={"integer": _AT_LEAST_ONE})


class KeyValue(Field):
    """`key:`: the key itself or `sha256:<hex>`, loaded as ``(digest, plain value or "")``; never echoed."""

    default_error_messages = {"required": _KEY_RULE, "null": _KEY_RULE}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(_KEY_RULE)
        if value.lower().startswith(SHA256_PREFIX):
            if not _SHA256_RE.match(value):
                raise ValidationError(_HASH_RULE)
            return bytes.fromhex(value[len(SHA256_PREFIX):]), ""
        if any(char.isspace() or char == "\0" for char in value):
            raise ValidationError(_SPACE_RULE)
        return hashlib.sha256(value.encode()).digest(), value


class KeySchema(Schema):
    """One entry of `keys:`."""

    error_messages = {"type": "must be a mapping with at least a name and a key"}

    name = Text(strip=False, required=True, validate=validate.Regexp(KEY_NAME_RE, error=_NAME_RULE),
                error_messages={"required": _NAME_RULE, "invalid": _NAME_RULE, "null": _NAME_RULE})
    key = KeyValue(required=True)
    rpm = _count()
    tpm = _count()
    max_concurrent = _count()
    models = Globs(allow_none=True)
    admin = Flag(load_default=False)

    @pre_load
    def _known_keys(self, data, **kwargs):
        return reject_unknown_keys(self, data)

    @post_load
    def _key(self, data, **kwargs) -> ApiKey:
        digest, secret = data.pop("key")
        return ApiKey(digest=digest, secret=secret, **data)


class Keys(Field):
    """`keys:` as a list of entries with distinct names and values, loaded as a tuple of ApiKey.

    The names of API_KEY's and ADMIN_API_KEY's keys are taken while those settings are set.
    """

    _entry = KeySchema()

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, list):
            raise ValidationError("must be a list of keys, e.g. [{name: team-a, key: ..., rpm: 60}]")
        reserved = {name: setting for name, setting in ((DEFAULT_KEY_NAME, "API_KEY"), (ADMIN_KEY_NAME, "ADMIN_API_KEY"))
                    if _is_set(data.get(setting))}
        singles = {_digest(data.get(setting)): setting for setting in ("API_KEY", "ADMIN_API_KEY")
                   if _is_set(data.get(setting))}
        errors: dict[int, Any] = {}
        keys: list[ApiKey] = []
        names: dict[str, int] = {}
        digests: dict[bytes, int] = {}
        for index, raw in enumerate(value):
            try:
                key = self._entry.load(raw)
            except ValidationError as err:
                errors[index] = err.messages
                continue
            if key.name in names:
                errors[index] = {"name": [f"duplicate key name (also keys[{names[key.name]}])"]}
            elif key.name in reserved:
                errors[index] = {"name": [f"is the name of {reserved[key.name]}'s key; choose another"]}
            elif key.digest in digests:
                errors[index] = {"key": [HiddenValue(f"is the same key as keys[{digests[key.digest]}]")]}
            elif key.digest in singles:
                errors[index] = {"key": [HiddenValue(f"is the same key as {singles[key.digest]}")]}
            names.setdefault(key.name, index)
            digests.setdefault(key.digest, index)
            keys.append(key)
        if errors:
            raise ValidationError(errors)
        return tuple(keys)


def _is_set(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.strip().encode()).digest()


def prepare_section(section: Any, environ: Mapping[str, str], source: str) -> Any:
    """The `keys:` list ready for the schema, with ``${VAR}`` expanded (keys are best kept in the environment).

    :raises ConfigError: a ``${VAR}`` cannot be expanded.
    """
    if section is None:
        return []
    return expand_strings(section, environ, source, "keys")


def section_error(messages: Any, data: Any, source: str) -> ConfigError:
    """``source: keys[2].rpm: problem; got value``: the value is never shown for `key`."""
    path, problem = first_problem(messages)
    param = key_path(("keys", *path))
    shown = "" if not path or "key" in path else got(problem, value_at(data, path))
    return ConfigError(f"{source}: {param}: {problem}{shown}", param=param, problem=problem)
