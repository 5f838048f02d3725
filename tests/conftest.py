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
def client(gateway) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20)
