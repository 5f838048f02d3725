"""GET /v1/models and GET /v1/models/<id> (ids may contain `/` and `:`)."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify

from ..extensions import components
from ..services import models as catalog

bp = Blueprint("models", __name__, url_prefix="/v1")


@bp.get("/models")
def list_models():
    return jsonify(catalog.list_models(components().ollama, g.request_id))


@bp.get("/models/<path:model_id>")
def get_model(model_id: str):
    return jsonify(catalog.get_model(components().ollama, model_id, g.request_id))
