"""MCPPool over Streamable HTTP and legacy SSE, in both protocol eras; X-Request-ID; dead servers."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.mcp import ServerUnavailable
from tests.mcp.conftest import ServerProcess
from tests.mcp.conftest import wait_for

NAMES = {"h": "2026-07-28", "hl": "2025-11-25", "s": "2026-07-28", "sl": "2025-11-25"}


@pytest.fixture(scope="module")
def pool(module_pool, http_servers):
    http, sse = http_servers["http"].url, http_servers["sse"].url
    headers = {"X-Gateway-Key": "k-42"}
    return module_pool(
        [
            {"name": "h", "transport": "http", "url": http, "headers": headers},
            {"name": "hl", "transport": "http", "url": http, "headers": headers, "protocol": "legacy"},
            {"name": "s", "transport": "sse", "url": sse, "headers": headers},
            {"name": "sl", "transport": "sse", "url": sse, "headers": headers, "protocol": "legacy"},
        ]
    )


@pytest.mark.parametrize("name", NAMES)
def test_connect_list_and_call(pool, name):
    state = pool.state(name)
    assert state["status"] == "ready" and state["protocol_version"] == NAMES[name] and state["pid"] is None
    assert {"echo", "add", "header"} <= {t["name"] for t in pool.list_tools(name)}
    assert pool.call_tool(name, "add", {"a": 1, "b": 2}).text == "3"
    assert pool.read_resource(name, "file:///readme.txt").startswith("Read me first.")
    assert pool.get_prompt(name, "greet", {"name": "Bo"})["messages"][0]["content"]["text"] == "Please greet Bo warmly."


@pytest.mark.parametrize("name", NAMES)
def test_request_id_and_configured_headers_arrive(pool, name):
    request_id = f"req-{name}-{uuid.uuid4().hex[:8]}"
    assert pool.call_tool(name, "header", {"name": "x-request-id"}, request_id=request_id).text == request_id
    assert pool.call_tool(name, "header", {"name": "x-request-id"}).text == "<none>"
    assert pool.call_tool(name, "header", {"name": "x-gateway-key"}).text == "k-42"
    # A request id that is not printable ASCII is not sent; the call still works.
    assert pool.call_tool(name, "header", {"name": "x-request-id"}, request_id="bad\nid").text == "<none>"


@pytest.mark.parametrize("name", ["h", "s"])
def test_parallel_calls_over_http_overlap(pool, name):
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(5) as executor:
        args = {"key": key, "seconds": 1.0}  # long enough that a call started late on a busy machine still overlaps
        peaks = list(executor.map(lambda _: int(pool.call_tool(name, "overlap", args).text), range(5)))
    assert max(peaks) == 5


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_dead_http_server_is_detected_and_reconnected(make_pool, transport):
    server = ServerProcess("basic", transport).start()
    try:
        pool = make_pool([{"name": "x", "transport": transport, "url": server.url}])
        assert pool.call_tool("x", "echo", {"message": "1"}).text == "1"
        server.stop()
        # Noticed without a call: the SSE stream ends, or the 2026 subscription stream is lost.
        wait_for(lambda: pool.state("x")["status"] != "ready", timeout=5)
        started = time.monotonic()
        with pytest.raises(ServerUnavailable):
            pool.call_tool("x", "echo", {"message": "2"})
        assert time.monotonic() - started < 1
        server.start()
        wait_for(lambda: pool.state("x")["status"] == "ready", timeout=20)
        assert pool.state("x")["restarts"] >= 1
        assert pool.call_tool("x", "echo", {"message": "3"}).text == "3"
    finally:
        server.stop()
