"""The one marshmallow schema that validates every gateway setting, the `mcp:`, `plugins:`, `workflows:` and `backends:`
sections included."""

from __future__ import annotations

import os

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import validate
from marshmallow import validates_schema
from marshmallow.fields import Nested

from ..cors import parse_origins
from ..mcp.config import MCPSettings
from .backends import Backends
from .backends import HostList
from .fields import ByteSize
from .fields import Duration
from .fields import Flag
from .fields import Number
from .fields import Text
from .fields import TrustedProxies
from .keys import Keys
from .mcp import MCPSchema
from .plugins import PluginsSchema
from .plugins import PluginsSection
from .workflows import WorkflowsSchema
from .workflows import WorkflowsSection

SECRET_SETTINGS = ("API_KEY", "ADMIN_API_KEY")
# The file's nested sections, under these names; they are not settings of their own.
SECTION_NAMES = ("MCP", "PLUGINS", "WORKFLOWS", "BACKENDS", "KEYS")


def _storage_uri(value: str) -> None:
    if "://" not in value:
        raise ValidationError("must be a storage URI such as memory:// or redis://localhost:6379")


def _redis_url(value: str) -> None:
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValidationError("must be a Redis URL such as redis://127.0.0.1:6379/0 (or empty for in-process state)")


def _cors_origins(value: str) -> None:
    try:
        parse_origins(value)
    except ValueError as err:
        raise ValidationError(str(err)) from None


def _positive(value: float) -> None:
    if value <= 0:
        raise ValidationError("must be greater than 0")


class SettingsSchema(Schema):
    """Every setting, its type, its default and what is allowed; ``MCP``, ``PLUGINS`` and ``WORKFLOWS`` are the file's
    sections."""

    OLLAMA_HOST = HostList(load_default="http://localhost:11434", example="http://localhost:11434")
    API_KEY = Text(load_default="")
    ADMIN_API_KEY = Text(load_default="")
    RATE_LIMIT_RPS = Number(load_default=50.0, validate=validate.Range(min=0))
    RATE_LIMIT_SCOPE = Text(load_default="ip", validate=validate.OneOf(["ip", "key", "global"]))
    RATE_LIMIT_STORAGE_URI = Text(load_default="memory://", validate=_storage_uri)
    RATE_LIMIT_FAIL_OPEN = Flag(load_default=True)
    REDIS_URL = Text(load_default="", validate=_redis_url)
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
    HEALTH_SHOW_UPSTREAM = Flag(load_default=True)
    BACKEND_REFRESH = Duration(load_default=30.0, validate=validate.Range(min=1, max=3600,
                                                                         error="must be between 1s and 1h"))
    BACKEND_QUEUE_TIMEOUT = Duration(load_default=30.0, validate=validate.Range(min=0.001, max=1800,
                                                                               error="must be more than 0 and at most 30m"))
    HEADER_TIMEOUT = Duration(load_default=10.0, validate=validate.Range(min=0.1, max=600,
                                                                        error="must be between 100ms and 10m"))
    IDLE_TIMEOUT = Duration(load_default=75.0, validate=validate.Range(min=1, max=3600,
                                                                      error="must be between 1s and 1h"))
    MAX_CONCURRENT_REQUESTS = Number(integer=True, load_default=0, validate=validate.Range(min=1))
    SHUTDOWN_TIMEOUT = Duration(load_default=30.0, validate=validate.Range(min=0, max=3600))
    CACHE_ENABLED = Flag(load_default=True)
    CACHE_TTL = Duration(load_default=3600.0, validate=_positive)
    CACHE_MAX_ENTRIES = Number(integer=True, load_default=1000, validate=validate.Range(min=1))
    CACHE_DETERMINISTIC_ONLY = Flag(load_default=False)
    MAX_REQUEST_BODY = ByteSize(load_default=20 * 1000**2, validate=validate.Range(min=1024, error="must be at least 1KB"))
    MAX_UPSTREAM_LINE = ByteSize(load_default=32 * 1000**2, validate=validate.Range(min=1024, error="must be at least 1KB"))
    KEEP_ALIVE = Text(load_default="")
    REASONING_CONTENT = Flag(load_default=False)
    TRUSTED_PROXIES = TrustedProxies(load_default=0)
    PLUGINS_ENABLED = Flag(load_default=True)
    CORS_ORIGINS = Text(load_default="", validate=_cors_origins)
    OPENAPI_PUBLIC = Flag(load_default=False)
    METRICS_ENABLED = Flag(load_default=True)
    METRICS_PUBLIC = Flag(load_default=False)
    MCP = Nested(MCPSchema, load_default=MCPSettings)
    PLUGINS = Nested(PluginsSchema, load_default=PluginsSection)
    WORKFLOWS = Nested(WorkflowsSchema, load_default=WorkflowsSection)
    BACKENDS = Backends(load_default=(), allow_none=True)
    KEYS = Keys(load_default=())

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


# The settings read from the environment, `.env` and the file's top level, by name.
SETTING_NAMES = tuple(name for name in SettingsSchema().fields if name not in SECTION_NAMES)
