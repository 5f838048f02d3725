"""POST /v1/chat/completions."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import g
from flask import jsonify
from flask import request

from ..extensions import services
from ..schemas import load_json
from ..schemas.chat import ChatCompletionRequest
from ..streaming import sse_response

bp = Blueprint("chat", __name__, url_prefix="/v1")
_schema = ChatCompletionRequest()


def _cache_allowed() -> bool:
    directives = request.headers.get("Cache-Control", "").lower()
    return "no-cache" not in directives and "no-store" not in directives


def _json(body: bytes, cache_outcome: str):
    return current_app.response_class(body, mimetype="application/json", headers={"X-Cache": cache_outcome})


@bp.post("/chat/completions")
def chat_completions():
    svc = services()
    chat = svc.chat
    use_cache = _cache_allowed()
    # With MCP the same bytes can mean other tools or resources over time, so only plain chats take the shortcut.
    plain = svc.mcp.pool is None
    if use_cache and plain:
        cached = chat.cached_by_body(request.get_data())
        if cached is not None:
            return _json(cached, "HIT")
    req = load_json(_schema)
    req, toolset = svc.mcp.prepare(req)
    if toolset:
        loop = svc.mcp.tool_loop
        body = chat.upstream_body(req, stream=bool(req.get("stream")))
        if req.get("stream"):
            return sse_response(loop.stream(req, body, toolset, g.request_id))
        response = jsonify(loop.complete(body, toolset, g.request_id))
        response.headers["X-Cache"] = "BYPASS"
        return response
    if req.get("stream"):
        return sse_response(chat.stream(req, g.request_id))
    answer, outcome = chat.complete(req, g.request_id, use_cache=use_cache,
                                    raw_body=request.get_data() if plain else None)
    return _json(answer, outcome)
