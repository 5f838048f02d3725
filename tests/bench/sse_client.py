"""A load client for streamed chat completions: counts the SSE events of each stream and its time to first event.

Raw sockets and one thread per connection: each thread POSTs a streamed chat, reads to the end of the answer
(`Connection: close`, so the end is the close) and counts `data: ` events, again and again until the time is up.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from urllib.parse import urlsplit

BODY = b'{"model":"llama3.2","messages":[{"role":"user","content":"Hello"}],"stream":true}'
EVENT = b"data: "
READ_SIZE = 256 * 1024


def request_bytes(url: str, key: str | None) -> bytes:
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
            f"Content-Length: {len(BODY)}", "Connection: close"]
    if key:
        head.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + BODY


def one_stream(address: tuple[str, int], payload: bytes) -> tuple[int, float, float]:
    """(events, seconds to the first event, seconds in all) of one streamed answer."""
    started = time.perf_counter()
    first = 0.0
    events = 0
    tail = b""
    with socket.create_connection(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(payload)
        while data := sock.recv(READ_SIZE):
            # an event's `data: ` may straddle two reads: the boundary window holds only such straddlers
            found = data.count(EVENT) + (tail + data[:len(EVENT) - 1]).count(EVENT)
            if found and not first:
                first = time.perf_counter() - started
            events += found
            tail = (tail + data[-len(EVENT):])[-(len(EVENT) - 1):]
    return events, first, time.perf_counter() - started


def run(url: str, connections: int, duration: float, key: str | None = None, expect: int = 0) -> dict:
    """Streams for `duration` seconds on `connections` connections; per-stream and aggregate events/s, first-event
    p50 (ms). A stream with fewer than `expect` events fails the run."""
    parts = urlsplit(url)
    address = (parts.hostname, parts.port)
    payload = request_bytes(url, key)
    results: list[tuple[int, float, float]] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + duration

    def worker() -> None:
        while time.perf_counter() < deadline and not failures:
            try:
                result = one_stream(address, payload)
            except OSError as err:
                failures.append(f"{type(err).__name__}: {err}")
                return
            if result[0] < expect:
                failures.append(f"a stream had {result[0]} events, expected {expect}")
                return
            with lock:
                results.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    elapsed = time.perf_counter() - started
    if failures or not results:
        raise SystemExit(f"streaming against {url} failed: {failures[:1] or 'no stream finished'}")
    return {"stream_eps": statistics.median(events / seconds for events, _, seconds in results),
            "aggregate_eps": sum(events for events, _, _ in results) / elapsed,
            "ttfb_ms": statistics.median(first for _, first, _ in results) * 1000,
            "streams": len(results)}
