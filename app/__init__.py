"""LlamaGate: an OpenAI-compatible gateway in front of Ollama."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask


@dataclass
class Services:
    """Per-app objects shared by the request threads of one worker."""

    settings: dict
    ollama: Any
    chat: Any
    mcp: Any


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the gateway; `config` entries override every other settings source (tests use it)."""
    from . import access_log
    from . import auth
    from . import proxies
    from . import ratelimit
    from . import request_id
    from .blueprints import register_blueprints
    from .config import load_settings
    from .errors import register_error_handlers
    from .extensions import SERVICES_KEY
    from .extensions import limiter
    from .services.cache import AnswerCache
    from .services.cache import ResponseCache
    from .services.chat import ChatService
    from .services.mcp_runtime import MCPRuntime
    from .upstream.ollama import OllamaClient

    settings = load_settings(overrides=config)
    app = Flask(__name__)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_REQUEST_BODY"]
    app.json.sort_keys = False
    app.json.compact = True
    app.wsgi_app = proxies.wrap(app.wsgi_app, settings["TRUSTED_PROXIES"])  # type: ignore[method-assign]

    ollama = OllamaClient(settings["OLLAMA_HOST"], connect_timeout=settings["CONNECT_TIMEOUT"],
                          read_timeout=settings["TIMEOUT"])
    cache = None
    if settings["CACHE_ENABLED"]:
        cache = AnswerCache(ResponseCache(settings["CACHE_MAX_ENTRIES"], settings["CACHE_TTL"]))
    chat = ChatService(ollama, cache, keep_alive=settings["KEEP_ALIVE"],
                       reasoning_content=settings["REASONING_CONTENT"],
                       cache_deterministic_only=settings["CACHE_DETERMINISTIC_ONLY"])
    app.extensions[SERVICES_KEY] = Services(settings=settings, ollama=ollama, chat=chat,
                                            mcp=MCPRuntime(app, settings["MCP"], chat, settings["STREAM_KEEPALIVE"]))

    request_id.init_app(app)
    access_log.init_app(app)
    ratelimit.init_app(app, limiter)  # before auth, so floods of bad keys are limited too
    auth.init_app(app)
    register_error_handlers(app)
    register_blueprints(app)
    return app
