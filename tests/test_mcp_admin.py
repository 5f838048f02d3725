"""The MCP admin API (/v1/mcp), end to end: raw HTTP → the gateway under gunicorn → real MCP test servers."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.gateway import free_port
from tests.mcp.conftest import ServerProcess
from tests.mcp.conftest import pid_alive
from tests.mcp.conftest import wait_for

SERVERS = Path(__file__).parent / "mcp" / "servers"
KEY = "sk-general-0123456789abcdef"
ADMIN = "sk-admin-fedcba9876543210"


def stdio(name: str, script: str, **extra) -> dict:
    return {"name": name, "transport": "stdio", "command": sys.executable, "args": [str(SERVERS / f"{script}.py")], **extra}


def call(gateway, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, gateway.url + "/v1/mcp" + path, timeout=20, **kwargs)


def error(response: requests.Response, status: int, code: str | None = None, type: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"message", "type", "param", "code", "request_id"} and body["request_id"]
    assert code is None or body["code"] == code, body
    assert type is None or body["type"] == type, body
    return body


def state(gateway, name: str, **kwargs) -> dict:
    return call(gateway, "GET", f"/servers/{name}", **kwargs).json()


def with_config(start_gateway, tmp_path_factory, mcp: dict, **settings):
    config = tmp_path_factory.mktemp("mcp-admin") / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"mcp": mcp}))
    return start_gateway(CONFIG_FILE=str(config), **settings)


@pytest.fixture(scope="module")
def gw(start_gateway, tmp_path_factory):
    """No keys (changes from loopback only), two stdio servers, guardrails as in chat, runtime stdio allowed."""
    gateway = with_config(start_gateway, tmp_path_factory, {
        "default_tool_timeout": "1s", "max_tool_result_size": 200, "deny_tools": ["tools__env_keys"],
        "allow_runtime_stdio": True, "servers": [stdio("tools", "basic"), stdio("bad", "misbehaving")]})
    wait_for(lambda: [s["status"] for s in call(gateway, "GET", "/servers").json()["servers"]] == ["ready", "ready"], 30)
    return gateway


@pytest.fixture(scope="module")
def keyed(start_gateway, tmp_path_factory):
    """API_KEY and ADMIN_API_KEY set, MCP on but no server configured (no pool yet), runtime stdio off."""
    return with_config(start_gateway, tmp_path_factory, {}, API_KEY=KEY, ADMIN_API_KEY=ADMIN)


@pytest.fixture(scope="module")
def web_server():
    server = ServerProcess("basic", "http").start()
    yield server
    server.stop()


# -- reading ---------------------------------------------------------------------------------


def test_servers_are_listed_in_order_with_their_state(gw):
    body = call(gw, "GET", "/servers").json()
    assert body["count"] == 2 and [s["name"] for s in body["servers"]] == ["tools", "bad"]
    one = state(gw, "tools")
    assert one["status"] == "ready" and one["transport"] == "stdio" and one["tool_count"] >= 7
    assert isinstance(one["pid"], int) and one["command"] == sys.executable and one["last_error"] is None
    assert "args" not in one and "env" not in one  # arguments and env values may hold secrets


@pytest.mark.parametrize("path", ["/servers/nope", "/servers/nope/tools", "/servers/nope/resources",
                                  "/servers/nope/prompts", "/servers/nope/health", "/servers/nope/resources/read?uri=x"])
def test_unknown_server_is_404(gw, path):
    assert "'nope'" in error(call(gw, "GET", path), 404, "mcp_server_not_found", "invalid_request_error")["message"]


def test_tools_show_exposed_names_and_the_filters(gw):
    body = call(gw, "GET", "/servers/tools/tools").json()
    tools = {t["name"]: t for t in body["tools"]}
    assert body["server"] == "tools" and body["count"] == len(tools)
    assert tools["echo"]["exposed_name"] == "tools__echo" and tools["echo"]["allowed"] is True
    assert tools["echo"]["input_schema"]["properties"]["message"]["type"] == "string"
    assert tools["env_keys"]["allowed"] is False


def test_resources_listed_and_read(gw):
    body = call(gw, "GET", "/servers/tools/resources").json()
    assert body["count"] == 1 and body["resource_templates"] == []
    readme = body["resources"][0]
    assert (readme["uri"], readme["name"], readme["mime_type"]) == ("file:///readme.txt", "readme", "text/plain")
    read = call(gw, "GET", "/servers/tools/resources/read", params={"uri": "file:///readme.txt"}).json()
    assert read == {"server": "tools", "uri": "file:///readme.txt", "text": "Read me first.\nSecond line."}
    assert error(call(gw, "GET", "/servers/tools/resources/read"), 400, "missing_parameter")["param"] == "uri"
    missing = call(gw, "GET", "/servers/tools/resources/read", params={"uri": "file:///missing.txt"})
    assert "file:///missing.txt" in error(missing, 502, "mcp_resource_error", "api_error")["message"]


def test_prompts_listed_and_got(gw):
    body = call(gw, "GET", "/servers/tools/prompts").json()
    assert body["count"] == 1 and body["prompts"][0]["name"] == "greet"
    assert body["prompts"][0]["arguments"] == [{"name": "name", "required": True}]
    got = call(gw, "POST", "/servers/tools/prompts/greet", json={"arguments": {"name": "Ada"}}).json()
    assert got["server"] == "tools" and got["prompt"] == "greet" and got["description"] == "Greet someone by name."
    assert got["messages"] == [{"role": "user", "content": {"type": "text", "text": "Please greet Ada warmly."}}]
    error(call(gw, "POST", "/servers/tools/prompts/greet"), 502, "mcp_prompt_error")  # no body: the argument is missing
    error(call(gw, "POST", "/servers/tools/prompts/nope", json={}), 502, "mcp_prompt_error")
    assert error(call(gw, "POST", "/servers/tools/prompts/greet", json={"arguments": "Ada"}), 400)["param"] == "arguments"
    assert error(call(gw, "POST", "/servers/tools/prompts/greet", data="{"), 400, "invalid_json")


def test_health_probes_the_server(gw):
    body = call(gw, "GET", "/servers/tools/health").json()
    assert body["server"] == "tools" and body["healthy"] is True and body["status"] == "ready"
    assert body["latency_ms"] >= 0 and body["last_error"] is None and body["tool_count"] >= 7


# -- execute ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "status", "check"), [
    ({"server": "tools", "tool": "add", "arguments": {"a": 2, "b": 3}}, 200, {"result": "5", "is_error": False}),
    ({"server": "tools", "tool": "echo", "arguments": {"message": "hi"}}, 200, {"result": "hi", "is_error": False}),
    ({"server": "tools", "tool": "fail", "arguments": {"reason": "disk full"}}, 200, {"is_error": True}),
    ({"server": "tools", "tool": "env_keys"}, 403, {"code": "mcp_tool_denied", "type": "permission_error"}),
    ({"server": "tools", "tool": "nope"}, 404, {"code": "mcp_tool_not_found"}),
    ({"server": "nope", "tool": "echo"}, 404, {"code": "mcp_server_not_found"}),
    ({"server": "bad", "tool": "slow", "arguments": {"seconds": 5}}, 504, {"code": "mcp_tool_timeout", "type": "api_error"}),
    ({"tool": "echo"}, 400, {"param": "server"}),
    ({"server": "tools", "tool": "add", "arguments": [1, 2]}, 400, {"param": "arguments"}),
    ({"server": "tools", "tool": "add", "timeout": 60}, 400, {"param": "timeout"}),
])
def test_execute(gw, body, status, check):
    started = time.monotonic()
    response = call(gw, "POST", "/execute", json=body)
    assert response.status_code == status, response.text
    got = response.json() if status == 200 else response.json()["error"]
    assert {k: got[k] for k in check} == check
    if status == 200:
        assert set(got) == {"server", "tool", "result", "is_error", "duration_ms"} and got["duration_ms"] >= 0
        assert (got["server"], got["tool"]) == (body["server"], body["tool"])
        assert not got["is_error"] or got["result"].startswith("Error:")
    assert time.monotonic() - started < 5  # the 1s default timeout applies


def test_execute_results_are_capped(gw):
    got = call(gw, "POST", "/execute", json={"server": "bad", "tool": "huge", "arguments": {"size": 5000}}).json()
    assert len(got["result"].encode()) <= 200 + 80 and "truncated" in got["result"]


# -- changing --------------------------------------------------------------------------------


def test_add_restart_refresh_delete_a_stdio_server(gw):
    added = call(gw, "POST", "/servers", json=stdio("extra", "basic", timeout="10s"))
    assert added.status_code == 201, added.text
    first = added.json()
    assert first["name"] == "extra" and first["status"] == "ready" and first["tool_count"] >= 7  # answered once connected
    result = call(gw, "POST", "/execute", json={"server": "extra", "tool": "echo", "arguments": {"message": "new"}})
    assert result.json()["result"] == "new"
    error(call(gw, "POST", "/servers", json=stdio("extra", "basic")), 409, "mcp_server_exists")

    assert call(gw, "POST", "/servers/extra/refresh").json()["tool_count"] == first["tool_count"]
    assert call(gw, "POST", "/servers/extra/restart").status_code == 200
    again = wait_for(lambda: (s := state(gw, "extra"))["status"] == "ready" and s["pid"] != first["pid"] and s, 15)
    assert again["restarts"] >= 1
    wait_for(lambda: not pid_alive(first["pid"]), 10)

    assert call(gw, "DELETE", "/servers/extra").json() == {"name": "extra", "deleted": True}
    wait_for(lambda: not pid_alive(again["pid"]), 10)
    error(call(gw, "GET", "/servers/extra"), 404, "mcp_server_not_found")
    error(call(gw, "DELETE", "/servers/extra"), 404, "mcp_server_not_found")
    assert [s["name"] for s in call(gw, "GET", "/servers").json()["servers"]] == ["tools", "bad"]


def test_a_server_that_cannot_connect(gw):
    url = f"http://127.0.0.1:{free_port()}/mcp"
    added = call(gw, "POST", "/servers", json={"name": "down", "url": url, "timeout": "2s"})
    assert added.status_code == 201 and added.json()["status"] == "failed" and added.json()["last_error"]
    health = call(gw, "GET", "/servers/down/health")
    assert health.status_code == 503 and health.json()["healthy"] is False and health.json()["last_error"]
    error(call(gw, "POST", "/servers/down/refresh"), 503, "mcp_server_unavailable", "api_error")
    error(call(gw, "GET", "/servers/down/resources"), 503, "mcp_server_unavailable")
    assert call(gw, "POST", "/servers/down/restart").status_code == 200
    assert call(gw, "DELETE", "/servers/down").status_code == 200


@pytest.mark.parametrize(("body", "param"), [
    ({}, "name"),
    ({"name": "has space", "url": "http://127.0.0.1:9/mcp"}, "name"),
    ({"name": "h", "url": "ftp://127.0.0.1/mcp"}, "url"),
    ({"name": "h", "transport": "http", "url": "http://127.0.0.1:9/mcp", "command": "x"}, "command"),
    ({"name": "h", "url": "http://127.0.0.1:9/mcp", "bogus": 1}, "bogus"),
    ({"name": "h", "transport": "carrier-pigeon"}, "transport"),
    ({"name": "h", "url": "http://127.0.0.1:9/mcp", "timeout": "soon"}, "timeout"),
])
def test_add_validates_like_the_file(gw, body, param):
    got = error(call(gw, "POST", "/servers", json=body), 400, "invalid_mcp_server", "invalid_request_error")
    assert got["param"] == param and not got["message"].startswith("<runtime>")


def test_add_needs_a_json_object(gw):
    error(call(gw, "POST", "/servers", json=[stdio("x", "basic")]), 400, "invalid_json")
    error(call(gw, "POST", "/servers", data="not json"), 400, "invalid_json")


@pytest.mark.parametrize("header", [{"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"}])
def test_without_admin_key_relayed_requests_may_only_read(gw, header):
    for method, path in [("POST", "/servers/tools/refresh"), ("POST", "/servers/tools/restart"),
                         ("DELETE", "/servers/tools"), ("POST", "/execute")]:
        error(call(gw, method, path, headers=header, json={}), 403, "admin_loopback_only", "permission_error")
    assert call(gw, "GET", "/servers/tools", headers=header).status_code == 200
    assert state(gw, "tools")["status"] == "ready"


# -- keys, no pool ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "headers", "status", "code"), [
    ("GET", "/servers", {}, 401, "invalid_api_key"),
    ("GET", "/servers", {"Authorization": f"Bearer {KEY}"}, 403, "admin_key_required"),  # reads need it once it is set
    ("GET", "/servers/x/tools", {"X-API-Key": KEY}, 403, "admin_key_required"),
    ("GET", "/servers", {"X-API-Key": ADMIN}, 200, None),  # the admin key passes the general check too
    ("GET", "/servers", {"Authorization": f"Bearer {ADMIN}"}, 200, None),
    ("POST", "/servers/x/refresh", {}, 401, "invalid_api_key"),
    ("POST", "/servers/x/refresh", {"X-API-Key": KEY}, 403, "admin_key_required"),
    ("POST", "/servers/x/refresh", {"X-API-Key": "wrong"}, 401, "invalid_api_key"),
    ("POST", "/servers/x/refresh", {"X-API-Key": ADMIN}, 404, "mcp_server_not_found"),
    ("POST", "/servers/x/restart", {"Authorization": f"bearer {ADMIN}"}, 404, "mcp_server_not_found"),
    ("DELETE", "/servers/x", {"X-API-Key": KEY, "Authorization": f"Bearer {ADMIN}"}, 404, "mcp_server_not_found"),
    ("POST", "/servers/x/refresh", {"X-API-Key": ADMIN, "X-Forwarded-For": "203.0.113.9"}, 404, "mcp_server_not_found"),
])
def test_keys(keyed, method, path, headers, status, code):
    response = call(keyed, method, path, headers=headers)
    assert response.status_code == status, response.text
    if code:
        error(response, status, code)


def test_without_servers_reading_is_empty(keyed):
    auth, admin = {"X-API-Key": KEY}, {"X-API-Key": ADMIN}
    assert call(keyed, "GET", "/servers", headers=admin).json() == {"servers": [], "count": 0}
    error(call(keyed, "GET", "/servers/x/tools", headers=admin), 404, "mcp_server_not_found")
    body = {"server": "x", "tool": "y"}
    error(call(keyed, "POST", "/execute", headers={"X-API-Key": ADMIN}, json=body), 404, "mcp_server_not_found")
    error(call(keyed, "POST", "/execute", headers=auth, json=body), 403, "admin_key_required")


def test_runtime_stdio_is_refused_by_default(keyed):
    response = call(keyed, "POST", "/servers", headers={"X-API-Key": ADMIN}, json=stdio("local", "basic"))
    assert error(response, 403, "runtime_stdio_disabled", "permission_error")["param"] == "transport"
    assert call(keyed, "GET", "/servers", headers={"X-API-Key": ADMIN}).json()["count"] == 0


def test_add_http_server_to_a_gateway_without_servers(keyed, web_server):
    admin = {"Authorization": f"Bearer {ADMIN}"}
    entry = {"name": "web", "url": web_server.url, "headers": {"X-Token": "${HOME}"}}
    added = call(keyed, "POST", "/servers", headers=admin, json=entry)
    assert added.status_code == 201, added.text
    assert added.json()["status"] == "ready" and added.json()["header_names"] == ["X-Token"]
    assert "${HOME}" not in added.text  # header values are never shown
    listed = call(keyed, "GET", "/servers", headers={"X-API-Key": ADMIN}).json()
    assert [s["name"] for s in listed["servers"]] == ["web"]
    token = call(keyed, "POST", "/execute", headers=admin, json={"server": "web", "tool": "header", "arguments": {"name": "X-Token"}})
    assert token.json()["result"] == "${HOME}"  # entries added at runtime cannot read the gateway's environment
    assert call(keyed, "DELETE", "/servers/web", headers=admin).status_code == 200
    assert call(keyed, "GET", "/servers", headers=admin).json()["count"] == 0
    assert ADMIN not in keyed.output() and KEY not in keyed.output()


# -- MCP off; several workers ----------------------------------------------------------------


def test_adding_with_mcp_disabled_is_409(start_gateway, tmp_path_factory):
    gateway = with_config(start_gateway, tmp_path_factory, {"servers": [stdio("tools", "basic")]},
                          MCP_ENABLED="false", TRUSTED_PROXIES="127.0.0.1")
    assert call(gateway, "GET", "/servers").json() == {"servers": [], "count": 0}
    entry = {"name": "web", "url": "http://127.0.0.1:9/mcp"}
    error(call(gateway, "POST", "/servers", json=entry), 409, "mcp_disabled", "invalid_request_error")
    # Through a trusted proxy the client's own address counts, and it is not loopback.
    relayed = call(gateway, "POST", "/servers", json=entry, headers={"X-Forwarded-For": "203.0.113.9"})
    error(relayed, 403, "admin_loopback_only")


def test_with_several_workers_runtime_changes_are_refused(start_gateway):
    gateway = start_gateway(WORKERS="2", THREADS="2")
    for method, path in [("POST", "/servers"), ("DELETE", "/servers/x"), ("POST", "/servers/x/restart"),
                         ("POST", "/servers/x/refresh")]:
        got = error(call(gateway, method, path, json={"name": "web", "url": "http://127.0.0.1:9/mcp"}), 409,
                    "multi_worker_runtime_change", "invalid_request_error")
        assert "WORKERS=1" in got["message"]
    # Reading and direct calls change nothing, so every worker may answer them.
    assert call(gateway, "GET", "/servers").status_code == 200
    error(call(gateway, "POST", "/execute", json={"server": "x", "tool": "y"}), 404, "mcp_server_not_found")
