"""Bad request bodies over real HTTP: each is a 4xx error envelope naming the field, and nothing reaches Ollama."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from tests.test_http_surface import assert_envelope

CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}
COMPLETION = {"model": "llama3.2", "prompt": "x"}
RESPONSE = {"model": "llama3.2", "input": "x"}
EMBEDDING = {"model": "llama3.2", "input": "x"}
HUGE = 10**30


def _assistant(call: dict) -> dict:
    return {**CHAT, "messages": [{"role": "assistant", "content": None, "tool_calls": [call]}]}


def _call(**changes) -> dict:
    function = {"name": "f", "arguments": "{}", **changes.pop("function", {})}
    return {"id": "call_1", "type": "function", "function": function, **changes}


def _tool(**function) -> dict:
    return {**CHAT, "tools": [{"type": "function", "function": {"name": "f", **function}}]}


# (path, body, param); every one is a 400 invalid_request_error.
BAD_FIELDS = [
    ("/v1/chat/completions", {**CHAT, "reasoning": {"effort": 5}}, "reasoning.effort"),
    ("/v1/chat/completions", {**CHAT, "reasoning": "high"}, "reasoning"),
    ("/v1/chat/completions", {**CHAT, "reasoning_effort": ["high"]}, "reasoning_effort"),
    ("/v1/chat/completions", {**CHAT, "tool_choice": {"type": "function", "function": "f"}}, "tool_choice.function"),
    ("/v1/chat/completions", {**CHAT, "tool_choice": {"type": "function", "function": {"name": 1}}}, "tool_choice.function.name"),
    ("/v1/chat/completions", {**CHAT, "tool_choice": {"function": {"name": "f"}}}, "tool_choice.type"),
    ("/v1/chat/completions", {**CHAT, "tool_choice": 3}, "tool_choice"),
    ("/v1/chat/completions", {**CHAT, "tool_choice": "sometimes"}, "tool_choice"),
    ("/v1/chat/completions", {**CHAT, "response_format": {"type": "json_schema", "json_schema": "x"}}, "response_format.json_schema"),
    ("/v1/chat/completions", {**CHAT, "response_format": {"type": "json_schema", "json_schema": {"schema": []}}}, "response_format.json_schema.schema"),
    ("/v1/chat/completions", {**CHAT, "response_format": {"type": ["json_object"]}}, "response_format.type"),
    ("/v1/chat/completions", {**CHAT, "response_format": "json"}, "response_format"),
    ("/v1/chat/completions", _assistant(_call(id=5)), "messages[0].tool_calls[0].id"),
    ("/v1/chat/completions", _assistant(_call(type=5)), "messages[0].tool_calls[0].type"),
    ("/v1/chat/completions", _assistant(_call(function={"name": {"x": 1}})), "messages[0].tool_calls[0].function.name"),
    ("/v1/chat/completions", _assistant(_call(function={"arguments": 7})), "messages[0].tool_calls[0].function.arguments"),
    ("/v1/chat/completions", _assistant(_call(function={"arguments": '{"a": NaN}'})), "messages[0].tool_calls[0].function.arguments"),
    ("/v1/chat/completions", _assistant({"id": "c", "type": "function"}), "messages[0].tool_calls[0].function"),
    ("/v1/chat/completions", _assistant("call"), "messages[0].tool_calls[0]"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "assistant", "tool_calls": {"id": "c"}}]}, "messages[0].tool_calls"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "tool", "tool_call_id": 1, "content": "x"}]}, "messages[0].tool_call_id"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": 1, "content": "x"}]}, "messages[0].role"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"content": "x"}]}, "messages[0].role"),
    ("/v1/chat/completions", {**CHAT, "messages": ["x"]}, "messages[0]"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "system", "content": {"text": "x"}}]}, "messages[0].content"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages[0].content[0].text"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content[0]"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 1}}]}]}, "messages[0].content[0].image_url.url"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "tool", "content": [{"type": "image_url", "image_url": "x"}]}]}, "messages[0].content[0].type"),
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "assistant", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
    ("/v1/chat/completions", _tool(name=5), "tools[0].function.name"),
    ("/v1/chat/completions", _tool(description=["x"]), "tools[0].function.description"),
    ("/v1/chat/completions", _tool(parameters="object"), "tools[0].function.parameters"),
    ("/v1/chat/completions", _tool(parameters={"type": "object", "properties": []}), "tools[0].function.parameters.properties"),
    ("/v1/chat/completions", {**CHAT, "tools": ["f"]}, "tools[0]"),
    ("/v1/chat/completions", {**CHAT, "tools": [{"type": "function", "function": "f"}]}, "tools[0].function"),
    ("/v1/chat/completions", {**CHAT, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ("/v1/chat/completions", {**CHAT, "stream_options": True}, "stream_options"),
    ("/v1/chat/completions", {**CHAT, "mcp": "yes"}, "mcp"),
    ("/v1/chat/completions", {**CHAT, "mcp": {"servers": "time"}}, "mcp.servers"),
    ("/v1/chat/completions", {**CHAT, "logit_bias": []}, "logit_bias"),
    ("/v1/chat/completions", {**CHAT, "max_tokens": 1e30}, "max_tokens"),
    ("/v1/chat/completions", {**CHAT, "max_completion_tokens": HUGE}, "max_completion_tokens"),
    ("/v1/chat/completions", {**CHAT, "seed": 1e40}, "seed"),
    ("/v1/chat/completions", {**CHAT, "seed": 2**63}, "seed"),
    ("/v1/chat/completions", {**CHAT, "top_k": HUGE}, "top_k"),
    ("/v1/chat/completions", {**CHAT, "options": {"num_ctx": HUGE}}, "options.num_ctx"),
    ("/v1/chat/completions", {**CHAT, "options": {"unknown_option": -HUGE}}, "options.unknown_option"),
    ("/v1/chat/completions", {**CHAT, "options": {"temperature": "warm"}}, "options.temperature"),
    ("/v1/chat/completions", {**CHAT, "options": {"unknown_option": {"nested": 1}}}, "options.unknown_option"),
    ("/v1/chat/completions", {**CHAT, "options": [1]}, "options"),
    ("/v1/completions", {**COMPLETION, "max_tokens": 1e30}, "max_tokens"),
    ("/v1/completions", {**COMPLETION, "seed": HUGE}, "seed"),
    ("/v1/completions", {**COMPLETION, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
    ("/v1/completions", {**COMPLETION, "stream_options": "usage"}, "stream_options"),
    ("/v1/completions", {**COMPLETION, "prompt": {"text": "x"}}, "prompt"),
    ("/v1/completions", {**COMPLETION, "user": 1}, "user"),
    ("/v1/embeddings", {**EMBEDDING, "dimensions": HUGE}, "dimensions"),
    ("/v1/embeddings", {**EMBEDDING, "options": {"num_ctx": 1e30}}, "options.num_ctx"),
    ("/v1/embeddings", {**EMBEDDING, "options": "fast"}, "options"),
    ("/v1/embeddings", {**EMBEDDING, "input": [["a"]]}, "input"),
    ("/v1/embeddings", {**EMBEDDING, "encoding_format": 1}, "encoding_format"),
    ("/v1/responses", {**RESPONSE, "reasoning": {"effort": 5}}, "reasoning.effort"),
    ("/v1/responses", {**RESPONSE, "reasoning": "high"}, "reasoning"),
    ("/v1/responses", {**RESPONSE, "tool_choice": {"type": "function", "name": 1}}, "tool_choice.name"),
    ("/v1/responses", {**RESPONSE, "tool_choice": ["auto"]}, "tool_choice"),
    ("/v1/responses", {**RESPONSE, "tools": [{"type": "function", "name": "f", "parameters": "x"}]}, "tools[0].parameters"),
    ("/v1/responses", {**RESPONSE, "tools": [{"type": "function"}]}, "tools[0].name"),
    ("/v1/responses", {**RESPONSE, "tools": [{"type": "function", "name": "f", "parameters": {"required": "a"}}]}, "tools[0].parameters.required"),
    ("/v1/responses", {**RESPONSE, "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ("/v1/responses", {**RESPONSE, "text": {"format": "json"}}, "text.format"),
    ("/v1/responses", {**RESPONSE, "text": "json"}, "text"),
    ("/v1/responses", {**RESPONSE, "instructions": ["be brief"]}, "instructions"),
    ("/v1/responses", {**RESPONSE, "previous_response_id": 5}, "previous_response_id"),
    ("/v1/responses", {**RESPONSE, "max_output_tokens": 1e30}, "max_output_tokens"),
    ("/v1/responses", {**RESPONSE, "metadata": {"a": 1}}, "metadata.a.value"),
    ("/v1/responses", {**RESPONSE, "input": [{"role": "user", "content": 5}]}, "input[0].content"),
    ("/v1/responses", {**RESPONSE, "input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]}, "input[0].content[0].text"),
    ("/v1/responses", {**RESPONSE, "input": [{"role": "user", "content": [{"type": "input_image", "image_url": {}}]}]}, "input[0].content[0].image_url"),
    ("/v1/responses", {**RESPONSE, "input": [{"role": "user", "content": ["x"]}]}, "input[0].content[0]"),
    ("/v1/responses", {**RESPONSE, "input": [{"type": "function_call", "call_id": "c", "name": 1}]}, "input[0].name"),
    ("/v1/responses", {**RESPONSE, "input": [{"type": "function_call", "call_id": 1, "name": "f"}]}, "input[0].call_id"),
    ("/v1/responses", {**RESPONSE, "input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}]}, "input[0].arguments"),
    ("/v1/responses", {**RESPONSE, "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ("/v1/responses", {**RESPONSE, "input": [{"type": 3}]}, "input[0].type"),
    ("/v1/responses", {**RESPONSE, "input": ["x"]}, "input[0]"),
    ("/v1/responses", {**RESPONSE, "options": {"seed": 1e30}}, "options.seed"),
    ("/v1/responses", {**RESPONSE, "mcp": 1}, "mcp"),
]


def _upstream_count(fake_ollama) -> int:
    with fake_ollama.lock:
        return len(fake_ollama.requests)


@pytest.mark.parametrize(("path", "body", "param"), BAD_FIELDS, ids=[f"{p}:{param}" for p, _, param in BAD_FIELDS])
def test_a_field_of_the_wrong_shape_is_a_400_naming_it(gateway, fake_ollama, path, body, param):
    before = _upstream_count(fake_ollama)
    for stream in (False, True) if path != "/v1/embeddings" else (False,):
        response = requests.post(gateway.url + path, json={**body, "stream": stream}, timeout=10)
        error = assert_envelope(response, 400)
        assert error["param"] == param, error
        assert param in error["message"]
    assert _upstream_count(fake_ollama) == before


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings"])
@pytest.mark.parametrize(("raw", "problem"), [
    (b'{"model": "llama3.2", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    (b'{"model": "llama3.2", "x": ' + b'{"a":' * 65 + b"1" + b"}" * 65 + b"}", "nested"),
    (b'{"model": "llama3.2", "temperature": NaN}', "NaN"),
    (b'{"model": "llama3.2", "temperature": Infinity}', "Infinity"),
    (b'{"model": "llama3.2", "temperature": -Infinity}', "-Infinity"),
    (b'{"model": "llama3.2", "options": {"seed": 1e999}}', "too large"),
])
def test_bodies_python_reads_but_json_forbids_are_invalid_json(gateway, fake_ollama, path, raw, problem):
    before = _upstream_count(fake_ollama)
    response = requests.post(gateway.url + path, data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    error = assert_envelope(response, 400, code="invalid_json")
    assert problem in error["message"]
    assert _upstream_count(fake_ollama) == before


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", {**CHAT, "messages": [{"role": "user", "content": "a\ud800b"}]}, "messages[0].content"),
    ("/v1/chat/completions", {**CHAT, "user": "\udfff"}, "user"),
    ("/v1/chat/completions", {**CHAT, "metadata": {"k\udc00": 1}}, "metadata.k\udc00"),
    ("/v1/completions", {**COMPLETION, "prompt": ["\ud83d"]}, "prompt[0]"),
    ("/v1/responses", {**RESPONSE, "input": [{"role": "user", "content": [{"type": "input_text", "text": "\ude00"}]}]},
     "input[0].content[0].text"),
    ("/v1/embeddings", {**EMBEDDING, "input": ["ok", "\ud800"]}, "input[1]"),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(gateway, fake_ollama, path, body, param):
    before = _upstream_count(fake_ollama)
    response = requests.post(gateway.url + path, data=json.dumps(body), headers={"Content-Type": "application/json"},
                             timeout=10)
    error = assert_envelope(response, 400)
    assert error["param"] == param and "surrogate" in error["message"]
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")  # the surrogate as UTF-8 bytes
    response = requests.post(gateway.url + path, data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    assert assert_envelope(response, 400)["param"] == param
    assert _upstream_count(fake_ollama) == before


def test_escaped_surrogate_pairs_and_deep_but_allowed_nesting_still_work(gateway, fake_ollama):
    schema: dict = {"type": "string"}
    for _ in range(25):
        schema = {"type": "object", "properties": {"a": schema}}
    body = {**CHAT, "messages": [{"role": "user", "content": "smile \U0001f600"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]}
    response = requests.post(gateway.url + "/v1/chat/completions", data=json.dumps(body),  # ensure_ascii: \ud83d\ude00
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 200, response.text
    sent = fake_ollama.last("/api/chat")
    assert sent["messages"][0]["content"] == "smile \U0001f600"
    assert sent["tools"][0]["function"]["parameters"] == schema


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {**CHAT, "messages": [
        {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "1"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}], "refusal": None},
        {"role": "user", "content": "and?"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "strict": True,
                                                    "parameters": {"type": "object", "properties": {}, "required": []}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}, "stream_options": None,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}},
        "reasoning": {"effort": None}, "reasoning_effort": "low", "seed": -(2**63), "max_tokens": 2**63 - 1,
        "options": {"num_ctx": 4096.0, "stop": "x", "mirostat": 2}}),
    ("/v1/chat/completions", {**CHAT, "tool_choice": "required", "tools": [{"type": "function", "function": {"name": "f"}}]}),
    ("/v1/completions", {**COMPLETION, "stream_options": {"include_usage": True}, "seed": 2**63 - 1}),
    ("/v1/embeddings", {**EMBEDDING, "options": {"num_ctx": 512}}),
    ("/v1/responses", {**RESPONSE, "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}, {"type": "input_text"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": ""},
        {"type": "function_call_output", "call_id": "c1", "output": {"ok": True}},
        {"type": "reasoning", "summary": []}],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "f"}, "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}}, "metadata": {"a": "b"}}),
])
def test_the_shapes_clients_send_are_still_accepted(gateway, path, body):
    response = requests.post(gateway.url + path, json=body, timeout=10)
    assert response.status_code == 200, response.text


def _chunked(gateway, path: str, pieces: list[bytes]) -> tuple[int, dict]:
    """POST `pieces` as a chunked body over a raw socket; the status and parsed JSON answer."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode())
        for piece in pieces:
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            decoded, body = decoded + rest[:n], rest[n + 2:]
        body = decoded
    return status, json.loads(body)


ECHO_PLUGIN = """
from flask import Blueprint
from flask import jsonify
from flask import request


class Plugin:
    def blueprint(self):
        bp = Blueprint("echo", __name__)

        @bp.post("/echo")
        def echo():
            return jsonify(request.get_json())

        return bp
"""


@pytest.fixture(scope="module")
def small(start_gateway, tmp_path_factory):
    """A gateway with a 2 KB body limit, one workflow and a plugin whose route reads JSON."""
    folder = tmp_path_factory.mktemp("small")
    (folder / "workflows").mkdir()
    (folder / "workflows" / "echo.yaml").write_text("name: echo\nsteps:\n  - {id: say, type: llm, model: llama3.2, prompt: hi}\n")
    (folder / "plugins").mkdir()
    (folder / "plugins" / "echo.py").write_text(ECHO_PLUGIN)
    config = folder / "llamagate.yaml"
    config.write_text(json.dumps({"workflows": {"dirs": [str(folder / "workflows")]},
                                  "plugins": {"dirs": [str(folder / "plugins")], "items": [{"name": "echo"}]}}))
    return start_gateway(MAX_REQUEST_BODY="2KB", CONFIG_FILE=str(config))


@pytest.mark.parametrize(("raw", "status"), [
    (b'{"a": [1, "\\ud83d\\ude00"]}', 200),
    (b'{"a": ' + b"[" * 900 + b"]" * 900 + b"}", 400),  # within the 2 KB limit
    (b'{"a": NaN}', 400),
    (b'{"a": "\\udc00"}', 400),
])
def test_a_plugin_route_reading_json_follows_the_same_rules(small, raw, status):
    response = requests.post(small.url + "/v1/plugins/echo/echo", data=raw, headers={"Content-Type": "application/json"},
                             timeout=10)
    if status == 200:
        assert response.status_code == 200 and response.json() == {"a": [1, "\U0001f600"]}
    else:
        assert_envelope(response, 400)


BODY_ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings", "/api/chat",
               "/api/generate", "/api/embed", "/v1/workflows/echo/runs", "/v1/mcp/execute", "/v1/mcp/servers", "/v1/plugins/echo/echo"]


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_chunked_body_past_the_limit_is_a_413(small, fake_ollama, path):
    before = _upstream_count(fake_ollama)
    valid_start = json.dumps(CHAT).encode()  # cut at the limit, the body used to be this plus spaces: accepted
    status, answer = _chunked(small, path, [valid_start, b" " * 4000])
    assert status == 413, answer
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["code"] == "request_too_large"
    status, answer = _chunked(small, path, [b'{"model": "' + b"x" * 3000 + b'"}'])
    assert status == 413 and answer["error"]["code"] == "request_too_large"
    assert _upstream_count(fake_ollama) == before


def test_a_chunked_body_under_the_limit_is_read_whole(small, fake_ollama):
    body = json.dumps({**CHAT, "messages": [{"role": "user", "content": "y" * 1500}]}).encode()
    status, answer = _chunked(small, "/v1/chat/completions", [body[:700], body[700:1400], body[1400:]])
    assert status == 200, answer
    assert fake_ollama.last("/api/chat")["messages"][0]["content"] == "y" * 1500
    pieces = (piece for piece in [b'{"model": "llama3.2", ', b'"prompt": "x"}'])
    response = requests.post(small.url + "/v1/completions", data=pieces, headers={"Content-Type": "application/json"},
                             timeout=10)
    assert response.status_code == 200, response.text
    too_large = (b"x" * 1000 for _ in range(5))
    response = requests.post(small.url + "/v1/completions", data=too_large, headers={"Content-Type": "application/json"},
                             timeout=10)
    assert_envelope(response, 413, code="request_too_large")


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate", "/api/embed", "/api/show"])
def test_a_native_body_nested_too_deep_is_a_400_and_not_relayed(gateway, fake_ollama, path):
    before = _upstream_count(fake_ollama)
    for depth in (65, 50_000):
        raw = b'{"model": "llama3.2", "x": ' + b"[" * depth + b"]" * depth + b"}"
        response = requests.post(gateway.url + path, data=raw, timeout=10)
        assert "nested" in assert_envelope(response, 400, code="invalid_json")["message"]
    assert _upstream_count(fake_ollama) == before


def test_a_native_body_nested_too_deep_is_refused_for_a_key_limited_to_some_models(start_gateway, tmp_path):
    config = tmp_path / "llamagate.yaml"
    config.write_text('keys:\n  - {name: team, key: sk-team-12345678, models: ["llama3.2*"]}\n')
    limited = start_gateway(CONFIG_FILE=str(config))
    raw = b'{"model": "llama3.2", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = requests.post(limited.url + "/api/chat", data=raw, headers={"Authorization": "Bearer sk-team-12345678"},
                             timeout=10)
    assert_envelope(response, 400, code="invalid_json")
