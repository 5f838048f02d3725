"""One server's connection, owned by a long-lived task in the pool's event loop, restarted on failure."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import anyio
import httpx2
from loguru import logger
from mcp import Client
from mcp import MCPError as SDKError
from mcp.client.subscriptions import SubscriptionLost
from mcp.client.subscriptions import ToolsListChanged
from mcp_types import CONNECTION_CLOSED
from mcp_types import REQUEST_TIMEOUT
from mcp_types import Implementation
from mcp_types import ToolListChangedNotification
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from .config import ServerConfig
from .describe import describe_error
from .errors import MCPError
from .errors import ServerUnavailable
from .errors import ToolCallFailed
from .errors import ToolNotFound
from .errors import ToolTimeout
from .transports import REQUEST_ID
from .transports import open_transport

MAX_PAGES = 100
# Transport-level failures that mean the connection is gone, whatever the request was.
_DEAD = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, httpx2.TransportError, OSError)
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # a connection that lived this long resets the backoff


class ServerSupervisor:
    """Keeps one MCP server connected: the owner task enters *and* exits the SDK ``Client``.

    Everything but ``snapshot()``, ``status`` and ``attempted`` runs in the pool's loop thread.
    Other tasks share ``client`` (the SDK multiplexes requests) through ``request()``, behind
    ``semaphore`` (``max_concurrency``). Statuses: starting → ready; a failed attempt → failed;
    a lost connection or restart() → restarting; stop() → stopped. ``on_change`` is called (in
    the loop thread) after the tool list was listed again and when the server becomes ready or
    stops being ready, so that the pool can rebuild what it exposes.
    """

    def __init__(self, cfg: ServerConfig, on_change: Callable[[], None]) -> None:
        self.cfg = cfg
        self.log = logger.bind(mcp_server=cfg.name)
        self._status = "starting" if cfg.enabled else "stopped"
        self.last_error: str | None = None
        self.pid: int | None = None
        self.protocol_version: str | None = None
        self.server_info: dict[str, Any] | None = None
        self.tools: tuple[Any, ...] = ()
        self.restarts = 0
        self.last_call_latency_ms: float | None = None
        self.client: Client | None = None
        self.attempted = threading.Event()  # set once the first attempt connected or failed
        self._on_change = on_change
        self._wake = asyncio.Event()
        self._refresh_wanted = asyncio.Event()
        self._refresh_lock = asyncio.Lock()
        self.semaphore = asyncio.Semaphore(cfg.max_concurrency)
        self._stopping = False
        self._restart_now = False
        self._failures = 0
        self._live = False  # True while the published client is believed to work
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> str:
        """starting, ready, failed, restarting or stopped."""
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        was_ready, self._status = self._status == "ready", value
        if was_ready != (value == "ready"):
            self._on_change()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart after stop) the owner task."""
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mcp-{self.cfg.name}")

    async def stop(self, timeout: float) -> None:
        """Disconnect (stdio children are shut down) and wait up to ``timeout`` for the owner task."""
        self._stopping = True
        self._wake.set()
        if self._task is not None and not self._task.done():
            done, _ = await asyncio.wait({self._task}, timeout=timeout)
            if not done:
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=2.0)
        self.status = "stopped"
        self.client = None

    def request_restart(self) -> None:
        """Reconnect now, without backoff."""
        self._restart_now = True
        if self._task is None or self._task.done():
            self.start()
        else:
            self._wake.set()

    def mark_dead(self, reason: str) -> None:
        """The live connection is gone: hide the client and let the owner reconnect (with backoff)."""
        if not self._live:
            return  # not connected yet (the attempt fails on its own) or already being torn down
        self._live = False
        self.log.warning("MCP server {} lost its connection: {}", self.cfg.name, reason)
        self.status, self.last_error, self.client = "restarting", reason, None
        self._wake.set()

    async def _run(self) -> None:
        first = True
        while not self._stopping:
            if not first:
                self.restarts += 1
                if self.status == "ready":
                    self.status = "restarting"
            first = False
            self._wake.clear()
            self._restart_now = False
            started = time.monotonic()
            try:
                await self._connect_once()
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and retried
                if not self._stopping:
                    self._record_failure(exc)
            finally:
                self.client = None
                self.pid = None
                self.attempted.set()
                if self.status == "ready" and not self._stopping:
                    self.status = "restarting"
            if self._stopping:
                break
            if time.monotonic() - started > STABLE_AFTER:
                self._failures = 0
            self._failures += 1
            delay = 0.0 if self._restart_now else min(BACKOFF_START * 2 ** (self._failures - 1), BACKOFF_MAX)
            self._wake.clear()
            if delay:
                self.log.info("MCP server {} reconnecting in {:.1f}s", self.cfg.name, delay)
                with anyio.move_on_after(delay):
                    await self._wake.wait()
        self.status = "stopped"

    def _record_failure(self, exc: BaseException) -> None:
        self.status = "failed"
        self.last_error = describe_error(exc)
        self.log.warning("MCP server {} failed: {}", self.cfg.name, self.last_error)

    async def _connect_once(self) -> None:
        """One connection, from spawn/connect to disconnect; bounded by ``timeout`` until ready.

        A stop or restart request while connecting abandons the attempt at once.
        """
        connected = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._own_session, connected)
            with anyio.move_on_after(self.cfg.timeout):
                async with anyio.create_task_group() as first:
                    for event in (connected, self._wake):
                        first.start_soon(_cancel_when_set, event, first.cancel_scope)
            if not connected.is_set():
                tg.cancel_scope.cancel()
        if not connected.is_set() and not self._wake.is_set():
            raise TimeoutError(f"no answer within {self.cfg.timeout:g}s")

    async def _own_session(self, connected: anyio.Event) -> None:
        client = Client(
            open_transport(self.cfg, self._on_spawn, self._on_exit, self._on_eof),
            mode=self.cfg.protocol,
            read_timeout_seconds=self.cfg.timeout,
            client_info=Implementation(name="llamagate", version=_version()),
            message_handler=self._on_message,
            logging_callback=self._on_log,
            cache=None,
        )
        async with client, anyio.create_task_group() as tg:
            try:
                self.protocol_version = client.protocol_version
                info = client.server_info
                self.server_info = info.model_dump(mode="json", exclude_none=True) if info else None
                # Subscribe before listing, so a change between the two is not missed.
                await tg.start(self._listen, client)
                await self._list_tools(client)
                tg.start_soon(self._refresh_on_request, client)
                self.client, self.status, self.last_error, self._live = client, "ready", None, True
                self.log.info(
                    "MCP server {} ready ({} tools, protocol {})", self.cfg.name, len(self.tools), self.protocol_version
                )
                connected.set()
                self.attempted.set()
                await self._wake.wait()
                tg.cancel_scope.cancel()
            finally:
                self.client, self._live = None, False

    def _on_spawn(self, pid: int) -> None:
        self.pid = pid
        self.log.debug("MCP server {} started as pid {}", self.cfg.name, pid)

    def _on_exit(self, returncode: int | None) -> None:
        self.pid = None
        self.mark_dead(f"process exited (code {returncode})" if returncode is not None else "process closed stdout")

    def _on_eof(self) -> None:
        self.mark_dead("the server closed the connection")

    # -- notifications and tool listing --------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            self._refresh_wanted.set()
        elif isinstance(message, Exception):
            self.log.debug("MCP server {} transport error: {}", self.cfg.name, describe_error(message))

    async def _on_log(self, params: Any) -> None:
        self.log.debug("MCP server {} sent a {} log message", self.cfg.name, params.level)

    async def _listen(self, client: Client, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """On 2026-era connections, turn ``subscriptions/listen`` tool events into refreshes.

        Reports started once subscribed (or once it is clear there is nothing to subscribe to).
        Handshake-era servers send ``notifications/tools/list_changed`` to ``_on_message`` instead.
        """
        caps = client.server_capabilities.tools
        if self.protocol_version not in MODERN_PROTOCOL_VERSIONS or caps is None or not caps.list_changed:
            task_status.started()
            return
        started = False
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                task_status.started()
                started = True
                async for event in subscription:
                    if isinstance(event, ToolsListChanged):
                        self._refresh_wanted.set()
        except SubscriptionLost as exc:
            # An abrupt end of the stream: over stateless HTTP this is how a dead server shows.
            self.mark_dead(describe_error(exc))
        except Exception as exc:  # noqa: BLE001 - no subscription is not fatal
            self.log.debug("MCP server {} offers no list_changed subscription: {}", self.cfg.name, describe_error(exc))
        finally:
            if not started:
                task_status.started()

    async def _refresh_on_request(self, client: Client) -> None:
        while True:
            await self._refresh_wanted.wait()
            self._refresh_wanted.clear()
            try:
                await self._list_tools(client)
                self.log.info("MCP server {} tool list changed ({} tools)", self.cfg.name, len(self.tools))
            except Exception as exc:  # noqa: BLE001
                self.log.warning("MCP server {} tool refresh failed: {}", self.cfg.name, describe_error(exc))

    async def _list_tools(self, client: Client) -> None:
        async with self._refresh_lock:
            if client.server_capabilities.tools is None:
                tools: list[Any] = []
            else:
                tools = await self.paginate(client.list_tools, "tools")
            self.tools = tuple(tools)
        self._on_change()

    async def refresh(self) -> None:
        """Re-list tools now (a caller's request: a dead connection raises ServerUnavailable)."""
        await self.request(self._list_tools(self.connected()))

    def connected(self) -> Client:
        """The live client, or ServerUnavailable."""
        client = self.client
        if client is None or self.status != "ready":
            detail = f": {self.last_error}" if self.last_error else ""
            raise ServerUnavailable(f"MCP server {self.cfg.name!r} is {self.status}{detail}", server=self.cfg.name)
        return client

    # -- requests on the live connection ----------------------------------------------------

    async def request(self, call: Awaitable[Any], request_id: str | None = None) -> Any:
        """Await one SDK request under ``semaphore``, with ``request_id`` sent as X-Request-ID.

        A closed or broken connection marks the server dead and raises ServerUnavailable; an invalid
        reply raises ToolCallFailed; other SDK errors pass through.
        """
        name = self.cfg.name
        token = REQUEST_ID.set(request_id)
        try:
            async with self.semaphore:
                return await call
        except SDKError as exc:
            if exc.code != CONNECTION_CLOSED:
                raise
            self.mark_dead("connection closed")
            detail = f" ({self.last_error})" if self.last_error else ""
            raise ServerUnavailable(f"MCP server {name!r} closed the connection{detail}", server=name) from exc
        except ValidationError as exc:
            raise ToolCallFailed(f"MCP server {name!r} sent an invalid reply", server=name) from exc
        except _DEAD as exc:
            self.mark_dead(describe_error(exc))
            raise ServerUnavailable(f"MCP server {name!r} is unreachable: {describe_error(exc)}", server=name) from exc
        finally:
            REQUEST_ID.reset(token)

    async def call_tool(self, tool: str, arguments: dict[str, Any], timeout: float, request_id: str | None) -> Any:
        """``tools/call`` on the ready server; returns the SDK ``CallToolResult``.

        :raises ServerUnavailable, ToolNotFound, ToolTimeout, ToolCallFailed:
        """
        name = self.cfg.name
        client = self.connected()
        if tool not in {t.name for t in self.tools}:
            await self.refresh()  # added since the last listing, and the change notice was missed
            if tool not in {t.name for t in self.tools}:
                raise ToolNotFound(f"MCP server {name!r} has no tool {tool!r}", server=name, tool=tool)
        started = time.monotonic()
        try:
            return await self.request(client.call_tool(tool, arguments, read_timeout_seconds=timeout), request_id)
        except SDKError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise ToolTimeout(f"tool {tool!r} timed out after {timeout:g}s", server=name, tool=tool) from exc
            raise ToolCallFailed(f"tool {tool!r} failed: {exc.message} (code {exc.code})", server=name, tool=tool) from exc
        except MCPError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. input-required rounds exhausted: still this call's failure
            raise ToolCallFailed(f"tool {tool!r} failed: {describe_error(exc)}", server=name, tool=tool) from exc
        finally:
            self.last_call_latency_ms = round((time.monotonic() - started) * 1000, 1)

    async def paginate(self, fetch: Callable[..., Awaitable[Any]], field: str) -> list[Any]:
        """Every item of a ``*/list`` method, following ``nextCursor`` (at most 100 pages, loop-safe)."""
        items: list[Any] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            page = await fetch(cursor=cursor)
            items.extend(getattr(page, field))
            cursor = page.next_cursor
            if not cursor:
                return items
            if cursor in seen:
                self.log.warning("MCP server {} repeated a {} cursor; stopping", self.cfg.name, field)
                return items
            seen.add(cursor)
        self.log.warning("MCP server {} sent over {} pages of {}; stopping", self.cfg.name, MAX_PAGES, field)
        return items

    async def list_all(self, capability: str, method: str, field: str) -> list[Any]:
        """All items of ``client.<method>`` on the ready server, or [] if it lacks the capability."""
        client = self.connected()
        if getattr(client.server_capabilities, capability) is None:
            return []
        return await self.request(self.paginate(getattr(client, method), field))

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the server's state; safe from any thread, no secrets."""
        out = self.cfg.public_dict()
        out.update(
            status=self.status,
            last_error=self.last_error,
            pid=self.pid,
            protocol_version=self.protocol_version,
            server_info=self.server_info,
            tool_count=len(self.tools),
            last_call_latency_ms=self.last_call_latency_ms,
            restarts=self.restarts,
        )
        return out


async def _cancel_when_set(event: anyio.Event | asyncio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("llamagate")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "dev"
