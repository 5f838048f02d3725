"""Ollama replies → OpenAI objects: finish reasons, usage, tool calls, chunk sequencing, model owners."""

from __future__ import annotations

import json

import pytest

from app.services.models import owner
from app.services.models import unix_time
from app.translate.reply import ChunkTranslator
from app.translate.reply import finish_reason
from app.translate.reply import to_chat_completion
from app.translate.usage import Usage


@pytest.mark.parametrize(("done_reason", "tools", "expected"), [
    ("stop", False, "stop"), ("stop", True, "tool_calls"), ("length", True, "length"), ("length", False, "length"),
    ("", True, "tool_calls"), (None, False, "stop"), ("load", False, "stop"), ("unload", False, "stop"),
])
def test_finish_reason_table(done_reason, tools, expected):
    assert finish_reason(done_reason, tools) == expected


def test_usage_defaults_missing_metrics_to_zero_and_reports_cached_tokens():
    assert Usage.of({}).openai() == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert Usage.of({"prompt_eval_count": 5, "eval_count": 2, "prompt_eval_cached_count": 4}).openai() == {
        "prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 4}}


def test_usage_of_several_rounds_sums_every_count_including_cached_tokens():
    first = Usage.of({"prompt_eval_count": 30, "eval_count": 7, "prompt_eval_cached_count": 12})
    second = Usage.of({"prompt_eval_count": 55, "eval_count": 4})
    assert (first + second).openai() == {"prompt_tokens": 85, "completion_tokens": 11, "total_tokens": 96,
                                         "prompt_tokens_details": {"cached_tokens": 12}}


def test_text_and_tool_calls_in_one_turn_keep_both():
    reply = {"model": "m", "done_reason": "stop", "message": {"content": "Let me check.", "tool_calls": [
        {"function": {"name": "f", "arguments": {"a": "ü"}}}]}}
    answer = to_chat_completion(reply, completion_id="chatcmpl-x", created=1)
    message = answer["choices"][0]["message"]
    assert message["content"] == "Let me check." and answer["choices"][0]["finish_reason"] == "tool_calls"
    call = message["tool_calls"][0]
    assert call["function"]["arguments"] == '{"a":"ü"}' and call["id"].startswith("call_") and len(call["id"]) == 29
    assert "index" not in call


def test_logprobs_get_bytes_and_top_lists():
    reply = {"model": "m", "done": True, "message": {"content": "Hi", "logprobs": [{"token": "Hi", "logprob": -0.1}]}}
    content = to_chat_completion(reply, completion_id="c", created=1)["choices"][0]["logprobs"]["content"]
    assert content == [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]


def test_chunk_sequence_for_the_worked_thinking_example():
    lines = [
        {"model": "qwen3", "message": {"role": "assistant", "content": "", "thinking": "User wants 2+2."}, "done": False},
        {"model": "qwen3", "message": {"role": "assistant", "content": "2 + 2"}, "done": False},
        {"model": "qwen3", "message": {"role": "assistant", "content": " = 4."}, "done": False},
        {"model": "qwen3", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
         "prompt_eval_count": 14, "eval_count": 9},
    ]
    t = ChunkTranslator(completion_id="chatcmpl-a1", created=1761498924, model="qwen3", include_usage=True)
    chunks = [c for line in lines for c in t.deltas(line)] + t.finish(lines[-1])
    assert [c["choices"][0]["delta"] if c["choices"] else None for c in chunks] == [
        {"role": "assistant", "content": "", "reasoning": "User wants 2+2."},
        {"content": "2 + 2"}, {"content": " = 4."}, {}, None]
    assert chunks[3]["choices"][0]["finish_reason"] == "stop"
    assert [c["usage"] for c in chunks[:-1]] == [None] * 4
    assert chunks[-1]["usage"] == {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}


def test_mixed_line_is_split_into_reasoning_then_content_and_tools():
    t = ChunkTranslator(completion_id="c", created=1, model="m", include_usage=False, reasoning_content=True)
    t.deltas({"message": {"content": "x"}})
    chunks = t.deltas({"message": {"thinking": "hm", "content": "a",
                                   "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": {}}}]}})
    assert chunks[0]["choices"][0]["delta"] == {"reasoning": "hm", "reasoning_content": "hm"}
    delta = chunks[1]["choices"][0]["delta"]
    assert delta["content"] == "a" and delta["tool_calls"][0]["index"] == 0 and delta["tool_calls"][0]["id"] == "call_1"
    assert json.loads(delta["tool_calls"][0]["function"]["arguments"]) == {}
    assert "usage" not in chunks[0]
    assert t.finish({"done_reason": "stop"})[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("model", ["qwen3", "", 'odd "model" \\ \u00e9\x00'])
def test_framed_content_events_are_the_bytes_of_the_framed_chunk_objects(include_usage, model):
    """`events()` makes a lone content delta from pre-encoded parts: byte for byte what framing `deltas()` gives."""
    from app.streaming import sse

    contents = ["Hello", "", 'say "hi"\n\ttab \\ slash', "caf\u00e9 \u4f60\u597d \U0001f600", "\x00\x1f\x7f \u2028", "</script>"]
    lines = [{"message": {"role": "assistant", "content": text}} for text in contents]
    lines += [{"message": {"content": "a", "thinking": "b"}}, {"message": {"content": "c"}, "logprobs": [{"token": "c"}]},
              {"message": {"content": None}}, {"message": {"content": 7}}]
    framed = ChunkTranslator(completion_id="chatcmpl-x", created=5, model=model, include_usage=include_usage, frame=sse)
    plain = ChunkTranslator(completion_id="chatcmpl-x", created=5, model=model, include_usage=include_usage)
    made = []
    for line in lines:
        expected = [sse(chunk) for chunk in plain.deltas(line)]
        events = framed.events(line)
        made += [isinstance(event, bytes) for event in events]
        assert [event if isinstance(event, bytes) else sse(event) for event in events] == expected
    assert made == [False, True, True, True, True, False, False, False, False]  # the first; a thought and its content; logprobs; a number
    assert not any(isinstance(event, bytes) for event in plain.events(lines[0]))
    assert framed.finish({"done_reason": "stop"}) == plain.finish({"done_reason": "stop"})


@pytest.mark.parametrize(("name", "expected"), [("llama3.2:latest", "library"), ("user/model:7b", "user"),
                                                ("hf.co/org/repo:q4", "org"), ("plain", "library")])
def test_owner(name, expected):
    assert owner(name) == expected


@pytest.mark.parametrize(("stamp", "expected"), [
    ("2025-05-04T17:37:44.706015396-07:00", 1746405464), ("2025-10-26T17:15:24.097767Z", 1761498924),
    ("2026-01-02T03:04:05Z", 1767323045), (None, 0), ("garbage", 0)])
def test_unix_time(stamp, expected):
    assert unix_time(stamp) == expected
