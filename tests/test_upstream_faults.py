"""A misbehaving upstream cannot hurt the gateway or leak through it: stalls, error pages with secrets, resets,
huge and endless lines, drip-feeding, unreachable addresses. For each: the client's status and error envelope,
nothing secret or internal in what the client gets, the upstream connection closed, and the gateway still serving."""

from __future__ import annotations

import json

import pytest
import requests

from tests.fault_upstream import ADDRESS
from tests.fault_upstream import BIG_LINE
from tests.fault_upstream import PAGE
from tests.fault_upstream import SECRET
from tests.fault_upstream import FaultUpstream
from tests.fault_upstream import unaccepting_port
from tests.gateway import free_port

GATEWAY_KEY = "gw-key-5f3a9c1e7b2d"
AUTH = {"Authorization": f"Bearer {GATEWAY_KEY}"}
LEAKS = (SECRET, "hunter2", ADDRESS, "10.9.8.7", GATEWAY_KEY, "<html", "<title", "<script")


@pytest.fixture(scope="module")
def fault():
    server = FaultUpstream().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _ok_after(fault):
    fault.reset()
    yield
    fault.reset()


@pytest.fixture(scope="module")
def faulty(start_gateway, fault):
    """TIMEOUT 1s and MAX_UPSTREAM_LINE 64KB, so that stalls and long lines are quick to reach."""
    gateway = start_gateway(OLLAMA_HOST=fault.url, TIMEOUT="1s", MAX_UPSTREAM_LINE="64KB", API_KEY=GATEWAY_KEY,
                            DEBUG="true")
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def roomy(start_gateway, fault):
    """The default MAX_UPSTREAM_LINE (32MB)."""
    gateway = start_gateway(OLLAMA_HOST=fault.url, API_KEY=GATEWAY_KEY)
    yield gateway
    gateway.stop()


def chat(gateway, stream: bool, timeout: float | tuple = 60, *, read_later: bool = False) -> requests.Response:
    """A chat completion; `read_later` returns before the body is read."""
    body = {"model": "llama3.2", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return requests.post(gateway.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=timeout,
                         stream=read_later)


def events(response: requests.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


def error_of(response: requests.Response, stream: bool) -> tuple[int, dict]:
    """The status and error object, from the JSON body or (once a stream had started) its last event."""
    if response.headers["Content-Type"].startswith("text/event-stream"):
        assert stream
        return response.status_code, json.loads(events(response)[-1])["error"]
    return response.status_code, response.json()["error"]


def assert_clean(text: str, *more: str) -> None:
    for leak in (*LEAKS, *more):
        assert leak not in text, f"{leak!r} reached the client: {text[:500]}"


def assert_serving(gateway, fault) -> None:
    """/health is healthy and a normal chat goes through, streamed and whole."""
    fault.reset("ok")
    health = requests.get(gateway.url + "/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    whole = chat(gateway, False)
    assert whole.status_code == 200 and whole.json()["choices"][0]["message"]["content"] == "Hello there"
    streamed = chat(gateway, True)
    assert streamed.status_code == 200 and events(streamed)[-1] == "[DONE]"


@pytest.mark.parametrize("stream", [False, True])
def test_an_html_error_page_reaches_the_client_as_its_title(faulty, fault, stream):
    fault.reset("html500")
    fault.page = PAGE.replace("hunter2", "hunter2 " + GATEWAY_KEY)
    response = chat(faulty, stream)
    status, error = error_of(response, stream)
    assert status == 500 and (error["type"], error["code"]) == ("api_error", "upstream_error")
    assert error["message"] == "500 Internal Server Error"
    assert_clean(response.text)
    logged = faulty.wait_for_log(lambda e: e["level"] == "debug" and "Internal   Server Error" in e["message"])
    assert ADDRESS in logged["message"], "the operator's debug line has the whole page"
    assert SECRET not in logged["message"] and GATEWAY_KEY not in logged["message"]
    assert_serving(faulty, fault)


def test_an_html_error_page_of_embeddings_and_the_native_api_is_reduced_too(faulty, fault):
    fault.reset("html500")
    embedded = requests.post(faulty.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=AUTH,
                             timeout=60)
    assert embedded.status_code == 500 and embedded.json()["error"]["message"] == "500 Internal Server Error"
    native = requests.post(faulty.url + "/api/chat", json={"model": "m", "messages": []}, headers=AUTH, timeout=60)
    assert native.status_code == 500 and native.headers["Content-Type"].startswith("application/json")
    assert native.json() == {"error": "500 Internal Server Error"}
    for response in (embedded, native):
        assert_clean(response.text)


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_never_answers_is_a_504_and_its_connection_is_closed(faulty, fault, stream):
    fault.reset("stall")
    status, error = error_of(chat(faulty, stream), stream)
    assert (status, error["code"]) == (504, "upstream_timeout")
    assert fault.wait_closed()
    assert_serving(faulty, fault)


@pytest.mark.parametrize("stream", [False, True])
def test_a_reset_mid_stream_is_an_upstream_error(faulty, fault, stream):
    fault.reset("reset")
    response = chat(faulty, stream)
    status, error = error_of(response, stream)
    assert (status, error["code"]) == ((200, "upstream_error") if stream else (502, "upstream_error"))
    assert error["message"] == "The connection to Ollama broke during the reply."
    if stream:
        assert any(json.loads(e).get("choices") for e in events(response)[:-1]), "the first line was sent"
    assert_clean(response.text, fault.url)
    assert_serving(faulty, fault)


@pytest.mark.parametrize("stream", [False, True])
def test_a_first_line_past_max_upstream_line_is_a_502_before_any_byte(faulty, fault, stream):
    fault.reset("long-first")
    response = chat(faulty, stream)
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (502, "upstream_line_too_long")
    assert "MAX_UPSTREAM_LINE (64KB)" in error["message"]
    assert fault.wait_closed()
    assert_serving(faulty, fault)


@pytest.mark.parametrize("stream", [False, True])
def test_a_line_past_max_upstream_line_after_content_ends_the_reply(faulty, fault, stream):
    fault.reset("long-line")
    response = chat(faulty, stream)
    status, error = error_of(response, stream)
    assert (status, error["code"]) == ((200 if stream else 502), "upstream_line_too_long")
    if stream:
        assert events(response)[-1] != "[DONE]" and json.loads(events(response)[0])["choices"]
    assert "y" * 1000 not in response.text
    assert fault.wait_closed()
    assert_serving(faulty, fault)


def test_a_whole_reply_past_max_upstream_line_is_a_502(faulty, fault):
    fault.reset("big-json")
    response = requests.post(faulty.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=AUTH,
                             timeout=60)
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_line_too_long"
    assert fault.wait_closed()
    fault.reset("ok")
    assert requests.post(faulty.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=AUTH,
                         timeout=60).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
def test_a_10mb_line_within_the_cap_goes_through(roomy, fault, stream):
    fault.reset("big-line")
    response = chat(roomy, stream, timeout=120)
    assert response.status_code == 200
    if stream:
        content = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                          for e in events(response) if e != "[DONE]" and json.loads(e)["choices"])
    else:
        content = response.json()["choices"][0]["message"]["content"]
    assert content == "x" * BIG_LINE
    assert fault.wait_closed()
    assert_serving(roomy, fault)


def test_a_client_that_leaves_a_drip_fed_stream_gets_its_upstream_closed(faulty, fault):
    fault.reset("drip")
    with chat(faulty, True, read_later=True) as response:
        assert response.status_code == 200
        first = next(line for line in response.iter_lines() if line.startswith(b"data: "))
        assert json.loads(first[6:])["choices"]
    assert fault.wait_closed()
    assert_serving(faulty, fault)


def test_a_client_that_leaves_a_drip_fed_whole_answer_gets_its_upstream_closed(faulty, fault):
    """Nothing is written to the client while a whole answer is read: its socket is watched instead."""
    fault.reset("drip")
    with pytest.raises(requests.ReadTimeout):
        chat(faulty, False, timeout=(5, 1.5))
    assert fault.wait_closed()
    assert_serving(faulty, fault)


def test_a_client_that_leaves_a_drip_fed_whole_reply_of_embeddings_gets_its_upstream_closed(faulty, fault):
    fault.reset("drip")
    with pytest.raises(requests.ReadTimeout):
        requests.post(faulty.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=AUTH, timeout=(5, 1.5))
    assert fault.wait_closed()
    assert_serving(faulty, fault)


def test_an_unreachable_upstream_is_not_named_to_the_client(start_gateway):
    port = free_port()
    gateway = start_gateway(OLLAMA_HOST=f"http://127.0.0.1:{port}")
    try:
        for stream in (False, True):
            response = chat(gateway, stream)
            status, error = error_of(response, stream)
            assert (status, error["code"]) == (502, "upstream_unavailable")
            assert error["message"] == "Ollama is unreachable: connection refused"
            assert_clean(response.text, str(port), "127.0.0.1")
        health = requests.get(gateway.url + "/health", timeout=30).json()
        assert "127.0.0.1" not in health["error"]["message"] and "127.0.0.1" not in health["backends"][0]["error"]
        logged = gateway.wait_for_log(lambda e: e["level"] == "warning" and str(port) in e["message"])
        assert f"http://127.0.0.1:{port}" in logged["message"], "the operator's warning names the address"
    finally:
        gateway.stop()


def test_a_connect_timeout_is_not_named_to_the_client(start_gateway):
    listener, fillers = unaccepting_port()
    port = listener.getsockname()[1]
    gateway = start_gateway(OLLAMA_HOST=f"http://127.0.0.1:{port}", CONNECT_TIMEOUT="500ms")
    try:
        response = chat(gateway, False)
        error = response.json()["error"]
        assert (response.status_code, error["code"]) == (504, "upstream_timeout")
        assert error["message"] == "Timed out connecting to Ollama (CONNECT_TIMEOUT)"
        assert_clean(response.text, str(port), "127.0.0.1")
    finally:
        gateway.stop()
        for sock in (listener, *fillers):
            sock.close()


def test_several_unreachable_backends_are_not_named_to_the_client(start_gateway):
    ports = (free_port(), free_port())
    gateway = start_gateway(OLLAMA_HOST=",".join(f"http://127.0.0.1:{p}" for p in ports))
    try:
        response = chat(gateway, True)
        assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_unavailable"
        assert_clean(response.text, *map(str, ports), "127.0.0.1")
    finally:
        gateway.stop()


def test_health_hides_the_upstream_addresses_when_told(start_gateway, faulty, fault):
    ports = (free_port(), free_port())
    hosts = f"{fault.url},http://127.0.0.1:{ports[1]}"
    gateway = start_gateway(OLLAMA_HOST=hosts, HEALTH_SHOW_UPSTREAM="false")
    try:
        hidden = requests.get(gateway.url + "/health", timeout=30)
        report = hidden.json()
        assert hidden.status_code == 200 and "ollama_host" not in report
        assert [(b["name"], b["status"]) for b in report["backends"]] == [("backend-1", "up"), ("backend-2", "down")]
        assert all("url" not in b for b in report["backends"]) and report["backends"][1]["error"]
        assert_clean(hidden.text, "127.0.0.1", str(ports[1]))
    finally:
        gateway.stop()
    shown = requests.get(faulty.url + "/health", timeout=30).json()
    assert shown["ollama_host"] == fault.url and shown["backends"][0]["url"] == fault.url, "shown by default"


def test_the_connection_of_a_whole_reply_read_to_its_end_is_kept(faulty, fault):
    """Bounded reads still hand a connection whose reply was read to its end back to the pool."""
    for _ in range(2):
        assert requests.post(faulty.url + "/v1/embeddings", json={"model": "m", "input": "x"}, headers=AUTH,
                             timeout=60).status_code == 200
    chats = fault.faulted()
    assert chats and not any(c.closed.wait(0.5) for c in chats), "kept alive for the next request"
