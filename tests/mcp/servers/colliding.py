"""Test server whose tool names only differ in characters that cleaning replaces, or are too long."""

from __future__ import annotations

import os
import sys

from mcp.server import MCPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _serve import serve  # noqa: E402

mcp = MCPServer("colliding")
NAMES = ["get.item", "get_item", "get-item", "b", "_b", "x" * 70, "x" * 70 + "y"]


def _make(name: str):
    def tool() -> str:
        return f"I am {name}"

    return tool


for _name in NAMES:
    mcp.add_tool(_make(_name), name=_name, description=f"tool named {_name}")


if __name__ == "__main__":
    serve(mcp)
