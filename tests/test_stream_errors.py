"""Ollama's errors inside a stream are mapped like its HTTP errors: before the first line with a real status,
after it as one in-band event with the same type and code."""

from __future__ import annotations

import json

import pytest
import requests

NOT_FOUND = "model 'llama3.2' not found, try pulling it first"
CRASH = "llama runner process has terminated: exit status 2"


def post(gateway, content, stream):
    body = {"model": "llama3.2", "stream": stream, "messages": [{"role": "user", "content": content}]}
    return requests.post(gateway.url + "/v1/chat/completions", json=body, timeout=10)


def events(response) -> list:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("text", "status", "kind", "code"), [
    (NOT_FOUND, 404, "invalid_request_error", "model_not_found"),
    ("registry.ollama.ai/library/llama3.2:latest does not support tools", 400, "invalid_request_error",
     "unsupported_capability"),
    (CRASH, 500, "api_error", "upstream_error"),
])
def test_an_error_line_before_any_content_keeps_its_status(gateway, stream, text, status, kind, code):
    response = post(gateway, f"[[error-at 0 {text}]] hi", stream)
    assert response.status_code == status and response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["type"], error["code"], error["message"]) == (kind, code, text)
    if code == "model_not_found":
        assert error["param"] == "model"


@pytest.mark.parametrize(("text", "kind", "code"), [
    (NOT_FOUND, "invalid_request_error", "model_not_found"),
    (CRASH, "api_error", "upstream_error"),
])
def test_an_error_line_after_content_is_one_event_with_the_same_code(gateway, text, kind, code):
    response = post(gateway, f"[[error-at 2 {text}]] one two three four", True)
    assert response.status_code == 200
    data = events(response)
    assert data[-1] != "[DONE]"
    error = json.loads(data[-1])["error"]
    assert (error["type"], error["code"], error["message"]) == (kind, code, text)
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert any(json.loads(d).get("choices") for d in data[:-1]), "content before the failure was sent"


def test_a_whole_answer_with_an_error_after_content_is_that_error(gateway):
    response = post(gateway, f"[[error-at 2 {NOT_FOUND}]] one two three four", False)
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
