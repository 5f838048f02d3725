"""The MCP side of one app: settings, the pool (made when first needed, so the SDK loads only then), the loop."""

from __future__ import annotations

import threading

from flask import Flask

from ..errors import APIError
from .chat import ChatService
from .resources import inject_resources
from .tool_loop import ToolLoop
from .tool_loop import Toolset
from .tool_loop import select_tools

# Total size of the mcp:// resources one request may attach, as a multiple of one resource's cap.
_RESOURCES_PER_REQUEST = 4


class MCPRuntime:
    """Owns the MCP pool of a worker; request threads share it."""

    def __init__(self, app: Flask, settings, chat: ChatService, keep_alive_interval: float = 10.0):
        self.app = app
        self.keep_alive_interval = keep_alive_interval
        self.settings = settings
        self.chat = chat
        self._pool = None
        self._loop: ToolLoop | None = None
        self._lock = threading.Lock()
        if settings.enabled and settings.servers:
            self.ensure_pool()

    @property
    def pool(self):
        """The pool, or None while no server was ever configured or added."""
        return self._pool

    def ensure_pool(self):
        """The pool, made, registered for start/stop with the worker and started on first use."""
        if not self.settings.enabled:
            raise APIError("MCP is disabled (MCP_ENABLED=false).", status=409, type="invalid_request_error",
                           code="mcp_disabled")
        with self._lock:
            if self._pool is None:
                from .. import lifecycle
                from ..mcp.pool import MCPPool

                pool = MCPPool(self.settings)
                self._loop = ToolLoop(self.chat, pool, self.settings, self.keep_alive_interval)
                self._pool = pool
                lifecycle.register(self.app, "mcp", start=pool.start, stop=pool.close)
            return self._pool

    @property
    def tool_loop(self) -> ToolLoop | None:
        return self._loop

    def prepare(self, req: dict) -> tuple[dict, Toolset]:
        """Attach mcp:// resources to the messages and choose the MCP tools offered to the model."""
        pool = self._pool
        if pool is None:
            return req, Toolset({}, [])
        cap = self.settings.max_tool_result_size
        messages = inject_resources(req["messages"], pool, max_bytes=cap, total_bytes=cap * _RESOURCES_PER_REQUEST)
        if messages is not req["messages"]:
            req = {**req, "messages": messages}
        if req.get("tool_choice") == "none" or isinstance(req.get("tool_choice"), dict):
            return req, Toolset({}, [])
        return req, select_tools(pool, req.get("mcp"), req.get("tools"))
