"""The keys the gateway accepts (the file's named keys, API_KEY's and ADMIN_API_KEY's) and which one a request
presents, resolved once per request and named in its tally."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask import current_app
from flask import g
from flask import request

from .. import tally
from ..settings.keys import ADMIN_KEY_NAME
from ..settings.keys import DEFAULT_KEY_NAME
from .spec import ApiKey

RING_KEY = "llamagate.keys"
_UNRESOLVED = object()


class KeyRing:
    """Every accepted key, with what the hooks need to know about them all, computed once."""

    def __init__(self, named: tuple[ApiKey, ...] = (), *, api_key: str = "", admin_key: str = ""):
        singles = []
        if api_key:
            singles.append(ApiKey(DEFAULT_KEY_NAME, _digest(api_key), secret=api_key))
        if admin_key:
            singles.append(ApiKey(ADMIN_KEY_NAME, _digest(admin_key), secret=admin_key, admin=True))
        self.keys = (*singles, *named)
        self.by_name = {key.name: key for key in self.keys}
        self.required = bool(api_key or named)  # without either, auth is off
        self.admin_by_key = any(key.admin for key in self.keys)  # else the admin rule is loopback-only
        self.limited = any(key.limited for key in self.keys)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> KeyRing:
        return cls(tuple(settings.get("KEYS") or ()), api_key=settings.get("API_KEY", ""),
                   admin_key=settings.get("ADMIN_API_KEY", ""))

    def match(self, presented: str) -> ApiKey | None:
        """The key with this value: every digest is compared, in constant time, whichever matches."""
        digest = _digest(presented)
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.digest, digest):
                found = key
        return found


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def key_ring(app: Flask | None = None) -> KeyRing:
    """The app's KeyRing, built from its settings on first use."""
    app = app or current_app._get_current_object()
    ring = app.extensions.get(RING_KEY)
    if ring is None:
        ring = app.extensions[RING_KEY] = KeyRing.from_settings(app.config)
    return ring


def presented_keys() -> list[str]:
    """Every key the client sent: X-API-Key's, then the Bearer one."""
    keys = []
    headers = request._get_current_object().headers  # one proxy lookup, not one per read
    key = headers.get("X-API-Key")
    if key is not None:
        keys.append(key.strip())
    scheme, _, credentials = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        keys.append(credentials.strip())
    return keys


def presented_key() -> str | None:
    """The key the client sent, from X-API-Key or a Bearer Authorization header."""
    keys = presented_keys()
    return keys[0] if keys else None


def request_key() -> ApiKey | None:
    """The accepted key this request presents (its first one), or None; its name goes into the request's tally."""
    state = g._get_current_object()  # one proxy lookup, not one per read
    found = state.get("api_key", _UNRESOLVED)
    if found is _UNRESOLVED:
        ring = key_ring()
        presented = presented_key() if ring.keys else None
        found = ring.match(presented) if presented else None
        state.api_key = found
        if found is not None:
            tally.current().key_name = found.name
    return found  # type: ignore[return-value]
