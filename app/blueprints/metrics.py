"""GET /metrics: the Prometheus metrics of every worker; METRICS_PUBLIC serves them without the API key."""

from __future__ import annotations

from flask import Blueprint
from flask import Flask
from flask import current_app
from flask import request
from prometheus_client import CONTENT_TYPE_LATEST

from .. import tally
from ..metrics import exposition
from ..metrics import record_request

PATH = "/metrics"

bp = Blueprint("metrics", __name__)


@bp.get(PATH)
def metrics():
    """Prometheus metrics in the text format: requests, latency, first-token time, tokens, cache, limits, upstream,
    MCP tool calls and open streams, summed over the gunicorn workers."""
    return current_app.response_class(exposition(), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """With METRICS_ENABLED, count every request when it finishes; with METRICS_PUBLIC, answer /metrics here, before
    the API-key check runs (the route itself is registered with the blueprints)."""
    if not app.config["METRICS_ENABLED"]:
        return
    tally.on_finish(app, record_request)
    if app.config["METRICS_PUBLIC"]:
        app.before_request(_serve_public)


def _serve_public():
    if request.path == PATH and request.method in ("GET", "HEAD"):
        return metrics()
    return None
