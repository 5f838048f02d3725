"""CORS for browser clients (flask-cors), from CORS_ORIGINS: empty = off, `*`, or a comma-separated list of origins.

Preflights are answered here, before the rate limit and the API-key check, and never reach a view; with CORS off
nothing is registered, so no CORS header is ever sent and requests pay nothing for it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import Flask
from flask import current_app
from flask import request

# Request headers a browser client may send: the gateway's own, and the OpenAI SDKs' `x-stainless-*` telemetry.
ALLOW_HEADERS = ("Authorization", "X-API-Key", "Content-Type", "X-Request-ID", r"x-stainless-[a-z0-9-]+$")
# Response headers a browser client may read.
EXPOSE_HEADERS = ("X-Request-ID", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                  "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                  "x-ratelimit-reset-tokens", "Retry-After", "X-Cache", "X-LlamaGate-Run-Id")
PREFLIGHT_MAX_AGE = 600  # seconds a browser may reuse a preflight's answer
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
RULE = ("must be empty, * or a comma-separated list of origins (scheme://host[:port], no path), "
        "such as https://chat.example.com,http://localhost:3000")


def parse_origins(value: str) -> tuple[str, ...]:
    """The origins of a CORS_ORIGINS value: ``()`` (off), ``("*",)``, or each origin as scheme://host[:port].

    :raises ValueError: naming the first entry that is not an origin.
    """
    entries = tuple(part.strip() for part in value.split(",")) if value.strip() else ()
    if entries == ("*",):
        return entries
    for entry in entries:
        if entry == "*":
            raise ValueError(f"{RULE}; * stands alone")
        if "@" in entry or "?" in entry:  # user info and queries may hold secrets: not echoed
            raise ValueError(f"{RULE}; an origin has no user@ part and no ?query")
        if not _is_origin(entry):
            raise ValueError(f"{RULE}; {entry!r} is not one" if entry else f"{RULE}; an entry is empty")
    return entries


def _is_origin(entry: str) -> bool:
    try:
        parts = urlsplit(entry)
        port = parts.port
    except ValueError:
        return False
    return (bool(_SCHEME.fullmatch(parts.scheme)) and bool(parts.hostname)
            and entry.lower() == f"{parts.scheme}://{parts.netloc}".lower() and (port is None or port > 0))


def init_app(app: Flask) -> None:
    """Answer CORS for the configured origins; call it before the rate limit and the API-key check are added."""
    origins = parse_origins(app.config["CORS_ORIGINS"])
    if not origins:
        return
    from flask_cors import CORS

    app.before_request(_answer_preflight)
    # Every option is given here, so flask-cors never reads CORS_* from app.config (CORS_ORIGINS is our raw string).
    CORS(app, origins=list(origins), send_wildcard=origins == ("*",), always_send=False,
         allow_headers=list(ALLOW_HEADERS), expose_headers=list(EXPOSE_HEADERS), max_age=PREFLIGHT_MAX_AGE,
         supports_credentials=False, vary_header=True)


def _answer_preflight():
    """A browser's preflight (OPTIONS with Origin and Access-Control-Request-Method): 204, headers by flask-cors."""
    if (request.method == "OPTIONS" and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers):
        return current_app.response_class(status=204)
    return None
