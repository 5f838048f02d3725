"""One structured log line per request, written when the response (or stream) is finished; then the finishers
registered with `app.tally.on_finish` (token budgets, metrics) read the same request's tally."""

from __future__ import annotations

import time

from flask import Flask
from flask import current_app
from flask import g
from flask import request
from loguru import logger

from . import tally as tallies
from .logs import access_line


def init_app(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_log_on_close)


def _begin() -> None:
    tallies.begin()


def _log_on_close(response):
    req, state = request._get_current_object(), g._get_current_object()  # one proxy lookup each, not one a read
    tally = state.get("tally") or tallies.begin()
    rule = req.url_rule
    route = rule.rule if rule is not None else "unmatched"
    status = response.status_code
    request_id = state.get("request_id")
    fields = {"method": req.method, "path": req.path, "status": status, "ip": req.remote_addr}
    finishers = tallies.finishers(current_app._get_current_object())

    def write() -> None:
        if tally.tokens:
            fields["prompt_tokens"], fields["completion_tokens"] = tally.prompt_tokens, tally.completion_tokens
        fields["latency_ms"] = round((time.perf_counter() - tally.started) * 1000, 3)
        access_line(fields, request_id=request_id, key_name=tally.key_name)
        for finish in finishers:
            try:
                finish(tally, status, route)
            except Exception:
                logger.exception("request finisher failed")

    response.call_on_close(write)
    return response
