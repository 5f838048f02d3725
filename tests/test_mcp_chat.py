"""MCP tools and resources in chat completions, end to end: OpenAI SDK → gateway → fake Ollama + real MCP servers."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import openai
import pytest
import requests
import yaml

SERVERS = Path(__file__).parent / "mcp" / "servers"


def stdio(name: str, script: str) -> dict:
    return {"name": name, "transport": "stdio", "command": sys.executable, "args": [str(SERVERS / f"{script}.py")]}


@pytest.fixture(scope="module")
def mcp_gateway(start_gateway, tmp_path_factory):
    config = tmp_path_factory.mktemp("mcp") / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"mcp": {
        "max_tool_rounds": 3,
        "max_tool_calls_per_round": 2,
        "default_tool_timeout": "2s",
        "max_tool_result_size": 200,
        "deny_tools": ["tools__env_keys"],
        "servers": [
            {"name": "time", "transport": "stdio", "command": sys.executable, "args": ["-m", "mcp_server_time"],
             "env": {"TZ": "UTC"}},
            stdio("tools", "basic"),
            stdio("bad", "misbehaving"),
        ]}}))
    gateway = start_gateway(CONFIG_FILE=str(config), STREAM_KEEPALIVE="0.4s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait for the servers to connect
        body = {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}
        requests.post(gateway.url + "/v1/chat/completions", json=body, timeout=10)
        tools = gateway_fake_tools(gateway)
        if {"time__get_current_time", "tools__echo", "bad__slow"} <= tools:
            return gateway
        time.sleep(0.3)
    raise AssertionError(f"MCP servers did not come up:\n{gateway.output()[-3000:]}")


_fake = {}


@pytest.fixture(scope="module", autouse=True)
def _remember_fake(fake_ollama):
    _fake["server"] = fake_ollama


def gateway_fake_tools(gateway) -> set[str]:
    body = _fake["server"].last()
    return {t["function"]["name"] for t in body.get("tools") or []}


@pytest.fixture()
def sdk(mcp_gateway):
    with openai.OpenAI(base_url=mcp_gateway.url + "/v1", api_key="x", max_retries=0, timeout=30) as client:
        yield client


def ask(sdk, content, **kwargs):
    return sdk.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": content}], **kwargs)


def test_what_time_is_it_in_tokyo_uses_the_real_tool(sdk, fake_ollama):
    answer = ask(sdk, 'What time is it in Tokyo? [[tool time__get_current_time {"timezone": "Asia/Tokyo"}]]')
    text = answer.choices[0].message.content
    assert text.startswith("Tool said: ") and "Asia/Tokyo" in text and "datetime" in text
    assert answer.choices[0].finish_reason == "stop"
    sent = fake_ollama.last()["messages"]
    call = sent[-2]["tool_calls"][0]["function"]
    assert (call["name"], call["arguments"]) == ("time__get_current_time", {"timezone": "Asia/Tokyo"})
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_name"] == "time__get_current_time"
    assert sent[-1]["tool_call_id"] == sent[-2]["tool_calls"][0]["id"]
    assert_usage_of_last_rounds(answer.usage, 2)


def test_what_time_is_it_in_tokyo_streamed(sdk):
    chunks = list(ask(sdk, 'Tokyo time? [[tool time__get_current_time {"timezone": "Asia/Tokyo"}]]', stream=True,
                      stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Asia/Tokyo" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(not c.choices or not c.choices[0].delta.tool_calls for c in chunks), "MCP calls are not shown"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert_usage_of_last_rounds(chunks[-1].usage, 2)


def assert_usage_of_last_rounds(usage, rounds: int) -> None:
    """`usage` is exactly the sum of the last `rounds` replies the fake Ollama sent."""
    sent = _fake["server"].done_lines[-rounds:]
    prompt, completion = sum(d["prompt_eval_count"] for d in sent), sum(d["eval_count"] for d in sent)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (prompt, completion, prompt + completion)
    cached = sum(d.get("prompt_eval_cached_count", 0) for d in sent)
    details = usage.prompt_tokens_details
    assert (details.cached_tokens if details else 0) == cached


@pytest.mark.parametrize("stream", [False, True])
def test_usage_of_two_rounds_is_summed_exactly_with_cached_tokens(sdk, stream):
    content = '[[cached 3]] Echo it. [[tool tools__echo {"message": "hi"}]]'
    if stream:
        chunks = list(ask(sdk, content, stream=True, stream_options={"include_usage": True}))
        usage = chunks[-1].usage
    else:
        usage = ask(sdk, content).usage
    assert_usage_of_last_rounds(usage, 2)
    assert usage.prompt_tokens_details.cached_tokens == 6


@pytest.mark.parametrize("stream", [False, True])
def test_the_models_thinking_is_kept_in_the_next_round(sdk, fake_ollama, stream):
    content = '[[think]] [[tool tools__echo {"message": "hi"}]]'
    if stream:
        chunks = list(ask(sdk, content, stream=True))
        shown = "".join(getattr(c.choices[0].delta, "reasoning", None) or "" for c in chunks if c.choices)
        assert shown == "Let me think. Done."
    else:
        ask(sdk, content)
    assistant = fake_ollama.last()["messages"][-2]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["function"]["name"] == "tools__echo"
    assert assistant["thinking"] == "Let me think. Done." and assistant["content"] == "Thought"


def test_tools_are_advertised_sorted_and_denied_ones_never(sdk, fake_ollama):
    ask(sdk, "list")
    names = [t["function"]["name"] for t in fake_ollama.last()["tools"]]
    assert names == sorted(names) and "tools__echo" in names and "tools__env_keys" not in names
    echo = next(t for t in fake_ollama.last()["tools"] if t["function"]["name"] == "tools__echo")
    assert echo["function"]["parameters"]["properties"]["message"]["type"] == "string"


def test_denied_tool_called_anyway_becomes_tool_text(sdk, fake_ollama):
    answer = ask(sdk, "[[tool tools__env_keys {}]]")
    assert "not allowed" in answer.choices[0].message.content
    assert fake_ollama.last()["messages"][-1]["content"].startswith("Error:")


def test_tool_errors_and_timeouts_are_text_for_the_model(sdk):
    failed = ask(sdk, '[[tool tools__fail {"reason": "disk full"}]]').choices[0].message.content
    assert failed == "Tool said: Error: Error executing tool fail"  # the server reports isError with its own text
    started = time.monotonic()
    slow = ask(sdk, '[[tool bad__slow {"seconds": 10}]]').choices[0].message.content
    assert "timed out" in slow and time.monotonic() - started < 8


def test_results_are_truncated_to_the_configured_size(sdk, fake_ollama):
    ask(sdk, '[[tool bad__huge {"size": 5000}]]')
    result = fake_ollama.last()["messages"][-1]["content"]
    assert len(result.encode()) <= 200 + 80 and "truncated" in result


def test_calls_beyond_the_per_round_cap_are_refused_in_text(sdk, fake_ollama):
    ask(sdk, '[[tool tools__add {"a": 1, "b": 2}]] [[tool tools__add {"a": 3, "b": 4}]] [[tool tools__add {"a": 5, "b": 6}]]')
    results = [m["content"] for m in fake_ollama.last()["messages"] if m["role"] == "tool"]
    assert results[:2] == ["3", "7"] and results[2].startswith("Error: not run")


def test_rounds_are_bounded_and_the_model_answers_after_the_last(sdk, fake_ollama):
    answer = ask(sdk, '[[repeat-tool tools__echo {"message": "again"}]]')
    assert answer.choices[0].message.content.endswith("Final answer after 3 tool results")
    assert "tools" not in fake_ollama.last()
    streamed = list(ask(sdk, '[[repeat-tool tools__echo {"message": "again"}]]', stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in streamed).endswith("after 3 tool results")


CLIENT_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def test_client_and_mcp_tools_offered_together_client_calls_go_back(sdk, fake_ollama):
    answer = ask(sdk, '[[tool get_weather {"city": "Oslo"}]]', tools=[CLIENT_TOOL])
    names = [t["function"]["name"] for t in fake_ollama.last()["tools"]]
    assert names[0] == "get_weather" and "tools__echo" in names
    assert answer.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in answer.choices[0].message.tool_calls] == ["get_weather"]
    chunks = list(ask(sdk, '[[tool get_weather {"city": "Oslo"}]] [[tool tools__echo {"message": "x"}]]',
                      tools=[CLIENT_TOOL], stream=True))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [tc.function.name for tc in calls] == ["get_weather"] and calls[0].index == 0
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(("option", "expected"), [(False, set()), ({"servers": ["time"]}, {"time__"})])
def test_mcp_body_field_narrows_or_disables_tools(sdk, fake_ollama, option, expected):
    ask(sdk, "hi", extra_body={"mcp": option})
    prefixes = {t["function"]["name"].split("__")[0] + "__" for t in fake_ollama.last().get("tools") or []}
    assert prefixes == expected


def test_mcp_body_field_errors(sdk):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(sdk, "hi", extra_body={"mcp": {"servers": ["nope"]}})
    assert caught.value.body["param"] == "mcp.servers"
    with pytest.raises(openai.BadRequestError):
        ask(sdk, "hi", extra_body={"mcp": "yes"})


def test_mcp_resource_is_injected_once_without_trailing_punctuation(sdk, fake_ollama):
    ask(sdk, "Summarize mcp://tools/file:///readme.txt. Then again: mcp://tools/file:///readme.txt!")
    content = fake_ollama.last()["messages"][-1]["content"]
    assert content.count("Read me first.") == 1
    assert '<resource uri="mcp://tools/file:///readme.txt">' in content
    chunks = list(ask(sdk, "Summarize (mcp://tools/file:///readme.txt)", stream=True))
    assert "Read me first." in "".join(c.choices[0].delta.content or "" for c in chunks)


@pytest.mark.parametrize(("reference", "fragment"), [
    ("mcp://nobody/file:///readme.txt", "no MCP server named 'nobody'"),
    ("mcp://tools/file:///missing.txt", "mcp://tools/file:///missing.txt"),
])
def test_mcp_resource_errors_are_400s_naming_the_uri(sdk, reference, fragment):
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            ask(sdk, f"Read {reference}", stream=stream)
        assert fragment in caught.value.body["message"] and reference in caught.value.body["message"]


def test_crash_restart_next_call_works(sdk, mcp_gateway):
    def pid_from_tool() -> str:
        return ask(sdk, "[[tool bad__pid {}]]").choices[0].message.content.removeprefix("Tool said: ")

    before = pid_from_tool()
    restarts = requests.get(mcp_gateway.url + "/v1/mcp/servers/bad", timeout=5).json()["restarts"]
    assert before.isdigit()
    crashed = ask(sdk, "[[tool bad__crash {}]]").choices[0].message.content
    assert "Error" in crashed
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = pid_from_tool()
        if text.isdigit():
            state = requests.get(mcp_gateway.url + "/v1/mcp/servers/bad", timeout=5).json()
            assert text != before, "the answer came from a new process"
            assert state["pid"] == int(text) and state["restarts"] > restarts and state["status"] == "ready"
            return
        time.sleep(0.3)
    raise AssertionError(f"the crashed server did not come back: {text}")


def test_stream_gets_keep_alive_comments_while_tools_run(mcp_gateway):
    body = {"model": "llama3.2", "stream": True, "messages": [{"role": "user", "content": '[[tool bad__slow {"seconds": 1.5}]]'}]}
    raw = requests.post(mcp_gateway.url + "/v1/chat/completions", json=body, timeout=30).text
    assert raw.endswith("data: [DONE]\n\n")
    frames = raw.split("\n\n")
    keep_alives = [i for i, frame in enumerate(frames) if frame == ": keep-alive"]
    assert len(keep_alives) >= 2, "a 1.5 s tool with STREAM_KEEPALIVE=0.4s sends comments while it runs"
    events = [json.loads(frame[6:]) for frame in frames if frame.startswith("data: {")]
    assert "Tool said: slept 1.5" == "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])



def test_sigterm_drains_a_tool_stream_then_closes_the_mcp_children(fake_ollama, tmp_path):
    import signal
    import threading

    from tests.gateway import Gateway

    config = tmp_path / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"mcp": {"servers": [stdio("tools", "basic"), stdio("bad", "misbehaving")]}}))
    gateway = Gateway({"OLLAMA_HOST": fake_ollama.url, "CONFIG_FILE": str(config), "RATE_LIMIT_RPS": "0",
                       "SHUTDOWN_TIMEOUT": "20s"}).start()
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=30)
    try:
        deadline = time.monotonic() + 20
        pids = []
        while time.monotonic() < deadline and len(pids) < 2:
            pids = [(ask(client, f"[[tool {s}__pid {{}}]]").choices[0].message.content or "").removeprefix("Tool said: ")
                    for s in ("tools", "bad")]
            pids = [int(p) for p in pids if p.isdigit()]
            time.sleep(0.2)
        assert len(pids) == 2, gateway.output()[-2000:]
        received = []

        def slow_tool_stream():
            received.extend(ask(client, '[[tool bad__slow {"seconds": 1.5}]]', stream=True))

        reader = threading.Thread(target=slow_tool_stream)
        reader.start()
        time.sleep(0.5)
        gateway.process.send_signal(signal.SIGTERM)
        reader.join(20)
        assert gateway.process.wait(20) == 0
    finally:
        client.close()
        gateway.stop()
    text = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert text == "Tool said: slept 1.5", "the MCP server must outlive the in-flight request"
    for pid in pids:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        assert not _alive(pid), f"MCP server process {pid} outlived the gateway"


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
