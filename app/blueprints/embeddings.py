"""POST /v1/embeddings."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify

from ..extensions import components
from ..keys.models import check_model
from ..schemas import load_json
from ..schemas.embeddings import EmbeddingsRequest
from ..services.embeddings import embed

bp = Blueprint("embeddings", __name__, url_prefix="/v1")
_schema = EmbeddingsRequest()


@bp.post("/embeddings")
def embeddings():
    req = load_json(_schema)
    check_model(req["model"], pull_hint=True)
    svc = components()
    return jsonify(embed(svc.ollama, req, g.request_id, svc.settings["KEEP_ALIVE"]))
