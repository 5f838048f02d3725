"""Soak: 1,000 streams aborted by their clients leave the worker's threads, descriptors and memory flat, and every
one of their upstream requests closed."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .conftest import BASE_SETTINGS
from .fake_ollama import FakeOllama
from .gateway import Gateway

ABORTS = 1000
WARM_UP = 200
CLIENTS = 2
THREADS = 64
BODY = json.dumps({"model": "llama3.2", "stream": True,
                   "messages": [{"role": "user", "content": "[[slow 40 0.05]]"}]}).encode()
REQUEST = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


def worker_pid(gateway: Gateway) -> int:
    pid = gateway.process.pid
    (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(child)


def usage(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    return {"threads": len(list(Path(f"/proc/{pid}/task").iterdir())), "fds": len(list(Path(f"/proc/{pid}/fd").iterdir())),
            "rss_kb": rss_kb}


def abort_one(port: int) -> None:
    """Open a stream, read until its first event, and hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(REQUEST)
        received = b""
        while b"data: " not in received:
            chunk = sock.recv(4096)
            assert chunk, "the gateway closed before the first event"
            received += chunk
            assert len(received) < 12 or received.startswith(b"HTTP/1.1 200"), received[:300]


def abort_many(port: int, count: int) -> None:
    with ThreadPoolExecutor(CLIENTS) as pool:
        for done in pool.map(lambda _: abort_one(port), range(count)):
            assert done is None


def settle(fake: FakeOllama, expected: int, timeout: float = 60) -> None:
    """Wait until the fake has seen each stream end (aborted by the gateway, or finished)."""
    deadline = time.monotonic() + timeout
    while fake.aborted + fake.completed < expected:
        assert time.monotonic() < deadline, (fake.aborted, fake.completed, expected)
        time.sleep(0.1)


def test_a_thousand_aborted_streams_leave_the_worker_flat():
    fake = FakeOllama().start()
    # An aborted stream holds its thread until one of its next events finds the client gone (some 0.1 s), while
    # each client starts a new one every few milliseconds: a few dozen are open at a time.
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake.url, "THREADS": str(THREADS)}).start()
    try:
        pid = worker_pid(gateway)
        idle = usage(pid)
        abort_many(gateway.port, WARM_UP)  # the thread pool, connection pools and caches reach their working size
        settle(fake, WARM_UP)
        time.sleep(0.5)
        before = usage(pid)
        started = time.perf_counter()
        abort_many(gateway.port, ABORTS)
        settle(fake, WARM_UP + ABORTS)
        elapsed = time.perf_counter() - started
        time.sleep(0.5)
        after = usage(pid)
        print(f"\n{ABORTS} aborted streams in {elapsed:.1f} s; worker before {before}, after {after}; "
              f"idle {idle}; upstream aborted {fake.aborted}, finished {fake.completed}")
        assert fake.aborted == WARM_UP + ABORTS and fake.completed == 0, "each upstream reply was cut when its client left"
        assert after["threads"] <= idle["threads"] + THREADS, "request threads are the pool's, made once"
        assert after["fds"] <= before["fds"] + 4
        assert after["rss_kb"] <= before["rss_kb"] + 8 * 1024
        assert gateway.stop() == 0
    finally:
        gateway.stop()
        fake.stop()
