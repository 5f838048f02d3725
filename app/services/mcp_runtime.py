"""The MCP side of one app: the pool (made when first needed, so the SDK loads only then), its tool runner,
what a chat request gets from it (resources, tools), and the one rule for servers added at runtime."""

from __future__ import annotations

import threading

from flask import Flask

from .. import lifecycle
from ..errors import Conflict
from ..errors import InvalidRequest
from ..errors import PermissionDenied
from ..tools.toolset import NO_TOOLS
from ..tools.toolset import Toolset
from ..tools.toolset import select_tools
from .resources import inject_resources

# Total size of the mcp:// resources one request may attach, as a multiple of one resource's cap.
_RESOURCES_PER_REQUEST = 4


class MCPRuntime:
    """Owns the MCP pool and tool runner of a worker; request threads share them."""

    def __init__(self, app: Flask, settings, *, request_threads: int, keep_alive_interval: float = 10.0):
        self.app = app
        self.settings = settings
        self.request_threads = request_threads
        self.keep_alive_interval = keep_alive_interval
        self._pool = None
        self._runner = None
        self._lock = threading.Lock()
        if settings.enabled and settings.servers:
            self.ensure_pool()

    @property
    def pool(self):
        """The pool, or None while no server was ever configured or added."""
        return self._pool

    @property
    def runner(self):
        """The ToolRunner for the pool's tools, or None while there is no pool."""
        return self._runner

    def ensure_pool(self):
        """The pool, made, registered for start/stop with the worker and started on first use."""
        if not self.settings.enabled:
            raise Conflict("MCP is disabled (MCP_ENABLED=false).", code="mcp_disabled")
        with self._lock:
            if self._pool is None:
                from ..mcp.pool import MCPPool
                from ..tools.runner import ToolRunner

                pool = MCPPool(self.settings)
                self._runner = ToolRunner(pool, self.settings, tick=self.keep_alive_interval,
                                          max_workers=self.request_threads * self.settings.max_tool_calls_per_round)
                self._pool = pool
                lifecycle.register(self.app, "mcp", start=pool.start, stop=pool.close)
                lifecycle.register(self.app, "tool-runner", stop=self._runner.shutdown)
            return self._pool

    def prepare(self, req: dict) -> tuple[dict, Toolset]:
        """Attach mcp:// resources to the messages and choose the MCP tools offered to the model."""
        pool = self._pool
        if pool is None:
            return req, NO_TOOLS
        cap = self.settings.max_tool_result_size
        messages = inject_resources(req["messages"], pool, max_bytes=cap, total_bytes=cap * _RESOURCES_PER_REQUEST)
        if messages is not req["messages"]:
            req = {**req, "messages": messages}
        if req.get("tool_choice") == "none" or isinstance(req.get("tool_choice"), dict):
            return req, NO_TOOLS
        return req, select_tools(pool, req.get("mcp"), req.get("tools"))

    def server_from_entry(self, entry: dict):
        """A server entry that arrived over the admin API, checked like the file's (without ${VAR}).

        Stdio servers start a command, so they are allowed only with MCP_ALLOW_RUNTIME_STDIO=true.
        :raises InvalidRequest: naming the entry's key; :raises PermissionDenied: for a refused stdio server.
        """
        from ..settings import ConfigError
        from ..settings.mcp import parse_server_entry

        try:
            cfg = parse_server_entry(entry)
        except ConfigError as err:
            raise InvalidRequest(str(err), param=err.param, code="invalid_mcp_server") from None
        if cfg.transport == "stdio" and not self.settings.allow_runtime_stdio:
            raise PermissionDenied("stdio servers (a command to run) cannot be added at runtime unless "
                                   "MCP_ALLOW_RUNTIME_STDIO=true.", param="transport", code="runtime_stdio_disabled")
        return cfg
