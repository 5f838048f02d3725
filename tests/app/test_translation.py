"""What the gateway sends to Ollama for a given OpenAI body (seen by the fake Ollama), and the 400s for bad bodies."""

from __future__ import annotations

import pytest

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@pytest.fixture()
def chat(app_client, fake_ollama):
    def post(body: dict, **headers):
        response = app_client.post("/v1/chat/completions", json=body, headers=headers)
        return response, fake_ollama.last()
    return post


def test_the_worked_example_translates_field_by_field(chat):
    body = {"model": "qwen3", "stream": True, "stream_options": {"include_usage": True}, "max_completion_tokens": 256,
            "messages": [
                {"role": "developer", "content": "Be terse."},
                {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                             {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "20C"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
            "response_format": {"type": "json_object"}, "reasoning_effort": "low", "stop": "END"}
    response, sent = chat(body)
    assert response.status_code == 200
    assert sent == {
        "model": "qwen3", "stream": True, "think": "low", "format": "json",
        "options": {"num_predict": 256, "stop": ["END"]},
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "What is in this image?", "images": [PNG]},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "content": "20C", "tool_name": "get_weather", "tool_call_id": "call_1"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    }


def test_every_sampling_field_is_mapped_and_nothing_is_invented(chat):
    _, sent = chat({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "temperature": 0,
                    "top_p": 0.5, "seed": 7, "stop": ["a", "b"], "max_tokens": 9, "frequency_penalty": 0.5,
                    "presence_penalty": -0.5, "top_k": 20, "num_ctx": 4096, "keep_alive": "10m"})
    assert sent["options"] == {"temperature": 0.0, "top_p": 0.5, "seed": 7, "stop": ["a", "b"], "num_predict": 9,
                               "frequency_penalty": 0.5, "presence_penalty": -0.5, "top_k": 20, "num_ctx": 4096}
    assert sent["keep_alive"] == "10m" and sent["stream"] is True
    _, bare = chat({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]})
    assert "options" not in bare and "think" not in bare and "format" not in bare and "tools" not in bare


@pytest.mark.parametrize(("extra", "expected"), [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "p", "strict": True, "schema": {"type": "object"}}}},
     {"format": {"type": "object"}}),
    ({"response_format": {"type": "text"}}, {}),
    ({"reasoning_effort": "none"}, {"think": False}),
    ({"reasoning_effort": "minimal"}, {"think": "low"}),
    ({"reasoning": {"effort": "xhigh"}, "reasoning_effort": "low"}, {"think": "max"}),
    ({"think": True}, {"think": True}),
    ({"logprobs": True, "top_logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
    ({"tool_choice": "none", "tools": [{"type": "function", "function": {"name": "a"}}]}, {}),
    ({"options": {"repeat_penalty": 1, "num_thread": 4}}, {"options": {"repeat_penalty": 1.0, "num_thread": 4}}),
])
def test_optional_fields(chat, extra, expected):
    response, sent = chat({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], **extra})
    assert response.status_code == 200, response.get_data(as_text=True)
    for key in ("format", "think", "logprobs", "top_logprobs", "tools", "options"):
        assert sent.get(key) == expected.get(key)


def test_tool_choice_naming_one_function_sends_only_that_tool(chat):
    tools = [{"type": "function", "function": {"name": n}} for n in ("a", "b")]
    _, sent = chat({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "tools": tools,
                    "tool_choice": {"type": "function", "function": {"name": "b"}}})
    assert sent["tools"] == [tools[1]]


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "llama3.2", "messages": []}, "messages"),
    ({"model": "llama3.2", "messages": "hi"}, "messages"),
    ({"model": "llama3.2", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": 2}]}, "messages[0].content"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]}, "messages[0].content[0].type"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     "messages[0].content[0].image_url"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lG"}}]}]},
     "messages[0].content[0].image_url"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]},
     "messages[0].content[0].image_url"),
    ({"model": "llama3.2", "messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"model": "llama3.2", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}, "max_tokens"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "max_tokens": True}, "max_tokens"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 21}, "top_logprobs"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "n": 3}, "n"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"50256": -100}}, "logit_bias"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "functions": [{"name": "f"}]}, "functions"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "function", "function": {"name": "zz"}},
      "tools": [{"type": "function", "function": {"name": "a"}}]}, "tool_choice"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}, "response_format.type"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "response_format.json_schema.schema"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "options": {"num_predict": "many"}}, "options.num_predict"),
    ({"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "think": "sometimes"}, "think"),
])
def test_bad_bodies_get_a_400_naming_the_field(app_client, body, param):
    for stream in (False, True):
        response = app_client.post("/v1/chat/completions", json={**body, "stream": stream})
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.headers["Content-Type"] == "application/json"
        error = response.get_json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param
        assert error["message"]


def test_tool_message_without_a_known_call_is_sent_without_a_name(chat):
    response, sent = chat({"model": "llama3.2", "messages": [{"role": "tool", "tool_call_id": "nope", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]})
    assert response.status_code == 200
    assert sent["messages"] == [{"role": "tool", "content": "a\nb", "tool_call_id": "nope"}]


def test_the_keep_alive_setting_is_the_default_a_request_can_override(make_app, fake_ollama):
    client = make_app(KEEP_ALIVE="10m").test_client()
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}
    for path, body, upstream in [("/v1/chat/completions", chat, "/api/chat"),
                                 ("/v1/embeddings", {"model": "llama3.2", "input": "x"}, "/api/embed"),
                                 ("/v1/completions", {"model": "llama3.2", "prompt": "x"}, "/api/generate")]:
        assert client.post(path, json=body).status_code == 200
        assert fake_ollama.last(upstream)["keep_alive"] == "10m", path
        assert client.post(path, json={**body, "keep_alive": "-1"}).status_code == 200
        assert fake_ollama.last(upstream)["keep_alive"] == "-1", path
    assert make_app().test_client().post("/v1/chat/completions", json=chat).status_code == 200
    assert "keep_alive" not in fake_ollama.last("/api/chat")
