"""Rate limiting on flask-limiter: limit string from RATE_LIMIT_RPS, OpenAI headers, JSON 429s."""

from __future__ import annotations

import hashlib
import math
import time
from fractions import Fraction

from flask import Flask
from flask import current_app
from flask import request
from flask_limiter import RateLimitExceeded
from loguru import logger

from .errors import RateLimited


def limit_string(rps: float) -> str:
    """`50/second` for whole rates, `1 per 2 second` for 0.5 rps."""
    ratio = Fraction(rps).limit_denominator(3600)
    return f"{ratio.numerator} per {ratio.denominator} second"


def rate_limit_key() -> str:
    scope = current_app.config.get("RATE_LIMIT_SCOPE", "ip")
    if scope == "global":
        return "global"
    if scope == "key":
        from .auth import presented_key

        key = presented_key()
        if key:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "ip:" + (request.remote_addr or "unknown")


def init_app(app: Flask, limiter) -> None:
    """Bind the limiter with settings from config; a zero rate switches it off."""
    rps = app.config["RATE_LIMIT_RPS"]
    app.config.update(
        RATELIMIT_ENABLED=rps > 0,
        RATELIMIT_DEFAULT=limit_string(rps) if rps > 0 else None,
        RATELIMIT_STORAGE_URI=app.config["RATE_LIMIT_STORAGE_URI"],
        RATELIMIT_STRATEGY="sliding-window-counter",
        RATELIMIT_HEADERS_ENABLED=False,
        RATELIMIT_SWALLOW_ERRORS=True,
    )
    limiter.init_app(app)

    @app.after_request
    def _add_headers(response):
        """OpenAI's x-ratelimit-* request headers for the limit that applied."""
        current = limiter.current_limit
        if current is not None:
            response.headers["x-ratelimit-limit-requests"] = str(current.limit.amount)
            response.headers["x-ratelimit-remaining-requests"] = str(current.remaining)
            response.headers["x-ratelimit-reset-requests"] = f"{math.ceil(max(0.0, current.reset_at - time.time()))}s"
        return response

    @app.errorhandler(RateLimitExceeded)
    def _limited(err: RateLimitExceeded):
        retry_after = _retry_after(limiter)
        logger.bind(ip=request.remote_addr, path=request.path, limit=str(err.limit.limit),
                    retry_after_seconds=retry_after, limiter_decision="rate_limited").warning("rate limit exceeded")
        error = RateLimited(f"Rate limit reached: {err.limit.limit}. Retry after {retry_after} s.",
                            headers={"Retry-After": str(retry_after)})
        return error.body(), error.status, error.headers


def _retry_after(limiter) -> int:
    current = limiter.current_limit
    if current is None:
        return 1
    return max(1, math.ceil(current.reset_at - time.time()))

