"""Exposed tool names, collisions, allow/deny globs and the OpenAI tool form."""

from __future__ import annotations

import random

import pytest
from mcp_types import Tool

from app.mcp.naming import EXPOSED_NAME_RE
from app.mcp.naming import ToolFilter
from app.mcp.naming import assign_names
from app.mcp.naming import base_name
from app.mcp.naming import clean
from app.mcp.tools import Catalog
from app.mcp.tools import object_schema

PAIRS = [
    ("fs", "read_file"),
    ("fs", "read.file"),
    ("fs", "read-file"),
    ("fs", "read file"),
    ("a_", "b"),
    ("a", "_b"),
    ("git", "x" * 70),
    ("git", "x" * 70 + "y"),
    ("web", "fetch"),
    ("ünï", "çödé"),
]


def test_clean_and_base_name():
    assert clean("get.item/v2 ü") == "get_item_v2__"
    assert base_name("fs", "read.file") == "fs__read_file"
    long = base_name("server", "t" * 100)
    assert len(long) == 64 and EXPOSED_NAME_RE.match(long) and long.startswith("server__ttt")


def test_every_name_is_valid_unique_and_maps_back():
    names = assign_names(PAIRS)
    assert sorted(names.values()) == sorted(PAIRS)
    assert all(EXPOSED_NAME_RE.match(name) for name in names)
    assert list(names) == sorted(names)


def test_clean_names_are_kept_and_collisions_get_a_hash_suffix():
    names = {pair: name for name, pair in assign_names(PAIRS).items()}
    assert names[("fs", "read_file")] == "fs__read_file"
    assert names[("fs", "read-file")] == "fs__read-file"
    assert names[("web", "fetch")] == "web__fetch"
    assert names[("fs", "read.file")].startswith("fs__read_file_") and len(names[("fs", "read.file")]) == 22
    assert names[("fs", "read file")] != names[("fs", "read.file")]
    # "a_" + "b" and "a" + "_b" both spell a___b: one keeps it, the other is suffixed.
    assert {names[("a_", "b")], names[("a", "_b")]} & {"a___b"}
    assert names[("a_", "b")] != names[("a", "_b")]
    assert names[("git", "x" * 70)] != names[("git", "x" * 70 + "y")]


def test_names_do_not_depend_on_order():
    expected = assign_names(PAIRS)
    for seed in range(5):
        shuffled = PAIRS[:]
        random.Random(seed).shuffle(shuffled)
        assert assign_names(shuffled) == expected


def test_a_lone_dotted_name_is_only_cleaned():
    assert assign_names([("fs", "read.file")]) == {"fs__read_file": ("fs", "read.file")}


FILTER_CASES = [
    # allow, deny, (server, tool), allowed
    ((), (), ("fs", "read"), True),
    (("fs__*",), (), ("fs", "read"), True),
    (("fs__*",), (), ("web", "read"), False),
    (("fs.*",), (), ("fs", "read.file"), True),
    (("mcp.fs.*",), (), ("fs", "read"), True),
    (("*",), ("*delete*",), ("fs", "delete_file"), False),
    ((), ("fs.delete_file",), ("fs", "delete_file"), False),
    ((), ("fs__read_file_*",), ("fs", "read.file"), False),  # the exposed (suffixed) name
    (("FS__*",), (), ("fs", "read"), False),  # case-sensitive
]


@pytest.mark.parametrize(("allow", "deny", "pair", "allowed"), FILTER_CASES)
def test_filter(allow, deny, pair, allowed):
    exposed = {p: n for n, p in assign_names([pair, ("fs", "read_file")]).items()}[pair]
    assert ToolFilter(allow, deny).allows(*pair, exposed) is allowed


def tool(name, description=None, schema=None, title=None):
    return Tool(name=name, description=description, title=title, input_schema=schema or {"type": "object"})


def test_catalog_and_openai_form():
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    }
    catalog = Catalog.build(
        {
            "fs": [tool("read.file", "Read\u200b a file.\x07", schema), tool("list", title="Lister")],
            "web": [tool("fetch", "x" * 5000)],
        }
    )
    assert [t.exposed_name for t in catalog.tools] == ["fs__list", "fs__read_file", "web__fetch"]
    read = catalog.by_name["fs__read_file"]
    assert (read.server, read.tool, read.description) == ("fs", "read.file", "Read a file.")
    assert read.as_openai_tool() == {
        "type": "function",
        "function": {
            "name": "fs__read_file",
            "description": "Read a file.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
    assert catalog.by_name["fs__list"].description == "Lister"
    assert len(catalog.by_name["web__fetch"].description) == 2048
    assert catalog.by_origin[("fs", "read.file")] is read
    assert [t.exposed_name for t in catalog.allowed(ToolFilter(deny=("fs.list",)))] == ["fs__read_file", "web__fetch"]
    assert [t.exposed_name for t in catalog.allowed(ToolFilter(), {"web"})] == ["web__fetch"]
    # The OpenAI form is a copy: editing it leaves the catalog alone.
    read.as_openai_tool()["function"]["parameters"]["properties"].clear()
    assert read.input_schema["properties"]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({}, {"type": "object", "properties": {}}),
        ({"type": "object"}, {"type": "object", "properties": {}}),
        ({"properties": {"a": {}}}, {"type": "object", "properties": {"a": {}}}),
        ({"type": "string"}, {"type": "object", "properties": {}}),
        (None, {"type": "object", "properties": {}}),
    ],
)
def test_object_schema(schema, expected):
    assert object_schema(schema) == expected
