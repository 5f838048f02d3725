"""Pool lifecycle: crash and restart, list_changed, runtime add/remove, and no children left behind."""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

import pytest

from app.mcp import MCPPool
from app.mcp import ServerExists
from app.mcp import ServerNotFound
from app.mcp import ServerUnavailable
from app.settings.mcp import load_mcp_section
from app.settings.mcp import parse_server_entry
from tests.mcp.conftest import pid_alive
from tests.mcp.conftest import stdio_server
from tests.mcp.conftest import wait_for


def test_crash_mid_call_restarts_the_server(make_pool):
    pool = make_pool([stdio_server("mis", "misbehaving")])
    first_pid = pool.state("mis")["pid"]
    started = time.monotonic()
    with pytest.raises(ServerUnavailable, match="closed the connection"):
        pool.call_tool("mis", "crash")
    assert time.monotonic() - started < 2
    # Until it is back, calls fail fast and its tools are not offered.
    offered = pool.exposed_snapshot()
    state = pool.state("mis")
    if state["status"] != "ready":
        assert "exited (code 3)" in (state["last_error"] or "")
        assert not offered.tools and not pool.exposed_tools()
    wait_for(lambda: pool.state("mis")["status"] == "ready", timeout=10)
    wait_for(lambda: "mis__pid" in pool.exposed_snapshot().routes, timeout=2)
    state = pool.state("mis")
    assert state["restarts"] == 1 and state["pid"] != first_pid and state["last_error"] is None
    assert pool.call_tool("mis", "pid").text == str(state["pid"])
    assert not pid_alive(first_pid)


def test_restart_and_refresh(make_pool):
    pool = make_pool([stdio_server("basic", "basic")])
    before = pool.state("basic")
    assert pool.refresh("basic")["tool_count"] == 7
    pool.restart("basic")
    wait_for(lambda: pool.state("basic")["status"] == "ready" and pool.state("basic")["pid"] != before["pid"])
    assert pool.state("basic")["restarts"] == before["restarts"] + 1
    assert pool.call_tool("basic", "echo", {"message": "again"}).text == "again"
    wait_for(lambda: not pid_alive(before["pid"]))


@pytest.mark.parametrize("protocol", ["auto", "legacy"])
def test_tools_list_changed_refreshes_the_tool_list(make_pool, protocol):
    pool = make_pool([stdio_server("dyn", "dynamic", protocol=protocol)])
    assert pool.state("dyn")["protocol_version"] == ("2026-07-28" if protocol == "auto" else "2025-11-25")
    assert [t.exposed_name for t in pool.exposed_tools()] == ["dyn__add_tool"]
    pool.call_tool("dyn", "add_tool", {"name": "fresh"})
    wait_for(lambda: pool.resolve("dyn__fresh"), timeout=5)
    assert [t.exposed_name for t in pool.exposed_tools()] == ["dyn__add_tool", "dyn__fresh"]
    assert pool.call_tool("dyn", "fresh").text == "fresh"


def test_runtime_add_and_remove(make_pool, http_servers):
    pool = make_pool([])
    state = pool.add_server(parse_server_entry({"name": "rt", "url": http_servers["http"].url}))
    assert state["name"] == "rt" and state["status"] in ("starting", "ready")
    assert pool.wait_ready(10, ["rt"])
    assert pool.call_tool("rt", "echo", {"message": "hi"}).text == "hi"
    with pytest.raises(ServerExists):
        pool.add_server(parse_server_entry({"name": "rt", "url": http_servers["sse"].url}))
    pool.add_server(parse_server_entry(stdio_server("local", "basic")))
    assert pool.wait_ready(10, ["local"])
    child = pool.state("local")["pid"]
    assert {t.server for t in pool.exposed_tools()} == {"rt", "local"}
    pool.remove_server("local")
    assert {t.server for t in pool.exposed_tools()} == {"rt"}
    assert not pid_alive(child)
    with pytest.raises(ServerNotFound):
        pool.call_tool("local", "echo", {"message": "x"})


def test_close_leaves_no_processes_and_is_final(make_pool):
    wrapped = {
        "name": "wrapped",
        "command": "/bin/sh",
        "args": ["-c", f'"{sys.executable}" "{stdio_server("x", "basic")["args"][0]}"; true'],
    }
    pool = make_pool([stdio_server("mis", "misbehaving"), stdio_server("basic", "basic"), wrapped])
    pids = [s["pid"] for s in pool.states()]
    grandchild = int(pool.call_tool("wrapped", "pid").text)  # python under sh
    orphan = int(pool.call_tool("mis", "spawn_child").text)  # ignores stdin, would outlive its server
    assert all(pid_alive(pid) for pid in [*pids, grandchild, orphan])
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 8
    assert not any(pid_alive(pid) for pid in pids)
    wait_for(lambda: not pid_alive(grandchild) and not pid_alive(orphan), timeout=5)
    pool.close()  # idempotent
    with pytest.raises(ServerUnavailable, match="not running"):
        pool.call_tool("basic", "echo", {"message": "x"})
    with pytest.raises(RuntimeError):
        pool.start()


def test_exposed_snapshot_follows_the_ready_servers():
    pool = MCPPool(load_mcp_section({"servers": [stdio_server("a", "basic"), stdio_server("b", "basic")]}))
    a, b = pool._servers["a"], pool._servers["b"]  # driven by hand: no loop thread
    tool = SimpleNamespace(name="t", description="A tool.", input_schema={"type": "object"})
    a.tools = b.tools = (tool,)
    a.status = "ready"
    first = pool.exposed_snapshot()
    assert [t.exposed_name for t in first.tools] == ["a__t"] and pool.resolve("b__t") == ("b", "t")
    b.status = "ready"
    assert list(pool.exposed_snapshot().routes) == ["a__t", "b__t"]
    a.status = "restarting"
    assert dict(pool.exposed_snapshot().routes) == {"b__t": ("b", "t")}
    assert [t["function"]["name"] for t in pool.exposed_snapshot().openai_tools] == ["b__t"]
    assert [t.exposed_name for t in first.tools] == ["a__t"]  # a snapshot already handed out stays as it was
    pool.close()


def test_not_started_pool():
    pool = MCPPool(load_mcp_section({"servers": [stdio_server("basic", "basic")]}))
    assert pool.states()[0]["status"] == "starting" and pool.exposed_tools() == []
    with pytest.raises(ServerUnavailable, match="not running"):
        pool.call_tool("basic", "echo", {"message": "x"})
    pool.close()


SILENT = {"command": sys.executable, "args": ["-c", "import time; time.sleep(60)"]}  # never answers


def test_connect_timeout(make_pool):
    started = time.monotonic()
    pool = make_pool([{"name": "silent", **SILENT, "timeout": "1s"}], wait=15)
    state = pool.state("silent")
    assert state["status"] == "failed" and state["last_error"] == "TimeoutError: no answer within 1s"
    assert time.monotonic() - started < 8


def test_close_while_connecting_is_prompt():
    pool = MCPPool(load_mcp_section({"servers": [{"name": "silent", **SILENT}]}))
    pool.start()
    pid = wait_for(lambda: pool.state("silent")["pid"])
    assert not pool.wait_ready(0.3)
    started = time.monotonic()
    pool.close()
    assert time.monotonic() - started < 5
    assert not pid_alive(pid)


def test_non_json_stdout_line_is_logged_and_ignored(make_pool, log_records):
    script = stdio_server("x", "basic")["args"][0]
    noisy = {
        "name": "noisy",
        "command": "/bin/sh",
        "args": ["-c", f'echo "not json"; exec "{sys.executable}" "{script}"'],
    }
    pool = make_pool([noisy])
    assert pool.state("noisy")["status"] == "ready"
    assert pool.call_tool("noisy", "echo", {"message": "fine"}).text == "fine"
    assert any("non-JSON-RPC line" in r["message"] for r in log_records)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_pool_started_before_fork_starts_afresh_in_the_child(make_pool):
    pool = make_pool([stdio_server("basic", "basic")])
    parent_pid = pool.state("basic")["pid"]
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            pool.start()
            pool.wait_ready(15)
            answer = f"{pool.call_tool('basic', 'echo', {'message': 'from child'}).text}|{pool.state('basic')['pid']}"
            pool.close()
        except BaseException as exc:  # noqa: BLE001
            answer = f"error: {exc!r}"
        os.write(write_end, answer.encode())
        os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 30
    while os.waitpid(child, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(child, 9)
            pytest.fail("child did not finish")
        time.sleep(0.05)
    with os.fdopen(read_end, "rb") as pipe:
        text, _, child_server = pipe.read().decode().partition("|")
    assert text == "from child" and int(child_server) != parent_pid
    assert pool.call_tool("basic", "echo", {"message": "parent"}).text == "parent"
