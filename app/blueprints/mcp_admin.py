"""The MCP admin API under /v1/mcp: servers and their tools, resources and prompts; runtime changes; direct calls.

Reading needs the admin key once one is set (ADMIN_API_KEY, or a key with admin: true), else the general API
key. Changing (add, delete, restart, refresh, execute) needs the admin key, or a
loopback client while ADMIN_API_KEY is unset (`app.auth.require_admin`). With REDIS_URL a change to the servers reaches
every worker and instance (`app.services.mcp_changes`); without it a change lives in the worker that made it, so with
WORKERS > 1 such changes are refused: configure the servers in the YAML file instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint
from flask import g
from flask import jsonify
from flask import request
from loguru import logger

from .. import auth
from ..errors import InvalidRequest
from ..extensions import components
from ..mcp.errors import MCPError
from ..mcp.errors import ServerNotFound
from ..schemas import load_json
from ..schemas.mcp import ExecuteRequest
from ..schemas.mcp import PromptRequest
from ..schemas.mcp import ServerEntry

bp = Blueprint("mcp_admin", __name__, url_prefix="/v1/mcp")
bp.before_request(auth.require_admin_to_read)
_execute_schema = ExecuteRequest()
_prompt_schema = PromptRequest()
_entry_schema = ServerEntry()
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
READY_WAIT_EXTRA = 2.0  # seconds beyond a new server's own connect timeout


def changing(*, servers: bool = True) -> Callable:
    """Guard a changing view: admin authorization and, for changes to the servers (``servers``), a single worker."""
    return auth.admin_change(single_worker=servers, shared=True, what="MCP server changes",
                             instead="configure the servers in the YAML file")


# -- reading ---------------------------------------------------------------------------------


@bp.get("/servers")
def list_servers():
    pool = components().mcp.pool
    servers = pool.states() if pool is not None else []
    return jsonify({"servers": servers, "count": len(servers)})


@bp.get("/servers/<name>")
def get_server(name: str):
    return jsonify(_pool_for(name).state(name))


@bp.get("/servers/<name>/tools")
def list_tools(name: str):
    tools = _pool_for(name).list_tools(name)
    return jsonify({"server": name, "tools": tools, "count": len(tools)})


@bp.get("/servers/<name>/resources")
def list_resources(name: str):
    pool = _pool_for(name)
    resources = _snake_keys(pool.list_resources(name))
    templates = _snake_keys(pool.list_resource_templates(name))
    return jsonify({"server": name, "resources": resources, "resource_templates": templates, "count": len(resources)})


@bp.get("/servers/<name>/resources/read")
def read_resource(name: str):
    uri = request.args.get("uri", "")
    if not uri:
        raise InvalidRequest("Give the resource as the query parameter 'uri'.", param="uri", code="missing_parameter")
    return jsonify({"server": name, "uri": uri, "text": _pool_for(name).read_resource(name, uri)})


@bp.get("/servers/<name>/prompts")
def list_prompts(name: str):
    prompts = _snake_keys(_pool_for(name).list_prompts(name))
    return jsonify({"server": name, "prompts": prompts, "count": len(prompts)})


@bp.post("/servers/<name>/prompts/<prompt>")
def get_prompt(name: str, prompt: str):
    req = load_json(_prompt_schema) if request.get_data() else _prompt_schema.load({})
    result = _snake_keys(_pool_for(name).get_prompt(name, prompt, req["arguments"]))
    return jsonify({"server": name, "prompt": prompt, "description": result.get("description"),
                    "messages": result.get("messages", [])})


@bp.get("/servers/<name>/health")
def server_health(name: str):
    pool = _pool_for(name)
    pool.state(name)  # unknown names are a 404, not an unhealthy server
    started = time.monotonic()
    try:
        pool.refresh(name)  # a live tools/list round trip
        error = None
    except MCPError as err:
        error = err.message
    state = pool.state(name)
    body = {"server": name, "status": state["status"], "healthy": error is None,
            "latency_ms": round((time.monotonic() - started) * 1000, 1) if error is None else None,
            "last_error": error, "tool_count": state["tool_count"], "restarts": state["restarts"]}
    return jsonify(body), 200 if error is None else 503


# -- changing --------------------------------------------------------------------------------


@bp.post("/servers")
@changing()
def add_server():
    mcp = components().mcp
    cfg = mcp.add_server(load_json(_entry_schema))
    pool = mcp.pool
    if cfg.enabled:
        pool.wait_ready(cfg.timeout + READY_WAIT_EXTRA, [cfg.name])  # answer after the first connection attempt
    logger.bind(mcp_server=cfg.name, ip=request.remote_addr).info("MCP server {} added at runtime", cfg.name)
    return jsonify(pool.state(cfg.name)), 201


@bp.delete("/servers/<name>")
@changing()
def delete_server(name: str):
    components().mcp.remove_server(name)
    logger.bind(mcp_server=name, ip=request.remote_addr).info("MCP server {} removed at runtime", name)
    return jsonify({"name": name, "deleted": True})


@bp.post("/servers/<name>/restart")
@changing()
def restart_server(name: str):
    return jsonify(components().mcp.act("restart", name))


@bp.post("/servers/<name>/refresh")
@changing()
def refresh_server(name: str):
    return jsonify(components().mcp.act("refresh", name))


@bp.post("/execute")
@changing(servers=False)
def execute():
    req = load_json(_execute_schema)
    server, tool = req["server"], req["tool"]
    result = _pool_for(server).call_tool(server, tool, req["arguments"], request_id=g.request_id)
    return jsonify({"server": server, "tool": tool, "result": result.text, "is_error": result.is_error,
                    "duration_ms": result.duration_ms})


# -- helpers ---------------------------------------------------------------------------------


def _pool_for(name: str):
    """The worker's pool, to ask about server ``name`` (its methods raise ServerNotFound for unknown names).

    :raises ServerNotFound: when no server was ever configured or added (no pool yet).
    """
    pool = components().mcp.pool_knowing(name)
    if pool is None:
        raise ServerNotFound(f"no MCP server named {name!r}", server=name)
    return pool


def _snake_keys(value: Any) -> Any:
    """MCP's camelCase keys (``mimeType``, ``uriTemplate``) in snake_case, at every depth; ``_meta`` kept as sent."""
    if isinstance(value, dict):
        return {k if k.startswith("_") else _CAMEL.sub("_", k).lower(): v if k.startswith("_") else _snake_keys(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(item) for item in value]
    return value
