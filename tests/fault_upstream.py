"""A misbehaving upstream on raw sockets, standing where Ollama should be: what it does to the gateway's
`/api/chat`, `/api/generate` and `/api/embed` requests is chosen with `fault` (other paths answer like Ollama).

  ok          a short NDJSON chat reply (embed: one vector)
  stall       read the request, then never send a status line
  html500     an HTML 500 page holding a secret, a bearer token and an address (`page`, PAGE unless set)
  reset       headers and one line, then a reset (SO_LINGER 0) mid-stream
  big-line    one content line of BIG_LINE bytes, then the done line
  long-line   one token line, then a line of `line_size` bytes (set it past MAX_UPSTREAM_LINE)
  long-first  a line of `line_size` bytes before any other
  big-json    (embed) a whole JSON body of `line_size` bytes
  drip        a never-ending reply, one byte every `drip_delay` seconds (embed: a whole body that never ends)
  burst       BURST content lines and the done line in one chunk, sent with one write
  burst-error BURST content lines and an {"error": ...} line in one chunk, then the end of the body

Streamed replies use chunked encoding and `application/x-ndjson` like Ollama. Every connection is recorded, with
whether the gateway closed it (`wait_closed`).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

SECRET = "sk-faultsecret0123456789"
ADDRESS = "10.9.8.7:11434"
PAGE = ("<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title>\n"
        "<style>body { font-family: sans-serif }</style></head>\n<body><h1>Internal   Server Error</h1>\n"
        f"<p>proxy http://{ADDRESS}/api/chat failed; Authorization: Bearer {SECRET}; password=hunter2</p>\n"
        "<script>var token = 'abc';</script></body></html>\n")
BIG_LINE = 10 * 1000**2
BURST = 40
NDJSON = "application/x-ndjson"
VERSION = "0.12.10"
FAULTED = ("/api/chat", "/api/generate", "/api/embed")


class Connection:
    """One accepted connection: the path of its last request and whether the gateway has closed it."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.path = ""
        self.closed = threading.Event()


class FaultUpstream:
    def __init__(self):
        self.fault = "ok"
        self.line_size = 100 * 1024
        self.drip_delay = 0.01
        self.page = PAGE
        self.connections: list[Connection] = []
        self.served: list[Connection] = []  # the connection of each faulted request since the last reset
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> FaultUpstream:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        with self.lock:
            for conn in self.connections:
                _close(conn.sock)

    def reset(self, fault: str = "ok") -> None:
        """Choose the next fault and forget the requests so far."""
        with self.lock:
            self.fault = fault
            self.page = PAGE
            self.served = []
            self.connections = [c for c in self.connections if not c.closed.is_set()]

    def faulted(self) -> list[Connection]:
        with self.lock:
            return list(self.served)

    def wait_closed(self, timeout: float = 30.0) -> bool:
        """Whether every faulted connection was closed by the gateway within `timeout`."""
        deadline = time.monotonic() + timeout
        conns = self.faulted()
        return bool(conns) and all(c.closed.wait(max(0.0, deadline - time.monotonic())) for c in conns)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn = Connection(sock)
            with self.lock:
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            while not self.stopping.is_set():
                request = _read_request(conn.sock)
                if request is None:
                    break
                conn.path = request
                if not self._answer(conn, request):
                    break
        except OSError:
            pass
        finally:
            conn.closed.set()
            _close(conn.sock)

    def _answer(self, conn: Connection, path: str) -> bool:
        """Answer one request; False when the connection is done with."""
        sock = conn.sock
        if path == "/api/version":
            return _whole(sock, 200, "application/json", json.dumps({"version": VERSION}).encode())
        if path == "/api/tags":
            return _whole(sock, 200, "application/json", json.dumps({"models": []}).encode())
        if path not in FAULTED:
            return _whole(sock, 404, "text/plain", b"404 page not found")
        with self.lock:
            self.served.append(conn)
        fault = self.fault
        if fault == "stall":
            _wait_for_close(sock)
            return False
        if fault == "html500":
            return _whole(sock, 500, "text/html; charset=utf-8", self.page.encode())
        if path == "/api/embed" and fault == "drip":
            sock.sendall(b"HTTP/1.1 200 X\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
            while True:
                sock.sendall(b" ")
                time.sleep(self.drip_delay)
        if path == "/api/embed":
            size = self.line_size if fault == "big-json" else 0
            body = json.dumps({"model": "m", "embeddings": [[0.5]], "pad": "x" * size}).encode()
            return _whole(sock, 200, "application/json", body)
        _headers(sock, 200, NDJSON)
        if fault == "reset":
            _chunk(sock, _line(path, "Hello"))
            time.sleep(0.5)  # let the gateway read the line: a reset drops what it has not read yet
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if fault == "drip":
            while True:
                for byte in _line(path, "drip "):
                    sock.sendall(b"1\r\n" + bytes([byte]) + b"\r\n")
                    time.sleep(self.drip_delay)
        if fault == "big-line":
            line = _line(path, "x" * BIG_LINE)
            for start in range(0, len(line), 16 * 1024):
                _chunk(sock, line[start:start + 16 * 1024])
        elif fault in ("long-line", "long-first"):
            if fault == "long-line":
                _chunk(sock, _line(path, "Hello"))
            long = _line(path, "y" * self.line_size)
            for start in range(0, len(long), 16 * 1024):
                _chunk(sock, long[start:start + 16 * 1024])
        elif fault in ("burst", "burst-error"):
            lines = b"".join(_line(path, f"tok{i} ") for i in range(BURST))
            end = b'{"error":"the model ran out of memory"}\n' if fault == "burst-error" else _line(path, "", done=True)
            _chunk(sock, lines + end)
            sock.sendall(b"0\r\n\r\n")
            return True
        else:
            for piece in ("Hello", " there"):
                _chunk(sock, _line(path, piece))
        _chunk(sock, _line(path, "", done=True))
        sock.sendall(b"0\r\n\r\n")
        return True


def _line(path: str, text: str, *, done: bool = False) -> bytes:
    payload: dict = {"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z", "done": done}
    if path == "/api/generate":
        payload["response"] = text
    else:
        payload["message"] = {"role": "assistant", "content": text}
    if done:
        payload.update(done_reason="stop", prompt_eval_count=3, eval_count=2)
    return json.dumps(payload).encode() + b"\n"


def _read_request(sock: socket.socket) -> str | None:
    """The path of the next request (its body read and dropped), or None at the end of the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return None
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for header in lines[1:]:
        name, _, value = header.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        piece = sock.recv(65536)
        if not piece:
            return None
        rest += piece
    return lines[0].split(" ")[1]


def _headers(sock: socket.socket, status: int, kind: str) -> None:
    sock.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())


def _whole(sock: socket.socket, status: int, kind: str, body: bytes) -> bool:
    sock.sendall(f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                 + body)
    return True


def _chunk(sock: socket.socket, data: bytes) -> None:
    sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n")


def _wait_for_close(sock: socket.socket) -> None:
    while sock.recv(65536):
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def unaccepting_port() -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full, so that a further connect gets no answer (a connect timeout).

    Keep both returned objects alive for as long as the port must stay that way; close them after.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(3):  # the queue holds backlog + 1; further SYNs are dropped
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(listener.getsockname())
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.1)
    return listener, fillers
