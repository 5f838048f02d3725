"""Rate limiting: the gateway-wide RATE_LIMIT_RPS and each key's rpm, tpm and max_concurrent, with OpenAI's
x-ratelimit-* headers and JSON 429s.

One `before_request` hook checks every limit of a request in one storage call (one Redis round trip), and one
finisher adds its tokens and frees its slot when the response closes: flask-limiter's generic per-route hooks cost
more per request (about 0.13 ms, measured) than a cache hit. Windows are aligned to the clock, so reset times are
computed here, not read back. The counts live in RATE_LIMIT_STORAGE_URI: this process's memory
(app.keys.local_counts) or a `limits` storage such as Redis.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from flask import Flask
from flask import Request
from flask import g
from flask import request
from loguru import logger

from . import tally as tallies
from .auth import PUBLIC_PATHS
from .errors import APIError
from .errors import RateLimited
from .keys.counters import BY_CONCURRENCY
from .keys.counters import BY_TOKENS
from .keys.counters import Admission
from .keys.counters import Counters
from .keys.counters import Slot
from .keys.counters import Window
from .keys.counters import counters_for
from .keys.counters import key_prefix
from .keys.counters import storage_for
from .keys.ring import key_ring
from .keys.ring import presented_key
from .keys.ring import request_key
from .keys.spec import ApiKey
from .metrics import RATE_LIMITED
from .process_id import process_id
from .store.link import Outage

LIMITS_KEY = "llamagate.limits"
# A dead Redis costs at most this per try (and is tried once a second, app.store.link): never a request's latency.
STORAGE_TIMEOUT = 0.5
_REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "unix")
KEY_USAGE_PATH = "/v1/keys/me"  # a key over its limits may still read them: counted by RATE_LIMIT_RPS only


def limit_string(rps: float) -> str:
    """`50 per 1 second` for whole rates, `1 per 2 second` for 0.5 rps."""
    ratio = Fraction(rps).limit_denominator(3600)
    return f"{ratio.numerator} per {ratio.denominator} second"


def rate_limit_key(scope: str, req: Request) -> str:
    """Who RATE_LIMIT_RPS counts of `req`: its client address, its key (RATE_LIMIT_SCOPE=key) or everyone (global)."""
    if scope == "global":
        return "global"
    if scope == "key":
        found = request_key()
        if found is not None:
            return "name:" + found.name
        key = presented_key()
        if key:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "ip:" + (req.remote_addr or "unknown")


@dataclass(frozen=True)
class KeyCounts:
    """One key's storage keys, made once: the minute windows get the minute appended."""

    key: ApiKey
    requests: str
    tokens: str
    in_flight: str


class Limits:
    """The app's limits and their counts; one per app, shared by its request threads."""

    def __init__(self, app: Flask, storage: Any):
        settings = app.config
        self.counters: Counters = counters_for(storage)
        self.fail_open: bool = settings["RATE_LIMIT_FAIL_OPEN"]
        self.scope: str = settings.get("RATE_LIMIT_SCOPE", "ip")
        self.outage = Outage("rate limit storage")
        prefix = key_prefix(storage)
        rps = settings["RATE_LIMIT_RPS"]
        ratio = Fraction(rps).limit_denominator(3600) if rps > 0 else None
        self.rps = (ratio.numerator, ratio.denominator) if ratio else None
        self.rps_text = limit_string(rps) if rps > 0 else ""
        self.rps_prefix = f"{prefix}rps:{self.rps_text.replace(' ', '')}:"
        self.keys = {key.name: KeyCounts(key, f"{prefix}rpm:{key.name}:", f"{prefix}tpm:{key.name}:",
                                         f"{prefix}inflight:{key.name}") for key in key_ring(app).keys}
        self._members = itertools.count()
        self._open: dict[int, tuple[KeyCounts, Slot]] = {}  # by id() of the request's tally, until it finishes

    # -- before the request ------------------------------------------------------------------------

    def check(self, req: Request) -> None:
        """Count the request `req` in every limit that applies, or refuse it (429) when one is used up."""
        found = request_key()
        counts = self.keys.get(found.name) if found is not None and req.path != KEY_USAGE_PATH else None
        if self.rps is None and counts is None:
            return
        now = time.time()
        windows = []
        if self.rps is not None:
            amount, period = self.rps
            start = int(now // period) * period
            windows.append(Window(f"{self.rps_prefix}{rate_limit_key(self.scope, req)}:{start}", amount, start + period))
        tokens = slot = None
        minute = int(now // 60) * 60
        if counts is not None:
            key = counts.key
            windows.append(Window(f"{counts.requests}{minute}", key.rpm or 0, minute + 60))
            tokens = (f"{counts.tokens}{minute}", key.tpm or 0)
            slot = Slot(counts.in_flight, key.max_concurrent or 0, f"{process_id()}:{next(self._members)}")
        state = g._get_current_object()
        tally = state.get("tally")
        if tally is None:  # no finisher will run for this request: hold no slot
            slot = None
        admission = self._admit(windows, tokens, slot, now)
        if admission is None:
            return
        state.rate_limit_headers = _headers(windows, admission, counts, now, minute)
        if admission.refused:
            self._refuse(admission, windows, counts, now, minute)
        if counts is not None and slot is not None:
            self._open[id(tally)] = (counts, slot)

    def _admit(self, windows, tokens, slot, now) -> Admission | None:
        """The storage's answer; None while it is unreachable and RATE_LIMIT_FAIL_OPEN lets requests through."""
        if self.outage.should_try():
            try:
                admission = self.counters.admit(windows, tokens, slot, now)
            except Exception as err:  # redis' errors, a memcached or mongodb failure
                self.outage.failed(err, "requests are allowed" if self.fail_open else "requests are refused (503)")
            else:
                self.outage.ok()
                return admission
        if self.fail_open:
            return None
        raise APIError("The rate limit cannot be checked right now; retry shortly.", status=503,
                       code="rate_limit_unavailable", headers={"Retry-After": "1"})

    def _refuse(self, admission: Admission, windows: list[Window], counts: KeyCounts | None, now: float,
                minute: int) -> None:
        name = counts.key.name if counts is not None else ""
        if admission.refused == BY_CONCURRENCY:
            kind, retry_after, code = "concurrency", 1, "concurrency_limit_exceeded"
            text = f"Too many requests in flight for key {name!r}: at most {counts.key.max_concurrent} at once."
        elif admission.refused == BY_TOKENS:
            kind, retry_after, code = "tokens", _seconds_until(minute + 60, now), "rate_limit_exceeded"
            text = f"Token limit reached for key {name!r}: {counts.key.tpm} tokens per minute."
        else:
            window = windows[admission.refused - 1]
            kind, retry_after, code = "requests", _seconds_until(window.ends_at, now), "rate_limit_exceeded"
            if self.rps is not None and admission.refused == 1:
                text = f"Rate limit reached: {self.rps_text}."
            else:
                text = f"Rate limit reached for key {name!r}: {counts.key.rpm} requests per minute."
        RATE_LIMITED.labels(name, kind).inc()
        logger.bind(ip=request.remote_addr, path=request.path, limit=kind, retry_after_seconds=retry_after,
                    limiter_decision="rate_limited").warning("rate limit exceeded")
        raise RateLimited(f"{text} Retry after {retry_after} s.", code=code, headers={"Retry-After": str(retry_after)})

    # -- after it ----------------------------------------------------------------------------------

    def finish(self, tally: tallies.Tally, status: int, route: str) -> None:
        """The finisher: the request's tokens go into its key's minute, and its slot is freed."""
        held = self._open.pop(id(tally), None)
        if held is None:
            return
        counts, slot = held
        now = time.time()
        minute = int(now // 60) * 60
        tokens = (f"{counts.tokens}{minute}", tally.tokens, minute + 60) if tally.tokens else None
        try:  # tried even during a back-off: the slot was taken while the storage was up, and must not leak
            self.counters.finish(tokens, slot, now)
        except Exception as err:
            self.outage.failed(err, "requests are allowed" if self.fail_open else "requests are refused (503)")
        else:
            self.outage.ok()

    def usage(self, key: ApiKey) -> dict | None:
        """This minute's requests and tokens and the requests in flight of `key`; None while the storage is down."""
        counts = self.keys[key.name]
        now = time.time()
        minute = int(now // 60) * 60
        if not self.outage.should_try():
            return None
        try:
            requests, tokens, busy = self.counters.usage(f"{counts.requests}{minute}", f"{counts.tokens}{minute}",
                                                         counts.in_flight, now)
        except Exception as err:
            self.outage.failed(err, "requests are allowed" if self.fail_open else "requests are refused (503)")
            return None
        self.outage.ok()
        return {"requests_this_minute": requests, "tokens_this_minute": tokens, "in_flight": busy,
                "minute_resets_in_seconds": _seconds_until(minute + 60, now), "shared": self.counters.shared}


def _seconds_until(moment: float, now: float) -> int:
    return max(1, math.ceil(moment - now))


def _headers(windows: list[Window], admission: Admission, counts: KeyCounts | None, now: float,
             minute: int) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers: for requests the limit that has the fewest left, for tokens the key's tpm."""
    headers: dict[str, str] = {}
    tightest = None
    for window, count in zip(windows, admission.counts, strict=True):
        if window.limit and (tightest is None or window.limit - count < tightest[1]):
            tightest = (window, window.limit - count)
    if tightest is not None:
        window, left = tightest
        headers["x-ratelimit-limit-requests"] = str(window.limit)
        headers["x-ratelimit-remaining-requests"] = str(max(0, left))
        headers["x-ratelimit-reset-requests"] = f"{_seconds_until(window.ends_at, now)}s"
    if counts is not None and counts.key.tpm:
        headers["x-ratelimit-limit-tokens"] = str(counts.key.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, counts.key.tpm - admission.tokens_used))
        headers["x-ratelimit-reset-tokens"] = f"{_seconds_until(minute + 60, now)}s"
    return headers


def storage_options(uri: str) -> dict:
    """Short timeouts and no retries for Redis, so that a dead server costs a request at most one short wait."""
    if uri.split("://", 1)[0].lower() in _REDIS_SCHEMES:
        return {"socket_timeout": STORAGE_TIMEOUT, "socket_connect_timeout": STORAGE_TIMEOUT}
    return {}


def limits_of(app: Flask) -> Limits | None:
    """The app's Limits, or None when nothing is limited or counted."""
    return app.extensions.get(LIMITS_KEY)


def init_app(app: Flask) -> None:
    """Count in RATE_LIMIT_STORAGE_URI when RATE_LIMIT_RPS > 0 or keys are configured; else add no hook at all."""
    ring = key_ring(app)
    named = bool(app.config.get("KEYS"))
    if app.config["RATE_LIMIT_RPS"] <= 0 and not named and not ring.limited:
        return
    uri = app.config["RATE_LIMIT_STORAGE_URI"]
    limits = app.extensions[LIMITS_KEY] = Limits(app, storage_for(uri, **storage_options(uri)))
    tallies.on_finish(app, limits.finish)

    @app.before_request
    def _check_limits():
        req = request._get_current_object()  # one proxy lookup, not one per read
        if req.path in PUBLIC_PATHS or req.method == "OPTIONS":  # health probes, CORS preflights
            return
        limits.check(req)

    @app.after_request
    def _add_headers(response):
        headers = g._get_current_object().get("rate_limit_headers")
        if headers:
            response.headers.extend(headers)  # none of them is set already: no search for one to replace
        return response
