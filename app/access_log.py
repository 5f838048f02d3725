"""One structured log line per request, written when the response (or stream) is finished."""

from __future__ import annotations

import time

from flask import Flask
from flask import g
from flask import request
from loguru import logger


def init_app(app: Flask) -> None:
    app.before_request(_start_clock)
    app.after_request(_log_on_close)


def _start_clock() -> None:
    g.started = time.perf_counter()


def _log_on_close(response):
    started = g.get("started", time.perf_counter())
    fields = {"request_id": g.get("request_id"), "method": request.method, "path": request.path,
              "status": response.status_code, "ip": request.remote_addr}

    def write() -> None:
        latency = round((time.perf_counter() - started) * 1000, 3)
        logger.bind(**fields, latency_ms=latency).info("HTTP request")

    response.call_on_close(write)
    return response
