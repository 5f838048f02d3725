"""Marshmallow field types of the settings: flags, durations, sizes, numbers, proxies, text, URLs, lists, maps."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import urlsplit

from marshmallow import ValidationError
from marshmallow import fields

from ..durations import parse_duration
from ..proxies import parse_trusted_proxies
from .errors import HiddenValue

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$")
_SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
               "g": 1024**3, "gb": 1000**3, "gib": 1024**3}
_LINE_BREAKS = ("\r", "\n", "\0")


class _Messages:
    """Operator wording for marshmallow's own `null` and `required` errors."""

    default_error_messages = {"null": "must have a value", "required": "is required"}


class Flag(_Messages, fields.Field):
    """A boolean written as true/false, yes/no, on/off or 1/0 (any case)."""

    default_error_messages = {"invalid": "must be true or false (or yes/no, on/off, 1/0)"}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)):
            text = str(value).strip().lower()
            if text in TRUE_WORDS:
                return True
            if text in FALSE_WORDS:
                return False
        raise self.make_error("invalid")


class Duration(_Messages, fields.Field):
    """Seconds from a Go-style duration (`30s`, `5m`, `2m30s`) or a number of seconds."""

    default_error_messages = {"invalid": "must be a duration such as 30s, 5m or 2m30s"}

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_duration(value)
        except (TypeError, ValueError):
            raise self.make_error("invalid") from None


class ByteSize(_Messages, fields.Field):
    """Bytes from `20MB`, `512KiB`, `1048576` (decimal and binary units)."""

    default_error_messages = {"invalid": "must be a size such as 20MB, 512KiB or a number of bytes"}

    def _deserialize(self, value, attr, data, **kwargs):
        match = _SIZE.match(str(value))
        if isinstance(value, bool) or not match:
            raise self.make_error("invalid")
        return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


class Number(_Messages, fields.Field):
    """An int (``integer=True``) or a float, given as a number or as text (environment values are text)."""

    default_error_messages = {"invalid": "must be a number", "integer": "must be a whole number"}

    def __init__(self, *, integer: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.integer = integer

    def _deserialize(self, value, attr, data, **kwargs):
        wrong = "integer" if self.integer else "invalid"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.make_error(wrong)
        try:
            number = float(str(value).strip())
        except ValueError:
            raise self.make_error(wrong) from None
        if not self.integer:
            return number
        if not number.is_integer():
            raise self.make_error("integer")
        return int(number)


class TrustedProxies(_Messages, fields.Field):
    """A proxy count (0-10) or a comma-separated list of proxy addresses/networks."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_trusted_proxies(value)
        except ValueError as err:
            raise ValidationError(str(err)) from None


class Text(_Messages, fields.String):
    """A string, with surrounding whitespace removed unless ``strip=False``."""

    default_error_messages = {"invalid": "must be a string"}

    def __init__(self, *, strip: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.strip = strip

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        return text.strip() if self.strip else text


class HttpUrl(Text):
    """An http:// or https:// URL with a host and, if given, a valid port."""

    def __init__(self, *, example: str = "", **kwargs):
        super().__init__(**kwargs)
        self.rule = "must be an http:// or https:// URL with a host and a valid port" + (
            f", such as {example}" if example else "")

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise ValidationError(self.rule)
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            parts = urlsplit(text)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
        except ValueError:
            valid = False
        if not valid:
            raise ValidationError(self.rule)
        return text


class StringList(_Messages, fields.Field):
    """A list of strings (numbers are taken as their text), loaded as a tuple."""

    default_error_messages = {"invalid": "must be a list of strings", "item": "must be a string"}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (list, tuple)):
            raise self.make_error("invalid")
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ValidationError({i: [self.error_messages["item"]]})
        return tuple(str(item) for item in value)


class Globs(StringList):
    """Name globs: a list of strings, or one string of globs separated by commas or spaces."""

    default_error_messages = {"invalid": "must be a list of globs or one string of globs separated by commas or spaces"}

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return tuple(part for part in re.split(r"[,\s]+", value) if part)
        return super()._deserialize(value, attr, data, **kwargs)


class StringMap(_Messages, fields.Field):
    """A mapping of names (matching ``key_pattern``) to one-line strings, loaded read-only; values are never echoed."""

    def __init__(self, *, key_pattern: re.Pattern[str], key_kind: str, **kwargs):
        super().__init__(**kwargs)
        self.key_pattern = key_pattern
        self.key_kind = key_kind

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            raise ValidationError(HiddenValue(f"must be a mapping of {self.key_kind}s to strings"))
        out: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not self.key_pattern.fullmatch(key):
                raise ValidationError(HiddenValue(f"{key!r} is not a valid {self.key_kind}"))
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ValidationError({key: [HiddenValue("must be a string")]})
            text = str(item)
            if any(char in text for char in _LINE_BREAKS):
                raise ValidationError({key: [HiddenValue("must not contain line breaks or NUL characters")]})
            out[key] = text
        return MappingProxyType(out)
