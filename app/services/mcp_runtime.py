"""The MCP side of one app: the pool (made when first needed, so the SDK loads only then), the `mcp://`
resources a chat request gets from it, and the one rule for servers added at runtime."""

from __future__ import annotations

import threading

from flask import Flask

from .. import lifecycle
from ..errors import Conflict
from ..errors import InvalidRequest
from ..errors import PermissionDenied
from ..mcp.errors import ServerExists
from ..mcp.errors import ServerNotFound
from .resources import inject_resources

# Total size of the mcp:// resources one request may attach, as a multiple of one resource's cap.
_RESOURCES_PER_REQUEST = 4


class MCPRuntime:
    """Owns the MCP pool of a worker; request threads share it."""

    def __init__(self, app: Flask, settings, *, reserved_names: frozenset[str] = frozenset()):
        self.app = app
        self.settings = settings
        self.reserved_names = reserved_names  # plugin names: tool names must not collide with theirs
        self._pool = None
        self._lock = threading.Lock()
        self.changes = None  # the MCPChangeFeed that shares runtime changes, when REDIS_URL is set
        if settings.enabled and settings.servers:
            self.ensure_pool()

    @property
    def pool(self):
        """The pool, or None while no server was ever configured or added."""
        return self._pool

    def ensure_pool(self):
        """The pool, made, registered for start/stop with the worker and started on first use."""
        if not self.settings.enabled:
            raise Conflict("MCP is disabled (MCP_ENABLED=false).", code="mcp_disabled")
        with self._lock:
            if self._pool is None:
                from ..mcp.pool import MCPPool

                pool = MCPPool(self.settings)
                self._pool = pool
                lifecycle.register(self.app, "mcp", start=pool.start, stop=pool.close)
            return self._pool

    def with_resources(self, req: dict) -> dict:
        """The request with the mcp:// resources its user messages name attached."""
        pool = self._pool
        if pool is None:
            return req
        cap = self.settings.max_tool_result_size
        messages = inject_resources(req["messages"], pool, max_bytes=cap, total_bytes=cap * _RESOURCES_PER_REQUEST)
        return req if messages is req["messages"] else {**req, "messages": messages}

    def share_changes(self, link) -> None:
        """Share runtime changes with every worker and instance through Redis (`link`), and apply theirs."""
        from .mcp_changes import MCPChangeFeed

        self.changes = MCPChangeFeed(link, self)
        lifecycle.register(self.app, "mcp-changes", start=self.changes.start, stop=self.changes.stop)

    def pool_knowing(self, name: str):
        """The worker's pool (None while there is none), caught up first with the changes shared through Redis when it
        does not know server `name`: a server added through another worker a moment ago is found here too."""
        pool = self._pool
        if self.changes is not None and (pool is None or name not in pool.names()):
            self.changes.sync()
            pool = self._pool
        return pool

    def add_server(self, entry: dict):
        """Add a server that arrived over the admin API: here, and through Redis in every worker. Returns its config.

        :raises InvalidRequest, PermissionDenied, Conflict: see `server_from_entry`; ServerExists for a name in use.
        """
        cfg = self.server_from_entry(entry)
        self.pool_knowing(cfg.name)  # caught up: a server just added through another worker is a name in use here too
        pool = self.ensure_pool()
        if cfg.name in pool.names():
            raise ServerExists(f"MCP server {cfg.name!r} already exists", server=cfg.name)
        if self.changes is not None:
            self.changes.publish(cfg.name, entry)
        pool.add_server(cfg)
        return cfg

    def remove_server(self, name: str) -> None:
        """Remove a server here and through Redis in every worker. :raises ServerNotFound:"""
        pool = self.pool_knowing(name)
        if pool is None or name not in pool.names():
            raise ServerNotFound(f"no MCP server named {name!r}", server=name)
        if self.changes is not None:
            self.changes.publish(name, None)
        pool.remove_server(name)

    def act(self, action: str, name: str) -> dict:
        """`restart` or `refresh` server `name` in this worker, and ask the others to do the same."""
        pool = self.pool_knowing(name)
        if pool is None:
            raise ServerNotFound(f"no MCP server named {name!r}", server=name)
        state = getattr(pool, action)(name)
        if self.changes is not None:
            self.changes.announce(action, name)
        return state

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
        if cfg.name in self.reserved_names:
            raise Conflict(f"A plugin is named {cfg.name!r}: an MCP server may not share its name (tool names would "
                           "clash).", param="name", code="mcp_server_exists")
        if cfg.transport == "stdio" and not self.settings.allow_runtime_stdio:
            raise PermissionDenied("stdio servers (a command to run) cannot be added at runtime unless "
                                   "MCP_ALLOW_RUNTIME_STDIO=true.", param="transport", code="runtime_stdio_disabled")
        return cfg
