"""How a streamed answer's events are written: those made from upstream lines that arrived together go out in a
few writes (each one HTTP chunk), while lines that come apart are relayed one by one, as they come."""

from __future__ import annotations

import json
import socket
import time

import pytest

from app.streaming import HOLD_AT_MOST
from tests.fault_upstream import BURST
from tests.fault_upstream import FaultUpstream

KEY = "gw-key-writes-1"


@pytest.fixture(scope="module")
def fault():
    server = FaultUpstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bursty(start_gateway, fault):
    gateway = start_gateway(OLLAMA_HOST=fault.url, API_KEY=KEY)
    yield gateway
    gateway.stop()


def chunks_of_stream(url: str, content: str, key: str | None = None, **extra) -> list[tuple[float, bytes]]:
    """The HTTP chunks of one streamed chat answer as they arrive (seconds since the request, data), over a raw
    socket: with chunked encoding each chunk is one write of the gateway."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"model": "llama3.2", "stream": True, "messages": [{"role": "user", "content": content}],
                       **extra}).encode()
    head = ["POST /v1/chat/completions HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close"]
    if key:
        head.append(f"Authorization: Bearer {key}")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        status, _, buffer = buffer.partition(b"\r\n\r\n")
        assert b" 200 " in status.split(b"\r\n")[0] and b"transfer-encoding: chunked" in status.lower()
        chunks = []
        while True:
            while b"\r\n" not in buffer:
                buffer += sock.recv(65536)
            size_line, _, buffer = buffer.partition(b"\r\n")
            size = int(size_line, 16)
            while len(buffer) < size + 2:
                buffer += sock.recv(65536)
            if size == 0:
                return chunks
            chunks.append((time.monotonic() - started, buffer[:size]))
            buffer = buffer[size + 2:]


def events_in(data: bytes) -> list:
    assert data.endswith(b"\n\n")
    return [event.removeprefix(b"data: ") for event in data[:-2].split(b"\n\n")]


def test_events_of_lines_that_arrived_together_are_written_together(bursty, fault):
    fault.reset("burst")
    chunks = chunks_of_stream(bursty.url, "hi", KEY)
    per_chunk = [events_in(data) for _, data in chunks]
    assert len(per_chunk[0]) == 1, "the first event goes alone, at once"
    assert all(len(events) <= HOLD_AT_MOST for events in per_chunk[1:-1])
    events = [event for chunk in per_chunk for event in chunk]
    assert len(events) == BURST + 2  # the content deltas, the finish chunk, [DONE]
    assert len(chunks) <= 2 + BURST // HOLD_AT_MOST + 1
    assert events[-1] == b"[DONE]"
    answers = [json.loads(event) for event in events[:-1]]
    assert "".join(a["choices"][0]["delta"].get("content", "") for a in answers) == "".join(f"tok{i} " for i in range(BURST))
    assert answers[0]["choices"][0]["delta"]["role"] == "assistant"
    assert answers[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({(a["id"], a["created"], a["model"]) for a in answers}) == 1


def test_an_error_after_lines_that_arrived_together_comes_after_their_events(bursty, fault):
    fault.reset("burst-error")
    events = [event for _, data in chunks_of_stream(bursty.url, "hi", KEY) for event in events_in(data)]
    assert len(events) == BURST + 1 and b"[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert "out of memory" in error["message"]
    assert "".join(json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1]) == "".join(
        f"tok{i} " for i in range(BURST))


def test_lines_that_come_apart_are_relayed_one_by_one_as_they_come(gateway):
    chunks = chunks_of_stream(gateway.url, "[[slow 6 0.25]]")
    per_chunk = [events_in(data) for _, data in chunks]
    assert [len(events) for events in per_chunk] == [1] * 6 + [2]  # the last: finish chunk and [DONE] at once
    contents = [json.loads(events[0])["choices"][0]["delta"]["content"] for events in per_chunk[:6]]
    assert contents == [f"tok{i} " for i in range(6)]
    times = [at for at, _ in chunks]
    assert all(later - earlier > 0.15 for earlier, later in zip(times[:5], times[1:6], strict=True)), times


MARKING_PLUGIN = '''
class Plugin:
    def on_chunk(self, ctx, chunk):
        ctx.state["seen"] = ctx.state.get("seen", 0) + 1
        for choice in chunk.get("choices") or []:
            if choice["delta"].get("content"):
                choice["delta"]["content"] += f"<{ctx.state['seen']}>"
        return chunk
'''


@pytest.fixture(scope="module")
def hooked(start_gateway, fault, tmp_path_factory):
    folder = tmp_path_factory.mktemp("writes")
    (folder / "plugins").mkdir()
    (folder / "plugins" / "marking.py").write_text(MARKING_PLUGIN)
    config = folder / "llamagate.yaml"
    config.write_text(json.dumps({"plugins": {"dirs": [str(folder / "plugins")], "items": [{"name": "marking"}]}}))
    gateway = start_gateway(OLLAMA_HOST=fault.url, API_KEY=KEY, CONFIG_FILE=str(config))
    yield gateway
    gateway.stop()


def test_an_on_chunk_hook_sees_every_chunk_of_lines_written_together(hooked, fault):
    fault.reset("burst")
    chunks = chunks_of_stream(hooked.url, "hi", KEY)
    events = [event for _, data in chunks for event in events_in(data)]
    assert len(chunks) < len(events) and events[-1] == b"[DONE]"
    contents = [json.loads(event)["choices"][0]["delta"].get("content") for event in events[:-1]]
    assert contents == [f"tok{i} <{i + 1}>" for i in range(BURST)] + [None]
