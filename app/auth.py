"""API-key check for every endpoint but health: `X-API-Key` first, then `Authorization: Bearer`.

The admin key (ADMIN_API_KEY) also passes the general check; `require_admin()` guards the endpoints that change things.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask import current_app
from flask import request
from loguru import logger

from .errors import AuthenticationFailed
from .errors import Conflict
from .errors import PermissionDenied

PUBLIC_PATHS = frozenset({"/health", "/health/", "/health/live"})  # no key, no rate limit


def init_app(app: Flask) -> None:
    app.before_request(require_api_key)


def presented_key() -> str | None:
    """The key the client sent, from X-API-Key or a Bearer Authorization header."""
    keys = presented_keys()
    return keys[0] if keys else None


def presented_keys() -> list[str]:
    """Every key the client sent: X-API-Key's, then the Bearer one."""
    keys = []
    key = request.headers.get("X-API-Key")
    if key is not None:
        keys.append(key.strip())
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        keys.append(credentials.strip())
    return keys


def key_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def require_api_key() -> None:
    expected = current_app.config["API_KEY"]
    if not expected or request.path in PUBLIC_PATHS or request.method == "OPTIONS":
        return
    presented = presented_key()
    admin = current_app.config["ADMIN_API_KEY"]
    if key_matches(presented, expected) or (admin and key_matches(presented, admin)):
        return
    logger.bind(ip=request.remote_addr, path=request.path).warning(
        "authentication failed: {}", "no API key" if presented is None else "wrong API key")
    raise AuthenticationFailed(
        "Invalid API key: send it in an X-API-Key header or as Authorization: Bearer <key>."
        if presented is not None else "Missing API key: send it in an X-API-Key header or as Authorization: Bearer <key>.")


def require_admin() -> None:
    """For endpoints that change things: the admin key when ADMIN_API_KEY is set, else a direct loopback client.

    A request relayed by a proxy (X-Forwarded-For or Forwarded present) is not a direct loopback client.
    :raises AuthenticationFailed: no key, or an unknown one, while ADMIN_API_KEY is set.
    :raises PermissionDenied: the general API key instead of the admin key; or not loopback.
    """
    admin = current_app.config["ADMIN_API_KEY"]
    log = logger.bind(ip=request.remote_addr, path=request.path)
    if admin:
        keys = presented_keys()
        if any(key_matches(key, admin) for key in keys):
            return
        log.warning("admin request refused: {}", "no admin key" if keys else "not the admin key")
        api_key = current_app.config["API_KEY"]
        if api_key and any(key_matches(key, api_key) for key in keys):
            raise PermissionDenied("This endpoint needs the admin key (ADMIN_API_KEY).", code="admin_key_required")
        raise AuthenticationFailed("Missing or invalid admin key: send ADMIN_API_KEY in an X-API-Key header "
                                   "or as Authorization: Bearer <key>.")
    relayed = request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded")
    if _is_loopback(request.remote_addr) and not relayed:
        return
    log.warning("admin request refused: not a loopback client and no ADMIN_API_KEY set")
    raise PermissionDenied("This endpoint is open only to clients on the gateway's own host (loopback) "
                           "unless ADMIN_API_KEY is set.", code="admin_loopback_only")


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def admin_change(*, single_worker: bool, what: str, instead: str) -> Callable:
    """Guard a view that changes the gateway at runtime: `require_admin()`, and with ``single_worker`` a refusal
    (409) while WORKERS > 1 without REDIS_URL, since such a change would apply to one worker process only."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            require_admin()
            if single_worker and current_app.config["WORKERS"] > 1 and not current_app.config["REDIS_URL"]:
                raise Conflict(f"Runtime {what} apply to one worker process only, so they are refused with "
                               f"WORKERS > 1: run with WORKERS=1, or {instead}.", code="multi_worker_runtime_change")
            return view(*args, **kwargs)

        return guarded

    return wrap
