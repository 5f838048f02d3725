"""Misbehaving clients against the real server (gunicorn, and waitress where it applies): silent and slow connections
cannot starve the threads, a full worker refuses quickly and keeps /health answering, malformed HTTP gets the JSON
envelope and is echoed nowhere (neither in the answer nor in any log line)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time

import pytest
import requests

from .conftest import BASE_SETTINGS
from .gateway import Gateway

KEY = "sk-client-faults-key-1234567890"
STRANGER = "sk-never-configured-0987654321"
WAITRESS = [sys.executable, "wsgi.py"]
CHAT = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}


def start(fake_ollama, command=None, **settings) -> Gateway:
    return Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url, **settings}, command=command).start()


def exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, then read until the server closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_to_end(sock)


def read_to_end(sock: socket.socket) -> bytes:
    received = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def parse(raw: bytes) -> tuple[int, dict, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


@contextlib.contextmanager
def held_sockets(port: int, count: int, first: bytes = b""):
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(count)]
    for sock in sockets:
        if first:
            sock.sendall(first)
    try:
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module", params=["gunicorn", "waitress"])
def server(request, fake_ollama) -> Gateway:
    gateway = start(fake_ollama, WAITRESS if request.param == "waitress" else None, THREADS="4", API_KEY=KEY,
                    HEADER_TIMEOUT="30s", DEBUG="true")
    yield gateway
    gateway.stop()


def test_silent_connections_leave_every_thread_free(server):
    with held_sockets(server.port, 100):
        assert requests.get(server.url + "/health/live", timeout=5).status_code == 200
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
        answer = requests.post(server.url + "/v1/chat/completions", json=CHAT, timeout=5, headers={"X-API-Key": KEY})
        assert answer.status_code == 200


def test_slowloris_heads_leave_every_thread_free(server):
    """16 connections stuck in the middle of their headers (more than THREADS) while others are served."""
    with held_sockets(server.port, 16, first=b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: aaa") as dripping:
        for round_ in range(3):
            for sock in dripping:
                sock.sendall(b"a")
            assert requests.get(server.url + "/health/live", timeout=5).status_code == 200
            answer = requests.post(server.url + "/v1/chat/completions", json=CHAT, timeout=5,
                                   headers={"X-API-Key": KEY})
            assert answer.status_code == 200, round_


def test_a_connection_that_never_sends_is_closed_after_header_timeout(fake_ollama):
    gateway = start(fake_ollama, HEADER_TIMEOUT="1s")
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
            assert read_to_end(sock) == b"", "closed without an answer: nothing was asked"
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # begun, never finished
            status, headers, body = parse(read_to_end(sock))
        assert status == 408 and headers["content-type"] == "application/json"
        assert body["error"]["code"] == "request_timeout" and body["error"]["type"] == "invalid_request_error"
        assert requests.get(gateway.url + "/health/live", timeout=5).status_code == 200
    finally:
        gateway.stop()


def test_a_body_that_stops_arriving_is_answered_408_after_idle_timeout(fake_ollama):
    gateway = start(fake_ollama, IDLE_TIMEOUT="1s", API_KEY=KEY)
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() +
                         b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\": ")
            status, headers, body = parse(read_to_end(sock))
        assert status == 408 and headers["content-type"] == "application/json"
        assert body["error"]["code"] == "request_timeout" and "IDLE_TIMEOUT" in body["error"]["message"]
        answer = requests.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=5, headers={"X-API-Key": KEY})
        assert answer.status_code == 200
    finally:
        gateway.stop()


def test_waitress_closes_a_silent_connection_after_header_timeout(fake_ollama):
    gateway = start(fake_ollama, WAITRESS, HEADER_TIMEOUT="1s")
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
            assert read_to_end(sock) == b""
    finally:
        gateway.stop()


def test_a_kept_alive_connection_serves_its_next_request_too(fake_ollama):
    gateway = start(fake_ollama, HEADER_TIMEOUT="2s")
    try:
        with requests.Session() as session:
            for _ in range(3):
                assert session.get(gateway.url + "/health/live", timeout=5).status_code == 200
                time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:  # two pipelined requests
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /health/live HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n")
            assert read_to_end(sock).count(b"HTTP/1.1 200") == 2
    finally:
        gateway.stop()


def read_answer(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 answer with a Content-Length, from a connection that stays open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_a_next_head_begun_right_after_an_answer_is_timed_by_header_timeout(fake_ollama):
    """The thread that sent an answer waits briefly for the connection's next head; one that begins then and stops
    goes back to the event loop, so it holds no thread and gets its 408 after HEADER_TIMEOUT, not IDLE_TIMEOUT."""
    gateway = start(fake_ollama, HEADER_TIMEOUT="1s", IDLE_TIMEOUT="60s")
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")  # at once, never finished
            status, headers, body = parse(read_to_end(sock))
        assert status == 408 and body["error"]["code"] == "request_timeout"
    finally:
        gateway.stop()


def test_requests_sent_together_right_after_an_answer_are_all_answered(fake_ollama):
    """Two requests in one write, just after the first answer, while its thread may be waiting for the next head: the
    second is in the parser's buffer already, with nothing more to read from the socket."""
    gateway = start(fake_ollama, IDLE_TIMEOUT="60s")
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(sock).startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\nGET /health/live HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n")
            assert read_to_end(sock).count(b"HTTP/1.1 200") == 2
    finally:
        gateway.stop()


def test_clients_that_leave_right_after_their_answers_are_closed_quietly(fake_ollama):
    gateway = start(fake_ollama, THREADS="2", IDLE_TIMEOUT="60s")
    try:
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_answer(sock).startswith(b"HTTP/1.1 200")
                sock.shutdown(socket.SHUT_WR)  # done sending: the gateway closes its side at once
                assert sock.recv(1) == b""  # a timeout (10 s) here raises
        with requests.Session() as session:  # and the worker goes on answering
            for _ in range(3):
                assert session.get(gateway.url + "/health/live", timeout=5).status_code == 200
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.output()
    assert not [entry for entry in gateway.log_lines() if entry.get("level") in ("error", "critical")]


def test_bodies_the_gateway_reads_or_leaves_do_not_spill_into_the_next_request(fake_ollama):
    gateway = start(fake_ollama, API_KEY=KEY)
    body = json.dumps(CHAT).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    requests_on_one_connection = [  # read whole and answered; refused unread (wrong key), by length and chunked
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (KEY.encode(), len(body), body),
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (STRANGER.encode(), len(body), body),
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%s" % (STRANGER.encode(), chunked),
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%s" % (KEY.encode(), chunked),
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    try:
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
            for data in requests_on_one_connection:  # one at a time: each answer is read before the next is sent
                sock.sendall(data)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += sock.recv(1)
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                answer = b""
                while len(answer) < length:
                    answer += sock.recv(length - len(answer))
                status = int(head.split(b" ", 2)[1])
                assert status == (401 if STRANGER.encode() in data else 200), (data[:60], head, answer)
            assert read_to_end(sock) == b""  # and the connection closes when asked, with nothing more on it
    finally:
        gateway.stop()


# -- a full worker --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [None, WAITRESS], ids=["gunicorn", "waitress"])
def test_a_full_worker_refuses_new_requests_and_keeps_health_answering(fake_ollama, command):
    gateway = start(fake_ollama, command, THREADS="4", MAX_CONCURRENT_REQUESTS="2")
    streams = []

    def stream():
        body = {**CHAT, "stream": True, "messages": [{"role": "user", "content": "[[slow 100 0.1]]"}]}
        response = requests.post(gateway.url + "/v1/chat/completions", json=body, stream=True, timeout=30)
        streams.append(response)
        next(response.iter_lines())

    try:
        for _ in range(2):
            stream()
        refused = requests.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=5)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["code"] == "gateway_busy"
        assert "MAX_CONCURRENT_REQUESTS" in refused.json()["error"]["message"]
        for path in ("/health", "/health/live", "/metrics"):
            assert requests.get(gateway.url + path, timeout=5).status_code == 200, path
        for response in streams:  # the clients leave: their slots come back
            response.close()
        deadline = time.monotonic() + 10
        while requests.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=5).status_code == 503:
            assert time.monotonic() < deadline, "the slots of the closed streams never came back"
            time.sleep(0.1)
    finally:
        for response in streams:
            response.close()
        gateway.stop()


def test_a_request_refused_by_the_key_check_takes_no_slot(fake_ollama):
    gateway = start(fake_ollama, THREADS="4", MAX_CONCURRENT_REQUESTS="1", API_KEY=KEY)
    try:
        for _ in range(5):
            assert requests.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=5).status_code == 401
        answer = requests.post(gateway.url + "/v1/chat/completions", json=CHAT, timeout=5, headers={"X-API-Key": KEY})
        assert answer.status_code == 200
    finally:
        gateway.stop()


def test_max_concurrent_requests_defaults_to_two_threads_less():
    from app.settings import load_settings

    assert load_settings({"THREADS": "16", "ENV_FILE": "", "CONFIG_FILE": ""})["MAX_CONCURRENT_REQUESTS"] == 14
    assert load_settings({"THREADS": "1", "ENV_FILE": "", "CONFIG_FILE": ""})["MAX_CONCURRENT_REQUESTS"] == 1


# -- malformed HTTP -------------------------------------------------------------------------------------------------

MALFORMED = {
    "bare LF line ends": b"GET /health HTTP/1.1\nHost: x\n\n",
    "bare CR in a header": b"GET /health HTTP/1.1\r\nHost: x\rX-Other: y\r\n\r\n",
    "NUL in a header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Other: a\x00b\r\n\r\n",
    "obs-fold": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Other: a\r\n  folded\r\n\r\n",
    "header without a colon": b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-API-Key " + KEY.encode() + b"\r\n\r\n",
    "unknown key without a colon": b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-API-Key " + STRANGER.encode() + b"\r\n\r\n",
    "10 KB header line": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"k" * 10_000 + STRANGER.encode() + b"\r\n\r\n",
    "garbage request line": b"\x16\x03\x01 " + STRANGER.encode() + b"\r\n\r\n",
    "bad chunk size": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + STRANGER.encode() + b"\r\n0\r\n\r\n",
    "bad chunk size, body read": b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + STRANGER.encode() + b"\r\n0\r\n\r\n",
}


# waitress joins folded lines and allows long header lines, and waits for a CRLF head end (until IDLE_TIMEOUT).
ACCEPTED_BY_WAITRESS = {"bare LF line ends", "obs-fold", "10 KB header line"}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_http_gets_the_json_envelope_and_echoes_nothing(server, name):
    answer = exchange(server.port, MALFORMED[name], timeout=3 if server.command == WAITRESS else 10)
    if server.command == WAITRESS and name in ACCEPTED_BY_WAITRESS:
        assert STRANGER not in answer.decode("latin-1") and b"folded" not in answer
        return
    assert len(re.findall(rb"(?:^|\n)HTTP/1\.[01] \d{3} ", answer)) == 1, answer[:400]  # one answer
    status, headers, body = parse(answer)
    assert 400 <= status < 500, answer[:200]
    assert headers["content-type"].startswith("application/json")
    assert set(body["error"]) >= {"message", "type", "param", "code"} and body["error"]["type"] == "invalid_request_error"
    for secret in (KEY, STRANGER, "folded", "X-Big", "\\u0000"):
        assert secret not in answer.decode("latin-1"), secret
    assert requests.get(server.url + "/health/live", timeout=5).status_code == 200


def test_no_log_line_holds_a_key_whatever_the_header_shape(server):
    for raw in MALFORMED.values():
        exchange(server.port, raw)
    shapes = [b"X-API-Key\t", b"X-API-Key:", b"x-api-key =", b"Authorization: Bearer ", b"Authorization "]
    for shape in shapes:
        exchange(server.port, b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + shape + STRANGER.encode() + b"\r\n\r\n")
    time.sleep(0.5)  # the worker's last lines reach the file
    output = server.output()
    assert output, "the gateway logs at debug level"
    assert KEY not in output and STRANGER not in output


def test_a_request_line_past_the_limit_is_refused(server):
    status, headers, body = parse(exchange(server.port, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status in (414, 431) and headers["content-type"].startswith("application/json")
    assert body["error"]["type"] == "invalid_request_error"


def test_a_head_past_64_kib_is_refused_with_431(fake_ollama):
    gateway = start(fake_ollama)
    try:
        head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(80))
        status, _, body = parse(exchange(gateway.port, head))
        assert status == 431 and body["error"]["code"] == "request_headers_too_large"
    finally:
        gateway.stop()


def test_threads_answer_while_clients_drip_bodies(server):
    """A body sent 1 byte at a time holds one request slot, not the worker: others are served meanwhile."""
    stop = threading.Event()

    def drip():
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"X-API-Key: " + KEY.encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
            while not stop.wait(0.5):
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")

    dripping = threading.Thread(target=drip, daemon=True)
    dripping.start()
    try:
        time.sleep(0.5)
        for _ in range(3):
            assert requests.get(server.url + "/health", timeout=5).status_code == 200
            answer = requests.post(server.url + "/v1/chat/completions", json=CHAT, timeout=5, headers={"X-API-Key": KEY})
            assert answer.status_code == 200
    finally:
        stop.set()
        dripping.join(5)
