"""Benchmark: what a 3-step workflow costs beyond its model calls, against the fixed-reply upstream (nginx).

    python tests/bench/workflow_overhead.py [--runs 300]

Measures, one at a time: the upstream's own /api/chat latency, a plain chat completion through the gateway, and
a run of a workflow with three llm steps. Prints the medians and the workflow's overhead: its latency minus
three upstream calls, and minus three chat completions. Needs Debian's `nginx`; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))
from run import BIN  # noqa: E402
from run import ROOT  # noqa: E402
from run import Server  # noqa: E402
from run import start_upstream  # noqa: E402

from tests.gateway import clean_env  # noqa: E402
from tests.gateway import free_port  # noqa: E402

WORKFLOW = {
    "name": "three", "inputs": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
    "defaults": {"model": "llama3.2"},
    "steps": [{"id": "a", "type": "llm", "prompt": "{{ inputs.text }}"},
              {"id": "b", "type": "llm", "prompt": "{{ steps.a.output }}"},
              {"id": "c", "type": "llm", "prompt": "{{ steps.b.output }}"}],
    "output": {"answer": "{{ steps.c.output }}"},
}
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "Hello"}]}


def median_ms(session: requests.Session, method: str, url: str, body: dict, runs: int) -> float:
    for _ in range(min(20, runs)):  # warm-up
        session.request(method, url, json=body, timeout=30).raise_for_status()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.request(method, url, json=body, timeout=30).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="requests per case (bounded; one at a time)")
    args = parser.parse_args()
    runs = max(1, min(args.runs, 5000))
    workdir = Path(tempfile.mkdtemp(prefix="llamagate-wf-bench-"))
    (workdir / "workflows").mkdir()
    (workdir / "workflows" / "three.yaml").write_text(yaml.safe_dump(WORKFLOW))
    (workdir / "llamagate.yaml").write_text(yaml.safe_dump({"workflows": {"dirs": [str(workdir / "workflows")]}}))
    nginx = start_upstream(workdir / "nginx")
    upstream = nginx.url
    port = free_port()
    env = clean_env({"OLLAMA_HOST": upstream, "RATE_LIMIT_RPS": "0", "CACHE_ENABLED": "false", "PORT": port})
    env["CONFIG_FILE"] = str(workdir / "llamagate.yaml")
    gateway = Server([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], env, port, ROOT, ready="/health/live")
    try:
        with requests.Session() as session:
            session.trust_env = False
            direct = median_ms(session, "POST", upstream + "/api/chat", {**CHAT, "stream": False}, runs)
            chat = median_ms(session, "POST", gateway.url + "/v1/chat/completions", CHAT, runs)
            flow = median_ms(session, "POST", gateway.url + "/v1/workflows/three/runs", {"inputs": {"text": "Hi"}}, runs)
    finally:
        gateway.stop()
        nginx.stop()
    print(f"upstream /api/chat          {direct:8.3f} ms")
    print(f"chat completion (gateway)   {chat:8.3f} ms")
    print(f"3-step workflow run         {flow:8.3f} ms")
    print(f"workflow overhead over 3 upstream calls     {flow - 3 * direct:8.3f} ms")
    print(f"workflow overhead over 3 chat completions   {flow - 3 * chat:8.3f} ms")


if __name__ == "__main__":
    main()
