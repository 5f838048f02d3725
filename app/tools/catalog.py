"""GatewayTools: what tools a chat request is offered (MCP servers' and plugins'), and who runs them."""

from __future__ import annotations

from ..mcp.naming import ToolFilter
from ..mcp.naming import base_name
from ..mcp.tools import ExposedSnapshot
from ..mcp.tools import ExposedTool
from ..mcp.tools import object_schema
from .toolset import NO_TOOLS
from .toolset import Toolset
from .toolset import select_tools


class GatewayTools:
    """One per app. Plugin tools are named `<plugin>__<tool>` and pass the same allow/deny globs as MCP tools;
    their OpenAI definitions are built once per change of the plugins (enabled, disabled)."""

    def __init__(self, mcp, plugins, settings, runner):
        self.mcp = mcp
        self.plugins = plugins
        self.runner = runner
        self.filter = ToolFilter(settings.allow_tools, settings.deny_tools)
        self._plugin_tools: tuple[object, ExposedSnapshot] | None = None

    def offer(self, req: dict) -> Toolset:
        """The gateway tools offered with this request (none when `tool_choice` is `none` or names a function)."""
        if req.get("tool_choice") == "none" or isinstance(req.get("tool_choice"), dict):
            return NO_TOOLS
        plugin_tools = self.plugin_tools() if self.plugins else None
        if self.mcp.pool is None and plugin_tools is None:
            return NO_TOOLS
        return select_tools(self.mcp.pool, req.get("mcp"), req.get("tools"), plugin_tools)

    def plugin_tools(self) -> ExposedSnapshot:
        table = self.plugins.table
        cached = self._plugin_tools
        if cached is not None and cached[0] is table:
            return cached[1]
        tools = []
        for plugin in self.plugins.plugins.values():
            if plugin.status != "ready":
                continue
            for tool in plugin.tools:
                name = base_name(plugin.name, tool.name)
                if self.filter.allows(plugin.name, tool.name, name):
                    tools.append(ExposedTool(name, plugin.name, tool.name, tool.description,
                                             object_schema(tool.parameters)))
        snapshot = ExposedSnapshot.of(sorted(tools, key=lambda t: t.exposed_name))
        self._plugin_tools = (table, snapshot)
        return snapshot
