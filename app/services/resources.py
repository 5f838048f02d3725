"""`mcp://<server>/<uri>` references in user messages: read each resource once and attach its text."""

from __future__ import annotations

import re

from ..errors import InvalidRequest

_REFERENCE = re.compile(r"mcp://([A-Za-z0-9_.-]+)/(\S+)")
_TRAILING = ".,;:!?)]}>'\"`"


def find_references(messages: list[dict]) -> list[tuple[int, str, str, str]]:
    """`(message index, full reference, server, resource uri)` for every reference in a user message, in order."""
    found = []
    for i, message in enumerate(messages):
        if message.get("role") != "user":
            continue
        for text in _texts(message.get("content")):
            for match in _REFERENCE.finditer(text):
                uri = match.group(2).rstrip(_TRAILING)
                if uri:
                    found.append((i, f"mcp://{match.group(1)}/{uri}", match.group(1), uri))
    return found


def _texts(content) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)]
    return []


def inject_resources(messages: list[dict], pool, *, max_bytes: int, total_bytes: int) -> list[dict]:
    """A copy of `messages` with each referenced resource's text appended to the message that names it.

    :raises InvalidRequest: naming the reference when its server is unknown or the read fails.
    """
    from ..mcp import MCPError
    from ..mcp import ServerNotFound

    references = find_references(messages)
    if not references:
        return messages
    contents: dict[str, str] = {}
    used = 0
    for _, reference, server, uri in references:
        if reference in contents:
            continue
        try:
            text = pool.read_resource(server, uri, max_bytes)
        except ServerNotFound:
            raise InvalidRequest(f"Cannot read {reference}: there is no MCP server named {server!r}.",
                                 param="messages", code="mcp_resource_error") from None
        except MCPError as err:
            raise InvalidRequest(f"Cannot read {reference}: {err}", param="messages", code="mcp_resource_error") from None
        used += len(text.encode())
        if used > total_bytes:
            raise InvalidRequest(f"Cannot attach {reference}: the resources of this request exceed {total_bytes} bytes.",
                                 param="messages", code="mcp_resource_error")
        contents[reference] = text
    out = [dict(m) for m in messages]
    attached: dict[int, list[str]] = {}
    for index, reference, _, _ in references:
        if reference not in attached.setdefault(index, []):
            attached[index].append(reference)
    for index, refs in attached.items():
        blocks = "".join(f'\n\n<resource uri="{ref}">\n{contents[ref]}\n</resource>' for ref in refs)
        content = out[index].get("content")
        if isinstance(content, list):
            out[index]["content"] = [*content, {"type": "text", "text": blocks.lstrip("\n")}]
        else:
            out[index]["content"] = (content or "") + blocks
    return out
