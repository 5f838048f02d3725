"""API-key check for every endpoint but health: `X-API-Key` first, then `Authorization: Bearer`.

The accepted keys are the file's named `keys:`, API_KEY's (named ``default``) and ADMIN_API_KEY's (``admin``); with
any of the first two, auth is on. `require_admin()` guards the endpoints that change things: it takes ADMIN_API_KEY
or a named key with ``admin: true``; `require_admin_to_read()` makes the admin APIs' reads need that key too once one exists.
"""

from __future__ import annotations

import functools
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
from .keys.ring import key_ring
from .keys.ring import presented_key
from .keys.ring import presented_keys
from .keys.ring import request_key

PUBLIC_PATHS = frozenset({"/health", "/health/", "/health/live"})  # no key, no rate limit
_HOW = "send it in an X-API-Key header or as Authorization: Bearer <key>."


def init_app(app: Flask) -> None:
    key_ring(app)
    app.before_request(require_api_key)


def require_api_key() -> None:
    req = request._get_current_object()  # one proxy lookup, not one per read
    if req.path in PUBLIC_PATHS or req.method == "OPTIONS":
        return
    if request_key() is not None or not key_ring().required:
        return
    presented = presented_key()
    logger.bind(ip=request.remote_addr, path=request.path).warning(
        "authentication failed: {}", "no API key" if presented is None else "wrong API key")
    raise AuthenticationFailed(f"Invalid API key: {_HOW}" if presented is not None else f"Missing API key: {_HOW}")


def require_admin() -> None:
    """For endpoints that change things: an admin key (ADMIN_API_KEY, or a named key with ``admin: true``) when
    there is one, else a direct loopback client.

    A request relayed by a proxy (X-Forwarded-For or Forwarded present) is not a direct loopback client.
    :raises AuthenticationFailed: no key, or an unknown one, while an admin key exists.
    :raises PermissionDenied: a key without the admin right; or not loopback.
    """
    ring = key_ring()
    log = logger.bind(ip=request.remote_addr, path=request.path)
    if ring.admin_by_key:
        found = [ring.match(key) for key in presented_keys()]
        if any(key is not None and key.admin for key in found):
            return
        log.warning("admin request refused: {}", "not an admin key" if found else "no admin key")
        if any(key is not None for key in found):
            raise PermissionDenied("This endpoint needs an admin key (ADMIN_API_KEY, or a key with admin: true).",
                                   code="admin_key_required")
        raise AuthenticationFailed(f"Missing or invalid admin key: {_HOW}")
    relayed = request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded")
    if _is_loopback(request.remote_addr) and not relayed:
        return
    log.warning("admin request refused: not a loopback client and no admin key set")
    raise PermissionDenied("This endpoint is open only to clients on the gateway's own host (loopback) "
                           "unless ADMIN_API_KEY (or a key with admin: true) is set.", code="admin_loopback_only")


def require_admin_to_read() -> None:
    """For the admin APIs' reads, which show stdio commands, environment names and plugin settings: once an admin
    key exists they need it too; without one the general key is enough, as everywhere."""
    if key_ring().admin_by_key:
        require_admin()


def admin_read(view: Callable) -> Callable:
    """Guard a view that reads the gateway's configuration with `require_admin_to_read()`."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        require_admin_to_read()
        return view(*args, **kwargs)

    return guarded


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def admin_change(*, single_worker: bool, what: str, instead: str, shared: bool = False) -> Callable:
    """Guard a view that changes the gateway at runtime: `require_admin()`, and with ``single_worker`` a refusal
    (409) while WORKERS > 1, since such a change would apply to one worker process only — unless the change is
    ``shared`` through Redis (REDIS_URL set) with every worker."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            require_admin()
            alone = not (shared and current_app.config["REDIS_URL"])
            if single_worker and alone and current_app.config["WORKERS"] > 1:
                raise Conflict(f"Runtime {what} apply to one worker process only, so they are refused with "
                               f"WORKERS > 1: run with WORKERS=1, or {instead}.", code="multi_worker_runtime_change")
            return view(*args, **kwargs)

        return guarded

    return wrap
