"""The hot paths' JSON: written as the json module writes it compactly, read strictly."""

import json

import pytest

from app.json_codec import dumps
from app.json_codec import loads


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True], "é": "snow ☃", "nested": {"x": ""}},
    {"content": "line\nbreak \"quoted\" \\ tab\t"},
    [],
    "plain",
])
def test_written_as_compact_json_reads_it_back(value):
    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert loads(dumps(value)) == value


def test_what_orjson_refuses_is_written_as_json_writes_it():
    assert dumps({"big": 2**70}) == b'{"big":1180591620717411303424}'
    assert dumps({1: "a"}) == b'{"1":"a"}'


def test_default_turns_unknown_types_into_text():
    class Thing:
        def __str__(self):
            return "thing"

    assert dumps({"x": Thing()}, default=str) == b'{"x":"thing"}'


@pytest.mark.parametrize("text", [b"NaN", b"[Infinity]", b"{", b"\xff"])
def test_what_is_not_json_is_a_value_error(text):
    with pytest.raises(ValueError):
        loads(text)
