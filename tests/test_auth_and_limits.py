"""API keys and rate limits, through the real SDK and raw HTTP."""

from __future__ import annotations

import time

import openai
import pytest
import requests

KEY = "sk-test-0123456789abcdef"


@pytest.fixture(scope="module")
def secured(start_gateway):
    return start_gateway(API_KEY=KEY)


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {KEY}"},
    {"authorization": f"bearer {KEY}"},
    {"AUTHORIZATION": f"BEARER   {KEY}"},
    {"X-API-Key": KEY},
    {"x-api-key": KEY, "Authorization": "Bearer wrong"},
])
def test_accepted_key_forms(secured, headers):
    assert requests.get(secured.url + "/v1/models", headers=headers, timeout=5).status_code == 200


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": KEY},
    {"Authorization": f"Basic {KEY}"},
    {"X-API-Key": "wrong", "Authorization": f"Bearer {KEY}"},
    {"X-API-Key": KEY + "x"},
])
def test_refused_key_forms(secured, headers):
    response = requests.post(secured.url + "/v1/chat/completions", headers=headers,
                             json={"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}, timeout=5)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
    assert KEY not in response.text


def test_health_and_unknown_paths(secured):
    assert requests.get(secured.url + "/health", timeout=5).status_code == 200
    assert requests.get(secured.url + "/v1/nothing", timeout=5).status_code == 401


def test_sdk_with_and_without_the_key(secured):
    with openai.OpenAI(base_url=secured.url + "/v1", api_key=KEY, max_retries=0) as good:
        assert good.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "x"}]).choices
    with openai.OpenAI(base_url=secured.url + "/v1", api_key="nope", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()


def test_the_key_never_reaches_the_logs(secured):
    requests.get(secured.url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    requests.get(secured.url + "/v1/models?api_key=" + KEY, headers={"X-API-Key": KEY + "-wrong"}, timeout=5)
    requests.get(secured.url + "/v1/models", headers={"X-Request-ID": "req-auth-fail", "Authorization": "Bearer leaked-token-123"}, timeout=5)
    secured.wait_for_log(lambda e: e.get("request_id") == "req-auth-fail" and e["message"] == "HTTP request")
    output = secured.output()
    assert KEY not in output and "leaked-token-123" not in output
    assert any(e["message"].startswith("authentication failed") for e in secured.log_lines())


@pytest.fixture(scope="module")
def limited(start_gateway):
    return start_gateway(RATE_LIMIT_RPS="2")


def test_rate_limit_returns_429_with_openai_headers(limited):
    statuses = []
    for _ in range(6):
        response = requests.get(limited.url + "/v1/models", timeout=5)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[0] == 200 and statuses[-1] == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["x-ratelimit-limit-requests"] == "2"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    assert limited.wait_for_log(lambda e: e.get("limiter_decision") == "rate_limited")["path"] == "/v1/models"


def test_health_is_never_limited(limited):
    assert all(requests.get(limited.url + "/health", timeout=5).status_code == 200 for _ in range(8))


def test_sdk_raises_rate_limit_error(limited):
    with openai.OpenAI(base_url=limited.url + "/v1", api_key="x", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError):
            for _ in range(6):
                client.models.list()
        time.sleep(2.1)  # the window passes and requests are served again
        assert client.models.list().data


def chat(gateway):
    return requests.post(gateway.url + "/v1/chat/completions", timeout=10,
                         json={"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]})


def test_rate_limit_storage_outage_is_logged_and_requests_pass(start_gateway, redis_server):
    gateway = start_gateway(RATE_LIMIT_RPS="100", RATE_LIMIT_STORAGE_URI=redis_server.url)
    try:
        answer = chat(gateway)
        assert answer.status_code == 200 and answer.headers["x-ratelimit-limit-requests"] == "100"
        redis_server.stop()
        for _ in range(3):
            answer = chat(gateway)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"]
        warning = gateway.wait_for_log(lambda e: e["message"].startswith("rate limit storage is unreachable; requests "
                                                                         "are allowed"))
        assert warning["level"] == "warning"
        assert sum(e["message"] == warning["message"] for e in gateway.log_lines()) == 1, "one line per outage"
    finally:
        gateway.stop()


def test_rate_limit_storage_outage_refuses_with_fail_open_off(start_gateway, redis_server):
    gateway = start_gateway(RATE_LIMIT_RPS="100", RATE_LIMIT_STORAGE_URI=redis_server.url, RATE_LIMIT_FAIL_OPEN="false")
    try:
        assert chat(gateway).status_code == 200
        redis_server.stop()
        refused = chat(gateway)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        error = refused.json()["error"]
        assert (error["type"], error["code"]) == ("api_error", "rate_limit_unavailable")
        assert requests.get(gateway.url + "/health", timeout=5).status_code == 200, "health is never limited"
    finally:
        gateway.stop()
