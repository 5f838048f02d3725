"""GET /v1/models and GET /v1/models/<id> (ids may contain `/` and `:`)."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify

from ..errors import NotFound
from ..extensions import components
from ..services import models as catalog

bp = Blueprint("models", __name__, url_prefix="/v1")


@bp.get("/models")
def list_models():
    parts = components()
    extra = [*parts.plugins.model_names(), *parts.workflows.model_names()]
    return jsonify(catalog.list_models(parts.ollama, g.request_id, extra=extra))


@bp.get("/models/<path:model_id>")
def get_model(model_id: str):
    parts = components()
    if model_id.startswith(("plugin:", "workflow:")):
        if model_id not in [*parts.plugins.model_names(), *parts.workflows.model_names()]:
            raise NotFound(f"The model {model_id!r} does not exist.", param="model", code="model_not_found")
        return jsonify(catalog.model_object(model_id, None))
    return jsonify(catalog.get_model(parts.ollama, model_id, g.request_id))
