"""REDIS_URL: the answer cache, stored responses and MCP server changes shared by gateway instances through a real
Redis; Redis stopped mid-test and brought back."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import requests
from loguru import logger

from app.store.bounded import RedisLRU
from app.store.link import Outage
from app.store.link import RedisLink
from tests.mcp.conftest import ServerProcess
from tests.mcp.conftest import wait_for


def chat(gateway, content: str, **extra) -> requests.Response:
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": content}], **extra}
    return requests.post(gateway.url + "/v1/chat/completions", json=body, timeout=10)


def upstream_calls(fake_ollama, content: str) -> int:
    with fake_ollama.lock:  # the shared fake also sees other tests' bodies (native ones, fuzzed): any shape
        return sum(1 for r in fake_ollama.requests
                   if r["path"] == "/api/chat" and isinstance(r["body"], dict)
                   and content in json.dumps(r["body"].get("messages", "")))


WORKFLOW = """
name: echo
inputs: {type: object, required: [text], properties: {text: {type: string}}}
steps:
  - {id: shout, type: transform, value: "{{ inputs.text | upper }}"}
  - {id: answer, type: llm, model: llama3.2, prompt: "Say {{ steps.shout.output }}"}
"""


@pytest.fixture()
def pair(start_gateway, redis_server, tmp_path):
    """Two gateway instances (the second with two workers) sharing one Redis, cache on, one workflow."""
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "echo.yaml").write_text(WORKFLOW)
    (tmp_path / "llamagate.yaml").write_text("workflows: {dirs: [workflows]}\n")
    settings = {"REDIS_URL": redis_server.url, "CACHE_ENABLED": "true", "CONFIG_FILE": str(tmp_path / "llamagate.yaml")}
    first = start_gateway(**settings)
    second = start_gateway(WORKERS="2", THREADS="4", **settings)
    yield first, second
    first.stop()
    second.stop()


def test_a_cached_answer_is_a_hit_on_another_instance(pair, fake_ollama):
    first, second = pair
    content = f"shared cache {uuid.uuid4()}"
    miss = chat(first, content, temperature=0)
    assert miss.status_code == 200 and miss.headers["X-Cache"] == "MISS"
    hits = [chat(second, content, temperature=0) for _ in range(4)]  # both of its workers answer some
    assert [hit.headers["X-Cache"] for hit in hits] == ["HIT"] * 4
    assert {hit.json()["choices"][0]["message"]["content"] for hit in hits} == {
        miss.json()["choices"][0]["message"]["content"]}
    assert len({hit.json()["id"] for hit in hits} | {miss.json()["id"]}) == 5  # fresh ids
    assert upstream_calls(fake_ollama, content) == 1


def test_a_stored_response_is_found_on_another_instance(pair):
    first, second = pair
    created = requests.post(first.url + "/v1/responses", json={"model": "llama3.2", "input": "remember me"},
                            timeout=10)
    assert created.status_code == 200, created.text
    response_id = created.json()["id"]
    got = requests.get(f"{second.url}/v1/responses/{response_id}", timeout=10)
    assert got.status_code == 200 and got.json()["id"] == response_id
    follow = requests.post(second.url + "/v1/responses", timeout=10,
                           json={"model": "llama3.2", "input": "and now?", "previous_response_id": response_id})
    assert follow.status_code == 200, follow.text
    assert requests.delete(f"{second.url}/v1/responses/{response_id}", timeout=10).status_code == 200
    assert requests.get(f"{first.url}/v1/responses/{response_id}", timeout=10).status_code == 404


def test_a_workflow_run_is_read_on_another_instance(pair):
    first, second = pair
    run = requests.post(first.url + "/v1/workflows/echo/runs", json={"inputs": {"text": "hi"}}, timeout=30)
    assert run.status_code == 200, run.text
    record = run.json()
    assert record["status"] == "completed" and record["steps"][0]["output"] == "HI"
    for _ in range(4):  # either worker of the other instance
        got = requests.get(f"{second.url}/v1/workflows/echo/runs/{record['id']}", timeout=10)
        assert got.status_code == 200 and got.json() == record, got.text


def test_an_mcp_server_added_on_one_instance_is_used_by_the_other(pair):
    first, second = pair
    server = ServerProcess("basic", "http").start()
    try:
        added = requests.post(first.url + "/v1/mcp/servers", json={"name": "web", "url": server.url}, timeout=20)
        assert added.status_code == 201, added.text

        def listed(gateway) -> list[str]:
            servers = requests.get(gateway.url + "/v1/mcp/servers", timeout=10).json()["servers"]
            return [f"{s['name']}:{s['status']}" for s in servers]

        # Every worker of the other instance (two) applies it: ask often enough to reach both.
        wait_for(lambda: all(listed(second) == ["web:ready"] for _ in range(6)), 15)
        def echoed() -> bool:
            called = requests.post(second.url + "/v1/mcp/execute", timeout=20,
                                   json={"server": "web", "tool": "echo", "arguments": {"message": "hi"}})
            return called.status_code == 200 and called.json()["result"] == "hi"

        for _ in range(4):  # a worker may still be connecting when the other one already lists it ready
            wait_for(echoed, 15)
        again = requests.post(second.url + "/v1/mcp/servers", json={"name": "web", "url": server.url}, timeout=20)
        assert again.status_code == 409 and again.json()["error"]["code"] == "mcp_server_exists"

        assert requests.delete(second.url + "/v1/mcp/servers/web", timeout=20).status_code == 200
        wait_for(lambda: listed(first) == [], 15)
        wait_for(lambda: all(listed(second) == [] for _ in range(6)), 15)
        assert all(listed(second) == [] for _ in range(6))
    finally:
        server.stop()


def test_redis_stopped_and_back(start_gateway, redis_server, fake_ollama):
    gateway = start_gateway(REDIS_URL=redis_server.url, CACHE_ENABLED="true", RATE_LIMIT_RPS="100")
    content = f"outage {uuid.uuid4()}"
    assert chat(gateway, content, temperature=0).headers["X-Cache"] == "MISS"
    assert requests.get(gateway.url + "/health", timeout=10).json()["redis"] == "connected"

    redis_server.stop()
    during = [chat(gateway, content, temperature=0) for _ in range(5)]
    assert [r.status_code for r in during] == [200] * 5  # served, the cache bypassed
    assert {r.headers["X-Cache"] for r in during} <= {"MISS", "BYPASS"}
    health = requests.get(gateway.url + "/health", timeout=10)
    assert health.status_code == 200 and health.json()["redis"] == "disconnected"
    warnings = [e for e in gateway.log_lines() if e.get("dependency") == "Redis" and e["level"] == "warning"]
    assert len(warnings) == 1, warnings  # one line per outage, not one per request

    redis_server.start()
    wait_for(lambda: requests.get(gateway.url + "/health", timeout=10).json()["redis"] == "connected", 10)
    assert chat(gateway, content, temperature=0).headers["X-Cache"] == "MISS"  # stored again...
    assert chat(gateway, content, temperature=0).headers["X-Cache"] == "HIT"  # ...and found
    gateway.wait_for_log(lambda e: e.get("dependency") == "Redis" and e["message"] == "Redis is reachable again")


def test_runtime_changes_with_several_workers_are_allowed_with_redis(start_gateway, redis_server):
    gateway = start_gateway(WORKERS="2", THREADS="2", REDIS_URL=redis_server.url)
    response = requests.post(gateway.url + "/v1/mcp/servers", timeout=20,
                             json={"name": "web", "url": "http://127.0.0.1:9/mcp", "timeout": "1s"})
    assert response.status_code == 201, response.text  # added (it cannot connect, which is its state)
    # At once, each on a new connection (so on both workers): the worker that did not add it knows it already.
    answers = [requests.get(gateway.url + "/v1/mcp/servers/web", timeout=20) for _ in range(8)]
    assert [answer.status_code for answer in answers] == [200] * 8, [answer.text for answer in answers if not answer.ok]
    restart = requests.post(gateway.url + "/v1/mcp/servers/web/restart", timeout=20)
    assert restart.status_code == 200, restart.text
    again = requests.post(gateway.url + "/v1/mcp/servers", timeout=20,
                          json={"name": "web", "url": "http://127.0.0.1:9/mcp", "timeout": "1s"})
    assert again.status_code == 409, again.text  # whichever worker takes it


# -- the store itself, against a real Redis ----------------------------------------------------


def test_the_lru_map_keeps_its_size_and_ttl(redis_server):
    link = RedisLink(redis_server.url)
    try:
        lru = RedisLRU(link, f"test:{uuid.uuid4()}", max_entries=3, ttl=0.5)
        for key in "abc":
            lru.put(key, key.encode())
        assert lru.get("a") == b"a"  # used: now the newest
        lru.put("d", b"d")
        assert [lru.get(key) for key in "abcd"] == [b"a", None, b"c", b"d"] and len(lru) == 3
        time.sleep(0.6)
        assert lru.get("a") is None
        assert lru.delete("d") is False  # expired already
    finally:
        link.close()


def test_an_unreachable_redis_is_a_miss_and_is_tried_once_per_interval(redis_server):
    link = RedisLink(redis_server.url)
    try:
        lru = RedisLRU(link, "test:down", max_entries=3)
        redis_server.stop()
        assert lru.get("x") is None and link.outage.down
        tries = []
        assert [link.run(lambda client: tries.append(1) or client.ping(), "skipped") for _ in range(50)] == \
            ["skipped"] * 50
        assert tries == []  # within the retry interval nothing reaches the dead server
        redis_server.start()
        wait_for(lambda: link.state() == "connected", 5)
        assert lru.get("x") is None and not link.outage.down
    finally:
        link.close()


def test_outage_logs_once_per_outage():
    now = [0.0]
    lines: list = []
    sink = logger.add(lambda message: lines.append(message.record), level="INFO")
    try:
        outage = Outage("Redis", clock=lambda: now[0])
        assert outage.should_try()
        for _ in range(3):
            outage.failed(redis.ConnectionError("refused"), "skipped")
        assert not outage.should_try()
        now[0] += 1.5
        assert outage.should_try() and not outage.should_try()  # one try per interval
        now[0] += 10
        outage.ok()
        outage.ok()
        assert not outage.down and outage.should_try()
    finally:
        logger.remove(sink)
    assert [(r["level"].name, r["message"]) for r in lines] == [
        ("WARNING", "Redis is unreachable; skipped until it is back"), ("INFO", "Redis is reachable again")]
    assert lines[1]["extra"]["outage_seconds"] == 11.5


def test_plugin_changes_are_still_refused_with_several_workers(start_gateway, redis_server):
    gateway = start_gateway(WORKERS="2", THREADS="2", REDIS_URL=redis_server.url)
    response = requests.post(gateway.url + "/v1/plugins/calculator/disable", timeout=10)
    assert response.status_code == 409 and response.json()["error"]["code"] == "multi_worker_runtime_change"
