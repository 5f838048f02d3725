"""Fixtures for the MCP client tests: real test servers (stdio, HTTP, SSE), pools, log capture."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from app.mcp import MCPPool
from app.settings.mcp import load_mcp_section

HERE = Path(__file__).parent
SERVERS = HERE / "servers"
EVERYTHING_BIN = HERE / "node" / "node_modules" / ".bin" / "mcp-server-everything"


def stdio_server(name: str, script: str, **extra: Any) -> dict[str, Any]:
    """A config entry that runs tests/mcp/servers/<script>.py over stdio."""
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(SERVERS / f"{script}.py")],
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """Whether a process exists (a zombie counts: its parent has not reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


class ServerProcess:
    """A test server on a free 127.0.0.1 port, run as a subprocess; ``url`` is set once it listens."""

    def __init__(self, script: str, transport: str, port: int | None = None) -> None:
        self.script, self.transport = script, transport
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        path = "/mcp" if transport == "http" else "/sse"
        self.url = f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        command = [sys.executable, str(SERVERS / f"{self.script}.py"), self.transport, str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.script} {self.transport} exited with {self.process.returncode}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.script} {self.transport} did not listen on {self.port}")

    def _answers(self) -> bool:
        """Whether an HTTP request to the MCP endpoint gets a response (any status)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            connection.request("GET", self.url, headers={"Accept": "text/event-stream"})
            return connection.getresponse().status > 0
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture(scope="session")
def http_servers() -> Iterator[dict[str, ServerProcess]]:
    """The basic server over Streamable HTTP and over legacy SSE, for the whole session."""
    servers = {"http": ServerProcess("basic", "http"), "sse": ServerProcess("basic", "sse")}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@contextmanager
def _pools() -> Iterator[Callable[..., MCPPool]]:
    pools: list[MCPPool] = []

    def make(servers: list[dict[str, Any]], wait: float = 20.0, **settings: Any) -> MCPPool:
        pool = MCPPool(load_mcp_section({**settings, "servers": servers}, {}, "test"))
        pools.append(pool)
        pool.start()
        assert pool.wait_ready(wait)
        return pool

    try:
        yield make
    finally:
        for pool in pools:
            pool.close()


@pytest.fixture()
def make_pool() -> Iterator[Callable[..., MCPPool]]:
    """Factory: ``make_pool(servers, **settings)`` builds, starts and waits for a pool; closed after the test."""
    with _pools() as make:
        yield make


@pytest.fixture(scope="module")
def module_pool() -> Iterator[Callable[..., MCPPool]]:
    """Like ``make_pool``, but the pools live for the whole test module."""
    with _pools() as make:
        yield make


@pytest.fixture()
def log_records() -> Iterator[list[dict[str, Any]]]:
    """Every loguru record emitted during the test (DEBUG and up)."""
    records: list[dict[str, Any]] = []
    handler = logger.add(lambda message: records.append(message.record), level="DEBUG", format="{message}")
    yield records
    logger.remove(handler)


@pytest.fixture(scope="session")
def everything_bin() -> str:
    """The installed @modelcontextprotocol/server-everything binary (tests skip without it)."""
    if shutil.which("node") is None or not EVERYTHING_BIN.exists():
        pytest.skip(
            "node or @modelcontextprotocol/server-everything not installed (npm install --prefix tests/mcp/node)"
        )
    return str(EVERYTHING_BIN)
