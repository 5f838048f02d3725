"""GET /v1/models and GET /v1/models/<id> (ids may contain `/` and `:`)."""

from __future__ import annotations

from flask import Blueprint
from flask import g
from flask import jsonify

from ..errors import NotFound
from ..extensions import components
from ..keys.models import check_model
from ..keys.models import visible
from ..services import models as catalog

bp = Blueprint("models", __name__, url_prefix="/v1")


@bp.get("/models")
def list_models():
    parts = components()
    extra = [*parts.plugins.model_names(), *parts.workflows.model_names()]
    listing = catalog.list_models(parts.ollama, g.request_id, extra=extra)
    shown = set(visible(entry["id"] for entry in listing["data"]))  # a key limited to some models sees those only
    listing["data"] = [entry for entry in listing["data"] if entry["id"] in shown]
    return jsonify(listing)


@bp.get("/models/<path:model_id>")
def get_model(model_id: str):
    parts = components()
    check_model(model_id)
    if model_id.startswith(("plugin:", "workflow:")):
        if model_id not in [*parts.plugins.model_names(), *parts.workflows.model_names()]:
            raise NotFound(f"The model {model_id!r} does not exist.", param="model", code="model_not_found")
        return jsonify(catalog.model_object(model_id, None))
    return jsonify(catalog.get_model(parts.ollama, model_id, g.request_id))
