"""The one marshmallow schema that validates every gateway setting at start-up."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from ..durations import parse_duration
from ..proxies import parse_trusted_proxies

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$")
_SIZE_UNITS = {"b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
               "g": 1024**3, "gb": 1000**3, "gib": 1024**3}


class Flag(fields.Field):
    """A boolean written as true/false, yes/no, on/off or 1/0."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError("must be true or false")


class Duration(fields.Field):
    """Seconds from a Go-style duration (`30s`, `5m`, `2m30s`) or a number of seconds."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_duration(value)
        except ValueError:
            raise ValidationError("must be a duration such as 30s, 5m or 2m30s") from None


class ByteSize(fields.Field):
    """Bytes from `20MB`, `512KiB`, `1048576` (decimal and binary units)."""

    def _deserialize(self, value, attr, data, **kwargs):
        match = _SIZE.match(str(value))
        if isinstance(value, bool) or not match:
            raise ValidationError("must be a size such as 20MB, 512KiB or a number of bytes")
        return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


class Number(fields.Field):
    """An int or float given as a number or as text (environment values are text)."""

    def __init__(self, *, integer: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.integer = integer

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("must be a number")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValidationError("must be a whole number" if self.integer else "must be a number") from None
        if self.integer:
            if not number.is_integer():
                raise ValidationError("must be a whole number")
            return int(number)
        return number


class TrustedProxies(fields.Field):
    """A proxy count (0-10) or a comma-separated list of proxy addresses/networks."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_trusted_proxies(value)
        except ValueError as err:
            raise ValidationError(str(err)) from None


class Text(fields.String):
    """A string with surrounding whitespace removed."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def _http_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError("must be an http:// or https:// URL such as http://localhost:11434")


def _storage_uri(value: str) -> None:
    if "://" not in value:
        raise ValidationError("must be a storage URI such as memory:// or redis://localhost:6379")


def _positive(value: float) -> None:
    if value <= 0:
        raise ValidationError("must be greater than 0")


class SettingsSchema(Schema):
    """Every setting, its type, its default and what is allowed."""

    OLLAMA_HOST = Text(load_default="http://localhost:11434", validate=_http_url)
    API_KEY = Text(load_default="")
    ADMIN_API_KEY = Text(load_default="")
    RATE_LIMIT_RPS = Number(load_default=50.0, validate=validate.Range(min=0))
    RATE_LIMIT_SCOPE = Text(load_default="ip", validate=validate.OneOf(["ip", "key", "global"]))
    RATE_LIMIT_STORAGE_URI = Text(load_default="memory://", validate=_storage_uri)
    DEBUG = Flag(load_default=False)
    HOST = Text(load_default="0.0.0.0", validate=validate.Length(min=1))
    PORT = Number(integer=True, load_default=11435, validate=validate.Range(min=1, max=65535))
    WORKERS = Number(integer=True, load_default=1, validate=validate.Range(min=1, max=64))
    THREADS = Number(integer=True, load_default=16, validate=validate.Range(min=1, max=1024))
    LOG_FILE = Text(load_default="")
    TLS_ENABLED = Flag(load_default=False)
    TLS_CERT_FILE = Text(load_default="")
    TLS_KEY_FILE = Text(load_default="")
    TIMEOUT = Duration(load_default=300.0,
                       validate=validate.Range(min=0.001, max=1800, error="must be more than 0 and at most 30m"))
    CONNECT_TIMEOUT = Duration(load_default=5.0, validate=_positive)
    STREAM_KEEPALIVE = Duration(load_default=10.0, validate=validate.Range(min=0.1, max=300,
                                                                          error="must be between 100ms and 5m"))
    HEALTH_CHECK_TIMEOUT = Duration(load_default=5.0, validate=_positive)
    SHUTDOWN_TIMEOUT = Duration(load_default=30.0, validate=validate.Range(min=0, max=3600))
    CACHE_ENABLED = Flag(load_default=True)
    CACHE_TTL = Duration(load_default=3600.0, validate=_positive)
    CACHE_MAX_ENTRIES = Number(integer=True, load_default=1000, validate=validate.Range(min=1))
    CACHE_DETERMINISTIC_ONLY = Flag(load_default=False)
    MAX_REQUEST_BODY = ByteSize(load_default=20 * 1000**2, validate=validate.Range(min=1024, error="must be at least 1KB"))
    KEEP_ALIVE = Text(load_default="")
    REASONING_CONTENT = Flag(load_default=False)
    TRUSTED_PROXIES = TrustedProxies(load_default=0)

    @validates_schema
    def _tls_files(self, data, **kwargs):
        if not data.get("TLS_ENABLED"):
            return
        for name in ("TLS_CERT_FILE", "TLS_KEY_FILE"):
            path = data.get(name, "")
            if not path:
                raise ValidationError("is required when TLS_ENABLED=true", name)
            if not os.access(path, os.R_OK) or not os.path.isfile(path):
                raise ValidationError(f"{path!r} is not a readable file", name)
