"""A per-worker bound on requests in flight (MAX_CONCURRENT_REQUESTS): past it, after at most 0.1 s, a 503 with
Retry-After.

Without it every thread can end up holding a long stream, and `/health` (exempt, like `/metrics`) would queue behind
them. A slot is taken after the key check and the rate limit, and given back when the response (or stream) closes.
"""

from __future__ import annotations

import threading

from flask import Flask
from flask import current_app
from flask import g
from flask import request

from .auth import PUBLIC_PATHS
from .errors import GatewayBusy

EXTENSION_KEY = "llamagate.capacity"
EXEMPT_PATHS = PUBLIC_PATHS | {"/metrics"}
RETRY_AFTER = "1"
# A request may wait this long for a slot: the last one's slot comes back only once its response is closed, a moment
# after the client has it all (and may already be sending its next request); also smooths a short burst.
SLOT_WAIT = 0.1


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = threading.BoundedSemaphore(app.config["MAX_CONCURRENT_REQUESTS"])
    app.before_request(_take_slot)
    app.after_request(_give_back_on_close)
    app.teardown_request(_give_back_unsent)


def _take_slot() -> None:
    req = request._get_current_object()  # one proxy lookup, not one per read
    if req.path in EXEMPT_PATHS or req.method == "OPTIONS":
        return
    app = current_app._get_current_object()
    slots = app.extensions[EXTENSION_KEY]
    if not slots.acquire(timeout=SLOT_WAIT):
        limit = app.config["MAX_CONCURRENT_REQUESTS"]
        raise GatewayBusy(f"The gateway is busy: this worker is already running {limit} requests "
                          "(MAX_CONCURRENT_REQUESTS). Retry shortly.", headers={"Retry-After": RETRY_AFTER})
    g._get_current_object().capacity_slot = slots


def _give_back_on_close(response):
    slots = g._get_current_object().pop("capacity_slot", None)
    if slots is not None:
        response.call_on_close(slots.release)
    return response


def _give_back_unsent(exc) -> None:
    """A request that ended without a response passing `after_request` (it failed there) frees its slot here."""
    slots = g._get_current_object().pop("capacity_slot", None)
    if slots is not None:
        slots.release()
