"""GET /v1/keys/me: the calling key's name, limits and usage this minute; never the key or its hash."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import jsonify

from ..errors import NotFound
from ..keys.ring import request_key
from ..ratelimit import limits_of

bp = Blueprint("keys", __name__, url_prefix="/v1")


@bp.get("/keys/me")
def me():
    key = request_key()
    if key is None:
        raise NotFound("This request carries no configured API key (auth is off).", code="no_api_key")
    limits = limits_of(current_app)
    usage = limits.usage(key) if limits is not None else None  # None: not counted, or the storage is down
    return jsonify({"object": "api_key", "name": key.name, **key.limits(), "usage": usage})
