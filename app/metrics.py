"""The gateway's Prometheus collectors, declared once; under gunicorn they count in multiprocess mode.

Code that has something to count imports the collector it needs from here; `/metrics` serves them all.
Label values are bounded: routes are URL rules (not paths), keys are key names, models are model names.
"""

from __future__ import annotations

from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram

REQUESTS = Counter("llamagate_requests", "HTTP requests answered", ["route", "method", "status", "key"])
REQUEST_SECONDS = Histogram("llamagate_request_duration_seconds", "Time from request to the end of its response",
                            ["route"])
FIRST_TOKEN_SECONDS = Histogram("llamagate_time_to_first_token_seconds",
                                "Time from request to the first upstream token", ["model"])
TOKENS = Counter("llamagate_tokens", "Tokens counted from upstream usage", ["model", "key", "direction"])
CACHE = Counter("llamagate_cache_requests", "Answer cache lookups by outcome", ["outcome"])
RATE_LIMITED = Counter("llamagate_rate_limited", "Requests refused by a limit", ["key", "limit"])
UPSTREAM_ERRORS = Counter("llamagate_upstream_errors", "Failed upstream requests", ["backend", "kind"])
UPSTREAM_IN_FLIGHT = Gauge("llamagate_upstream_in_flight", "Requests in flight to each backend", ["backend"],
                           multiprocess_mode="livesum")
MCP_TOOL_CALLS = Counter("llamagate_mcp_tool_calls", "Tool calls by server, tool and outcome",
                         ["server", "tool", "outcome"])
OPEN_STREAMS = Gauge("llamagate_open_streams", "Streamed responses currently open", multiprocess_mode="livesum")
