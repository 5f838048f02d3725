"""Test server that pages its tool, resource and prompt lists (3 items per page, opaque cursors)."""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

TOOLS = [f"tool_{i:02d}" for i in range(8)]
RESOURCES = [f"file:///doc{i}.txt" for i in range(5)]
PROMPTS = [f"prompt_{i}" for i in range(4)]
PAGE = 3


def _page(items: list[str], params: types.PaginatedRequestParams | None) -> tuple[list[str], str | None]:
    start = int(params.cursor[1:]) if params is not None and params.cursor else 0
    end = start + PAGE
    return items[start:end], (f"c{end}" if end < len(items) else None)


async def list_tools(ctx: object, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    names, cursor = _page(TOOLS, params)
    schema = {"type": "object", "properties": {}}
    return types.ListToolsResult(
        tools=[types.Tool(name=n, description=f"tool {n}", input_schema=schema) for n in names], next_cursor=cursor
    )


async def call_tool(ctx: object, params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=f"called {params.name}")])


async def list_resources(ctx: object, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
    uris, cursor = _page(RESOURCES, params)
    return types.ListResourcesResult(
        resources=[types.Resource(uri=u, name=u.rsplit("/", 1)[-1]) for u in uris], next_cursor=cursor
    )


async def list_prompts(ctx: object, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
    names, cursor = _page(PROMPTS, params)
    return types.ListPromptsResult(prompts=[types.Prompt(name=n) for n in names], next_cursor=cursor)


server = Server(
    "paged",
    on_list_tools=list_tools,
    on_call_tool=call_tool,
    on_list_resources=list_resources,
    on_list_prompts=list_prompts,
)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
