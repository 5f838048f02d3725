"""The gateway-run tools offered in one request: MCP servers' (after the body's `mcp` field) and plugins'."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from types import MappingProxyType

from ..errors import InvalidRequest

_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Toolset:
    """Exposed name → (MCP server, tool) or (plugin, tool); the tools' OpenAI definitions (shared: never change
    them); the client's own tool names (calls to those go back to the client)."""

    routes: Mapping[str, tuple[str, str]]
    openai_tools: Sequence[dict]
    client_names: frozenset[str] = frozenset()
    plugin_routes: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.routes) or bool(self.plugin_routes)

    def split(self, calls: list[dict]) -> tuple[list[dict], list[dict]]:
        """(calls the gateway runs, calls for the client): only the client's own tool names go back to it."""
        theirs = [c for c in calls if (c.get("function") or {}).get("name") in self.client_names]
        return [c for c in calls if c not in theirs], theirs


NO_TOOLS = Toolset(_EMPTY, ())


def select_tools(pool, option, client_tools: list[dict] | None, plugin_tools=None) -> Toolset:
    """MCP tools for this request after the body's `mcp` field (`false`, or `{"servers": [...]}`), then the
    plugins' tools (`plugin_tools`, an ExposedSnapshot); a client tool with the same name hides either.

    :raises InvalidRequest: for an unknown server name (the schema checked the field's shape).
    """
    servers = None
    if isinstance(option, dict):
        servers = option.get("servers")
        known = {state["name"] for state in pool.states()} if pool is not None else None
        unknown = [s for s in servers or [] if known is not None and s not in known]
        if unknown:
            raise InvalidRequest(f"Unknown MCP server {unknown[0]!r}.", param="mcp.servers")
    taken = frozenset(name for t in client_tools or [] if (name := (t.get("function") or {}).get("name")))
    mcp_tools = pool.exposed_snapshot() if pool is not None and option is not False else None
    if plugin_tools is None or not plugin_tools.tools:
        if mcp_tools is None:
            return NO_TOOLS
        if servers is None and not taken.intersection(mcp_tools.routes):
            return Toolset(mcp_tools.routes, mcp_tools.openai_tools, taken)  # the common case: nothing to copy
    routes, openai_tools = _kept(mcp_tools, taken, servers)
    plugin_routes, plugin_openai = _kept(plugin_tools, taken, None)
    return Toolset(routes, [*openai_tools, *plugin_openai], taken, plugin_routes)


def _kept(snapshot, taken: frozenset[str], servers: list[str] | None) -> tuple[dict, list[dict]]:
    if snapshot is None:
        return {}, []
    keep = [i for i, t in enumerate(snapshot.tools)
            if (servers is None or t.server in servers) and t.exposed_name not in taken]
    return ({snapshot.tools[i].exposed_name: (snapshot.tools[i].server, snapshot.tools[i].tool) for i in keep},
            [snapshot.openai_tools[i] for i in keep])
