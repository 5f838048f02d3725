"""Workflows end to end: runs over HTTP, every step type, limits, retries, SSE run events and workflows as models
(requests and the OpenAI SDK → gunicorn → fake Ollama, a real MCP stdio server and a real plugin)."""

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

from tests.gateway import ROOT

BASIC_SERVER = ROOT / "tests" / "mcp" / "servers" / "basic.py"

# A plugin with tools: `flaky` fails its first two calls for each key, `broken` always fails.
KIT = '''
import threading

from app.plugins import Tool

KEY = {"type": "object", "properties": {"key": {"type": "string"}}}
NUMBERS = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}
CALLS = {}
LOCK = threading.Lock()


class Plugin:
    def tools(self):
        return [Tool("add", "Add two numbers", NUMBERS, lambda arguments, ctx: arguments["a"] + arguments["b"]),
                Tool("flaky", "Fails the first two calls of each key", KEY, self.flaky),
                Tool("broken", "Always fails", KEY, self.broken)]

    def flaky(self, arguments, ctx):
        with LOCK:
            count = CALLS[arguments["key"]] = CALLS.get(arguments["key"], 0) + 1
        if count <= 2:
            raise RuntimeError(f"flaky call {count}")
        return {"key": arguments["key"], "calls": count}

    def broken(self, arguments, ctx):
        raise RuntimeError("the tool is broken")
'''

TEXT_INPUT = "inputs: {type: object, required: [text], properties: {text: {type: string, minLength: 1}}}"

WORKFLOWS = {
    "basic": f"""
        name: basic
        description: Two llm steps, one with a prompt and one with messages
        {TEXT_INPUT}
        outputs:
          type: object
          required: [first, second]
          properties: {{first: {{type: string}}, second: {{type: string}}}}
        defaults: {{model: llama3.2}}
        chat: {{input: text, answer: second}}
        steps:
          - {{id: first, type: llm, prompt: "{{{{ inputs.text }}}}"}}
          - id: second
            type: llm
            messages:
              - {{role: system, content: "Be brief."}}
              - {{role: user, content: "again: {{{{ inputs.text }}}}"}}
        output: {{first: "{{{{ steps.first.output }}}}", second: "{{{{ steps.second.output }}}}"}}
        """,
    "ping": """
        name: ping
        tools: [tools__echo]
        steps:
          - {id: ping, type: tool, tool: tools__echo, arguments: {message: pong}}
        """,
    "json_steps": f"""
        name: json_steps
        {TEXT_INPUT}
        defaults: {{model: llama3.2}}
        steps:
          - id: parsed
            type: llm
            prompt: "{{{{ inputs.text }}}}"
            response_format: {{type: json_object}}
            retry: {{max_attempts: 2, backoff: 10ms}}
          - id: shaped
            type: transform
            value:
              total: "{{{{ steps.parsed.output.a + steps.parsed.output.b }}}}"
              keys: "{{{{ steps.parsed.output | list | sort }}}}"
        output: {{shaped: "{{{{ steps.shaped.output }}}}"}}
        """,
    "tool_steps": f"""
        name: tool_steps
        {TEXT_INPUT}
        tools: [tools__echo, kit__*]
        defaults: {{model: llama3.2}}
        steps:
          - {{id: echoed, type: tool, tool: tools__echo, arguments: {{message: "{{{{ inputs.text }}}}"}}}}
          - {{id: summed, type: tool, tool: kit__add, arguments: {{a: 2, b: 40}}}}
          - id: agent
            type: llm
            tools: [tools__echo]
            max_tool_rounds: 2
            prompt: '[[tool tools__echo {{"message": "from the agent"}}]]'
        output:
          echoed: "{{{{ steps.echoed.output }}}}"
          summed: "{{{{ steps.summed.output }}}}"
          agent: "{{{{ steps.agent.output }}}}"
        """,
    "branching": """
        name: branching
        inputs: {type: object, required: [kind], properties: {kind: {type: string}}}
        defaults: {model: llama3.2}
        steps:
          - id: route
            type: branch
            cases:
              - when: "inputs.kind == 'a'"
                steps: [{id: on_a, type: transform, value: took a}]
              - when: "inputs.kind == 'b'"
                steps: [{id: on_b, type: llm, prompt: "b: {{ inputs.kind }}", default: b was skipped}]
            default:
              - {id: fallback, type: transform, value: took the default}
          - {id: only_z, type: transform, when: "inputs.kind == 'z'", value: z, default: not z}
        output:
          route: "{{ steps.route.output }}"
          on_a: "{{ steps.on_a.output }}"
          on_b: "{{ steps.on_b.output }}"
          fallback: "{{ steps.fallback.output }}"
          only_z: "{{ steps.only_z.output }}"
        """,
    "fanout": """
        name: fanout
        inputs: {type: object, required: [texts], properties: {texts: {type: array, items: {type: string}}}}
        limits: {max_parallel: 3}
        defaults: {model: llama3.2}
        steps:
          - {id: each, type: foreach, items: "{{ inputs.texts }}", parallel: 3, step: {type: llm, prompt: "{{ item }}"}}
          - {id: count, type: transform, value: "{{ steps.each.output | length }}"}
        """,
    "looping": """
        name: looping
        inputs: {type: object, required: [stop_at], properties: {stop_at: {type: integer}}}
        steps:
          - id: until_reached
            type: loop
            max_iterations: 5
            until: "steps.tick.output >= inputs.stop_at"
            steps: [{id: tick, type: transform, value: "{{ iteration }}"}]
          - id: never
            type: loop
            max_iterations: 3
            until: "steps.tock.output > 100"
            steps: [{id: tock, type: transform, value: "{{ iteration * 10 }}"}]
        output: {until_reached: "{{ steps.until_reached.output }}", never: "{{ steps.never.output }}"}
        """,
    "greeter": """
        name: greeter
        inputs: {type: object, required: [name], properties: {name: {type: string}}}
        defaults: {model: llama3.2}
        steps:
          - {id: hello, type: llm, prompt: "greet {{ inputs.name }}"}
        output: {greeting: "{{ steps.hello.output }}", name: "{{ inputs.name }}"}
        """,
    "parent": """
        name: parent
        inputs: {type: object, required: [who], properties: {who: {type: string}}}
        steps:
          - {id: call, type: workflow, workflow: greeter, inputs: {name: "{{ inputs.who | upper }}"}}
          - {id: after, type: transform, value: "{{ steps.call.output.name }} got {{ steps.call.output.greeting }}"}
        """,
    "retrying": """
        name: retrying
        inputs: {type: object, required: [key], properties: {key: {type: string}}}
        tools: [kit__*]
        steps:
          - id: flaky
            type: tool
            tool: kit__flaky
            arguments: {key: "{{ inputs.key }}"}
            retry: {max_attempts: 3, backoff: 50ms}
          - id: broken
            type: tool
            tool: kit__broken
            arguments: {key: "{{ inputs.key }}"}
            retry: {max_attempts: 2, backoff: 10ms}
            on_error: continue
            default: {fallback: true}
          - {id: after, type: transform, value: {flaky: "{{ steps.flaky.output }}", broken: "{{ steps.broken.output }}"}}
        output: {after: "{{ steps.after.output }}"}
        """,
    "token_limit": f"""
        name: token_limit
        {TEXT_INPUT}
        limits: {{max_tokens: 5}}
        defaults: {{model: llama3.2}}
        chat: {{input: text, answer: second}}
        steps:
          - {{id: first, type: llm, prompt: "{{{{ inputs.text }}}}"}}
          - {{id: second, type: llm, prompt: "more: {{{{ steps.first.output }}}}"}}
        """,
    "step_limit": """
        name: step_limit
        limits: {max_steps: 4}
        steps:
          - {id: each, type: foreach, items: "{{ range(5) | list }}", step: {type: transform, value: "{{ item }}"}}
        """,
    "deadline": f"""
        name: deadline
        {TEXT_INPUT}
        limits: {{max_runtime: 1s}}
        defaults: {{model: llama3.2, timeout: 30s}}
        steps:
          - {{id: slow, type: llm, prompt: "{{{{ inputs.text }}}}"}}
        """,
    "bad_output": """
        name: bad_output
        outputs: {type: object, required: [answer], properties: {answer: {type: string}}}
        steps:
          - {id: answer, type: transform, value: 42}
        output: {answer: "{{ steps.answer.output }}"}
        """,
    "failing": f"""
        name: failing
        {TEXT_INPUT}
        tools: [kit__broken]
        defaults: {{model: llama3.2}}
        chat: {{input: text, answer: reply}}
        steps:
          - {{id: lookup, type: tool, tool: kit__broken, arguments: {{key: "{{{{ inputs.text }}}}"}}}}
          - {{id: reply, type: llm, prompt: "{{{{ inputs.text }}}}"}}
        """,
}
CHAT_WORKFLOWS = {"basic", "token_limit", "failing"}


def write_workflows(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text))
    return folder


@pytest.fixture(scope="module")
def gw(start_gateway, tmp_path_factory):
    """One gateway with every workflow above, the MCP server `tools` and the plugin `kit`."""
    folder = tmp_path_factory.mktemp("workflows-main")
    workflows = write_workflows(folder / "workflows", WORKFLOWS)
    (folder / "plugins").mkdir()
    (folder / "plugins" / "kit.py").write_text(textwrap.dedent(KIT))
    config = folder / "llamagate.yaml"
    config.write_text(yaml.safe_dump({
        "workflows": {"dirs": [str(workflows)]},
        "plugins": {"dirs": [str(folder / "plugins")], "items": [{"name": "kit"}]},
        "mcp": {"servers": [{"name": "tools", "transport": "stdio", "command": sys.executable,
                             "args": [str(BASIC_SERVER)]}]},
    }))
    gateway = start_gateway(CONFIG_FILE=str(config), STREAM_KEEPALIVE="1s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the MCP server connects in the background
        if run(gateway, "ping", {})["status"] == "completed":
            return gateway
        time.sleep(0.3)
    raise AssertionError(f"the MCP server did not come up:\n{gateway.output()[-3000:]}")


@pytest.fixture()
def sdk(gw):
    with openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0, timeout=20) as client:
        yield client


def post_run(gw, name: str, inputs: dict, **extra) -> requests.Response:
    return requests.post(f"{gw.url}/v1/workflows/{name}/runs", json={"inputs": inputs, **extra}, timeout=30)


def run(gw, name: str, inputs: dict) -> dict:
    response = post_run(gw, name, inputs)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["object"] == "workflow.run" and record["workflow"] == name
    return record


def get_run(gw, name: str, run_id: str) -> dict:
    response = requests.get(f"{gw.url}/v1/workflows/{name}/runs/{run_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def steps_of(record: dict, step_id: str) -> list[dict]:
    return [step for step in record["steps"] if step["id"] == step_id]


def step(record: dict, step_id: str) -> dict:
    (found,) = steps_of(record, step_id)
    return found


def usage_of(done_lines: list[dict]) -> dict:
    prompt = sum(line["prompt_eval_count"] for line in done_lines)
    completion = sum(line["eval_count"] for line in done_lines)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def chat_requests(fake_ollama) -> int:
    with fake_ollama.lock:
        return sum(1 for r in fake_ollama.requests if r["path"] == "/api/chat")


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error


def sse_events(response) -> list[tuple[str, dict]]:
    """(event, data) of every SSE event of a run stream; comments (keep-alives) are left out."""
    found = []
    for block in response.text.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        found.append((fields["event"], json.loads(fields["data"])))
    return found


def chat_data(response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


# -- listing -------------------------------------------------------------------------------------------


def test_the_workflows_are_listed_with_their_schemas(gw):
    response = requests.get(gw.url + "/v1/workflows", timeout=10)
    assert response.status_code == 200
    body = response.json()
    listed = {w["name"]: w for w in body["workflows"]}
    assert set(listed) == set(WORKFLOWS) and body["count"] == len(WORKFLOWS)
    basic = listed["basic"]
    assert basic["description"] == "Two llm steps, one with a prompt and one with messages"
    assert basic["inputs"]["required"] == ["text"] and basic["inputs"]["properties"]["text"]["type"] == "string"
    assert basic["outputs"]["required"] == ["first", "second"]
    assert basic["model"] == "workflow:basic"
    assert listed["branching"]["model"] is None and listed["branching"]["outputs"] is None
    assert all({"name", "description", "inputs", "outputs", "model"} <= set(w) for w in body["workflows"])


def test_one_workflow_and_an_unknown_one(gw):
    response = requests.get(gw.url + "/v1/workflows/basic", timeout=10)
    assert response.status_code == 200
    one = response.json()
    assert one["name"] == "basic" and one["inputs"]["required"] == ["text"]
    assert [s["id"] for s in one["steps"]] == ["first", "second"]
    for path in ("/v1/workflows/nope", "/v1/workflows/nope/runs/run_x"):
        error = assert_error(requests.get(gw.url + path, timeout=10), 404, "workflow_not_found")
        assert "nope" in error["message"]
    assert_error(post_run(gw, "nope", {}), 404, "workflow_not_found")


def test_bad_inputs_are_400_naming_the_input(gw, fake_ollama):
    before = chat_requests(fake_ollama)
    error = assert_error(post_run(gw, "basic", {}), 400, "workflow_input_invalid")
    assert error["param"] == "inputs.text"
    error = assert_error(post_run(gw, "basic", {"text": 5}), 400, "workflow_input_invalid")
    assert error["param"] == "inputs.text"
    assert chat_requests(fake_ollama) == before


# -- a run and its record ------------------------------------------------------------------------------


def test_a_run_completes_with_outputs_steps_and_usage(gw, fake_ollama):
    done_before = len(fake_ollama.done_lines)
    record = run(gw, "basic", {"text": "hi there"})
    assert record["status"] == "completed" and record["error"] is None
    assert record["inputs"] == {"text": "hi there"}
    assert record["outputs"] == {"first": "Hello! You said: hi there", "second": "Hello! You said: again: hi there"}
    sent = fake_ollama.last()["messages"]
    assert sent == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "again: hi there"}]
    assert [s["id"] for s in record["steps"]] == ["first", "second"]
    for item in record["steps"]:
        assert item["type"] == "llm" and item["status"] == "completed" and item["attempts"] == 1
        assert item["error"] is None and isinstance(item["duration_ms"], (int, float)) and item["duration_ms"] >= 0
        assert item["usage"]["total_tokens"] > 0
    done = fake_ollama.done_lines[done_before:]
    assert len(done) == 2
    assert record["usage"] == usage_of(done)
    assert [s["usage"] for s in record["steps"]] == [usage_of([line]) for line in done]
    assert get_run(gw, "basic", record["id"]) == record


def test_outputs_not_matching_the_schema_fail_the_run(gw):
    record = run(gw, "bad_output", {})
    assert record["status"] == "failed" and record["outputs"] is None
    assert record["error"]["code"] == "workflow_output_invalid" and record["error"]["param"] == "outputs"
    assert step(record, "answer")["status"] == "completed" and step(record, "answer")["output"] == 42


def test_a_run_record_is_only_found_under_its_workflow(gw):
    record = run(gw, "ping", {})
    assert get_run(gw, "ping", record["id"])["id"] == record["id"]
    assert_error(requests.get(f"{gw.url}/v1/workflows/basic/runs/{record['id']}", timeout=10), 404, "run_not_found")
    assert_error(requests.get(f"{gw.url}/v1/workflows/ping/runs/run_missing", timeout=10), 404, "run_not_found")


def test_inputs_are_data_never_rendered(gw, fake_ollama):
    record = run(gw, "basic", {"text": "what is {{ 7*7 }}? {% if true %}x{% endif %}"})
    assert record["status"] == "completed", record["error"]
    with fake_ollama.lock:
        sent = [r["body"]["messages"][-1]["content"] for r in fake_ollama.requests[-2:]]
    assert sent == ["what is {{ 7*7 }}? {% if true %}x{% endif %}", "again: what is {{ 7*7 }}? {% if true %}x{% endif %}"]
    assert record["outputs"]["first"] == "Hello! You said: what is {{ 7*7 }}? {% if true %}x{% endif %}"


# -- step types -----------------------------------------------------------------------------------------


def test_llm_json_output_is_parsed(gw, fake_ollama):
    record = run(gw, "json_steps", {"text": '[[reply {"b": 3, "a": 2}]]'})
    assert record["status"] == "completed", record["error"]
    assert fake_ollama.last()["format"] == "json"
    assert step(record, "parsed")["output"] == {"b": 3, "a": 2}
    assert record["outputs"] == {"shaped": {"total": 5, "keys": ["a", "b"]}}


def test_llm_invalid_json_is_retried_then_fails_the_run(gw, fake_ollama):
    before = chat_requests(fake_ollama)
    record = run(gw, "json_steps", {"text": "not json at all"})
    assert record["status"] == "failed" and record["outputs"] is None
    assert record["error"]["code"] == "invalid_json" and record["error"]["step_id"] == "parsed"
    parsed = step(record, "parsed")
    assert parsed["status"] == "failed" and parsed["attempts"] == 2 and parsed["error"]["code"] == "invalid_json"
    assert chat_requests(fake_ollama) - before == 2
    assert steps_of(record, "shaped") == []  # the run stopped there


def test_tool_steps_with_mcp_and_plugin_tools_and_an_agent_step(gw, fake_ollama):
    done_before = len(fake_ollama.done_lines)
    record = run(gw, "tool_steps", {"text": "echo me"})
    assert record["status"] == "completed", record["error"]
    assert record["outputs"] == {"echoed": "echo me", "summed": 42, "agent": "Tool said: from the agent"}
    assert [(s["id"], s["type"], s["status"]) for s in record["steps"]] == [
        ("echoed", "tool", "completed"), ("summed", "tool", "completed"), ("agent", "llm", "completed")]
    assert step(record, "echoed")["usage"]["total_tokens"] == 0
    with fake_ollama.lock:
        agent_rounds = [r["body"] for r in fake_ollama.requests if r["path"] == "/api/chat"][-2:]
    assert [t["function"]["name"] for t in agent_rounds[0]["tools"]] == ["tools__echo"]  # the step's tools only
    tool_message = agent_rounds[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "from the agent"
    assert record["usage"] == usage_of(fake_ollama.done_lines[done_before:])  # both rounds of the agent step


@pytest.mark.parametrize(("kind", "route", "ran"), [
    ("a", "took a", "on_a"),
    ("q", "took the default", "fallback"),
])
def test_branch_runs_only_the_matching_case(gw, fake_ollama, kind, route, ran):
    before = chat_requests(fake_ollama)
    record = run(gw, "branching", {"kind": kind})
    assert record["status"] == "completed", record["error"]
    assert chat_requests(fake_ollama) == before  # the llm step of case b never ran
    statuses = {s["id"]: (s["status"], s["output"]) for s in record["steps"]}
    expected = {"route": ("completed", route), "on_a": ("skipped", None), "on_b": ("skipped", "b was skipped"),
                "fallback": ("skipped", None), "only_z": ("skipped", "not z")}
    expected[ran] = ("completed", route)
    assert statuses == expected
    assert record["outputs"] == {"route": route, "on_a": route if ran == "on_a" else None, "on_b": "b was skipped",
                                 "fallback": route if ran == "fallback" else None, "only_z": "not z"}
    skipped = step(record, "on_b")
    assert skipped["attempts"] == 0 and skipped["usage"]["total_tokens"] == 0


def test_branch_case_with_an_llm_step(gw, fake_ollama):
    before = chat_requests(fake_ollama)
    record = run(gw, "branching", {"kind": "b"})
    assert record["status"] == "completed", record["error"]
    assert chat_requests(fake_ollama) - before == 1
    assert record["outputs"]["route"] == record["outputs"]["on_b"] == "Hello! You said: b: b"
    assert step(record, "on_a")["status"] == step(record, "fallback")["status"] == "skipped"


def test_foreach_outputs_come_in_item_order(gw, fake_ollama):
    items = ["first [[stall 0.4]]", "second [[stall 0.2]]", "third", "fourth [[stall 0.1]]"]
    done_before = len(fake_ollama.done_lines)
    record = run(gw, "fanout", {"texts": items})
    assert record["status"] == "completed", record["error"]
    each = step(record, "each")
    assert each["output"] == ["Hello! You said: first", "Hello! You said: second", "Hello! You said: third",
                              "Hello! You said: fourth"]
    assert each["attempts"] == 1 and step(record, "count")["output"] == 4
    done = fake_ollama.done_lines[done_before:]
    assert len(done) == 4
    assert each["usage"] == usage_of(done)  # the items' tokens


def test_foreach_tokens_count_once_in_the_run_usage(gw, fake_ollama):
    done_before = len(fake_ollama.done_lines)
    record = run(gw, "fanout", {"texts": ["one", "two", "three"]})
    assert record["status"] == "completed", record["error"]
    assert record["usage"] == usage_of(fake_ollama.done_lines[done_before:])


def test_foreach_parallelism_is_bounded(gw, fake_ollama):
    one = time.monotonic()
    assert run(gw, "fanout", {"texts": ["alone [[slow 3 0.2]]"]})["status"] == "completed"
    single = time.monotonic() - one
    fake_ollama.reset_peak()
    started = time.monotonic()
    record = run(gw, "fanout", {"texts": [f"item {i} [[slow 3 0.2]]" for i in range(6)]})
    elapsed = time.monotonic() - started
    assert record["status"] == "completed", record["error"]
    assert step(record, "each")["output"] == ["tok0 tok1 tok2 "] * 6
    assert fake_ollama.chat_peak == 3  # never more than `parallel`, and it did run in parallel
    assert elapsed < 6 * single * 0.8, (elapsed, single)  # one after another would take 6 replies


def test_loop_until_and_max_iterations(gw):
    record = run(gw, "looping", {"stop_at": 2})
    assert record["status"] == "completed", record["error"]
    assert record["outputs"] == {"until_reached": 2, "never": 20}
    assert [s["output"] for s in steps_of(record, "tick")] == [0, 1, 2]
    assert [s["output"] for s in steps_of(record, "tock")] == [0, 10, 20]
    assert step(record, "until_reached")["status"] == "completed"
    never = step(record, "never")
    assert never["status"] == "exhausted" and never["output"] == 20


def test_a_sub_workflow_gives_its_outputs(gw, fake_ollama):
    done_before = len(fake_ollama.done_lines)
    record = run(gw, "parent", {"who": "bob"})
    assert record["status"] == "completed", record["error"]
    assert step(record, "call")["output"] == {"greeting": "Hello! You said: greet BOB", "name": "BOB"}
    assert step(record, "after")["output"] == "BOB got Hello! You said: greet BOB"
    assert fake_ollama.last()["messages"][-1]["content"] == "greet BOB"
    assert record["usage"] == usage_of(fake_ollama.done_lines[done_before:])


# -- retries and errors ---------------------------------------------------------------------------------


def test_retries_then_success_and_a_continued_failure(gw):
    key = f"retry-{time.monotonic_ns()}"
    record = run(gw, "retrying", {"key": key})
    assert record["status"] == "completed", record["error"]
    flaky = step(record, "flaky")
    assert flaky["status"] == "completed" and flaky["attempts"] == 3 and flaky["error"] is None
    assert flaky["output"] == {"key": key, "calls": 3}
    assert flaky["duration_ms"] >= 140  # 50 ms, then 100 ms between the attempts
    assert record["outputs"] == {"after": {"flaky": {"key": key, "calls": 3}, "broken": {"fallback": True}}}
    broken = step(record, "broken")
    assert broken["status"] == "failed" and broken["attempts"] == 2
    assert broken["error"]["code"] == "tool_error" and "broken" in broken["error"]["message"]


def test_a_continued_failure_records_its_default_as_output(gw):
    record = run(gw, "retrying", {"key": f"default-{time.monotonic_ns()}"})
    assert step(record, "broken")["output"] == {"fallback": True}


# -- limits ---------------------------------------------------------------------------------------------


def test_max_tokens_stops_before_the_next_llm_step(gw, fake_ollama):
    before = chat_requests(fake_ollama)
    record = run(gw, "token_limit", {"text": "a prompt long enough to pass five tokens"})
    assert record["status"] == "failed"
    assert record["error"]["code"] == "workflow_limit_exceeded" and record["error"]["param"] == "limits.max_tokens"
    assert record["error"]["step_id"] == "second"
    assert chat_requests(fake_ollama) - before == 1
    assert step(record, "first")["status"] == "completed" and step(record, "second")["status"] == "failed"


def test_max_steps_counts_foreach_items(gw):
    record = run(gw, "step_limit", {})
    assert record["status"] == "failed"
    assert record["error"]["code"] == "workflow_limit_exceeded" and record["error"]["param"] == "limits.max_steps"


def test_max_runtime_closes_the_upstream_request(gw, fake_ollama):
    aborted = fake_ollama.aborted
    started = time.monotonic()
    record = run(gw, "deadline", {"text": "[[slow 50 0.1]]"})
    elapsed = time.monotonic() - started
    assert record["status"] == "failed"
    assert record["error"]["code"] == "workflow_timeout" and record["error"]["step_id"] == "slow"
    assert 0.9 < elapsed < 4.0, "the deadline (1 s), not the 5 s reply"
    deadline = time.monotonic() + 2
    while fake_ollama.aborted == aborted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_ollama.aborted == aborted + 1


# -- streamed runs ----------------------------------------------------------------------------------------


def check_sse_order(events: list[tuple[str, dict]], terminal: str) -> dict:
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "run.created" and kinds[-1] == terminal
    assert sum(kind in ("run.completed", "run.failed") for kind in kinds) == 1
    numbers = [data["sequence_number"] for _, data in events]
    assert all(a < b for a, b in zip(numbers, numbers[1:], strict=False))
    assert all(data["type"] == kind for kind, data in events)
    return events[-1][1]["run"]


def test_a_streamed_run_sends_events_in_order(gw):
    response = post_run(gw, "branching", {"kind": "a"}, stream=True)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(response)
    final = check_sse_order(events, "run.completed")
    assert events[0][1]["run"]["status"] == "in_progress"
    assert final["status"] == "completed" and final["outputs"]["route"] == "took a"
    assert final["id"] == response.headers["X-LlamaGate-Run-Id"] == events[0][1]["run"]["id"]
    kinds = [kind for kind, _ in events]
    assert kinds.count("step.skipped") == 3 and kinds.count("step.completed") == 2
    started = [data["step_id"] for kind, data in events if kind == "step.started"]
    assert started == ["route", "on_a"]
    assert get_run(gw, "branching", final["id"]) == final


def test_a_streamed_run_with_retries(gw):
    response = post_run(gw, "retrying", {"key": f"stream-{time.monotonic_ns()}"}, stream=True)
    events = sse_events(response)
    check_sse_order(events, "run.completed")
    retrying = [(data["step_id"], data["attempt"]) for kind, data in events if kind == "step.retrying"]
    assert retrying == [("flaky", 1), ("flaky", 2), ("broken", 1)]
    failed = [data["step"]["id"] for kind, data in events if kind == "step.failed"]
    assert failed == ["broken"]


def test_a_failing_streamed_run_ends_with_run_failed(gw):
    response = post_run(gw, "failing", {"text": "x"}, stream=True)
    assert response.status_code == 200
    events = sse_events(response)
    final = check_sse_order(events, "run.failed")
    assert final["status"] == "failed" and final["error"]["step_id"] == "lookup"
    assert [kind for kind, _ in events] == ["run.created", "step.started", "step.failed", "run.failed"]


# -- a workflow as a model --------------------------------------------------------------------------------


def test_workflow_models_are_listed(sdk):
    ids = {model.id for model in sdk.models.list()}
    assert {f"workflow:{name}" for name in CHAT_WORKFLOWS} <= ids
    assert not {f"workflow:{name}" for name in set(WORKFLOWS) - CHAT_WORKFLOWS} & ids
    assert "llama3.2:latest" in ids


def test_a_workflow_model_answers_with_its_answer_step(gw, sdk):
    raw = sdk.chat.completions.with_raw_response.create(
        model="workflow:basic", messages=[{"role": "system", "content": "ignored"}, {"role": "user", "content": "hey"}])
    answer = raw.parse()
    record = get_run(gw, "basic", raw.headers["X-LlamaGate-Run-Id"])
    assert record["status"] == "completed" and record["inputs"] == {"text": "hey"}
    assert answer.choices[0].message.content == step(record, "second")["output"] == "Hello! You said: again: hey"
    assert answer.choices[0].finish_reason == "stop" and answer.model == "workflow:basic"
    assert answer.usage.model_dump(exclude_none=True) == record["usage"]


def test_a_streamed_workflow_model(gw):
    body = {"model": "workflow:basic", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi [[slow 3 0.4]]"}]}
    response = requests.post(gw.url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    text = response.text
    assert text.index(": keep-alive") < text.index("data: ")  # while the first step runs
    data = chat_data(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    record = get_run(gw, "basic", response.headers["X-LlamaGate-Run-Id"])
    deltas = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert deltas == step(record, "second")["output"] == "tok0 tok1 tok2 "
    with_choices = [c for c in chunks if c["choices"]]
    assert with_choices[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in with_choices[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == record["usage"]
    assert record["usage"]["total_tokens"] > step(record, "second")["usage"]["total_tokens"]  # both steps


def test_a_streamed_workflow_model_with_the_sdk(sdk):
    with sdk.chat.completions.create(model="workflow:basic", messages=[{"role": "user", "content": "sdk"}],
                                     stream=True, stream_options={"include_usage": True}) as stream:
        chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello! You said: again: sdk"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_workflow_model_is_an_error_before_any_byte(gw, stream):
    body = {"model": "workflow:failing", "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    response = requests.post(gw.url + "/v1/chat/completions", json=body, timeout=30)
    error = assert_error(response, 502, "workflow_step_failed")
    assert "lookup" in error["message"]
    record = get_run(gw, "failing", response.headers["X-LlamaGate-Run-Id"])
    assert record["status"] == "failed" and record["error"]["step_id"] == "lookup"


@pytest.mark.parametrize("stream", [False, True])
def test_a_workflow_model_over_its_limits_is_422(gw, stream):
    body = {"model": "workflow:token_limit", "stream": stream,
            "messages": [{"role": "user", "content": "a prompt long enough to pass five tokens"}]}
    response = requests.post(gw.url + "/v1/chat/completions", json=body, timeout=30)
    error = assert_error(response, 422, "workflow_limit_exceeded")
    assert error["param"] == "limits.max_tokens"


def test_a_workflow_model_failing_after_the_first_byte_is_an_in_band_error(gw):
    body = {"model": "workflow:token_limit", "stream": True,
            "messages": [{"role": "user", "content": "[[slow 3 0.4]] a prompt long enough to pass five tokens"}]}
    response = requests.post(gw.url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200  # the first step outlasts a keep-alive interval
    assert response.text.startswith(": keep-alive")
    data = chat_data(response)
    assert "[DONE]" not in data
    assert json.loads(data[-1])["error"]["code"] == "workflow_limit_exceeded"
    assert get_run(gw, "token_limit", response.headers["X-LlamaGate-Run-Id"])["status"] == "failed"


def test_a_workflow_model_needs_user_text(gw, sdk):
    body = {"model": "workflow:basic", "messages": [{"role": "system", "content": "no user here"}]}
    response = requests.post(gw.url + "/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="workflow:basic", messages=[{"role": "assistant", "content": "x"}])
    with pytest.raises(openai.NotFoundError):  # no chat: binding, so not a model
        sdk.chat.completions.create(model="workflow:branching", messages=[{"role": "user", "content": "x"}])


# -- bad workflow files stop start-up ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("""
     name: escape
     steps:
       - {id: a, type: transform, value: "{{ inputs.__class__ }}"}
     """, "steps[0].value", "__class__"),
    ("""
     name: later
     steps:
       - {id: a, type: transform, value: "{{ steps.b.output }}"}
       - {id: b, type: transform, value: 1}
     """, "steps[0].value", "steps.b"),
])
def test_a_bad_workflow_file_stops_start_up(start_gateway, tmp_path, text, where, problem):
    folder = write_workflows(tmp_path / "workflows", {"ok": WORKFLOWS["ping"], "bad": text})
    config = tmp_path / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"workflows": {"dirs": [str(folder)]}}))
    with pytest.raises(RuntimeError) as caught:
        start_gateway(CONFIG_FILE=str(config))
    bad = str(folder / "bad.yaml")
    lines = [line for line in str(caught.value).splitlines() if bad in line]
    assert len(lines) == 1, str(caught.value)
    assert f"{where}:" in lines[0] and problem in lines[0]
