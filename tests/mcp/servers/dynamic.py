"""Test server whose tool list changes at runtime and that announces it (tools/list_changed)."""

from __future__ import annotations

import os
import sys

from mcp.server import MCPServer
from mcp.server.mcpserver import Context

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _serve import serve  # noqa: E402

mcp = MCPServer("dynamic")


@mcp.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Register a new tool called `name` (it answers with its own name) and announce the change."""

    def added() -> str:
        return name

    mcp.add_tool(added, name=name, description=f"added at runtime: {name}")
    # 2026-07-28 clients hear about it on their subscriptions/listen stream, older ones by notification.
    await ctx.notify_tools_changed()
    if ctx.request_context.protocol_version != "2026-07-28":
        await ctx.request_context.session.send_tool_list_changed()
    return f"added {name}"


if __name__ == "__main__":
    serve(mcp)
