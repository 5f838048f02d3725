"""Error envelopes for routing and body problems, health, request ids, over real HTTP."""

from __future__ import annotations

import uuid

import pytest
import requests


def assert_envelope(response, status, kind="invalid_request_error", code=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code", "request_id"}
    assert error["type"] == kind and error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    if code:
        assert error["code"] == code
    return error


def test_unknown_path_is_a_json_404(gateway):
    assert_envelope(requests.get(gateway.url + "/v1/nothing", timeout=5), 404, code="unknown_url")


def test_wrong_method_is_a_json_405_with_allow(gateway):
    response = requests.get(gateway.url + "/v1/chat/completions", timeout=5)
    assert_envelope(response, 405, code="method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("data", [b"{not json", b"", b"[1, 2]", b"\xff\xfe"])
def test_bodies_that_are_not_a_json_object(gateway, data):
    response = requests.post(gateway.url + "/v1/chat/completions", data=data,
                             headers={"Content-Type": "application/json"}, timeout=5)
    assert_envelope(response, 400, code="invalid_json")


def test_too_large_body_is_a_413(start_gateway):
    small = start_gateway(MAX_REQUEST_BODY="2KB")
    response = requests.post(small.url + "/v1/chat/completions", json={"model": "m", "messages": [
        {"role": "user", "content": "x" * 5000}]}, timeout=5)
    assert_envelope(response, 413, code="request_too_large")


def test_health_reports_ollama_and_answers_head(gateway, fake_ollama):
    response = requests.get(gateway.url + "/health", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body.pop("backends") == [{"name": fake_ollama.url.removeprefix("http://"), "url": fake_ollama.url,
                                     "status": "up", "models": None, "in_flight": 0, "queued": 0,
                                     "max_concurrency": 0, "queue": 0, "weight": 1.0}]
    assert body == {"status": "healthy", "ollama": "connected", "ollama_version": "0.12.10",
                    "ollama_host": fake_ollama.url}
    head = requests.head(gateway.url + "/health", timeout=5)
    assert head.status_code == 200 and head.content == b""


def test_answers_without_body_bytes_arrive_whole_on_a_kept_alive_connection(gateway):
    with requests.Session() as session:  # one connection: each answer must be complete before the next request
        for _ in range(2):
            preflight = session.options(gateway.url + "/v1/chat/completions", timeout=5)
            assert preflight.status_code == 200 and preflight.content == b""
            assert "POST" in preflight.headers["Allow"]
            assert session.head(gateway.url + "/health", timeout=5).status_code == 200


def test_gateway_starts_and_reports_unhealthy_while_ollama_is_down(start_gateway):
    down = start_gateway(OLLAMA_HOST="http://127.0.0.1:9")
    response = requests.get(down.url + "/health", timeout=10)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["ollama"] == "disconnected" and body["ollama_host"] == "http://127.0.0.1:9"
    assert body["error"]["code"] == "upstream_unavailable" and "unreachable" in body["error"]["message"]
    assert set(body["error"]) == {"message", "type", "param", "code", "request_id"}
    chat = requests.post(down.url + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}, timeout=10)
    assert_envelope(chat, 502, kind="api_error", code="upstream_unavailable")
    streamed = requests.post(down.url + "/v1/chat/completions", json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}, timeout=10)
    assert_envelope(streamed, 502, kind="api_error", code="upstream_unavailable")
    assert requests.get(down.url + "/health/live", timeout=5).status_code == 200


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 129, "semi;colon", "ünïcode"])
def test_malformed_request_ids_are_replaced(gateway, incoming):
    response = requests.get(gateway.url + "/v1/models", headers={"X-Request-ID": incoming.encode("utf-8")}, timeout=5)
    assert str(uuid.UUID(response.headers["X-Request-ID"])) == response.headers["X-Request-ID"]


def test_well_formed_request_id_is_kept_on_errors_too(gateway):
    response = requests.get(gateway.url + "/v1/nothing", headers={"X-Request-ID": "abc-123"}, timeout=5)
    assert response.headers["X-Request-ID"] == "abc-123"
    assert response.json()["error"]["request_id"] == "abc-123"


def test_request_id_reaches_ollama(gateway, fake_ollama):
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}
    response = requests.post(gateway.url + "/v1/chat/completions", json=body, headers={"X-Request-ID": "trace-42.a:b"},
                             timeout=10)
    assert response.headers["X-Request-ID"] == "trace-42.a:b"
    assert fake_ollama.headers[-1]["X-Request-ID"] == "trace-42.a:b"
    assert response.json()["id"].startswith("chatcmpl-")
