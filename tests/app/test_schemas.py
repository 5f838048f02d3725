"""Request schema internals: the quick load agrees with marshmallow's, the effort names agree with translation."""

from __future__ import annotations

import pytest

from app.schemas.chat import REASONING_EFFORTS
from app.schemas.fields import quick_load
from app.schemas.messages import ROLES
from app.schemas.responses import _ITEMS
from app.translate.request import _THINK_FROM_EFFORT

CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}


@pytest.mark.parametrize(("schemas", "kind", "value"), [
    (ROLES, "user", {"role": "user", "content": "hi", "name": "ann", "extra": [1]}),
    (ROLES, "user", {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}}]}),
    (ROLES, "system", {"role": "system", "content": [{"type": "text", "text": "a", "cache_control": {"type": "x"}}]}),
    (ROLES, "assistant", {"role": "assistant", "content": None, "tool_calls": [CALL, {**CALL, "id": None}]}),
    (ROLES, "assistant", {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}], "refusal": "no"}),
    (ROLES, "tool", {"role": "tool", "tool_call_id": "c1", "content": None}),
    (_ITEMS, "message", {"role": "user", "content": [{"type": "input_text", "text": "a"}]}),
    (_ITEMS, "function_call", {"type": "function_call", "call_id": "c", "name": "f", "arguments": {"a": 1}}),
    (_ITEMS, "function_call_output", {"type": "function_call_output", "call_id": "c", "output": {"ok": True}}),
])
def test_the_quick_load_gives_what_the_schema_gives(schemas, kind, value):
    assert quick_load(schemas[kind], value) == schemas[kind].load(value)


@pytest.mark.parametrize("value", [
    {"role": "user"}, {"role": "user", "content": None}, {"role": "user", "content": 3},
    {"role": "assistant", "tool_calls": [{"id": 1, "function": {"name": "f"}}]},
    {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]},
])
def test_the_quick_load_leaves_every_error_to_the_schema(value):
    assert quick_load(ROLES[value["role"]], value) is None


def test_a_schema_with_defaults_is_left_to_marshmallow():
    item = {"role": "user", "content": [{"type": "input_text"}]}
    assert quick_load(_ITEMS["message"], item)["content"] == [{"type": "input_text", "text": ""}]


def test_every_reasoning_effort_the_schema_accepts_has_a_think_value():
    assert set(REASONING_EFFORTS) == set(_THINK_FROM_EFFORT)
