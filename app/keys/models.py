"""The models a request's key may use (its `models:` globs). Any other model is answered exactly as an unknown one
(404 model_not_found, Ollama's own wording), and lists leave it out, so a key cannot learn names it may not use."""

from __future__ import annotations

import json
from collections.abc import Iterable

from flask import Response
from flask import has_request_context

from ..errors import NotFound
from .ring import request_key
from .spec import ApiKey

GATEWAY_MODEL_PREFIXES = ("plugin:", "workflow:")
# Ollama's native endpoints that name a model, those whose 404 for an unknown one says "try pulling it first", and
# those that list models.
NATIVE_MODEL_PATHS = frozenset({"/api/chat", "/api/generate", "/api/embed", "/api/embeddings", "/api/show"})
_PULL_HINT_PATHS = ("/api/embed", "/api/embeddings")
NATIVE_LISTING_PATHS = frozenset({"/api/tags", "/api/ps"})


def _restricted() -> ApiKey | None:
    """The request's key when it has a `models:` list; None when every model is allowed."""
    key = request_key() if has_request_context() else None
    return key if key is not None and key.restricts_models else None


def restricts_models() -> bool:
    return _restricted() is not None


def allowed(model: str) -> bool:
    key = _restricted()
    return key is None or key.allows(model)


def check_model(model: str, *, pull_hint: bool = False) -> None:
    """:raises NotFound: the request's key may not use `model` (worded as Ollama words an unknown model)."""
    if not allowed(model):
        raise model_not_found(model, pull_hint=pull_hint)


def model_not_found(model: str, *, pull_hint: bool = False) -> NotFound:
    if model.startswith(GATEWAY_MODEL_PREFIXES):
        message = f"The model {model!r} does not exist."
    else:
        message = _ollama_message(model, pull_hint)
    return NotFound(message, param="model", code="model_not_found")


def _ollama_message(model: str, pull_hint: bool) -> str:
    return f"model {json.dumps(model)} not found, try pulling it first" if pull_hint else f"model '{model}' not found"


def visible(ids: Iterable[str]) -> list[str]:
    """The ids the request's key may use, in their order."""
    key = _restricted()
    return list(ids) if key is None else [name for name in ids if key.allows(name)]


def native_refusal(path: str, data: bytes | None) -> Response | None:
    """For a native call naming a model the key may not use: Ollama's own 404 for an unknown model, else None."""
    key = _restricted()
    if key is None or not data or path not in NATIVE_MODEL_PATHS:
        return None
    try:
        body = json.loads(data)
    except ValueError:
        return None  # Ollama answers a broken body itself
    model = body.get("model") or body.get("name") if isinstance(body, dict) else None
    if not isinstance(model, str) or key.allows(model):
        return None
    error = json.dumps({"error": _ollama_message(model, path in _PULL_HINT_PATHS)}, separators=(",", ":"))
    return Response(error, status=404, content_type="application/json; charset=utf-8")


def native_listing(path: str, status: int, body: bytes) -> bytes:
    """Ollama's `/api/tags` or `/api/ps` answer without the models the key may not use; other answers unchanged."""
    key = _restricted()
    if key is None or status != 200 or path not in NATIVE_LISTING_PATHS:
        return body
    try:
        listing = json.loads(body)
        models = listing["models"]
    except (ValueError, KeyError, TypeError):
        return body
    if not isinstance(models, list):
        return body
    listing["models"] = [entry for entry in models
                         if isinstance(entry, dict) and key.allows(str(entry.get("model") or entry.get("name") or ""))]
    return json.dumps(listing, separators=(",", ":")).encode()
