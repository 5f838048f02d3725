"""LlamaGate: an OpenAI-compatible gateway in front of Ollama."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from flask import Flask


@dataclass
class Components:
    """The per-app objects shared by the request threads of one worker."""

    settings: dict
    ollama: Any
    chat: Any
    mcp: Any
    plugins: Any
    tools: Any
    workflows: Any
    redis: Any = None  # the RedisLink when REDIS_URL is set


def create_app(config: Mapping[str, Any] | None = None, *, settings: dict | None = None) -> Flask:
    """Build the gateway from validated `settings` (else the process's), with `config` entries overriding them.

    `config` is for tests and embedding: its entries are validated with the other sources.
    """
    from . import access_log
    from . import auth
    from . import body_limit
    from . import capacity
    from . import cors
    from . import json_provider
    from . import lifecycle
    from . import openapi
    from . import proxies
    from . import ratelimit
    from . import request_id
    from .blueprints import metrics as metrics_endpoint
    from .blueprints import register_blueprints
    from .errors import register_error_handlers
    from .extensions import COMPONENTS_KEY
    from .flask_app import GatewayFlask
    from .pipeline import ChatPipeline
    from .plugins.registry import PluginRegistry
    from .plugins.spec import PluginsSettings
    from .services.cache import AnswerCache
    from .services.cache import TTLCache
    from .services.mcp_runtime import MCPRuntime
    from .settings import load_settings
    from .settings import process_settings
    from .store.bounded import RedisLRU
    from .store.link import RedisLink
    from .tools.catalog import GatewayTools
    from .tools.runner import ToolRunner
    from .upstream.backends import Backends
    from .upstream.watch import Watcher
    from .workflows.engine import WorkflowEngine
    from .workflows.model import WorkflowsSettings
    from .workflows.runs import RunStore
    from .workflows.runs import SharedRunStore

    if config:
        settings = load_settings(overrides=config)
    elif settings is None:
        settings = process_settings()
    app = GatewayFlask(__name__)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_REQUEST_BODY"]
    body_limit.init_app(app)
    json_provider.init_app(app)
    app.wsgi_app = proxies.wrap(app.wsgi_app, settings["TRUSTED_PROXIES"])  # type: ignore[method-assign]

    ollama = Backends(settings["BACKENDS"], connect_timeout=settings["CONNECT_TIMEOUT"],
                      read_timeout=settings["TIMEOUT"], queue_timeout=settings["BACKEND_QUEUE_TIMEOUT"],
                      counted=settings.get("METRICS_ENABLED", True), max_line=settings["MAX_UPSTREAM_LINE"])
    if ollama.several:  # one backend needs no model lists and no probes
        watcher = Watcher(ollama, refresh=settings["BACKEND_REFRESH"], timeout=settings["HEALTH_CHECK_TIMEOUT"])
        lifecycle.register(app, "backends", start=watcher.start, stop=watcher.stop)
    redis = None
    if settings["REDIS_URL"]:
        redis = RedisLink(settings["REDIS_URL"])
        lifecycle.register(app, "redis", stop=redis.close)
    cache = None
    if settings["CACHE_ENABLED"]:
        entries, ttl = settings["CACHE_MAX_ENTRIES"], settings["CACHE_TTL"]
        cache = AnswerCache(TTLCache(entries, ttl) if redis is None else RedisLRU(redis, "llamagate:cache", entries, ttl))
    plugins = PluginRegistry(settings.get("PLUGINS") or PluginsSettings())
    lifecycle.register(app, "plugins", stop=plugins.close)
    mcp_settings = settings["MCP"]
    mcp = MCPRuntime(app, mcp_settings, reserved_names=frozenset(plugins.plugins))
    if redis is not None and mcp_settings.enabled:
        mcp.share_changes(redis)
    # Enough threads for every request thread to run a full round of tool calls at once (made only as needed).
    runner = ToolRunner(mcp, plugins, mcp_settings, tick=settings["STREAM_KEEPALIVE"],
                        max_workers=settings["THREADS"] * mcp_settings.max_tool_calls_per_round,
                        count_calls=settings["METRICS_ENABLED"])
    lifecycle.register(app, "tool-runner", stop=runner.shutdown)
    tools = GatewayTools(mcp, plugins, mcp_settings, runner)
    chat = ChatPipeline(ollama, cache, mcp, tools, plugins, keep_alive=settings["KEEP_ALIVE"],
                        reasoning_content=settings["REASONING_CONTENT"],
                        cache_deterministic_only=settings["CACHE_DETERMINISTIC_ONLY"],
                        max_tool_rounds=mcp_settings.max_tool_rounds)
    workflows_settings = settings.get("WORKFLOWS") or WorkflowsSettings()
    kept = workflows_settings.max_runs_kept
    runs = RunStore(kept) if redis is None else SharedRunStore(RedisLRU(redis, "llamagate:runs", kept))
    workflows = WorkflowEngine(workflows_settings.workflows, chat, runs,
                               keep_alive=settings["STREAM_KEEPALIVE"])
    chat.workflows = workflows
    app.extensions[COMPONENTS_KEY] = Components(settings=settings, ollama=ollama, chat=chat, mcp=mcp,
                                                plugins=plugins, tools=tools, workflows=workflows, redis=redis)

    request_id.init_app(app)
    access_log.init_app(app)
    cors.init_app(app)  # preflights are answered before the rate limit and the key check
    ratelimit.init_app(app)  # before auth, so floods of bad keys are limited too
    openapi.init_app(app)  # after the limiter, before auth: OPENAPI_PUBLIC serves the document without the key
    metrics_endpoint.init_app(app)  # the same for METRICS_PUBLIC and /metrics; counts each finished request
    auth.init_app(app)
    capacity.init_app(app)  # after the key check: a request without a valid key is refused without taking a slot
    register_error_handlers(app)
    register_blueprints(app)
    return app
