"""Chat completions through the real OpenAI SDK against the gateway and the fake Ollama."""

from __future__ import annotations

import json
import re

import openai
import pytest

MODEL = "llama3.2"


def ask(client, content, **kwargs):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}], **kwargs)


def test_non_streaming_answer_has_usage_and_stop(client):
    answer = ask(client, "hi there")
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-") and len(answer.id) >= 33
    assert answer.model == MODEL
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "Hello! You said: hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_two_answers_get_distinct_ids(client):
    assert ask(client, "a").id != ask(client, "a").id


def test_streaming_assembles_the_same_text_with_role_only_first(client):
    chunks = list(ask(client, "hi there", stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Hello! You said: hi there"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_include_usage_sends_a_final_usage_chunk(client):
    chunks = list(ask(client, "count me", stream=True, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == [] and last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.usage.completion_tokens > 0
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_max_tokens_reaching_the_limit_gives_length(client, fake_ollama):
    answer = ask(client, "[[length]] go on", max_tokens=5)
    assert answer.choices[0].finish_reason == "length"
    assert fake_ollama.last()["options"]["num_predict"] == 5
    streamed = list(ask(client, "[[length]] go on", max_completion_tokens=7, max_tokens=3, stream=True))
    assert streamed[-1].choices[0].finish_reason == "length"
    assert fake_ollama.last()["options"]["num_predict"] == 7


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                  "parameters": {"type": "object",
                                                                 "properties": {"city": {"type": "string"}},
                                                                 "required": ["city"]}}}


def test_tool_calls_non_streaming(client, fake_ollama):
    answer = ask(client, '[[tool get_weather {"city":"Tokyo"}]]', tools=[WEATHER_TOOL])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Tokyo"}
    assert re.fullmatch(r"call_[a-z0-9]{8}", call.id), "Ollama's own id is passed through"
    assert fake_ollama.last()["tools"] == [WEATHER_TOOL]


def test_parallel_tool_calls_streamed_from_an_old_server_get_own_indexes_and_ids(client):
    chunks = list(ask(client, '[[tool get_weather {"city":"New York"}]] [[tool get_weather {"city":"London"}]] [[noid]]',
                      tools=[WEATHER_TOOL], stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert [tc.index for tc in calls] == [0, 1]
    assert len({tc.id for tc in calls}) == 2 and all(tc.id.startswith("call_") for tc in calls)
    assert [json.loads(tc.function.arguments)["city"] for tc in calls] == ["New York", "London"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_result_round_trip_resolves_the_tool_name(client, fake_ollama):
    first = ask(client, '[[tool get_weather {"city":"Paris"}]]', tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages = [{"role": "user", "content": "weather in Paris?"},
                first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": "20C and sunny"}]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Tool said: 20C and sunny"
    sent = fake_ollama.last()["messages"]
    assert sent[1]["tool_calls"] == [{"id": call.id, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert sent[1]["content"] == ""
    assert sent[2] == {"role": "tool", "content": "20C and sunny", "tool_name": "get_weather", "tool_call_id": call.id}


def test_reasoning_is_exposed_and_split_from_content(client):
    answer = ask(client, "[[think]] why")
    assert answer.choices[0].message.model_extra["reasoning"] == "Let me think. Done."
    chunks = list(ask(client, "[[think]] why", stream=True))
    reasoning = [c.choices[0].delta.model_extra.get("reasoning") for c in chunks if c.choices]
    assert reasoning[:3] == ["Let me think.", " Done.", None]
    assert chunks[1].choices[0].delta.content in (None, "")
    assert chunks[2].choices[0].delta.content == "Thought"


def test_content_carried_on_the_done_line_is_not_lost(client):
    assert ask(client, "[[payload-on-done]] tail").choices[0].message.content.endswith("tail")
    chunks = list(ask(client, "[[payload-on-done]] tail", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks).endswith("tail")


def test_empty_completion_still_streams_a_role_chunk(client):
    chunks = list(ask(client, "[[empty]]", stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(("content", "kwargs", "error", "status"), [
    ("x", {"model": "llama9"}, openai.NotFoundError, 404),
    ("[[status 400 registry.ollama.ai/library/gemma:2b does not support tools]]", {}, openai.BadRequestError, 400),
    ("[[status 500 model runner crashed]]", {}, openai.InternalServerError, 500),
    ("[[status 503 server busy, please try again.]]", {}, openai.InternalServerError, 503),
    ("x", {"n": 2}, openai.BadRequestError, 400),
    ("x", {"temperature": 3}, openai.BadRequestError, 400),
])
def test_errors_map_to_sdk_exceptions(client, content, kwargs, error, status):
    params = {"model": MODEL, "messages": [{"role": "user", "content": content}], **kwargs}
    with pytest.raises(error) as caught:
        client.chat.completions.create(**params)
    assert caught.value.status_code == status
    body = caught.value.body
    assert set(body) >= {"message", "type", "param", "code"}
    with pytest.raises(error):
        client.chat.completions.create(**params, stream=True)


def test_unknown_model_error_names_the_param(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="llama9", messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"


@pytest.mark.parametrize("directive", ["[[error-mid]]", "[[eof]]", "[[garbage]]"])
def test_mid_stream_failures_raise_an_api_error_after_some_content(client, directive):
    stream = ask(client, f"{directive} a b c d", stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received, "content before the failure should have reached the client"
    assert all(c.choices[0].finish_reason is None for c in received if c.choices)


def test_mid_stream_failure_without_stream_is_a_server_error(client):
    with pytest.raises(openai.InternalServerError):
        ask(client, "[[error-mid]] a b c")
    with pytest.raises(openai.APIStatusError) as caught:
        ask(client, "[[eof]] a b c")
    assert caught.value.status_code == 502


def test_models_list_and_lookup(client):
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert ids == ["llama3.2:latest", "qwen3:latest", "hf.co/org/repo:q4"]
    assert models.data[0].owned_by == "library" and models.data[2].owned_by == "org"
    assert models.data[0].created == 1746405464
    model = client.models.retrieve("hf.co/org/repo:q4")
    assert model.id == "hf.co/org/repo:q4" and model.owned_by == "org"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope:latest")


def test_embeddings_float_and_base64(client, fake_ollama):
    result = client.embeddings.create(model=MODEL, input=["a", "b"], encoding_format="float")
    assert [d.index for d in result.data] == [0, 1]
    assert result.data[0].embedding == pytest.approx([0.010071029, -0.0017594862, 0.05007221])
    assert result.usage.prompt_tokens == 16
    encoded = client.embeddings.create(model=MODEL, input="a")  # the SDK asks for base64 and decodes it
    assert encoded.data[0].embedding == pytest.approx([0.010071029, -0.0017594862, 0.05007221], rel=1e-6)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL, input=[])
