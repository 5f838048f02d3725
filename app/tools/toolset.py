"""The gateway-run tools offered in one request, chosen from the MCP catalog after the body's `mcp` field."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidRequest


@dataclass(frozen=True)
class Toolset:
    """Exposed tool name → (server, tool), the tools' OpenAI definitions (shared: never change them), and the
    client's own tool names (calls to those go back to the client)."""

    routes: Mapping[str, tuple[str, str]]
    openai_tools: Sequence[dict]
    client_names: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.routes)

    def split(self, calls: list[dict]) -> tuple[list[dict], list[dict]]:
        """(calls the gateway runs, calls for the client): only the client's own tool names go back to it."""
        theirs = [c for c in calls if (c.get("function") or {}).get("name") in self.client_names]
        return [c for c in calls if c not in theirs], theirs


NO_TOOLS = Toolset({}, ())


def select_tools(pool, option, client_tools: list[dict] | None) -> Toolset:
    """MCP tools for this request after the body's `mcp` field (`false`, or `{"servers": [...]}`).

    A client tool with the same name as an MCP tool hides it.
    :raises InvalidRequest: for a malformed `mcp` field or an unknown server name.
    """
    if option is False or pool is None:
        return NO_TOOLS
    servers = None
    if isinstance(option, dict):
        servers = option.get("servers")
        if servers is not None and (not isinstance(servers, list) or not all(isinstance(s, str) for s in servers)):
            raise InvalidRequest("mcp.servers must be a list of server names.", param="mcp.servers")
        known = {state["name"] for state in pool.states()}
        unknown = [s for s in servers or [] if s not in known]
        if unknown:
            raise InvalidRequest(f"Unknown MCP server {unknown[0]!r}.", param="mcp.servers")
    elif option not in (None, True):
        raise InvalidRequest("mcp must be true, false or an object such as {\"servers\": [\"time\"]}.", param="mcp")
    snapshot = pool.exposed_snapshot()
    taken = frozenset(name for t in client_tools or [] if (name := (t.get("function") or {}).get("name")))
    if servers is None and not taken.intersection(snapshot.routes):
        return Toolset(snapshot.routes, snapshot.openai_tools, taken)  # the common case: nothing to copy
    keep = [i for i, t in enumerate(snapshot.tools) if (servers is None or t.server in servers) and t.exposed_name not in taken]
    return Toolset({snapshot.tools[i].exposed_name: (snapshot.tools[i].server, snapshot.tools[i].tool) for i in keep},
                   [snapshot.openai_tools[i] for i in keep], taken)
