"""POST /v1/completions (legacy completions) through the openai SDK, and its 400s over raw HTTP."""

from __future__ import annotations

import json
import time

import openai
import pytest
import requests

from app.translate.completions import CompletionChunks
from app.translate.completions import finish_reason
from app.translate.completions import to_ollama_generate
from tests.test_http_surface import assert_envelope


def test_whole_completion(client, fake_ollama):
    answer = client.completions.create(model="llama3.2", prompt="Say hi", max_tokens=50, temperature=0, top_p=0.5,
                                       stop=["\n"], seed=7)
    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    choice = answer.choices[0]
    assert choice.text == "Hello! You said: Say hi" and choice.index == 0 and choice.finish_reason == "stop"
    assert choice.logprobs is None
    done = fake_ollama.done_lines[-1]
    assert answer.usage.prompt_tokens == done["prompt_eval_count"]
    assert answer.usage.completion_tokens == done["eval_count"]
    assert answer.usage.total_tokens == done["prompt_eval_count"] + done["eval_count"]
    sent = fake_ollama.last("/api/generate")
    assert sent["prompt"] == "Say hi" and "suffix" not in sent
    assert sent["options"] == {"temperature": 0.0, "top_p": 0.5, "stop": ["\n"], "seed": 7, "num_predict": 50}


def test_a_list_of_one_prompt_and_fill_in_the_middle(client, fake_ollama):
    answer = client.completions.create(model="llama3.2", prompt=["def add(a, b):"], suffix="    return c")
    assert answer.choices[0].text == "Hello! You said: def add(a, b): [before     return c]"
    sent = fake_ollama.last("/api/generate")
    assert sent["prompt"] == "def add(a, b):" and sent["suffix"] == "    return c"
    assert "options" not in sent, "nothing the client did not send is invented"


def test_finish_reason_length(client):
    answer = client.completions.create(model="llama3.2", prompt="[[length]] go", max_tokens=3)
    assert answer.choices[0].finish_reason == "length"


def test_streamed_with_usage(client):
    with client.completions.create(model="llama3.2", prompt="stream me", stream=True,
                                   stream_options={"include_usage": True}) as stream:
        chunks = list(stream)
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == "Hello! You said: stream me"
    assert all(c.object == "text_completion" and c.id == chunks[0].id for c in chunks)
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finals[-1] == "stop" and set(finals[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_is_incremental_and_framed(gateway):
    start = time.monotonic()
    arrivals, events = [], []
    with requests.post(gateway.url + "/v1/completions", stream=True, timeout=10,
                       json={"model": "llama3.2", "prompt": "[[slow 5 0.2]]", "stream": True}) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                arrivals.append(time.monotonic() - start)
                events.append(line)
    assert events[-1] == b"data: [DONE]"
    first = json.loads(events[0][len(b"data: "):])
    assert first["choices"] == [{"text": "tok0 ", "index": 0, "logprobs": None, "finish_reason": None}]
    assert "usage" not in first
    assert arrivals[-1] - arrivals[0] > 0.6, arrivals  # the chunks came one by one, 0.2 s apart


def test_stream_without_usage(client):
    with client.completions.create(model="llama3.2", prompt="x", stream=True) as stream:
        chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason == "stop" and all(c.usage is None for c in chunks)


def test_unknown_model_is_a_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.completions.create(model="llama9", prompt="x")
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="llama9", prompt="x", stream=True)


def test_mid_stream_failure_is_one_error_event(gateway):
    response = requests.post(gateway.url + "/v1/completions", timeout=10,
                             json={"model": "llama3.2", "prompt": "[[error-mid]]", "stream": True})
    events = [line for line in response.text.split("\n\n") if line]
    assert response.status_code == 200 and b"[DONE]" not in response.content
    error = json.loads(events[-1][len("data: "):])["error"]
    assert error["code"] == "upstream_error" and "running the model" in error["message"]
    assert all("error" not in json.loads(e[len("data: "):]) for e in events[:-1])


@pytest.mark.parametrize(("body", "param"), [
    ({"prompt": "x"}, "model"),
    ({"model": "llama3.2"}, "prompt"),
    ({"model": "llama3.2", "prompt": ["a", "b"]}, "prompt"),
    ({"model": "llama3.2", "prompt": [1, 2, 3]}, "prompt"),
    ({"model": "llama3.2", "prompt": "x", "echo": True}, "echo"),
    ({"model": "llama3.2", "prompt": "x", "best_of": 2}, "best_of"),
    ({"model": "llama3.2", "prompt": "x", "n": 2}, "n"),
    ({"model": "llama3.2", "prompt": "x", "logprobs": 2}, "logprobs"),
    ({"model": "llama3.2", "prompt": "x", "max_tokens": "10"}, "max_tokens"),
    ({"model": "llama3.2", "prompt": "x", "temperature": "0.5"}, "temperature"),
    ({"model": "llama3.2", "prompt": "x", "stream": "yes"}, "stream"),
    ({"model": "llama3.2", "prompt": "x", "suffix": 3}, "suffix"),
    ({"model": "llama3.2", "prompt": "x", "stop": [1]}, "stop"),
])
def test_bad_bodies_are_400s_naming_the_field(gateway, body, param):
    response = requests.post(gateway.url + "/v1/completions", json=body, timeout=5)
    error = assert_envelope(response, 400)
    assert error["param"] == param and param in error["message"]


def test_accepted_defaults_for_refused_fields(client):
    answer = client.completions.create(model="llama3.2", prompt="x", echo=False, best_of=1, n=1)
    assert answer.choices[0].text


def test_translation_units():
    req = {"model": "m", "prompt": ["p"], "stop": ["x"], "max_tokens": 5, "keep_alive": None}
    assert to_ollama_generate(req, stream=True, keep_alive="10m") == {
        "model": "m", "prompt": "p", "stream": True, "options": {"stop": ["x"], "num_predict": 5}, "keep_alive": "10m"}
    assert to_ollama_generate({"model": "m", "prompt": "p", "keep_alive": 0}, stream=True, keep_alive="10m")["keep_alive"] == 0
    assert [finish_reason(r) for r in ("length", "stop", "load", "", None)] == ["length", "stop", "stop", "stop", "stop"]
    chunks = CompletionChunks(completion_id="cmpl-1", created=1, model="m", include_usage=True)
    assert chunks.of_line({"response": "", "done": False}) == []
    last, usage = chunks.of_line({"response": "!", "done": True, "done_reason": "length", "prompt_eval_count": 2,
                                  "eval_count": 3})
    assert last["choices"][0] == {"text": "!", "index": 0, "logprobs": None, "finish_reason": "length"}
    assert last["usage"] is None and usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_ollama_errors_use_the_gateway_envelope(gateway):
    response = requests.post(gateway.url + "/v1/completions", timeout=5,
                             json={"model": "llama3.2", "prompt": "[[status 503 server busy]]", "stream": True})
    assert_envelope(response, 503, kind="api_error", code="server_busy")
