"""Benchmark: how long /health and a chat take to answer while misbehaving clients hold connections.

    python tests/bench/client_faults.py [--server gunicorn|waitress|both] [--threads 8]

Scenarios: none; 100 connections that send nothing; 16 slowloris connections (headers at 1 byte/s); every
thread busy on a stream. For each it prints the median and worst time of 5 `/health` and 5 `/health/live` probes
(each on a new connection, 10 s client timeout), and of one small chat (a 503 when the worker is at MAX_CONCURRENT_REQUESTS). Everything is on 127.0.0.1 and bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
from tests.fake_ollama import FakeOllama  # noqa: E402
from tests.gateway import Gateway  # noqa: E402

PROBE_TIMEOUT = 10.0


def probe(url: str, path: str, *, chat: bool = False) -> tuple[float, int]:
    """Seconds to a full answer on a new connection, and its status; (PROBE_TIMEOUT, 0) when none came."""
    started = time.perf_counter()
    try:
        if chat:
            answer = requests.post(url + path, json={"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]},
                                   timeout=PROBE_TIMEOUT, headers={"Connection": "close"})
        else:
            answer = requests.get(url + path, timeout=PROBE_TIMEOUT, headers={"Connection": "close"})
    except requests.RequestException:
        return PROBE_TIMEOUT, 0
    return time.perf_counter() - started, answer.status_code


@contextlib.contextmanager
def silent_sockets(port: int, count: int = 100):
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        time.sleep(0.2)
        yield
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def slowloris(port: int, count: int = 16):
    """Each connection sends a request line, then one header byte a second until told to stop."""
    stop = threading.Event()

    def drip():
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            for byte in b"X-Padding: " + b"a" * 1000:
                if stop.wait(1.0):
                    return
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    return

    threads = [threading.Thread(target=drip, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)


@contextlib.contextmanager
def busy_streams(url: str, count: int):
    """`count` streamed chats that each take about 20 s, read slowly by their clients."""
    body = {"model": "llama3.2", "stream": True, "messages": [{"role": "user", "content": "[[slow 200 0.1]]"}]}
    responses = []

    def stream():
        try:
            with requests.post(url + "/v1/chat/completions", json=body, stream=True, timeout=60) as response:
                responses.append(response)
                for _ in response.iter_lines():
                    pass
        except (requests.RequestException, AttributeError):  # AttributeError: closed from the main thread
            pass

    threads = [threading.Thread(target=stream, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    try:
        yield
    finally:
        for response in list(responses):
            response.close()
        for thread in threads:
            thread.join(5)


def measure(url: str) -> dict[str, tuple[float, float]]:
    figures = {}
    for path in ("/health", "/health/live"):
        times = [probe(url, path)[0] for _ in range(5)]
        figures[path] = (statistics.median(times), max(times))
    figures["chat"] = probe(url, "/v1/chat/completions", chat=True)
    return figures


def run(server: str, threads: int, fake: FakeOllama) -> None:
    settings = {"OLLAMA_HOST": fake.url, "THREADS": threads, "RATE_LIMIT_RPS": "0", "CACHE_ENABLED": "false",
                "SHUTDOWN_TIMEOUT": "2s"}
    command = [sys.executable, "wsgi.py"] if server == "waitress" else None
    gateway = Gateway(settings, command=command).start()
    try:
        scenarios = {
            "no fault": contextlib.nullcontext(),
            "100 silent connections": silent_sockets(gateway.port),
            "16 slowloris connections": slowloris(gateway.port),
            f"{threads} streams busy": busy_streams(gateway.url, threads),
        }
        print(f"\n{server}, THREADS={threads}  (seconds: median / worst of 5; chat: one)")
        print(f"  {'scenario':28} {'/health':>15} {'/health/live':>15} {'chat (status)':>14}")
        for name, scenario in scenarios.items():
            with scenario:
                figures = measure(gateway.url)
            health, live, chat = figures["/health"], figures["/health/live"], figures["chat"]
            print(f"  {name:28} {health[0]:6.3f} / {health[1]:6.3f} {live[0]:6.3f} / {live[1]:6.3f} "
                  f"{chat[0]:8.3f} ({chat[1]})", flush=True)
    finally:
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("gunicorn", "waitress", "both"), default="both")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    fake = FakeOllama().start()
    try:
        for server in ("gunicorn", "waitress") if args.server == "both" else (args.server,):
            run(server, args.threads, fake)
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
