"""/v1/plugins: the plugins of this worker (listing, enable/disable) and the mount point of their own routes.

A plugin's blueprint is served under /v1/plugins/<name>/ behind the same request id, rate limit, auth and error
envelope as every route; while the plugin is disabled or failed its routes answer 503.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint
from flask import Flask
from flask import jsonify
from loguru import logger
from werkzeug.exceptions import HTTPException

from .. import auth
from ..errors import APIError
from ..errors import NotFound
from ..errors import error_response
from ..errors import http_error_response
from ..errors import plugin_error
from ..errors import plugin_unavailable
from ..extensions import components
from ..plugins.api import Reject
from ..plugins.isolation import rejection

bp = Blueprint("plugins", __name__, url_prefix="/v1/plugins")
_SECRET_KEY = re.compile(r"(?i)key|token|secret|passw|auth|credential")
REDACTED = "[REDACTED]"


def _changing(view):
    return auth.admin_change(single_worker=True, what="plugin changes", instead="change the YAML file")(view)


@bp.get("")
@auth.admin_read
def list_plugins():
    plugins = [_shown(p) for p in components().plugins.plugins.values()]
    return jsonify({"plugins": plugins, "count": len(plugins)})


@bp.get("/<name>")
@auth.admin_read
def get_plugin(name: str):
    return jsonify(_shown(_plugin(name)))


@bp.post("/<name>/enable")
@_changing
def enable(name: str):
    return _set(name, True)


@bp.post("/<name>/disable")
@_changing
def disable(name: str):
    return _set(name, False)


@bp.route("/<name>/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unmounted(name: str, rest: str):
    """A path under a plugin that has no blueprint of its own (or could not start)."""
    plugin = _plugin(name)
    if plugin.status != "ready":
        raise plugin_unavailable(name, plugin.status)
    raise NotFound(f"Plugin {name!r} has no route /{rest}.", code="unknown_url")


def mount_plugin_routes(app: Flask, plugins) -> None:
    """Register each started plugin's blueprint (its `blueprint()` runs once per worker, here)."""
    for plugin in plugins.plugins.values():
        if plugin.instance is None or not callable(getattr(plugin.instance, "blueprint", None)):
            continue
        try:
            blueprint = plugin.caller.call("blueprint", plugin.instance.blueprint)
        except Exception as err:  # noqa: BLE001 - the plugin is failed; the gateway serves on
            plugins.mark_failed(plugin, getattr(err, "message", str(err)))
            logger.bind(plugin=plugin.name).error("plugin {} failed in blueprint: {}", plugin.name, plugin.last_error)
            continue
        if blueprint is None:
            continue
        blueprint.before_request(_ready_check(plugin))
        blueprint.register_error_handler(Exception, _crash_handler(plugin))
        app.register_blueprint(blueprint, url_prefix=f"/v1/plugins/{plugin.name}", name=f"plugin_{plugin.name}")


def _ready_check(plugin):
    def check():
        if plugin.status != "ready":
            raise plugin_unavailable(plugin.name, plugin.status)

    return check


def _crash_handler(plugin):
    def handle(err: Exception):
        if isinstance(err, Reject):
            return error_response(rejection(plugin.name, err))
        if isinstance(err, APIError):
            return error_response(err)
        if isinstance(err, HTTPException):
            return http_error_response(err)
        logger.bind(plugin=plugin.name).opt(exception=err).error("plugin {} route failed", plugin.name)
        return error_response(plugin_error(plugin.name, "a route", type(err).__name__))

    return handle


def _plugin(name: str):
    plugin = components().plugins.get(name)
    if plugin is None:
        raise NotFound(f"There is no plugin named {name!r}.", param="name", code="plugin_not_found")
    return plugin


def _set(name: str, enabled: bool):
    plugin = _plugin(name)
    components().plugins.set_enabled(plugin, enabled)
    logger.bind(plugin=name).info("plugin {} {}", name, "enabled" if enabled else "disabled")
    return jsonify(_shown(plugin))


def _shown(plugin) -> dict:
    return {**plugin.public(), "config": _redacted(plugin.spec.config)}


def _redacted(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, dict):
        return {k: _redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value
