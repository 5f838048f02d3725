"""POST /v1/chat/completions."""

from __future__ import annotations

from flask import Blueprint
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


@bp.post("/chat/completions")
def chat_completions():
    req = load_json(_schema)
    svc = services()
    chat = svc.chat
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
    answer, outcome = chat.complete(req, g.request_id, use_cache=_cache_allowed())
    response = jsonify(answer)
    response.headers["X-Cache"] = outcome
    return response
