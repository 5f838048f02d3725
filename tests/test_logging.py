"""JSON log lines: one object per line, request fields, debug lines, secrets redacted, LOG_FILE."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app.logs import Redactor


def test_every_line_is_json_with_request_fields(gateway):
    requests.get(gateway.url + "/v1/models", headers={"X-Request-ID": "log-check-1"}, timeout=5)
    entry = gateway.wait_for_log(lambda e: e.get("request_id") == "log-check-1" and e["message"] == "HTTP request")
    assert {"time", "level", "message", "request_id", "method", "path", "status", "latency_ms", "ip"} <= set(entry)
    assert entry["method"] == "GET" and entry["path"] == "/v1/models" and entry["status"] == 200
    assert entry["ip"] == "127.0.0.1" and entry["level"] == "info"
    assert all(isinstance(line, dict) for line in gateway.log_lines())


def test_a_stream_is_logged_when_it_ends(gateway):
    body = {"model": "llama3.2", "stream": True, "messages": [{"role": "user", "content": "[[slow 3 0.2]]"}]}
    requests.post(gateway.url + "/v1/chat/completions", json=body, headers={"X-Request-ID": "log-stream-1"}, timeout=10)
    entry = gateway.wait_for_log(lambda e: e.get("request_id") == "log-stream-1" and e["message"] == "HTTP request")
    assert entry["latency_ms"] >= 400


def test_debug_and_log_file(start_gateway, tmp_path):
    path = tmp_path / "gateway.log"
    noisy = start_gateway(DEBUG="true", LOG_FILE=str(path), API_KEY="topsecret-debug-key", CACHE_ENABLED="true")
    headers = {"Authorization": "Bearer topsecret-debug-key", "X-Request-ID": "dbg-1"}
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hello"}]}
    for _ in range(2):
        requests.post(noisy.url + "/v1/chat/completions", json=body, headers=headers, timeout=5)
    noisy.wait_for_log(lambda e: e.get("request_id") == "dbg-1" and e["level"] == "debug")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert any(e.get("request_id") == "dbg-1" for e in lines)
    assert "topsecret-debug-key" not in path.read_text() and "topsecret-debug-key" not in noisy.output()


def test_lines_written_by_many_threads_at_once_stay_whole_and_each_appears_once(start_gateway, tmp_path):
    path = tmp_path / "busy.log"
    busy = start_gateway(THREADS="16", LOG_FILE=str(path), CACHE_ENABLED="true")
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hello"}]}
    ids = [f"busy-{n}" for n in range(400)]

    def ask(session_and_id):
        session, request_id = session_and_id
        return session.post(busy.url + "/v1/chat/completions", json=body, headers={"X-Request-ID": request_id},
                            timeout=10).status_code

    sessions = [requests.Session() for _ in range(16)]
    with ThreadPoolExecutor(16) as pool:  # 16 kept-alive connections at once: the worker's 16 threads all log
        assert set(pool.map(ask, [(sessions[n % 16], request_id) for n, request_id in enumerate(ids)])) == {200}
    for session in sessions:
        session.close()

    def logged(lines: list[dict]) -> list[str]:
        return sorted(e["request_id"] for e in lines if e["message"] == "HTTP request" and e.get("request_id") in ids)

    def file_lines() -> list[dict]:
        written = path.read_text()
        return [json.loads(line) for line in written[:written.rfind("\n") + 1].splitlines()]

    deadline = time.monotonic() + 5  # an answer is out before its line is written
    while len(logged(busy.log_lines())) < len(ids) or len(logged(file_lines())) < len(ids):
        assert time.monotonic() < deadline, "some requests were never logged"
        time.sleep(0.05)
    assert logged(busy.log_lines()) == logged(file_lines()) == sorted(ids)  # each line whole (parsed), once


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
    ("headers={'X-API-Key': 'k3y-value'}", "k3y-value"),
    ("failed with key sk-live-abcdefghijklmnop", "sk-live-abcdefghijklmnop"),
    ("connect http://admin:hunter2@db:5432/x", "hunter2"),
    ("token=abcdef123456&x=1", "abcdef123456"),
    ("configured my-own-secret-value", "my-own-secret-value"),
])
def test_redaction(text, secret):
    redacted = Redactor(["my-own-secret-value"])(text)
    assert secret not in redacted and "[REDACTED]" in redacted


def test_redaction_leaves_ordinary_text():
    assert Redactor(["abc"])("the tokens were counted") == "the tokens were counted"
