"""The example workflows in workflows/, run by a real gateway: triage (branch, foreach) and world_clock (an agent
step calling the real time MCP server's tools)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import openai
import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def examples(start_gateway, tmp_path_factory):
    config = tmp_path_factory.mktemp("examples") / "llamagate.yaml"
    config.write_text(yaml.safe_dump({
        "workflows": {"dirs": [str(ROOT / "workflows")]},
        "mcp": {"servers": [{"name": "time", "transport": "stdio", "command": sys.executable,
                             "args": ["-m", "mcp_server_time"], "env": {"TZ": "UTC"}}]}}))
    gateway = start_gateway(CONFIG_FILE=str(config))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        servers = requests.get(gateway.url + "/v1/mcp/servers", timeout=5).json()["servers"]
        if servers and servers[0]["status"] == "ready":
            return gateway
        time.sleep(0.2)
    raise AssertionError(f"the time server did not come up:\n{gateway.output()[-2000:]}")


def run(gateway, name: str, inputs: dict) -> dict:
    response = requests.post(f"{gateway.url}/v1/workflows/{name}/runs", json={"inputs": inputs}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def statuses(record: dict) -> dict:
    return {step["id"]: step["status"] for step in record["steps"]}


def test_both_examples_are_listed_as_workflows_and_models(examples):
    listed = requests.get(examples.url + "/v1/workflows", timeout=5).json()
    assert {w["name"]: w["model"] for w in listed["workflows"]} == {"triage": "workflow:triage",
                                                                   "world_clock": "workflow:world_clock"}
    models = [m["id"] for m in requests.get(examples.url + "/v1/models", timeout=5).json()["data"]]
    assert {"workflow:triage", "workflow:world_clock"} <= set(models)


def test_triage_of_a_bug_runs_the_bug_branch_and_a_note_per_question(examples, fake_ollama):
    record = run(examples, "triage", {"ticket": "[[reply Bug.]] The app crashes when I save."})
    assert record["status"] == "completed", record["error"]
    steps = statuses(record)
    assert steps["questions"] == "completed" and steps["no_questions"] == "skipped"
    notes = next(s for s in record["steps"] if s["id"] == "notes")
    assert notes["output"] == ["Bug."] * 3  # the scripted model answers every prompt with the ticket's reply
    assert record["outputs"] == {"category": "bug.", "reply": "Bug."}
    chats = [r for r in fake_ollama.requests if r["path"] == "/api/chat"][-5:]
    asked = [r["body"]["messages"][-1]["content"] for r in chats]
    assert sorted(q.split("\n")[0] for q in asked[1:4]) == sorted(["In one line, from this ticket: What did the user do?",
                                                    "In one line, from this ticket: What did they expect?",
                                                    "In one line, from this ticket: What happened instead?"])  # run in parallel
    assert record["usage"]["total_tokens"] == sum(s["usage"]["total_tokens"] for s in record["steps"])


def test_triage_of_a_billing_question_skips_the_notes(examples):
    record = run(examples, "triage", {"ticket": "I was charged twice."})
    assert record["status"] == "completed", record["error"]
    assert statuses(record)["questions"] == "skipped" and statuses(record)["no_questions"] == "completed"
    assert next(s for s in record["steps"] if s["id"] == "notes")["output"] == []


def test_world_clock_calls_the_time_server_and_answers(examples, fake_ollama):
    question = 'What time is it in Tokyo? [[tool time__get_current_time {"timezone": "Asia/Tokyo"}]]'
    record = run(examples, "world_clock", {"question": question})
    assert record["status"] == "completed", record["error"]
    assert "Asia/Tokyo" in record["outputs"]["answer"] and record["outputs"]["question"] == question
    tool_message = fake_ollama.last()["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_name"] == "time__get_current_time"


def test_world_clock_as_a_streamed_model(examples):
    with openai.OpenAI(base_url=examples.url + "/v1", api_key="x", max_retries=0, timeout=30) as client:
        question = 'Time in Paris? [[tool time__get_current_time {"timezone": "Europe/Paris"}]]'
        chunks = list(client.chat.completions.create(model="workflow:world_clock", stream=True,
                                                     stream_options={"include_usage": True},
                                                     messages=[{"role": "user", "content": question}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Europe/Paris" in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.total_tokens > 0
