"""Published MCP servers: mcp-server-time (Python, 2026 era) and server-everything (npm, 2025 era)."""

from __future__ import annotations

import importlib.util
import sys

import pytest


@pytest.fixture(scope="module")
def time_pool(module_pool):
    if importlib.util.find_spec("mcp_server_time") is None:
        pytest.skip("mcp-server-time is not installed")
    return module_pool([{"name": "time", "command": sys.executable, "args": ["-m", "mcp_server_time"]}])


def test_mcp_server_time(time_pool):
    state = time_pool.state("time")
    assert state["status"] == "ready" and state["protocol_version"] == "2026-07-28"
    assert {t.exposed_name for t in time_pool.exposed_tools()} == {"time__get_current_time", "time__convert_time"}
    result = time_pool.call_tool("time", "get_current_time", {"timezone": "Asia/Tokyo"})
    assert not result.is_error and "Asia/Tokyo" in result.text and "+09:00" in result.text
    bad = time_pool.call_tool("time", "get_current_time", {"timezone": "Mars/Olympus"})
    assert bad.is_error and bad.text.startswith("Error: ")


@pytest.fixture(scope="module")
def everything_pool(module_pool, everything_bin):
    return module_pool([{"name": "ev", "command": everything_bin, "env": {"EV_CONFIGURED": "yes"}}])


def test_server_everything_over_stdio(everything_pool):
    pool = everything_pool
    state = pool.state("ev")
    assert state["status"] == "ready" and state["protocol_version"] == "2025-11-25"
    names = {t.exposed_name for t in pool.exposed_tools()}
    assert {"ev__echo", "ev__get-sum", "ev__get-tiny-image", "ev__get-env"} <= names
    assert pool.call_tool("ev", "echo", {"message": "hello"}).text == "Echo: hello"
    assert pool.call_tool("ev", "get-sum", {"a": 2, "b": 3}).text == "The sum of 2 and 3 is 5."
    image = pool.call_tool("ev", "get-tiny-image").text
    assert "[image: image/png, " in image
    resources = pool.list_resources("ev")
    assert resources and all(r["uri"].startswith("demo://") for r in resources)
    assert pool.read_resource("ev", resources[0]["uri"])
    prompt = pool.get_prompt("ev", "args-prompt", {"city": "Oslo"})
    assert "Oslo" in str(prompt["messages"])


def test_server_everything_sees_only_the_allowed_environment(everything_pool):
    text = everything_pool.call_tool("ev", "get-env").text
    assert '"EV_CONFIGURED": "yes"' in text or '"EV_CONFIGURED":"yes"' in text
    assert "PYTEST_CURRENT_TEST" not in text and "VIRTUAL_ENV" not in text
