"""Value types handed to callers: exposed tools (with their OpenAI form), the exposed snapshot, tool-call results."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from types import MappingProxyType
from typing import Any

from .naming import ToolFilter
from .naming import assign_names

MAX_DESCRIPTION_CHARS = 2048
# Control characters (but tab and newline), zero-width and bidi controls: invisible text in a
# description can smuggle instructions past a human reviewer.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


@dataclass(frozen=True)
class ExposedTool:
    """One MCP tool as the model sees it; ``exposed_name`` routes back to ``(server, tool)``."""

    exposed_name: str
    server: str
    tool: str
    description: str
    input_schema: Mapping[str, Any] = field(repr=False)

    def as_openai_tool(self) -> dict[str, Any]:
        """``{"type": "function", "function": {name, description, parameters}}`` (a fresh copy)."""
        return {
            "type": "function",
            "function": {
                "name": self.exposed_name,
                "description": self.description,
                "parameters": copy.deepcopy(dict(self.input_schema)),
            },
        }


@dataclass(frozen=True)
class ExposedSnapshot:
    """The tools offered to the model at one moment: swapped whole by the pool, never changed in place.

    ``tools`` are sorted by exposed name; ``openai_tools[i]`` is ``tools[i].as_openai_tool()``,
    built once and shared by every request, so callers must treat those dicts as read-only (put
    them in a new list, never edit them); ``routes`` maps each exposed name to ``(server, tool)``.
    """

    tools: tuple[ExposedTool, ...] = ()
    openai_tools: tuple[dict[str, Any], ...] = ()
    routes: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, tools: Sequence[ExposedTool]) -> ExposedSnapshot:
        """The snapshot of these tools, with their OpenAI definitions built now."""
        return cls(
            tools=tuple(tools),
            openai_tools=tuple(tool.as_openai_tool() for tool in tools),
            routes=MappingProxyType({tool.exposed_name: (tool.server, tool.tool) for tool in tools}),
        )


@dataclass(frozen=True)
class ToolResult:
    """The outcome of a tool call: capped text for the model, whether the tool reported an error."""

    text: str
    is_error: bool
    duration_ms: float


def clean_description(tool: Any) -> str:
    """The tool's description (else title, else name) without invisible characters, capped."""
    text = tool.description or getattr(tool, "title", None) or tool.name
    text = _INVISIBLE.sub("", text).strip()
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 1] + "…"
    return text


def object_schema(schema: Any) -> dict[str, Any]:
    """A copy of an input schema that is a JSON object schema with ``properties``, minus ``$schema``."""
    out = copy.deepcopy(schema) if isinstance(schema, Mapping) else {}
    out = dict(out)
    out.pop("$schema", None)
    if out.get("type") != "object":
        out = {"type": "object", "properties": {}} if "properties" not in out else {**out, "type": "object"}
    out.setdefault("properties", {})
    return out


@dataclass(frozen=True)
class Catalog:
    """An immutable snapshot of every known tool: swapped whole, never changed in place."""

    tools: tuple[ExposedTool, ...] = ()
    by_name: Mapping[str, ExposedTool] = field(default_factory=dict)
    by_origin: Mapping[tuple[str, str], ExposedTool] = field(default_factory=dict)

    @classmethod
    def build(cls, server_tools: Mapping[str, Sequence[Any]]) -> Catalog:
        """Name every listed tool of every server (``Tool`` objects from ``tools/list``)."""
        originals = {(server, tool.name): tool for server, tools in server_tools.items() for tool in tools}
        exposed = []
        for name, (server, tool_name) in assign_names(originals).items():
            tool = originals[(server, tool_name)]
            exposed.append(
                ExposedTool(name, server, tool_name, clean_description(tool), object_schema(tool.input_schema))
            )
        return cls(
            tools=tuple(exposed),
            by_name={t.exposed_name: t for t in exposed},
            by_origin={(t.server, t.tool): t for t in exposed},
        )

    def allowed(self, tool_filter: ToolFilter, servers: set[str] | None = None) -> list[ExposedTool]:
        """Tools passing the filter (and on ``servers`` when given), sorted by exposed name."""
        return [
            t
            for t in self.tools
            if (servers is None or t.server in servers) and tool_filter.allows(t.server, t.tool, t.exposed_name)
        ]
