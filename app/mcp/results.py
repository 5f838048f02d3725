"""Turn MCP tool results and resource contents into one size-capped string for a model."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

EMPTY_RESULT = "(no output)"


def format_tool_result(result: Any, max_bytes: int) -> str:
    """Render a ``CallToolResult`` as text, at most ``max_bytes`` UTF-8 bytes.

    Text blocks are joined with "\\n"; images and audio become ``[image: image/png, 1234 bytes]``;
    embedded text resources are included under a ``[resource: uri]`` line, blobs and resource links
    are described. With no content, ``structuredContent`` is given as compact JSON; with nothing at
    all the text is ``(no output)``. ``isError`` results start with ``Error: ``.
    """
    parts = [_describe_block(block) for block in (result.content or [])]
    text = "\n".join(part for part in parts if part)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False, separators=(",", ":"), default=str)
    if result.is_error:
        text = "Error: " + (text or "the tool reported an error without details")
    return truncate_utf8(text or EMPTY_RESULT, max_bytes)


def format_resource_contents(contents: Iterable[Any], max_bytes: int) -> str:
    """Join the text of ``resources/read`` contents with "\\n"; blobs are described, not decoded."""
    parts = []
    for item in contents:
        text = getattr(item, "text", None)
        if text is not None:
            parts.append(text)
        else:
            parts.append(_describe_binary("blob", item.mime_type, getattr(item, "blob", ""), item.uri))
    return truncate_utf8("\n".join(parts), max_bytes)


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes, never inside a character.

    A cut text ends with ``\\n[truncated: N of M bytes]`` (N kept, M original), and the marker is
    counted in the limit whenever the limit leaves room for it.
    """
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    marker = f"\n[truncated: {max_bytes} of {len(data)} bytes]"
    keep = max_bytes - len(marker.encode())
    if keep <= 0:
        return _cut(data, max_bytes)
    kept = _cut(data, keep)
    return kept + f"\n[truncated: {len(kept.encode())} of {len(data)} bytes]"


def _cut(data: bytes, limit: int) -> str:
    end = max(limit, 0)
    while 0 < end < len(data) and data[end] & 0xC0 == 0x80:  # never split a multi-byte character
        end -= 1
    return data[:end].decode("utf-8", errors="ignore")


def _describe_block(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return block.text
    if kind in ("image", "audio"):
        return _describe_binary(kind, block.mime_type, block.data)
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return f"[resource: {resource.uri}]\n{text}"
        return _describe_binary("resource", resource.mime_type, getattr(resource, "blob", ""), resource.uri)
    if kind == "resource_link":
        details = ", ".join(str(x) for x in (block.name, block.mime_type) if x)
        return f"[resource link: {block.uri}" + (f" ({details})" if details else "") + "]"
    return f"[{kind or 'unknown'} content omitted]"


def _describe_binary(kind: str, mime: str | None, data: str, uri: Any = None) -> str:
    fields = [str(x) for x in (uri, mime or "application/octet-stream") if x]
    return f"[{kind}: {', '.join(fields)}, {_decoded_size(data)} bytes]"


def _decoded_size(data: str) -> int:
    """Size of base64 data once decoded, without decoding it."""
    text = "".join(data.split())
    return max(len(text) * 3 // 4 - text[-2:].count("="), 0)
