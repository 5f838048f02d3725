"""POST /v1/chat/completions: the request's bytes into the chat pipeline, its answer out as JSON or SSE."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import g
from flask import request

from ..extensions import components
from ..pipeline import Whole
from ..streaming import sse_events
from ..streaming import sse_response
from ..tally import current as current_tally

bp = Blueprint("chat", __name__, url_prefix="/v1")


@bp.post("/chat/completions")
def chat_completions():
    req = request._get_current_object()  # one proxy lookup, not one per read
    directives = req.headers.get("Cache-Control", "").lower()
    answer = components().chat.handle(req.get_data(), request_id=g._get_current_object().request_id,
                                      cache_allowed="no-cache" not in directives and "no-store" not in directives,
                                      framed=True)
    if isinstance(answer, Whole):
        current_tally().cache = answer.cache
        return Response(answer.body, mimetype="application/json", headers={"X-Cache": answer.cache, **answer.headers})
    return sse_response(sse_events(answer.chunks), headers=dict(answer.headers))
