"""Plugin hooks end to end: plugins loaded from a folder by a real gateway, driven over HTTP against the fake Ollama.

Every plugin here acts only when a trigger word is in a user message, so one gateway serves every test.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import openai
import pytest
import requests
import yaml

SERVERS = Path(__file__).parent / "mcp" / "servers"
MODEL = "llama3.2"

# Prepended to every plugin file: does a user message hold this trigger word?
PRELUDE = '''
def asked(request, word):
    return any(word in str(m.get("content")) for m in request["messages"] if m.get("role") == "user")
'''

SYSTEM_TEXT = "You are watched by the sysmsg plugin."
CANNED = "Canned answer from the gatekeeper."

PLUGINS = {
    "sysmsg": f'''
        class Plugin:
            def on_request(self, ctx, request):
                if asked(request, "[add-system]"):
                    system = {{"role": "system", "content": {SYSTEM_TEXT!r}}}
                    return {{**request, "messages": [system, *request["messages"]]}}
                return None
        ''',
    "upper": '''
        class Plugin:
            def on_request(self, ctx, request):
                if asked(request, "[upper]"):
                    ctx.state["upper"] = True

            def on_response(self, ctx, response):
                if ctx.state.get("upper"):
                    for choice in response["choices"]:
                        if choice["message"].get("content"):
                            choice["message"]["content"] = choice["message"]["content"].upper()
                    return response
                return None

            def on_chunk(self, ctx, chunk):
                if ctx.state.get("upper"):
                    for choice in chunk.get("choices") or []:
                        if choice["delta"].get("content"):
                            choice["delta"]["content"] = choice["delta"]["content"].upper()
                    return chunk
                return None
        ''',
    # Listed twice (as mark_a and mark_b) with different markers and priorities.
    "marker": '''
        class Plugin:
            def setup(self, config):
                self.marker = config["marker"]

            def on_request(self, ctx, request):
                if asked(request, "[order]"):
                    ctx.state["on"] = True
                    last = request["messages"][-1]
                    last["content"] = f"{last['content']} <{self.marker}>"
                    return request
                return None

            def on_response(self, ctx, response):
                if ctx.state.get("on"):
                    response["choices"][0]["message"]["content"] += f" +{self.marker}"
                    return response
                return None

            def on_chunk(self, ctx, chunk):
                choices = chunk.get("choices") or []
                if ctx.state.get("on") and choices and choices[0].get("finish_reason"):
                    delta = choices[0]["delta"]
                    delta["content"] = (delta.get("content") or "") + f" +{self.marker}"
                    return chunk
                return None
        ''',
    "gatekeeper": f'''
        import os

        from app.plugins import Reject
        from app.plugins import Reply


        class Plugin:
            def on_request(self, ctx, request):
                if asked(request, "[canned]"):
                    return Reply({CANNED!r})
                if asked(request, "[pii]"):
                    raise Reject("personal data is not allowed here", status=403, code="pii_detected")
                if asked(request, "[pid]"):
                    return Reply(str(os.getpid()))
                return None
        ''',
    # Listed twice: as faulty (fail_closed, triggers [closed:...]) and faulty_open (fail_open, [open:...]).
    "faulty": '''
        import sys
        import time


        class Plugin:
            def setup(self, config):
                self.tag = config["tag"]

            def on_request(self, ctx, request):
                def wants(what):
                    return asked(request, f"[{self.tag}:{what}]")

                if wants("raise"):
                    raise RuntimeError("kaboom in on_request")
                if wants("exit"):
                    sys.exit(3)
                if wants("list"):
                    return ["not", "a", "request"]
                if wants("no-messages"):
                    return {**request, "messages": []}
                if wants("sleep"):
                    time.sleep(10)
                if wants("tamper"):
                    request["messages"][-1]["content"] += " <tampered>"
                    ctx.state["tamper"] = True
                    raise RuntimeError("kaboom after changing the request")
                for what in ("raise-response", "raise-chunk"):
                    if wants(what):
                        ctx.state[what] = True
                return None

            def on_response(self, ctx, response):
                if ctx.state.get("raise-response"):
                    raise ValueError("kaboom in on_response")
                if ctx.state.get("tamper"):
                    response["choices"][0]["message"]["content"] += " <tampered>"
                    raise ValueError("kaboom after changing the answer")
                return None

            def on_chunk(self, ctx, chunk):
                if ctx.state.get("raise-chunk"):
                    ctx.state["seen"] = ctx.state.get("seen", 0) + 1
                    if ctx.state["seen"] == 3:
                        raise RuntimeError("kaboom on the third chunk")
                return None
        ''',
    "toolguard": '''
        import json

        from app.plugins import Reject


        class Plugin:
            def on_request(self, ctx, request):
                ctx.state["seen_request"] = True

            def on_tool_call(self, ctx, name, arguments):
                if arguments.get("message") == "show-state":
                    return {"message": f"state={sorted(ctx.state)}"}
                if arguments.get("message") == "rewrite-me":
                    return {"message": f"rewritten after {name} {json.dumps(arguments, sort_keys=True)}"}
                if arguments.get("message") == "refuse-me":
                    raise Reject("echoing this is not allowed")
                return None
        ''',
    # Only on_response, so the cache's request-bytes shortcut stays on.
    "shout": '''
        class Plugin:
            def on_response(self, ctx, response):
                message = response["choices"][0]["message"]
                if "cache-me" in (message.get("content") or ""):
                    message["content"] = f"{message['content'].upper()} (shouted for {ctx.request_id})"
                    return response
                return None
        ''',
}


def write_plugins(folder: Path, names: set[str]) -> None:
    for name in names:
        (folder / f"{name}.py").write_text(PRELUDE + textwrap.dedent(PLUGINS[name]))


def write_config(folder: Path, items: list[dict], **sections) -> Path:
    """A llamagate.yaml in ``folder`` loading ``items`` from its ``plugins`` subfolder (written here)."""
    plugins_dir = folder / "plugins"
    plugins_dir.mkdir()
    for item in items:
        source = item.pop("source", item["name"])
        write_plugins(plugins_dir, {source})
        if source != item["name"]:
            (plugins_dir / f"{item['name']}.py").write_text((plugins_dir / f"{source}.py").read_text())
    path = folder / "llamagate.yaml"
    path.write_text(yaml.safe_dump({"plugins": {"dirs": [str(plugins_dir)], "items": items}, **sections}))
    return path


def json_logs(gateway) -> list[dict]:
    """The gateway's log records; every stdout line must be one JSON object, tracebacks included."""
    return gateway.log_lines()


def wait_for_log(gateway, predicate, timeout: float = 5.0) -> dict:
    return gateway.wait_for_log(predicate, timeout)


def offered_tools(fake_ollama) -> set[str]:
    return {t["function"]["name"] for t in fake_ollama.last().get("tools") or []}


@pytest.fixture(scope="module")
def gw(start_gateway, fake_ollama, tmp_path_factory):
    """The gateway with every hook plugin, and the basic MCP server as `tools`."""
    items = [
        {"name": "gatekeeper", "priority": 5},
        {"name": "sysmsg", "priority": 0},
        {"name": "mark_a", "source": "marker", "priority": 10, "config": {"marker": "A"}},
        {"name": "mark_b", "source": "marker", "priority": 20, "config": {"marker": "B"}},
        {"name": "upper", "priority": 30},
        {"name": "faulty", "priority": 40, "timeout": "200ms", "config": {"tag": "closed"}},
        {"name": "faulty_open", "source": "faulty", "priority": 41, "timeout": "200ms", "on_error": "fail_open",
         "config": {"tag": "open"}},
        {"name": "toolguard", "priority": 0},
    ]
    mcp = {"servers": [{"name": "tools", "transport": "stdio", "command": sys.executable,
                        "args": [str(SERVERS / "basic.py")]}]}
    config = write_config(tmp_path_factory.mktemp("hooks"), items, mcp=mcp)
    gateway = start_gateway(CONFIG_FILE=str(config))
    deadline = time.monotonic() + 30
    while True:  # until the MCP server's tools are offered
        requests.post(gateway.url + "/v1/chat/completions", json=chat("x"), timeout=10)
        if "tools__echo" in offered_tools(fake_ollama):
            break
        assert time.monotonic() < deadline, f"the MCP server did not come up:\n{gateway.output()[-3000:]}"
        time.sleep(0.3)
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def cache_gw(start_gateway, tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("cache"), [{"name": "shout"}])
    gateway = start_gateway(CONFIG_FILE=str(config), CACHE_ENABLED="true")
    yield gateway
    gateway.stop()


@pytest.fixture()
def sdk(gw):
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=20) as client:
        yield client


def chat(content: str, **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def post(gateway, content: str, **extra) -> requests.Response:
    return requests.post(gateway.url + "/v1/chat/completions", json=chat(content, **extra), timeout=20)


def stream(gateway, content: str, **extra) -> tuple[requests.Response, list[str]]:
    """The response and the `data:` payloads of a streamed chat, read to the end."""
    with requests.post(gateway.url + "/v1/chat/completions", json=chat(content, stream=True, **extra), stream=True,
                       timeout=20) as response:
        events = [line[len(b"data: "):].decode() for line in response.iter_lines() if line.startswith(b"data: ")]
    return response, events


def streamed_text(events: list[str]) -> str:
    chunks = [json.loads(e) for e in events if e != "[DONE]"]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def chat_bodies(fake_ollama, since: int) -> list[dict]:
    return [r["body"] for r in fake_ollama.requests[since:] if r["path"] == "/api/chat"]


def content(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def ask(sdk, text: str, **extra):
    return sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], **extra)


# -- on_request, on_response, on_chunk -----------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
def test_on_request_adds_a_system_message_the_model_receives(gw, fake_ollama, streamed):
    if streamed:
        response, events = stream(gw, "[add-system] hi")
        assert response.status_code == 200 and events[-1] == "[DONE]"
        assert streamed_text(events) == "Hello! You said: [add-system] hi"
    else:
        assert content(post(gw, "[add-system] hi")) == "Hello! You said: [add-system] hi"
    sent = fake_ollama.last()["messages"]
    assert sent[0] == {"role": "system", "content": SYSTEM_TEXT}
    assert sent[1]["role"] == "user" and sent[1]["content"] == "[add-system] hi"


def test_a_request_without_a_trigger_reaches_the_model_unchanged(gw, fake_ollama):
    assert content(post(gw, "plain")) == "Hello! You said: plain"
    assert [(m["role"], m["content"]) for m in fake_ollama.last()["messages"]] == [("user", "plain")]


def test_on_response_uppercases_a_whole_answer(gw):
    response = post(gw, "[upper] shout this")
    assert content(response) == "HELLO! YOU SAID: [UPPER] SHOUT THIS"
    assert response.json()["object"] == "chat.completion"


def test_on_chunk_uppercases_every_delta_and_keeps_usage_and_done(gw):
    response, events = stream(gw, "[upper] shout this please", stream_options={"include_usage": True})
    assert response.status_code == 200
    assert events[-1] == "[DONE]" and events.count("[DONE]") == 1
    assert streamed_text(events) == "HELLO! YOU SAID: [UPPER] SHOUT THIS PLEASE"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) > 3
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


def test_request_hooks_run_by_priority_and_answer_hooks_in_reverse_whole(sdk, fake_ollama):
    answer = ask(sdk, "[order] hi")
    assert fake_ollama.last()["messages"][-1]["content"] == "[order] hi <A> <B>"
    assert answer.choices[0].message.content == "Hello! You said: [order] hi <A> <B> +B +A"


def test_request_hooks_run_by_priority_and_answer_hooks_in_reverse_streamed(sdk, fake_ollama):
    with ask(sdk, "[order] hi", stream=True) as chunks:
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert fake_ollama.last()["messages"][-1]["content"] == "[order] hi <A> <B>"
    assert text == "Hello! You said: [order] hi <A> <B> +B +A"


def test_a_cache_hit_still_passes_through_on_response(cache_gw, fake_ollama):
    before = len(chat_bodies(fake_ollama, 0))
    first = post(cache_gw, "cache-me now")
    second = post(cache_gw, "cache-me now")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    assert len(chat_bodies(fake_ollama, 0)) == before + 1, "the hit did not reach the model"
    for response in (first, second):
        rid = response.headers["X-Request-ID"]
        assert content(response) == f"HELLO! YOU SAID: CACHE-ME NOW (shouted for {rid})"


# -- the MCP tool path ---------------------------------------------------------------------------

ECHO_PING = '[add-system] [upper] Echo it. [[tool tools__echo {"message": "ping"}]]'


@pytest.mark.parametrize("streamed", [False, True])
def test_request_and_answer_hooks_run_around_an_mcp_tool_call(gw, fake_ollama, streamed):
    since = len(fake_ollama.requests)
    if streamed:
        response, events = stream(gw, ECHO_PING)
        assert response.status_code == 200 and events[-1] == "[DONE]"
        text = streamed_text(events)
    else:
        text = content(post(gw, ECHO_PING))
    bodies = chat_bodies(fake_ollama, since)
    assert len(bodies) == 2, "a tool round and a final round"
    assert all(b["messages"][0] == {"role": "system", "content": SYSTEM_TEXT} for b in bodies)
    assert bodies[1]["messages"][-1]["role"] == "tool" and bodies[1]["messages"][-1]["content"] == "ping"
    assert "TOOL SAID: PING" in text and text == text.upper()


@pytest.mark.parametrize("streamed", [False, True])
def test_on_tool_call_sees_the_call_and_replaces_its_arguments(gw, fake_ollama, streamed):
    text = '[[tool tools__echo {"message": "rewrite-me"}]]'
    seen = 'rewritten after tools__echo {"message": "rewrite-me"}'
    if streamed:
        response, events = stream(gw, text)
        assert response.status_code == 200 and events[-1] == "[DONE]"
        assert f"Tool said: {seen}" in streamed_text(events)
    else:
        assert content(post(gw, text)) == f"Tool said: {seen}"
    tool_message = fake_ollama.last()["messages"][-1]
    assert (tool_message["role"], tool_message["tool_name"], tool_message["content"]) == ("tool", "tools__echo", seen)


@pytest.mark.parametrize("streamed", [False, True])
def test_on_tool_call_rejecting_makes_the_model_read_the_refusal(gw, fake_ollama, streamed):
    text = '[[tool tools__echo {"message": "refuse-me"}]]'
    refusal = "Error: refused by plugin 'toolguard': echoing this is not allowed"
    if streamed:
        response, events = stream(gw, text)
        assert response.status_code == 200 and events[-1] == "[DONE]"
        assert f"Tool said: {refusal}" in streamed_text(events)
    else:
        assert content(post(gw, text)) == f"Tool said: {refusal}"
    assert fake_ollama.last()["messages"][-1]["content"] == refusal


# -- Reply and Reject ----------------------------------------------------------------------------


def test_reply_answers_without_the_model(gw, fake_ollama):
    before = len(fake_ollama.requests)
    response = post(gw, "[canned] hi")
    assert content(response) == CANNED
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert len(fake_ollama.requests) == before


def test_reply_streamed_without_the_model(gw, fake_ollama):
    before = len(fake_ollama.requests)
    response, events = stream(gw, "[canned] hi")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    assert streamed_text(events) == CANNED
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len(fake_ollama.requests) == before


def test_reply_through_the_sdk(sdk, fake_ollama):
    before = len(fake_ollama.requests)
    assert ask(sdk, "[canned]").choices[0].message.content == CANNED
    with ask(sdk, "[canned]", stream=True) as chunks:
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == CANNED
    assert len(fake_ollama.requests) == before


@pytest.mark.parametrize("streamed", [False, True])
def test_reject_answers_with_its_status_type_and_code(gw, fake_ollama, streamed):
    before = len(fake_ollama.requests)
    response = post(gw, "[pii] my card is 4111", stream=streamed)
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == "permission_error" and error["code"] == "pii_detected"
    assert error["message"] == "personal data is not allowed here"
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert len(fake_ollama.requests) == before


def test_reject_through_the_sdk(sdk):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        ask(sdk, "[pii] my card is 4111")
    assert caught.value.status_code == 403 and caught.value.code == "pii_detected"


# -- faults, fail_closed -------------------------------------------------------------------------


def plugin_error(response: requests.Response, status: int = 500, code: str = "plugin_error") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", code)
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return error


@pytest.mark.parametrize("streamed", [False, True])
def test_on_request_raising_is_a_500_naming_plugin_and_hook(gw, fake_ollama, streamed):
    before = len(fake_ollama.requests)
    response = post(gw, "[closed:raise] hi", stream=streamed)
    error = plugin_error(response)
    assert "'faulty'" in error["message"] and "on_request" in error["message"]
    assert "RuntimeError" in error["message"]
    assert len(fake_ollama.requests) == before
    rid = response.headers["X-Request-ID"]
    logged = wait_for_log(gw, lambda e: e.get("request_id") == rid and "Traceback" in (e.get("exception") or ""))
    assert logged["level"] == "error" and logged["plugin"] == "faulty" and logged["hook"] == "on_request"
    assert "kaboom in on_request" in logged["exception"]
    assert requests.get(gw.url + "/health", timeout=10).status_code == 200


def test_on_response_raising_is_a_500_naming_the_hook(gw):
    error = plugin_error(post(gw, "[closed:raise-response] hi"))
    assert "'faulty'" in error["message"] and "on_response" in error["message"]
    assert "ValueError" in error["message"]


def worker_pid(gw) -> str:
    return content(post(gw, "[pid]"))


def test_sys_exit_in_a_hook_is_a_500_and_the_worker_keeps_serving(gw):
    pid = worker_pid(gw)
    boots = sum("Booting worker" in e["message"] for e in json_logs(gw))
    error = plugin_error(post(gw, "[closed:exit] bye"))
    assert "'faulty'" in error["message"] and "on_request" in error["message"] and "SystemExit" in error["message"]
    assert content(post(gw, "still there?")) == "Hello! You said: still there?"
    assert worker_pid(gw) == pid
    assert sum("Booting worker" in e["message"] for e in json_logs(gw)) == boots == 1
    assert gw.process.poll() is None


@pytest.mark.parametrize(("trigger", "problem"), [
    ("list", "returned list, expected dict"),
    ("no-messages", "'messages'"),
], ids=["list", "no-messages"])
def test_a_hook_returning_a_bad_request_is_a_500_naming_the_problem(gw, fake_ollama, trigger, problem):
    before = len(fake_ollama.requests)
    error = plugin_error(post(gw, f"[closed:{trigger}] hi"))
    assert "'faulty'" in error["message"] and "on_request" in error["message"]
    assert problem in error["message"]
    if trigger == "no-messages":
        assert "not valid" in error["message"]
    assert len(fake_ollama.requests) == before


def test_a_hook_past_its_timeout_is_a_504_at_once(gw, fake_ollama):
    before = len(fake_ollama.requests)
    started = time.monotonic()
    response = post(gw, "[closed:sleep] hi")
    elapsed = time.monotonic() - started
    error = plugin_error(response, 504, "plugin_timeout")
    assert "'faulty'" in error["message"] and "on_request" in error["message"] and "0.2s" in error["message"]
    assert 0.2 <= elapsed < 6, "not the hook's 10 s"
    assert len(fake_ollama.requests) == before
    assert content(post(gw, "after the timeout")) == "Hello! You said: after the timeout"


# -- faults, fail_open ---------------------------------------------------------------------------


@pytest.mark.parametrize(("trigger", "hook"), [
    ("raise", "on_request"),
    ("exit", "on_request"),
    ("list", "on_request"),
    ("no-messages", "on_request"),
    ("raise-response", "on_response"),
])
def test_fail_open_skips_the_failing_hook_with_a_warning(gw, fake_ollama, trigger, hook):
    text = f"[open:{trigger}] hi"
    response = post(gw, text)
    assert content(response) == f"Hello! You said: {text}"
    assert [m["content"] for m in fake_ollama.last()["messages"]] == [text]
    rid = response.headers["X-Request-ID"]
    logged = wait_for_log(gw, lambda e: e.get("request_id") == rid and e["level"] == "warning")
    assert logged["plugin"] == "faulty_open" and logged["hook"] == hook
    assert "faulty_open" in logged["message"] and "skipped" in logged["message"]


def test_fail_open_timeout_is_skipped_too(gw):
    started = time.monotonic()
    assert content(post(gw, "[open:sleep] hi")) == "Hello! You said: [open:sleep] hi"
    assert time.monotonic() - started < 6, "not the hook's 10 s"


def test_fail_open_on_chunk_keeps_the_stream_whole(gw):
    response, events = stream(gw, "[open:raise-chunk] hi there friend")
    assert response.status_code == 200 and events[-1] == "[DONE]"
    assert streamed_text(events) == "Hello! You said: [open:raise-chunk] hi there friend"
    assert not any('"error"' in e for e in events)


# -- a failure once the stream has started -------------------------------------------------------

SLOW_FAULT = "[closed:raise-chunk] [[slow 20 0.05]]"


def wait_for_upstream_end(fake_ollama, aborted: int, completed: int) -> None:
    deadline = time.monotonic() + 5
    while fake_ollama.aborted == aborted and fake_ollama.completed == completed and time.monotonic() < deadline:
        time.sleep(0.02)


def test_on_chunk_raising_mid_stream_ends_it_with_one_error_event(gw, fake_ollama):
    aborted, completed = fake_ollama.aborted, fake_ollama.completed
    response, events = stream(gw, SLOW_FAULT)
    assert response.status_code == 200
    assert "[DONE]" not in events
    *chunks, last = [json.loads(e) for e in events]
    assert len(chunks) == 2 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    error = last["error"]
    assert error["code"] == "plugin_error" and error["type"] == "api_error"
    assert "'faulty'" in error["message"] and "on_chunk" in error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    wait_for_upstream_end(fake_ollama, aborted, completed)
    assert fake_ollama.aborted == aborted + 1 and fake_ollama.completed == completed, "the upstream stream was not closed"


def test_on_chunk_raising_mid_stream_raises_in_the_sdk(sdk, fake_ollama):
    aborted, completed = fake_ollama.aborted, fake_ollama.completed
    received = []
    with pytest.raises(openai.APIError) as caught:
        with ask(sdk, SLOW_FAULT, stream=True) as chunks:
            for chunk in chunks:
                received.append(chunk)
    assert len(received) == 2
    assert caught.value.code == "plugin_error" and "on_chunk" in caught.value.message
    wait_for_upstream_end(fake_ollama, aborted, completed)
    assert fake_ollama.aborted == aborted + 1 and fake_ollama.completed == completed


def test_on_tool_call_shares_the_requests_state_with_on_request(sdk):
    answer = sdk.chat.completions.create(model=MODEL, messages=[
        {"role": "user", "content": '[[tool tools__echo {"message": "show-state"}]]'}])
    assert "state=['seen_request']" in answer.choices[0].message.content


def test_fail_open_hook_that_changed_things_before_failing_leaves_them_unchanged(gw, fake_ollama):
    response = post(gw, "tamper me [open:tamper]")
    assert response.status_code == 200, response.text
    assert "<tampered>" not in json.dumps(fake_ollama.last()["messages"])
    assert "<tampered>" not in response.json()["choices"][0]["message"]["content"]
