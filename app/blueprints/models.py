"""GET /v1/models and GET /v1/models/<id> (ids may contain `/` and `:`)."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify

from ..extensions import services
from ..services import catalog

bp = Blueprint("models", __name__, url_prefix="/v1")


@bp.get("/models")
def list_models():
    return jsonify(catalog.list_models(services().ollama, g.request_id))


@bp.get("/models/<path:model_id>")
def get_model(model_id: str):
    return jsonify(catalog.get_model(services().ollama, model_id, g.request_id))
