"""Ollama's native API through the gateway, with the real `ollama` Python client and raw HTTP."""

from __future__ import annotations

import json
import socket
import time

import ollama
import pytest
import requests

KEY = "sk-native-0123456789"
ADMIN = "sk-native-admin-9876"


@pytest.fixture()
def native():
    """Factory: an `ollama.Client` for a gateway (closed after the test)."""
    made = []

    def make(gateway, **headers) -> ollama.Client:
        made.append(ollama.Client(host=gateway.url, headers=headers, timeout=20))
        return made[-1]

    yield make
    for client in made:
        client.close()


def test_chat_whole(native, gateway, fake_ollama):
    answer = native(gateway).chat(model="llama3.2", messages=[{"role": "user", "content": "hi there"}], stream=False)
    assert answer.message.content == "Hello! You said: hi there"
    assert answer.done and answer.done_reason == "stop" and answer.eval_count
    assert fake_ollama.last("/api/chat")["stream"] is False


def test_chat_streams_each_line_as_it_comes(native, gateway):
    start = time.monotonic()
    arrivals, pieces = [], []
    for part in native(gateway).chat(model="llama3.2", stream=True,
                                     messages=[{"role": "user", "content": "[[slow 5 0.2]]"}]):
        arrivals.append(time.monotonic() - start)
        pieces.append(part.message.content)
    assert "".join(pieces) == "tok0 tok1 tok2 tok3 tok4 "
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] > 0.6, arrivals  # the lines came one by one, 0.2 s apart, not at the end


def test_generate_whole_and_streamed(native, gateway, fake_ollama):
    client = native(gateway)
    whole = client.generate(model="llama3.2", prompt="say it", suffix="END")
    assert whole.response == "Hello! You said: say it [before END]" and whole.done
    assert fake_ollama.last("/api/generate")["suffix"] == "END"
    parts = list(client.generate(model="llama3.2", prompt="stream it", stream=True))
    assert "".join(p.response for p in parts) == "Hello! You said: stream it" and parts[-1].done


def test_list_show_embed_ps_version(native, gateway):
    client = native(gateway)
    assert [m.model for m in client.list().models][:2] == ["llama3.2:latest", "qwen3:latest"]
    assert "tools" in client.show("llama3.2").capabilities
    assert client.embed(model="llama3.2", input=["a", "b"]).embeddings == [[0.010071029, -0.0017594862, 0.05007221]] * 2
    assert client.ps().models[0].model == "llama3.2:latest"
    response = requests.get(gateway.url + "/api/version", timeout=5)
    assert response.status_code == 200 and response.json() == {"version": "0.12.10"}
    assert client.embeddings(model="llama3.2", prompt="x").embedding == [0.5, -0.25, 0.125]


def test_root_answers_like_ollama(gateway):
    response = requests.get(gateway.url + "/", timeout=5)
    assert response.status_code == 200 and response.text == "Ollama is running"
    assert response.headers["Content-Type"].startswith("text/plain")
    head = requests.head(gateway.url + "/", timeout=5)
    assert head.status_code == 200 and head.content == b""


def test_ollama_errors_keep_ollama_shape_and_status(native, gateway):
    client = native(gateway)
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="llama9", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 404 and caught.value.error == "model 'llama9' not found"
    response = requests.post(gateway.url + "/api/chat", timeout=5,
                             json={"model": "llama3.2", "messages": [{"role": "user", "content": "[[status 503 server busy]]"}]})
    assert response.status_code == 503 and response.json() == {"error": "server busy"}
    streamed = requests.post(gateway.url + "/api/chat", timeout=5, json={
        "model": "llama3.2", "messages": [{"role": "user", "content": "[[error-mid]]"}]})
    lines = [json.loads(line) for line in streamed.text.splitlines()]
    assert streamed.status_code == 200 and lines[-1] == {"error": "an error was encountered while running the model"}


def test_request_id_is_echoed_and_sent_to_ollama(gateway, fake_ollama):
    response = requests.get(gateway.url + "/api/tags", headers={"X-Request-ID": "native-trace-7"}, timeout=5)
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "native-trace-7"
    assert fake_ollama.headers[-1]["X-Request-ID"] == "native-trace-7"


def test_body_limit_applies(start_gateway):
    small = start_gateway(MAX_REQUEST_BODY="2KB")
    response = requests.post(small.url + "/api/chat", timeout=5,
                             json={"model": "llama3.2", "messages": [{"role": "user", "content": "x" * 5000}]})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


@pytest.fixture(scope="module")
def secured(start_gateway):
    return start_gateway(API_KEY=KEY, ADMIN_API_KEY=ADMIN)


def test_auth_is_required(native, secured, fake_ollama):
    with pytest.raises(ollama.ResponseError) as caught:
        native(secured).list()
    assert caught.value.status_code == 401
    assert native(secured, Authorization=f"Bearer {KEY}").list().models
    assert "Authorization" not in fake_ollama.headers[-1], "the gateway's key is not passed on to Ollama"
    for path in ("/", "/api/version"):
        assert requests.get(secured.url + path, timeout=5).status_code == 401, path
        assert requests.get(secured.url + path, headers={"X-API-Key": KEY}, timeout=5).status_code == 200, path


def test_rate_limit_applies(native, start_gateway):
    limited = start_gateway(RATE_LIMIT_RPS="2")
    time.sleep(1 - time.time() % 1)  # at a whole second: all seven requests fall in one clock-aligned window
    statuses = [requests.get(limited.url + "/api/tags", timeout=5).status_code for _ in range(6)]
    assert statuses[0] == 200 and statuses[-1] == 429
    with pytest.raises(ollama.ResponseError) as caught:
        native(limited).list()
    assert caught.value.status_code == 429


def test_model_management_needs_the_admin_key(native, secured, fake_ollama):
    with pytest.raises(ollama.ResponseError) as caught:
        native(secured, Authorization=f"Bearer {KEY}").pull("llama3.2")
    assert caught.value.status_code == 403
    for method, path in (("POST", "/api/copy"), ("DELETE", "/api/delete"), ("POST", "/api/create"),
                         ("POST", "/api/push"), ("HEAD", "/api/blobs/sha256:00000000"), ("POST", "/api/blobs/sha256:1")):
        response = requests.request(method, secured.url + path, json={"model": "llama3.2"}, timeout=5,
                                    headers={"X-API-Key": KEY})
        assert response.status_code == 403, (method, path)
    admin = native(secured, Authorization=f"Bearer {ADMIN}")
    admin.copy("llama3.2", "llama3.2-copy")
    assert fake_ollama.last("/api/copy") == {"source": "llama3.2", "destination": "llama3.2-copy"}
    admin.delete("llama3.2")
    assert admin.create(model="mine", from_="llama3.2").status == "success"


def test_pull_progress_streams(native, secured):
    start = time.monotonic()
    arrivals, statuses = [], []
    for progress in native(secured, Authorization=f"Bearer {ADMIN}").pull("llama3.2", stream=True):
        arrivals.append(time.monotonic() - start)
        statuses.append(progress.status)
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success" and len(statuses) == 8
    assert arrivals[-1] - arrivals[0] > 0.9, arrivals  # the progress came as it was made


def test_model_management_is_loopback_only_without_admin_key(native, gateway, fake_ollama):
    relayed = requests.post(gateway.url + "/api/copy", json={"source": "llama3.2", "destination": "x"}, timeout=5,
                            headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status_code == 403 and relayed.json()["error"]["code"] == "admin_loopback_only"
    assert native(gateway).pull("llama3.2").status == "success"
    head = requests.head(gateway.url + "/api/blobs/sha256:00000000", timeout=5)
    assert head.status_code == 200
    assert requests.head(gateway.url + "/api/blobs/sha256:ffff", timeout=5).status_code == 404
    with pytest.raises(ollama.ResponseError) as caught:
        native(gateway).pull("missing-model")
    assert "file does not exist" in caught.value.error


@pytest.mark.parametrize(("path", "body", "marker"), [
    ("/api/chat", {"model": "llama3.2", "messages": [{"role": "user", "content": "[[slow 50 0.1]]"}]}, b'"done"'),
    ("/v1/completions", {"model": "llama3.2", "prompt": "[[slow 50 0.1]]", "stream": True}, b"data: "),
])
def test_client_disconnect_closes_the_upstream_stream(gateway, fake_ollama, path, body, marker):
    aborted_before = fake_ollama.aborted
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
                     + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        received = b""
        while marker not in received:
            received += sock.recv(65536)
    deadline = time.monotonic() + 4
    while fake_ollama.aborted == aborted_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_ollama.aborted == aborted_before + 1, "the gateway kept reading from Ollama after the client left"


def test_a_stream_that_stalls_ends_with_an_ollama_style_error_line(start_gateway, fake_ollama):
    impatient = start_gateway(TIMEOUT="1s")
    finished_before = fake_ollama.aborted + fake_ollama.completed
    response = requests.post(impatient.url + "/api/chat", timeout=10, json={
        "model": "llama3.2", "messages": [{"role": "user", "content": "[[stall 3]]"}]})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert response.status_code == 200 and lines[0]["message"]["content"]
    assert lines[-1] == {"error": "Ollama stopped sending for longer than TIMEOUT."}
    deadline = time.monotonic() + 6  # let the fake finish its stalled answer, so later tests count from rest
    while fake_ollama.aborted + fake_ollama.completed == finished_before and time.monotonic() < deadline:
        time.sleep(0.05)
