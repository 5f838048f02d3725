"""GET/HEAD /health (Ollama reachable?) and /health/live (process up); no auth, no rate limit."""

from __future__ import annotations

from flask import Blueprint
from flask import jsonify

from ..errors import APIError
from ..extensions import components

bp = Blueprint("health", __name__)


@bp.route("/health", methods=["GET", "HEAD"])
def health():
    svc = components()
    host = svc.settings["OLLAMA_HOST"]
    try:
        version = svc.ollama.get_json("/api/version", timeout=svc.settings["HEALTH_CHECK_TIMEOUT"]).get("version")
    except APIError as err:  # the error in the usual envelope, beside the report's own fields
        return jsonify({"status": "unhealthy", "ollama": "disconnected", "ollama_host": host, **err.body()}), 503
    return jsonify({"status": "healthy", "ollama": "connected", "ollama_version": version, "ollama_host": host})


@bp.route("/health/live", methods=["GET", "HEAD"])
def live():
    return jsonify({"status": "alive"})
