"""The Responses API through the real gateway with the OpenAI SDK: whole and streamed, function tools and their
outputs, structured output, previous_response_id, retrieve and delete, and the 400s."""

from __future__ import annotations

import json

import openai
import pytest
import requests

WEATHER = [{"type": "function", "name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]


@pytest.fixture()
def sdk(gateway):
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=20) as client:
        yield client


def test_a_whole_response(sdk, fake_ollama):
    response = sdk.responses.create(model="llama3.2", input="Hello there", instructions="Be brief",
                                    max_output_tokens=50, temperature=0)
    assert response.status == "completed" and response.output_text == "Hello! You said: Hello there"
    sent = fake_ollama.last()
    assert sent["messages"] == [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hello there"}]
    assert sent["options"] == {"temperature": 0.0, "num_predict": 50}
    done = fake_ollama.done_lines[-1]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (done["prompt_eval_count"], done["eval_count"])
    assert response.usage.total_tokens == done["prompt_eval_count"] + done["eval_count"]


def test_a_response_cut_by_max_output_tokens_is_incomplete(sdk):
    response = sdk.responses.create(model="llama3.2", input="[[length]] go on")
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


def test_a_streamed_response_sends_the_typed_events_in_order(sdk):
    with sdk.responses.stream(model="llama3.2", input="stream me please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "Hello! You said: stream me please"
    assert final.usage.total_tokens > 0


def test_function_tools_round_trip_with_their_output(sdk, fake_ollama):
    first = sdk.responses.create(model="llama3.2", input='[[tool get_weather {"city": "Paris"}]]', tools=WEATHER)
    call = next(item for item in first.output if item.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"}) and call.call_id
    assert fake_ollama.last()["tools"][0]["function"]["name"] == "get_weather"
    second = sdk.responses.create(model="llama3.2", previous_response_id=first.id, tools=WEATHER,
                                  input=[{"type": "function_call_output", "call_id": call.call_id, "output": "20C"}])
    assert second.output_text == "Tool said: 20C"
    sent = fake_ollama.last()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert sent[2] == {"role": "tool", "content": "20C", "tool_name": "get_weather", "tool_call_id": call.call_id}


def test_a_streamed_function_call(sdk):
    with sdk.responses.stream(model="llama3.2", input='[[tool get_weather {"city": "Rome"}]]', tools=WEATHER) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.done" in kinds and kinds[-1] == "response.completed"
    call = next(item for item in final.output if item.type == "function_call")
    assert json.loads(call.arguments) == {"city": "Rome"}


def test_structured_output_with_a_json_schema(sdk, fake_ollama):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    sdk.responses.create(model="llama3.2", input="json please",
                         text={"format": {"type": "json_schema", "name": "answer", "schema": schema}})
    assert fake_ollama.last()["format"] == schema


def test_previous_response_id_carries_the_conversation(sdk, fake_ollama):
    first = sdk.responses.create(model="llama3.2", input="My name is Ada.", instructions="Be brief")
    sdk.responses.create(model="llama3.2", input="What is my name?", previous_response_id=first.id)
    sent = fake_ollama.last()["messages"]
    assert [m["content"] for m in sent] == ["My name is Ada.", "Hello! You said: My name is Ada.", "What is my name?"]


def test_retrieve_delete_and_unknown_ids(sdk):
    response = sdk.responses.create(model="llama3.2", input="keep me")
    assert sdk.responses.retrieve(response.id).output_text == response.output_text
    sdk.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.responses.create(model="llama3.2", input="x", previous_response_id="resp_nope")
    assert caught.value.body["code"] == "response_not_found" and caught.value.body["param"] == "previous_response_id"


def test_store_false_keeps_nothing(sdk):
    response = sdk.responses.create(model="llama3.2", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(response.id)


def test_a_failure_mid_stream_is_an_error_event_then_response_failed(gateway):
    body = {"model": "llama3.2", "input": "[[error-mid]] a b c d", "stream": True}
    with requests.post(gateway.url + "/v1/responses", json=body, timeout=10) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-1]["response"]["status"] == "failed" and events[-2]["code"] == "upstream_error"


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "model"),
    ({"model": "llama3.2", "input": 5}, "input"),
    ({"model": "llama3.2", "input": [{"type": "message", "role": "wizard", "content": "x"}]}, "input[0].role"),
    ({"model": "llama3.2", "input": [{"type": "file_search_call"}]}, "input[0].type"),
    ({"model": "llama3.2", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"model": "llama3.2", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
    ({"model": "llama3.2", "input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"model": "llama3.2", "input": "x", "temperature": "hot"}, "temperature"),
])
def test_bad_bodies_are_400s_naming_the_field(gateway, body, param):
    response = requests.post(gateway.url + "/v1/responses", json=body, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
