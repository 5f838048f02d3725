"""POST /v1/completions: legacy text completions (fill-in-the-middle with `suffix`), whole or as SSE."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify

from ..extensions import components
from ..keys.models import check_model
from ..schemas import load_json
from ..schemas.completions import CompletionRequest
from ..services import completions
from ..streaming import sse_events
from ..streaming import sse_response

bp = Blueprint("completions", __name__, url_prefix="/v1")
_schema = CompletionRequest()


@bp.post("/completions")
def create_completion():
    req = load_json(_schema)
    check_model(req["model"])
    svc = components()
    keep_alive = svc.settings["KEEP_ALIVE"]
    if req.get("stream"):
        return sse_response(sse_events(completions.stream(svc.ollama, req, g.request_id, keep_alive)))
    return jsonify(completions.complete(svc.ollama, req, g.request_id, keep_alive))
