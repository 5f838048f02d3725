"""Error shaping: Ollama's and the MCP layer's failures mapped to statuses, types and codes; HTTP errors enveloped."""

from __future__ import annotations

import pytest

from app.errors import APIError
from app.errors import from_mcp
from app.errors import from_ollama
from app.mcp import errors as mcp

NOT_FOUND = "model 'llama9' not found"


@pytest.mark.parametrize(("status", "message", "expected"), [
    (404, NOT_FOUND, (404, "invalid_request_error", "model_not_found", "model")),
    (None, 'model "llama9" not found, try pulling it first', (404, "invalid_request_error", "model_not_found", "model")),
    (404, "404 page not found", (404, "invalid_request_error", None, None)),
    (400, "gemma:2b does not support tools", (400, "invalid_request_error", "unsupported_capability", None)),
    (None, '"x" does not support thinking', (400, "invalid_request_error", "unsupported_capability", None)),
    (400, "model is required", (400, "invalid_request_error", None, None)),
    (None, 'invalid think value: "x"', (400, "invalid_request_error", None, None)),
    (500, "option \"num_predict\" must be of type integer", (400, "invalid_request_error", None, None)),
    (401, "unauthorized", (401, "authentication_error", "upstream_unauthorized", None)),
    (403, "forbidden", (403, "permission_error", "upstream_forbidden", None)),
    (429, "too many", (429, "rate_limit_error", "upstream_rate_limited", None)),
    (503, "server busy, please try again.  maximum pending requests exceeded", (503, "api_error", "server_busy", None)),
    (None, "server busy, please try again.  maximum pending requests exceeded", (503, "api_error", "server_busy", None)),
    (502, "bad gateway", (502, "api_error", "upstream_error", None)),
    (500, "llama runner process has terminated: exit status 2", (500, "api_error", "upstream_error", None)),
    (None, "llama runner process has terminated: exit status 2", (500, "api_error", "upstream_error", None)),
    (None, "an error was encountered while running the model", (500, "api_error", "upstream_error", None)),
    (418, "teapot", (418, "invalid_request_error", None, None)),
    (507, "insufficient storage", (502, "api_error", "upstream_error", None)),
])
def test_ollama_errors_before_and_inside_a_stream(status, message, expected):
    err = from_ollama(message, status)
    assert isinstance(err, APIError)
    assert (err.status, err.type, err.code, err.param) == expected and err.message == message


@pytest.mark.parametrize(("error", "status", "kind", "code"), [
    (mcp.ServerNotFound("no MCP server named 'x'"), 404, "invalid_request_error", "mcp_server_not_found"),
    (mcp.ServerExists("exists"), 409, "invalid_request_error", "mcp_server_exists"),
    (mcp.ServerUnavailable("down"), 503, "api_error", "mcp_server_unavailable"),
    (mcp.ToolNotFound("no tool"), 404, "invalid_request_error", "mcp_tool_not_found"),
    (mcp.ToolDenied("denied"), 403, "permission_error", "mcp_tool_denied"),
    (mcp.ToolTimeout("slow"), 504, "api_error", "mcp_tool_timeout"),
    (mcp.ToolCallFailed("failed"), 502, "api_error", "mcp_tool_call_failed"),
    (mcp.ResourceError("unreadable"), 502, "api_error", "mcp_resource_error"),
    (mcp.PromptError("no prompt"), 502, "api_error", "mcp_prompt_error"),
    (mcp.MCPError("other"), 500, "api_error", "mcp_error"),
])
def test_mcp_errors_by_class(error, status, kind, code):
    err = from_mcp(error)
    assert (err.status, err.type, err.code, err.message) == (status, kind, code, error.message)


def envelope(response, status: int, kind: str, code: str | None) -> dict:
    assert response.status_code == status and response.headers["Content-Type"] == "application/json"
    error = response.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code", "request_id"}
    assert (error["type"], error["code"]) == (kind, code) and error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def test_http_errors_have_the_envelope(app_client):
    envelope(app_client.get("/v1/nothing"), 404, "invalid_request_error", "unknown_url")
    wrong = app_client.get("/v1/chat/completions")
    envelope(wrong, 405, "invalid_request_error", "method_not_allowed")
    assert "POST" in wrong.headers["Allow"]
    envelope(app_client.post("/v1/chat/completions", data=b"{"), 400, "invalid_request_error", "invalid_json")
    envelope(app_client.post("/v1/chat/completions", data=b"\xff\xfe{"), 400, "invalid_request_error", "invalid_json")


def test_too_large_body(make_app):
    client = make_app(MAX_REQUEST_BODY="2KB").test_client()
    envelope(client.post("/v1/chat/completions", data=b"x" * 4000), 413, "invalid_request_error", "request_too_large")


def test_unhealthy_report_carries_the_error_envelope(make_app):
    client = make_app(OLLAMA_HOST="http://127.0.0.1:9").test_client()
    response = client.get("/health")
    body = response.get_json()
    assert (body["status"], body["ollama"], body["ollama_host"]) == ("unhealthy", "disconnected", "http://127.0.0.1:9")
    assert envelope(response, 503, "api_error", "upstream_unavailable")["message"].startswith("Ollama is unreachable")
