"""Rate limiting: one gateway-wide limit from RATE_LIMIT_RPS, OpenAI's x-ratelimit-* headers, JSON 429s.

flask-limiter owns the configuration, the storage (RATE_LIMIT_STORAGE_URI) and the strategy; the gateway
applies its single limit through the limiter's strategy object in one hook of its own, because
flask-limiter's generic per-route hooks cost more per request (about 0.13 ms, measured) than a cache hit.
"""

from __future__ import annotations

import hashlib
import math
import time
from fractions import Fraction

from flask import Flask
from flask import current_app
from flask import g
from flask import request
from flask_limiter import Limiter
from limits import parse
from loguru import logger

from .auth import PUBLIC_PATHS
from .auth import presented_key
from .errors import APIError
from .errors import RateLimited


def limit_string(rps: float) -> str:
    """`50 per 1 second` for whole rates, `1 per 2 second` for 0.5 rps."""
    ratio = Fraction(rps).limit_denominator(3600)
    return f"{ratio.numerator} per {ratio.denominator} second"


def rate_limit_key() -> str:
    scope = current_app.config.get("RATE_LIMIT_SCOPE", "ip")
    if scope == "global":
        return "global"
    if scope == "key":
        key = presented_key()
        if key:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "ip:" + (request.remote_addr or "unknown")


def init_app(app: Flask, limiter: Limiter) -> None:
    """Bind the limiter; a zero rate switches limiting off."""
    rps = app.config["RATE_LIMIT_RPS"]
    app.config.update(RATELIMIT_ENABLED=rps > 0, RATELIMIT_STORAGE_URI=app.config["RATE_LIMIT_STORAGE_URI"],
                      RATELIMIT_STRATEGY="fixed-window", RATELIMIT_HEADERS_ENABLED=False,
                      RATELIMIT_SWALLOW_ERRORS=True, RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True)
    if rps <= 0:
        return
    # Marking the limiter as registered makes init_app configure storage and strategy without adding its hooks.
    app.extensions.setdefault("limiter", set()).add(limiter)
    limiter.init_app(app)
    item = parse(limit_string(rps))
    fail_open = app.config["RATE_LIMIT_FAIL_OPEN"]

    @app.before_request
    def _check_limit():
        if request.path in PUBLIC_PATHS or request.method == "OPTIONS":  # health probes, CORS preflights
            return
        key = rate_limit_key()
        try:
            allowed = limiter.limiter.hit(item, key)
            retry_after = 0 if allowed else _seconds_to_reset(limiter, item, key)
        except Exception as err:  # a storage outage: allow (logged), or refuse with RATE_LIMIT_FAIL_OPEN=false
            _storage_failed(err, fail_open)
            return
        g.rate_limit = key
        if not allowed:
            logger.bind(ip=request.remote_addr, path=request.path, limit=str(item), retry_after_seconds=retry_after,
                        limiter_decision="rate_limited").warning("rate limit exceeded")
            raise RateLimited(f"Rate limit reached: {item}. Retry after {retry_after} s.",
                              headers={"Retry-After": str(retry_after)})

    @app.after_request
    def _add_headers(response):
        """OpenAI's x-ratelimit-* request headers."""
        key = g.get("rate_limit")
        if key is None:
            return response
        try:
            reset_at, remaining = limiter.limiter.get_window_stats(item, key)
        except Exception as err:  # the headers are left out; the answer itself is not lost
            logger.warning("rate limit storage failed, headers left out: {}", type(err).__name__)
            return response
        response.headers["x-ratelimit-limit-requests"] = str(item.amount)
        response.headers["x-ratelimit-remaining-requests"] = str(remaining)
        response.headers["x-ratelimit-reset-requests"] = f"{max(1, math.ceil(reset_at - time.time()))}s"
        return response


def _storage_failed(err: Exception, fail_open: bool) -> None:
    if fail_open:
        logger.warning("rate limit storage failed, request allowed: {}", type(err).__name__)
        return
    logger.error("rate limit storage failed, request refused: {}", type(err).__name__)
    raise APIError("The rate limit cannot be checked right now; retry shortly.", status=503,
                   code="rate_limit_unavailable", headers={"Retry-After": "1"})


def _seconds_to_reset(limiter: Limiter, item, key: str) -> int:
    reset_at, _ = limiter.limiter.get_window_stats(item, key)
    return max(1, math.ceil(reset_at - time.time()))
