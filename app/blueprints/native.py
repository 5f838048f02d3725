"""Ollama's native API (`/api/...`) and root, relayed to Ollama behind the gateway's auth, limits and logs."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import g
from flask import request
from flask import stream_with_context

from ..auth import require_admin
from ..extensions import components
from ..keys.models import native_listing
from ..keys.models import native_refusal
from ..metrics import open_stream
from ..schemas.parsing import check_nesting
from ..streaming import SSE_HEADERS
from ..upstream.relay import relay

bp = Blueprint("native", __name__)


@bp.route("/", methods=["GET", "HEAD"])
def root():
    """What Ollama's root says, for clients that probe it."""
    return Response("Ollama is running", mimetype="text/plain")


@bp.route("/api/tags", methods=["GET", "HEAD"], endpoint="tags")
@bp.route("/api/ps", methods=["GET", "HEAD"], endpoint="ps")
@bp.route("/api/version", methods=["GET", "HEAD"], endpoint="version")
@bp.post("/api/chat", endpoint="chat")
@bp.post("/api/generate", endpoint="generate")
@bp.post("/api/embed", endpoint="embed")
@bp.post("/api/embeddings", endpoint="embeddings")
@bp.post("/api/show", endpoint="show")
def passthrough():
    return _relayed()


@bp.post("/api/pull", endpoint="pull")
@bp.post("/api/push", endpoint="push")
@bp.post("/api/create", endpoint="create")
@bp.post("/api/copy", endpoint="copy")
@bp.delete("/api/delete", endpoint="delete")
@bp.route("/api/blobs/<digest>", methods=["HEAD", "POST"], endpoint="blobs")
def manage(digest: str | None = None):
    """Model management changes Ollama's store: the admin rule applies."""
    require_admin()
    return _relayed()


def _relayed() -> Response:
    data = request.get_data() if request.method in ("POST", "DELETE") else None  # MAX_REQUEST_BODY applies
    if data:
        check_nesting(data)
    refusal = native_refusal(request.path, data)  # a model the key may not use: as if it did not exist
    if refusal is not None:
        return refusal
    answer = relay(components().ollama, request.method, request.path, data,
                   content_type=request.headers.get("Content-Type"), request_id=g.request_id)
    if answer.chunks is None:
        body = native_listing(request.path, answer.status, answer.body)
        return Response(body, status=answer.status, content_type=answer.content_type)
    return Response(stream_with_context(open_stream(answer.chunks)), status=answer.status, content_type=answer.content_type,
                    headers=SSE_HEADERS)
