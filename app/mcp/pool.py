"""MCPPool: the thread-safe, synchronous front of every MCP server connection in a worker process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import os
import threading
import time
from collections.abc import Coroutine
from collections.abc import Mapping
from typing import Any
from typing import TypeVar

from loguru import logger

from .config import MCPSettings
from .config import ServerConfig
from .content import ContentAPI
from .describe import describe_error
from .describe import log_tool_call
from .errors import MCPError
from .errors import ServerExists
from .errors import ServerNotFound
from .errors import ServerUnavailable
from .errors import ToolDenied
from .errors import ToolTimeout
from .loop_thread import LoopThread
from .naming import ToolFilter
from .results import format_tool_result
from .supervisor import ServerSupervisor
from .tools import Catalog
from .tools import ExposedSnapshot
from .tools import ExposedTool
from .tools import ToolResult

T = TypeVar("T")
BACKSTOP = 5.0  # extra seconds a request thread waits beyond the MCP-level timeout


class MCPPool(ContentAPI):
    """Connections to all configured MCP servers, shared by every request thread of one process.

    One asyncio loop runs in a daemon thread; each server has an owner task that connects,
    lists its tools, and reconnects with backoff (0.5 s doubling to 30 s) when the server fails or
    dies. Request threads call the methods below, which run coroutines on that loop and wait with
    a bounded timeout. Calls to one server run concurrently (up to its ``max_concurrency``).

    Call ``start()`` in each worker after the fork, ``close()`` at shutdown (``settings.enabled``
    is for the caller to check: the pool connects whatever it is given). Runtime errors are
    ``app.mcp.errors.MCPError`` subclasses; listings are plain JSON-able dicts. While a server is
    down its tools are left out of ``exposed_snapshot()`` but still ``resolve()``, so a late call
    gets ``ServerUnavailable`` rather than an unknown-tool error.

    The catalog and the exposed snapshot are immutable objects, rebuilt (one rebuild at a time)
    whenever a server's tool list changes, a server becomes ready or stops being ready, or a
    server is removed, and swapped whole: request threads read them without waiting.
    """

    def __init__(self, settings: MCPSettings) -> None:
        self.settings = settings
        self.tool_filter = ToolFilter(settings.allow_tools, settings.deny_tools)
        self._lock = threading.Lock()
        self._configs: dict[str, ServerConfig] = {cfg.name: cfg for cfg in settings.servers}
        self._servers = self._new_supervisors()
        self._catalog = Catalog()
        self._exposed = ExposedSnapshot()
        self._rebuild_lock = threading.Lock()
        self._runner: LoopThread | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and connect every enabled server (idempotent, non-blocking)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("MCPPool is closed")
            if self._runner is not None and self._runner.pid == os.getpid():
                return
            if self._runner is not None:
                # A pool copied by fork() after start() has no thread: start from the configs again.
                self._servers, self._catalog, self._exposed = self._new_supervisors(), Catalog(), ExposedSnapshot()
                self._rebuild_lock = threading.Lock()  # a rebuild may have held it at the fork
            self._runner = LoopThread("mcp-pool")
        self._run(self._start_all(), 10.0)

    def _new_supervisors(self) -> dict[str, ServerSupervisor]:
        return {name: ServerSupervisor(cfg, self._rebuild_catalog) for name, cfg in self._configs.items()}

    async def _start_all(self) -> None:
        for server in self._supervisors():
            if server.cfg.enabled:
                server.start()

    def close(self, timeout: float = 10.0) -> None:
        """Disconnect everything (stdio children are stopped) and end the loop thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            runner, servers = self._runner, list(self._servers.values())
        if runner is None or runner.pid != os.getpid():
            return
        try:
            runner.run(_stop_all(servers, timeout), timeout + BACKSTOP)
        except Exception as exc:  # noqa: BLE001 - shutting down regardless
            logger.warning("MCP pool did not close cleanly: {}", describe_error(exc))
        runner.stop(BACKSTOP)

    def wait_ready(self, timeout: float, names: list[str] | None = None) -> bool:
        """Wait until each enabled server (or each of ``names``) has connected or failed once.

        Returns whether all of them got that far within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        for server in self._supervisors():
            if (names is None and not server.cfg.enabled) or (names is not None and server.cfg.name not in names):
                continue
            if not server.attempted.wait(max(deadline - time.monotonic(), 0)):
                return False
        return True

    # -- state and tools -------------------------------------------------------------------

    def states(self) -> list[dict[str, Any]]:
        """The state of every server, in configuration order (see ``state``)."""
        return [server.snapshot() for server in self._supervisors()]

    def state(self, name: str) -> dict[str, Any]:
        """One server's state: ``status`` (starting|ready|failed|restarting|stopped), ``last_error``,
        ``pid`` (stdio), ``protocol_version``, ``tool_count``, ``last_call_latency_ms``,
        ``restarts``, ``transport``, and ``url`` or ``command`` without credentials.

        :raises ServerNotFound:
        """
        return self._get(name).snapshot()

    def exposed_snapshot(self) -> ExposedSnapshot:
        """The allowed tools of the ready servers, with their OpenAI definitions and routes (see ExposedSnapshot).

        Built when the tools or the ready servers change, not per call: the OpenAI dicts are shared
        by every caller and must never be changed (copy one to edit it).
        """
        return self._exposed

    def exposed_tools(self) -> list[ExposedTool]:
        """Allowed tools of the servers that are ready, sorted by exposed name."""
        return list(self._exposed.tools)

    def openai_tools(self) -> list[dict[str, Any]]:
        """``exposed_tools()`` in the OpenAI ``tools`` format, as fresh copies the caller may change."""
        return copy.deepcopy(list(self._exposed.openai_tools))

    def resolve(self, exposed_name: str) -> tuple[str, str] | None:
        """The ``(server, original tool name)`` behind an exposed name, allowed or not."""
        tool = self._catalog.by_name.get(exposed_name)
        return (tool.server, tool.tool) if tool else None

    def list_tools(self, server: str) -> list[dict[str, Any]]:
        """Every tool the server listed, with ``exposed_name`` and whether the filters ``allowed`` it."""
        self._get(server)
        return [
            {
                "name": tool.tool,
                "exposed_name": tool.exposed_name,
                "description": tool.description,
                "input_schema": dict(tool.input_schema),
                "allowed": self.tool_filter.allows(tool.server, tool.tool, tool.exposed_name),
            }
            for tool in self._catalog.tools
            if tool.server == server
        ]

    def _rebuild_catalog(self) -> None:
        """Rebuild the catalog and the exposed snapshot from the servers' current tools and statuses.

        Rebuilds run one at a time and each reads the state after taking the lock, so the last one
        published reflects the latest change.
        """
        with self._rebuild_lock:
            servers = self._supervisors()
            catalog = Catalog.build({s.cfg.name: s.tools for s in servers})
            ready = {s.cfg.name for s in servers if s.status == "ready"}
            exposed = ExposedSnapshot.of(catalog.allowed(self.tool_filter, ready))
            with self._lock:
                self._catalog, self._exposed = catalog, exposed

    # -- calls -----------------------------------------------------------------------------

    def call_tool(
        self,
        server: str,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> ToolResult:
        """Run a tool; its text is formatted and capped at ``max_tool_result_size`` bytes.

        A tool that reports failure returns ``is_error=True`` (text starts with ``Error: ``).

        :raises ServerNotFound, ToolDenied, ToolNotFound, ServerUnavailable, ToolTimeout, ToolCallFailed:
        """
        supervisor = self._get(server)
        exposed = self._catalog.by_origin.get((server, tool))
        if not self.tool_filter.allows(server, tool, exposed.exposed_name if exposed else None):
            raise ToolDenied(f"tool {tool!r} of MCP server {server!r} is not allowed", server=server, tool=tool)
        limit = timeout if timeout is not None else self.settings.default_tool_timeout
        log = logger.bind(mcp_server=server, request_id=request_id)
        started = time.monotonic()
        try:
            call = supervisor.call_tool(tool, dict(arguments or {}), limit, request_id)
            result = self._run(call, limit + BACKSTOP)
        except concurrent.futures.TimeoutError:
            error: MCPError = ToolTimeout(f"tool {tool!r} timed out after {limit:g}s", server=server, tool=tool)
            log_tool_call(log, server, tool, started, type(error).__name__, request_id)
            raise error from None
        except MCPError as exc:
            log_tool_call(log, server, tool, started, type(exc).__name__, request_id)
            raise
        text = format_tool_result(result, self.settings.max_tool_result_size)
        duration = log_tool_call(log, server, tool, started, "error" if result.is_error else "ok", request_id)
        return ToolResult(text=text, is_error=bool(result.is_error), duration_ms=duration)

    # -- runtime management ----------------------------------------------------------------

    def add_server(self, cfg: ServerConfig) -> dict[str, Any]:
        """Add and connect a server, already validated (whether it may be added is the caller's rule).

        Returns its state right away; use ``wait_ready(timeout, [name])`` to wait for it.

        :raises ServerExists:
        """
        server = ServerSupervisor(cfg, self._rebuild_catalog)
        with self._lock:
            if cfg.name in self._configs:
                raise ServerExists(f"MCP server {cfg.name!r} already exists", server=cfg.name)
            self._configs[cfg.name] = cfg
            self._servers = {**self._servers, cfg.name: server}
            running = self._runner is not None and not self._closed
        if running and cfg.enabled:
            self._run(_start(server), 5.0)
        return server.snapshot()

    def names(self) -> frozenset[str]:
        """The servers configured or added, running or not."""
        with self._lock:
            return frozenset(self._configs)

    def remove_server(self, name: str) -> None:
        """Disconnect and forget a server.

        :raises ServerNotFound:
        """
        server = self._get(name)
        with self._lock:
            self._configs.pop(name, None)
            self._servers = {k: v for k, v in self._servers.items() if k != name}
            running = self._runner is not None and not self._closed
        if running:
            self._run(server.stop(10.0), 10.0 + BACKSTOP)
        self._rebuild_catalog()

    def restart(self, name: str) -> dict[str, Any]:
        """Reconnect a server now (a disabled or stopped one is started). Returns its state."""
        server = self._get(name)
        self._run(_restart(server), 5.0)
        return server.snapshot()

    def refresh(self, name: str) -> dict[str, Any]:
        """Re-list a server's tools now. Returns its state.

        :raises ServerNotFound, ServerUnavailable:
        """
        server = self._get(name)
        self._run(server.refresh(), server.cfg.timeout + BACKSTOP)
        return server.snapshot()

    # -- plumbing --------------------------------------------------------------------------

    def _supervisors(self) -> list[ServerSupervisor]:
        with self._lock:
            return list(self._servers.values())

    def _get(self, name: str) -> ServerSupervisor:
        with self._lock:
            server = self._servers.get(name)
        if server is None:
            raise ServerNotFound(f"no MCP server named {name!r}", server=name)
        return server

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        runner = self._runner
        if runner is None or self._closed or runner.pid != os.getpid():
            coro.close()
            raise ServerUnavailable("the MCP pool is not running (start() not called, or closed)")
        return runner.run(coro, timeout)


async def _start(server: ServerSupervisor) -> None:
    server.start()


async def _restart(server: ServerSupervisor) -> None:
    server.request_restart()


async def _stop_all(servers: list[ServerSupervisor], timeout: float) -> None:
    await asyncio.gather(*(server.stop(timeout) for server in servers), return_exceptions=True)
