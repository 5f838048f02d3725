"""Shared fixtures: the fake Ollama, gateways under real gunicorn, OpenAI SDK clients."""

from __future__ import annotations

import pytest
from openai import OpenAI

from tests.fake_ollama import FakeOllama
from tests.gateway import RUNNING
from tests.gateway import Gateway

# The default gateway: no auth, no rate limit, no cache, so tests see every upstream request.
BASE_SETTINGS = {"RATE_LIMIT_RPS": "0", "CACHE_ENABLED": "false", "THREADS": "8", "SHUTDOWN_TIMEOUT": "10s"}


@pytest.fixture(scope="session", autouse=True)
def _no_gateway_outlives_the_session():
    """Whatever a failing test left running is stopped (SIGKILL after 30 s) when the session ends."""
    yield
    for gateway in RUNNING:
        gateway.stop()


@pytest.fixture(scope="session")
def fake_ollama():
    server = FakeOllama().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def start_gateway(fake_ollama):
    """Factory: start a gateway in front of the fake Ollama with extra settings (stopped when the session ends)."""

    def start(**settings) -> Gateway:
        return Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url, **settings}).start()

    return start


@pytest.fixture(scope="session")
def gateway(start_gateway) -> Gateway:
    return start_gateway()


@pytest.fixture()
def client(gateway):
    with OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20) as sdk:
        yield sdk


@pytest.fixture()
def redis_server():
    """A real redis-server on a free loopback port (stopped at the end); `.stop()` takes it down mid-test."""
    import shutil
    import socket
    import subprocess
    import time

    from tests.gateway import free_port

    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (apt-get install redis-server)")

    class RedisServer:
        def __init__(self):
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}"
            self.start()

        def start(self):
            """Start (again, after `stop()`) on the same port."""
            self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                             "--save", "", "--appendonly", "no"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return
                except OSError:
                    time.sleep(0.05)
            raise RuntimeError("redis-server did not start")

        def stop(self):
            if self.process.poll() is None:
                self.process.terminate()
                self.process.wait(10)

    server = RedisServer()
    yield server
    server.stop()
