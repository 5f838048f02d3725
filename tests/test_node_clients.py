"""The official openai npm package against the gateway (installed by .ci/run into tests/node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"


def run_node(gateway, *extra: str) -> dict:
    if not shutil.which("node") or not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.fail("node and tests/node's packages are needed: npm ci --prefix tests/node")
    done = subprocess.run(["node", str(NODE_DIR / "openai_client.mjs"), gateway.url + "/v1", *extra],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_openai_node_responses_completions_and_chat(gateway):
    out = run_node(gateway, "completions")
    assert out["responses"]["status"] == "completed" and out["responses"]["text"] == "Hello! You said: Hello from node"
    assert out["responses"]["usage"]["total_tokens"] > 0
    events = out["responses_stream"]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    assert "response.output_text.delta" in events
    assert out["chat"] == "Hello! You said: hi"
    assert out["completions"]["text"] and out["completions"]["finish_reason"] == "stop"


def test_the_vercel_ai_sdk_default_provider(gateway):
    if not (NODE_DIR / "node_modules" / "ai").is_dir():
        pytest.fail("tests/node's packages are needed: npm ci --prefix tests/node")
    done = subprocess.run(["node", str(NODE_DIR / "vercel_ai.mjs"), gateway.url + "/v1"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["text"] == "Hello! You said: Hello from the AI SDK"
    assert out["streamed"] == "Hello! You said: Stream from the AI SDK"
    assert out["usage"]["inputTokens"] > 0 and out["usage"]["outputTokens"] > 0
