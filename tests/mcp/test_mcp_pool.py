"""MCPPool over stdio with real test servers: listing, calls, limits, filters, logs, child environment."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.mcp import PromptError
from app.mcp import ResourceError
from app.mcp import ServerConfig
from app.mcp import ServerNotFound
from app.mcp import ServerUnavailable
from app.mcp import ToolDenied
from app.mcp import ToolNotFound
from app.mcp import ToolTimeout
from app.mcp.naming import EXPOSED_NAME_RE
from tests.mcp.conftest import stdio_server
from tests.mcp.conftest import wait_for

CANARY = "MCP_TEST_CANARY"


@pytest.fixture(scope="module")
def pool(module_pool):
    os.environ[CANARY] = "must-not-leak"
    try:
        return module_pool(
            [
                stdio_server("basic", "basic", env={"SECRET_X": "configured", "OTHER": "1"}),
                stdio_server("mis", "misbehaving", env={"API_TOKEN": "tok-123456"}),
                stdio_server("paged", "paged"),
                stdio_server("c_", "colliding"),
                stdio_server("c", "colliding"),
                stdio_server("narrow", "basic", max_concurrency=2),
                {"name": "broken", "command": "definitely-not-a-command-xyz"},
                {"name": "off", "command": "definitely-not-a-command-xyz", "enabled": False},
            ],
            deny_tools=["basic.fail", "c__b"],
            max_tool_result_size=100_000,
        )
    finally:
        del os.environ[CANARY]


def test_states(pool):
    states = {s["name"]: s for s in pool.states()}
    assert list(states) == ["basic", "mis", "paged", "c_", "c", "narrow", "broken", "off"]
    basic = states["basic"]
    assert basic["status"] == "ready" and basic["transport"] == "stdio" and basic["restarts"] == 0
    assert basic["protocol_version"] == "2026-07-28" and basic["tool_count"] == 7
    assert isinstance(basic["pid"], int) and basic["env_keys"] == ["OTHER", "SECRET_X"]
    assert "configured" not in repr(states)
    assert states["off"]["status"] == "stopped" and states["off"]["enabled"] is False
    assert pool.state("paged")["tool_count"] == 8
    with pytest.raises(ServerNotFound):
        pool.state("ghost")


def test_failed_server_is_reported_and_retried(pool):
    state = pool.state("broken")
    assert state["status"] == "failed"
    assert "command not found: 'definitely-not-a-command-xyz'" in state["last_error"]
    wait_for(lambda: pool.state("broken")["restarts"] >= 1, timeout=5)
    with pytest.raises(ServerUnavailable, match="'broken' is failed: FileNotFoundError: command not found"):
        pool.call_tool("broken", "anything")
    assert not [t for t in pool.exposed_tools() if t.server == "broken"]


def test_exposed_tools_are_allowed_sorted_and_valid(pool):
    tools = pool.exposed_tools()
    names = [t.exposed_name for t in tools]
    assert names == sorted(names) and all(EXPOSED_NAME_RE.match(n) for n in names)
    assert "basic__echo" in names and "paged__tool_07" in names
    assert "basic__fail" not in names and "c__b" not in names  # denied
    assert pool.resolve("basic__fail") == ("basic", "fail")  # still resolvable, but denied when called
    openai = pool.openai_tools()
    echo = next(t for t in openai if t["function"]["name"] == "basic__echo")
    assert echo["type"] == "function" and echo["function"]["description"] == "Return the message unchanged."
    assert echo["function"]["parameters"]["properties"]["message"]["type"] == "string"


def test_exposed_snapshot_is_built_once_and_aligned(pool):
    snapshot = pool.exposed_snapshot()
    assert pool.exposed_snapshot() is snapshot  # not rebuilt per call
    assert list(snapshot.tools) == pool.exposed_tools()
    assert [t["function"]["name"] for t in snapshot.openai_tools] == [t.exposed_name for t in snapshot.tools]
    assert snapshot.openai_tools == tuple(t.as_openai_tool() for t in snapshot.tools)
    assert dict(snapshot.routes) == {t.exposed_name: (t.server, t.tool) for t in snapshot.tools}
    with pytest.raises(TypeError):
        snapshot.routes["x"] = ("a", "b")  # type: ignore[index]
    # openai_tools() hands out copies: changing one leaves the shared definitions alone.
    pool.openai_tools()[0]["function"]["parameters"]["properties"].clear()
    assert snapshot.openai_tools[0] == snapshot.tools[0].as_openai_tool()


def test_names_colliding_across_servers(pool):
    mine = {(t.server, t.tool): t.exposed_name for t in pool.exposed_tools() if t.server in ("c", "c_")}
    # ("c_", "b") and ("c", "_b") both spell c___b; get.item and get_item collide on each server.
    assert len(set(mine.values())) == len(mine)
    assert {mine[("c_", "b")], mine[("c", "_b")]} & {"c___b"}
    for exposed, (server, tool) in [(n, p) for p, n in mine.items()]:
        assert pool.resolve(exposed) == (server, tool)
    assert pool.call_tool(*pool.resolve(mine[("c", "get.item")])).text == "I am get.item"


def test_list_tools_of_one_server(pool):
    tools = {t["name"]: t for t in pool.list_tools("basic")}
    assert tools["fail"]["allowed"] is False and tools["echo"]["allowed"] is True
    assert tools["echo"]["exposed_name"] == "basic__echo"
    with pytest.raises(ServerNotFound):
        pool.list_tools("ghost")


def test_call_tool(pool, log_records):
    result = pool.call_tool("basic", "echo", {"message": "SENSITIVE-ARG ünïcode"}, request_id="req-1")
    assert result.text == "SENSITIVE-ARG ünïcode" and not result.is_error and result.duration_ms > 0
    assert pool.call_tool("basic", "add", {"a": 2, "b": 40}).text == "42"
    calls = [r for r in log_records if r["message"].startswith("MCP tool basic.echo")]
    assert calls and calls[0]["level"].name == "INFO" and "ok" in calls[0]["message"] and "req-1" in calls[0]["message"]
    assert calls[0]["extra"] == {"mcp_server": "basic", "request_id": "req-1"}
    assert not [r for r in log_records if r["level"].no >= 20 and "SENSITIVE-ARG" in r["message"]]
    assert pool.state("basic")["last_call_latency_ms"] is not None


def test_tool_errors(pool):
    bad = pool.call_tool("basic", "add", {"a": "x", "b": 1})
    assert bad.is_error and bad.text.startswith("Error: ")
    with pytest.raises(ToolNotFound, match="has no tool 'nope'"):
        pool.call_tool("basic", "nope")
    with pytest.raises(ServerNotFound):
        pool.call_tool("ghost", "echo")
    with pytest.raises(ToolDenied):
        pool.call_tool("basic", "fail")


def test_parallel_calls_to_one_server_overlap(pool):
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(6) as executor:
        peaks = list(executor.map(lambda _: int(pool.call_tool("basic", "overlap", {"key": key}).text), range(6)))
    assert max(peaks) == 6


def test_max_concurrency_caps_parallel_calls(pool):
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(5) as executor:
        args = {"key": key, "seconds": 0.2}
        peaks = list(executor.map(lambda _: int(pool.call_tool("narrow", "overlap", args).text), range(5)))
    assert max(peaks) == 2


def test_slow_tool_times_out_and_server_stays_usable(pool):
    started = time.monotonic()
    with pytest.raises(ToolTimeout, match="timed out after 0.3s"):
        pool.call_tool("mis", "slow", {"seconds": 5}, timeout=0.3)
    assert time.monotonic() - started < 2
    assert pool.call_tool("mis", "slow", {"seconds": 0}).text == "slept 0.0"
    assert pool.state("mis")["status"] == "ready"


def test_huge_result_is_truncated(pool):
    result = pool.call_tool("mis", "huge", {"size": 300_000})  # 600,000 bytes of "é"
    assert len(result.text.encode()) <= 100_000
    assert result.text.endswith(" of 600000 bytes]") and result.text.startswith("éé")


def test_stderr_goes_to_the_log_line_by_line_with_secrets_masked(pool, log_records):
    pool.call_tool("mis", "noisy", {"lines": 3, "text": "token is tok-123456"})
    lines = wait_for(lambda: [r for r in log_records if "[mis stderr]" in r["message"]], timeout=5)
    wait_for(lambda: any("token is" in r["message"] for r in log_records), timeout=5)
    lines = [r for r in log_records if "[mis stderr]" in r["message"]]
    assert [r["message"] for r in lines][:3] == [f"[mis stderr] noise line {i}" for i in range(3)]
    assert all(r["level"].name == "DEBUG" and r["extra"]["mcp_server"] == "mis" for r in lines)
    assert any(r["message"] == "[mis stderr] token is ***" for r in lines)
    assert not any("tok-123456" in r["message"] for r in log_records)


def test_child_environment_is_an_allow_list(pool):
    keys = set(pool.call_tool("basic", "env_keys").text.split(","))
    assert {"PATH", "SECRET_X", "OTHER"} <= keys <= {"PATH", "HOME", "SECRET_X", "OTHER"}
    assert CANARY not in keys


def test_pagination(pool):
    assert [t["name"] for t in pool.list_tools("paged")] == [f"tool_{i:02d}" for i in range(8)]
    assert [r["uri"] for r in pool.list_resources("paged")] == [f"file:///doc{i}.txt" for i in range(5)]
    assert [p["name"] for p in pool.list_prompts("paged")] == [f"prompt_{i}" for i in range(4)]
    assert pool.call_tool("paged", "tool_07").text == "called tool_07"


def test_resources_and_prompts(pool):
    assert pool.list_resources("basic") == [
        {"name": "readme", "uri": "file:///readme.txt", "description": "The readme.", "mimeType": "text/plain"}
    ]
    assert pool.read_resource("basic", "file:///readme.txt") == "Read me first.\nSecond line."
    assert pool.read_resource("basic", "file:///readme.txt", max_bytes=10) == "Read me fi"
    with pytest.raises(ResourceError, match="reading 'file:///missing.txt' on MCP server 'basic' failed"):
        pool.read_resource("basic", "file:///missing.txt")
    assert [p["name"] for p in pool.list_prompts("basic")] == ["greet"]
    prompt = pool.get_prompt("basic", "greet", {"name": "Ada"})
    assert prompt == {
        "description": "Greet someone by name.",
        "messages": [{"role": "user", "content": {"type": "text", "text": "Please greet Ada warmly."}}],
    }
    with pytest.raises(PromptError):
        pool.get_prompt("basic", "missing")
    assert pool.list_resource_templates("basic") == []


def test_add_server_takes_a_config_and_leaves_the_stdio_rule_to_the_caller(pool):
    entry = stdio_server("late", "basic")
    assert not pool.settings.allow_runtime_stdio
    pool.add_server(ServerConfig(name="late", transport="stdio", command=entry["command"], args=tuple(entry["args"])))
    try:
        assert pool.wait_ready(20, ["late"]) and pool.state("late")["status"] == "ready"
        assert "late__echo" in pool.exposed_snapshot().routes
        assert pool.call_tool("late", "echo", {"message": "hi"}).text == "hi"
    finally:
        pool.remove_server("late")
    assert "late__echo" not in pool.exposed_snapshot().routes


def test_fifty_tool_server(make_pool):
    pool = make_pool([stdio_server("ws", "fifty_tools")])
    snapshot = pool.exposed_snapshot()
    assert len(snapshot.tools) == 50 and all(EXPOSED_NAME_RE.match(t.exposed_name) for t in snapshot.tools)
    for tool in snapshot.openai_tools:
        parameters = tool["function"]["parameters"]
        assert parameters["type"] == "object" and 2 <= len(parameters["properties"]) <= 4
        assert set(parameters["required"]) <= set(parameters["properties"])
    assert pool.call_tool("ws", "get_weather", {"city": "Oslo"}).text == 'get_weather {"city": "Oslo"}'
