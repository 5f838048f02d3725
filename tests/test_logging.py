"""JSON log lines: one object per line, request fields, debug lines, secrets redacted, LOG_FILE."""

from __future__ import annotations

import json

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
