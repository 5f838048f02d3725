"""The gateway's Prometheus collectors, declared once; under gunicorn they count in multiprocess mode.

Code that has something to count imports the collector it needs from here; `/metrics` serves them all.
Label values are bounded: routes are URL rules (not paths), keys are key names, models are model names.
"""

from __future__ import annotations

import functools
import glob
import os
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

from flask import current_app
from loguru import logger
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess
from prometheus_client import values

from .process_id import process_id
from .tally import Tally

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable; gunicorn.conf.py sets it
if os.environ.get(MULTIPROCESS_DIR):  # before any collector is declared: each takes its value class when made
    values.ValueClass = values.MultiProcessValue(process_identifier=process_id)

# Seconds: answers of a local model take from a millisecond (a cache hit) to minutes (a long generation).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
FIRST_TOKEN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)

REQUESTS = Counter("llamagate_requests", "HTTP requests answered, by URL rule, method, status and key name",
                   ["route", "method", "status", "key"])
REQUEST_SECONDS = Histogram("llamagate_request_duration_seconds",
                            "Time from request to the end of its response (of a stream: its last byte)", ["route"],
                            buckets=LATENCY_BUCKETS)
FIRST_TOKEN_SECONDS = Histogram("llamagate_time_to_first_token_seconds",
                                "Time from request to the first upstream token", ["model"], buckets=FIRST_TOKEN_BUCKETS)
TOKENS = Counter("llamagate_tokens", "Tokens counted from upstream usage; direction in (prompt) or out (completion)",
                 ["model", "key", "direction"])
CACHE = Counter("llamagate_cache_requests", "Answer cache lookups by outcome (hit, miss, bypass)", ["outcome"])
RATE_LIMITED = Counter("llamagate_rate_limited", "Requests refused by a limit", ["key", "limit"])
UPSTREAM_ERRORS = Counter("llamagate_upstream_errors", "Failed upstream requests", ["backend", "kind"])
UPSTREAM_IN_FLIGHT = Gauge("llamagate_upstream_in_flight", "Requests in flight to each backend", ["backend"],
                           multiprocess_mode="livesum")
MCP_TOOL_CALLS = Counter("llamagate_mcp_tool_calls", "Tool calls by server (a plugin's name for its tools), tool "
                         "and outcome (ok, error, timeout, rejected)", ["server", "tool", "outcome"])
OPEN_STREAMS = Gauge("llamagate_open_streams", "Streamed responses currently open", multiprocess_mode="livesum")

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is OTHER
_CACHE_OUTCOMES = {answer: CACHE.labels(answer.lower()) for answer in ("HIT", "MISS", "BYPASS")}


class Children:
    """A collector's children by label values, each bound once (`labels()` checks and locks on every call).

    The label values are bounded, so this holds no more entries than the metric has series.
    """

    def __init__(self, collector):
        self.collector = collector
        self.bound: dict[tuple, Any] = {}

    def get(self, values: tuple):
        child = self.bound.get(values)
        if child is None:
            child = self.bound[values] = self.collector.labels(*(str(value) for value in values))
        return child


_requests = Children(REQUESTS)
_request_seconds = Children(REQUEST_SECONDS)
_first_token_seconds = Children(FIRST_TOKEN_SECONDS)
_tokens = Children(TOKENS)
_tool_calls = Children(MCP_TOOL_CALLS)


def record_request(tally: Tally, status: int, route: str) -> None:
    """The finisher (`app.tally.on_finish`) that counts one request once its response, or stream, has closed."""
    seconds = time.perf_counter() - tally.started
    method = tally.method
    _requests.get((route, method if method in KNOWN_METHODS else "OTHER", status, tally.key_name)).inc()
    _request_seconds.get((route,)).observe(seconds)
    if tally.first_token_at is not None:
        _first_token_seconds.get((tally.model,)).observe(tally.first_token_at - tally.started)
    if tally.prompt_tokens:
        _tokens.get((tally.model, tally.key_name, "in")).inc(tally.prompt_tokens)
    if tally.completion_tokens:
        _tokens.get((tally.model, tally.key_name, "out")).inc(tally.completion_tokens)
    if tally.cache:
        outcome = _CACHE_OUTCOMES.get(tally.cache)
        if outcome is not None:
            outcome.inc()


def count_tool_call(server: str, tool: str, outcome: str) -> None:
    """One tool call of `server` (an MCP server, or the plugin that provides the tool) and how it ended."""
    _safely(lambda: _tool_calls.get((server, tool, outcome)).inc())


def open_stream(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """`chunks` counted in OPEN_STREAMS while they are sent; as they are with METRICS_ENABLED=false."""
    return _open_while_sent(chunks) if current_app.config["METRICS_ENABLED"] else chunks


def _open_while_sent(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """From the first byte to the end, however the stream ends (a client that leaves closes it)."""
    opened = _safely(OPEN_STREAMS.inc)
    try:
        yield from chunks
    finally:
        if opened:
            _safely(OPEN_STREAMS.dec)


def exposition() -> bytes:
    """Every collector in Prometheus's text format: of all gunicorn workers in multiprocess mode."""
    return generate_latest(_registry())


@functools.cache
def _registry():
    """Multiprocess mode reads every worker's files (the dead ones' too: their counts stay); else this process's."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return REGISTRY
    registry = CollectorRegistry()
    _WorkerFiles(registry, os.environ[MULTIPROCESS_DIR])
    return registry


class _WorkerFiles(multiprocess.MultiProcessCollector):
    """The multiprocess collector, leaving out files still at 0 bytes: a worker's new file exists for a moment before
    it is sized (for good if the worker dies then), and reading one fails the whole scrape (client_python#1199)."""

    def __init__(self, registry: CollectorRegistry, directory: str):
        self.directory = directory
        super().__init__(registry, directory)

    def collect(self):
        return self.merge([path for path in glob.glob(os.path.join(self.directory, "*.db")) if _sized(path)],
                          accumulate=True)


def _sized(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:  # removed meanwhile (a dead worker's live gauges)
        return False


def _safely(count: Callable[[], object]) -> bool:
    """Count; a failure is logged, never raised into the request."""
    try:
        count()
    except Exception:
        logger.exception("counting a metric failed")
        return False
    return True
