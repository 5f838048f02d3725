"""Streams under gunicorn: disconnects, idle timeouts, graceful drain on SIGTERM, start-up failures."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time

import requests

from tests.gateway import GUNICORN
from tests.gateway import ROOT
from tests.gateway import Gateway
from tests.gateway import clean_env


def stream_body(content: str) -> dict:
    return {"model": "llama3.2", "stream": True, "messages": [{"role": "user", "content": content}]}


def sse_events(response) -> list:
    events = []
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            payload = line[6:]
            events.append(payload.decode() if payload == b"[DONE]" else json.loads(payload))
    return events


def test_client_disconnect_closes_the_upstream_stream(gateway, fake_ollama):
    aborted_before, completed_before = fake_ollama.aborted, fake_ollama.completed
    body = json.dumps(stream_body("[[slow 50 0.1]]")).encode()
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        received = b""
        while b"data: " not in received:
            received += sock.recv(65536)
    deadline = time.monotonic() + 4
    while fake_ollama.aborted == aborted_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_ollama.aborted == aborted_before + 1, "the gateway kept reading from Ollama after the client left"
    assert fake_ollama.completed == completed_before


def test_stall_longer_than_timeout_ends_the_stream_with_an_error_event(start_gateway):
    short = start_gateway(TIMEOUT="1s")
    started = time.monotonic()
    with requests.post(short.url + "/v1/chat/completions", json=stream_body("[[stall 3]] a b c"), stream=True,
                       timeout=10) as response:
        events = sse_events(response)
    assert time.monotonic() - started < 2.9
    assert events[-1]["error"]["code"] == "upstream_timeout"
    assert "[DONE]" not in events


def test_a_long_stream_that_keeps_producing_is_not_cut_by_timeout(start_gateway):
    short = start_gateway(TIMEOUT="1s")
    with requests.post(short.url + "/v1/chat/completions", json=stream_body("[[slow 8 0.4]]"), stream=True,
                       timeout=10) as response:
        events = sse_events(response)
    assert events[-1] == "[DONE]" and events[-2]["choices"][0]["finish_reason"] == "stop"


def test_sigterm_lets_a_running_stream_finish_then_exits_zero(fake_ollama):
    gateway = Gateway({"OLLAMA_HOST": fake_ollama.url, "SHUTDOWN_TIMEOUT": "15s", "RATE_LIMIT_RPS": "0"}).start()
    events: list = []

    def consume():
        with requests.post(gateway.url + "/v1/chat/completions", json=stream_body("[[slow 10 0.2]]"), stream=True,
                           timeout=20) as response:
            events.extend(sse_events(response))

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.6)
    gateway.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    try:
        requests.get(gateway.url + "/health/live", timeout=1)
        refused = False
    except (requests.ConnectionError, requests.Timeout):  # refused, or left in the backlog unserved
        refused = True
    reader.join(20)
    assert gateway.process.wait(20) == 0
    gateway.stop()
    assert refused, "new requests should not be served while draining"
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if isinstance(e, dict) and e["choices"]).count("tok") == 10


def test_second_instance_on_a_taken_port_fails_fast_with_one_line(gateway):
    started = time.monotonic()
    result = subprocess.run(GUNICORN, cwd=ROOT, env=clean_env({"PORT": gateway.port}), capture_output=True, timeout=20)
    assert result.returncode != 0 and time.monotonic() - started < 5
    output = result.stderr.decode().splitlines() + result.stdout.decode().splitlines()
    lines = [line for line in output if "llamagate:" in line]
    assert len(lines) == 1 and str(gateway.port) in lines[0] and "in use" in lines[0]


def test_bad_settings_stop_start_up_with_one_clear_line():
    result = subprocess.run(GUNICORN, cwd=ROOT, env=clean_env({"TIMEOUT": "45m", "PORT": "1"}), capture_output=True, timeout=20)
    assert result.returncode == 2
    assert result.stderr.decode().strip() == "llamagate: invalid setting TIMEOUT='45m': must be more than 0 and at most 30m"


def test_bad_mcp_file_stops_start_up_with_one_clear_line(tmp_path):
    config = tmp_path / "llamagate.yaml"
    config.write_text("mcp:\n  servers:\n    - name: docs\n      transport: http\n      url: ftp://x\n")
    result = subprocess.run(GUNICORN, cwd=ROOT, env=clean_env({"CONFIG_FILE": str(config), "PORT": "1"}),
                            capture_output=True, timeout=20)
    assert result.returncode == 2
    (line,) = result.stderr.decode().strip().splitlines()
    assert line.startswith(f"llamagate: {config}: mcp.servers[0].url:") and "ftp://x" in line
