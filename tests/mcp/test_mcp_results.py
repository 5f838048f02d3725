"""Tool results and resource contents as capped text for the model."""

from __future__ import annotations

import base64

import mcp_types as types
import pytest

from app.mcp.results import format_resource_contents
from app.mcp.results import format_tool_result
from app.mcp.results import truncate_utf8


def result(*content, structured=None, is_error=False):
    return types.CallToolResult(content=list(content), structured_content=structured, is_error=is_error)


def text(value):
    return types.TextContent(text=value)


def test_text_blocks_are_joined_with_newlines():
    assert format_tool_result(result(text("one"), text("two")), 1000) == "one\ntwo"


def test_other_blocks_are_described():
    png = base64.b64encode(b"\x89PNG" + b"\0" * 1230).decode()
    out = format_tool_result(
        result(
            text("look:"),
            types.ImageContent(data=png, mime_type="image/png"),
            types.AudioContent(data=base64.b64encode(b"abc").decode(), mime_type="audio/wav"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///a.txt", text="inside")),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(uri="file:///b.bin", blob="AAAA", mime_type="application/zip")
            ),
            types.ResourceLink(uri="file:///c.md", name="c", mime_type="text/markdown"),
        ),
        10_000,
    )
    assert out.split("\n") == [
        "look:",
        "[image: image/png, 1234 bytes]",
        "[audio: audio/wav, 3 bytes]",
        "[resource: file:///a.txt]",
        "inside",
        "[resource: file:///b.bin, application/zip, 3 bytes]",
        "[resource link: file:///c.md (c, text/markdown)]",
    ]


def test_structured_content_is_used_only_without_text():
    assert (
        format_tool_result(result(structured={"temp": 21.5, "city": "Zürich"}), 100) == '{"temp":21.5,"city":"Zürich"}'
    )
    assert format_tool_result(result(text("21.5 C"), structured={"temp": 21.5}), 100) == "21.5 C"


def test_errors_and_empty_results():
    assert format_tool_result(result(text("no such file"), is_error=True), 100) == "Error: no such file"
    assert format_tool_result(result(is_error=True), 100) == "Error: the tool reported an error without details"
    assert format_tool_result(result(), 100) == "(no output)"


def test_result_is_capped():
    out = format_tool_result(result(text("a" * 5000)), 100)
    assert len(out.encode()) <= 100 and out.endswith("a\n[truncated: 69 of 5000 bytes]")


@pytest.mark.parametrize("limit", range(0, 40))
@pytest.mark.parametrize("sample", ["é" * 30, "€" * 20, "😀" * 15, "a€😀é" * 6])
def test_truncation_never_splits_a_character(sample, limit):
    out = truncate_utf8(sample, limit)
    encoded = out.encode("utf-8")  # would raise on a lone surrogate
    assert len(encoded) <= max(limit, 0)
    kept = out.split("\n[truncated:")[0]
    assert sample.startswith(kept)


def test_truncation_marker_reports_kept_and_total_bytes():
    sample = "€" * 100  # 300 bytes
    out = truncate_utf8(sample, 100)
    kept, marker = out.split("\n")
    assert marker == f"[truncated: {len(kept.encode())} of 300 bytes]"
    assert len(out.encode()) <= 100 and len(kept.encode()) % 3 == 0
    assert truncate_utf8(sample, 300) == sample


def test_resource_contents():
    contents = [
        types.TextResourceContents(uri="file:///a", text="alpha"),
        types.BlobResourceContents(uri="file:///b", blob=base64.b64encode(b"12345").decode()),
        types.TextResourceContents(uri="file:///c", text="gamma"),
    ]
    assert (
        format_resource_contents(contents, 1000) == "alpha\n[blob: file:///b, application/octet-stream, 5 bytes]\ngamma"
    )
    assert len(format_resource_contents(contents, 20).encode()) <= 20
