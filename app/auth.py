"""API-key check for every endpoint but health: `X-API-Key` first, then `Authorization: Bearer`."""

from __future__ import annotations

import hmac

from flask import Flask
from flask import current_app
from flask import request
from loguru import logger

from .errors import AuthenticationFailed

PUBLIC_PATHS = frozenset({"/health", "/health/", "/health/live"})


def init_app(app: Flask) -> None:
    app.before_request(require_api_key)


def presented_key() -> str | None:
    """The key the client sent, from X-API-Key or a Bearer Authorization header."""
    key = request.headers.get("X-API-Key")
    if key is not None:
        return key.strip()
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def key_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def require_api_key() -> None:
    expected = current_app.config["API_KEY"]
    if not expected or request.path in PUBLIC_PATHS or request.method == "OPTIONS":
        return
    presented = presented_key()
    if key_matches(presented, expected):
        return
    logger.bind(ip=request.remote_addr, path=request.path).warning(
        "authentication failed: {}", "no API key" if presented is None else "wrong API key")
    raise AuthenticationFailed(
        "Invalid API key: send it in an X-API-Key header or as Authorization: Bearer <key>."
        if presented is not None else "Missing API key: send it in an X-API-Key header or as Authorization: Bearer <key>.")
