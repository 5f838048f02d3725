"""Strict JSON field types: OpenAI rejects `"0.5"` for a number and `true` for an integer, and so do we.

A field whose JSON Schema apispec cannot infer says it with `json_schema(ref)` (`ref` gives a nested schema's $ref).
"""

from __future__ import annotations

import math

from marshmallow import INCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import missing

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class StrictFloat(fields.Field):
    """A finite JSON number (int or float, never bool or text), returned as float."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        try:
            number = float(value)
        except OverflowError:
            raise ValidationError("must be a finite number") from None
        if not math.isfinite(number):
            raise ValidationError("must be a finite number")
        return number


class StrictInt(fields.Field):
    """A JSON integer that fits in 64 signed bits (Ollama's); `3.0` is accepted as 3, `3.5`, bools and text are not."""

    def _deserialize(self, value, attr, data, **kwargs):
        return strict_int(value)


def strict_int(value) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("must be an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError(f"must be an integer between {INT64_MIN} and {INT64_MAX}")
    return value


class StrictBool(fields.Field):
    """A JSON boolean only."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise ValidationError("must be a boolean")
        return value


class Anything(fields.Field):
    """Any JSON value, checked later where the rules depend on other fields."""

    def _deserialize(self, value, attr, data, **kwargs):
        return value


class StringOrList(fields.Field):
    """A string or a list of strings (`stop`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        raise ValidationError("must be a string or a list of strings")

    def json_schema(self, ref) -> dict:
        return {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}


class OneOfSchemas(fields.Field):
    """An object loaded by the schema its `key` names (`role` of a message, `type` of a part); errors keep the
    object's own paths (`tool_calls[0].id`).

    `schemas` maps each accepted key value to a schema instance; `default` is the key when it is absent.
    """

    def __init__(self, key: str, schemas: dict, *, default: str | None = None, problem: str = "", **kwargs):
        super().__init__(**kwargs)
        self.key = key
        self.schemas = schemas
        self.default = default
        self.problem = problem or f"must be one of {', '.join(map(repr, schemas))}"

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("must be an object")
        kind = value.get(self.key, self.default)
        schema = self.schemas.get(kind) if isinstance(kind, str) else None
        if schema is None:
            raise ValidationError({self.key: [self.problem.format(kind=kind)]})
        loaded = quick_load(schema, value)
        return loaded if loaded is not None else schema.load(value)

    def json_schema(self, ref) -> dict:
        return {"anyOf": [ref(kind) for kind in dict.fromkeys(type(schema) for schema in self.schemas.values())]}


_PLANS: dict[type, tuple[dict, frozenset] | None] = {}


def quick_load(schema: Schema, value: dict) -> dict | None:
    """`schema.load(value)` for a valid object at a fraction of marshmallow's cost (a chat message, a tool call);
    None when the full load must decide (an error to report, a schema with hooks).

    Only for schemas that keep unknown fields (INCLUDE): fields are deserialized one by one, nested schemas the
    same way.
    """
    plan = _PLANS.get(type(schema), False)
    if plan is False:
        plan = _PLANS[type(schema)] = _plan(schema)
    if plan is None:
        return None
    declared, required = plan
    if not required <= value.keys():
        return None
    out = dict(value)
    try:
        for name, item in value.items():
            field = declared.get(name)
            if field is None or item is None:
                if item is None and field is not None and not field.allow_none:
                    return None
                continue
            if isinstance(field, fields.Nested):
                loaded = quick_load(field.schema, item) if isinstance(item, dict) else None
            elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
                loaded = _quick_list(field.inner.schema, item)
            else:
                loaded = field.deserialize(item)
            if loaded is None:
                return None
            out[name] = loaded
    except ValidationError:
        return None
    return out


def _quick_list(schema: Schema, items) -> list | None:
    if not isinstance(items, list):
        return None
    out = []
    for item in items:
        loaded = quick_load(schema, item) if isinstance(item, dict) else None
        if loaded is None:
            return None
        out.append(loaded)
    return out


def _plan(schema: Schema) -> tuple[dict, frozenset] | None:
    if schema.unknown != INCLUDE or any(schema._hooks.values()):
        return None
    declared = schema.fields
    for field in declared.values():
        if field.load_default is not missing:  # a value the full load would add
            return None
        nested = field.inner if isinstance(field, fields.List) else field
        if isinstance(field, (fields.Nested, fields.List)) and (field.validators or nested.validators):
            return None
        if isinstance(nested, fields.Nested) and _plan(nested.schema) is None:
            return None
    return dict(declared), frozenset(name for name, field in declared.items() if field.required)


class StringOrListOf(fields.Field):
    """A string, or a list whose items `item` loads (errors name the item's index: `content[2].type`)."""

    def __init__(self, item: fields.Field, problem: str = "must be a string or a list", **kwargs):
        super().__init__(**kwargs)
        self.item = item
        self.problem = problem

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError(self.problem)
        out, errors = [], {}
        for i, item in enumerate(value):
            try:
                out.append(self.item.deserialize(item))
            except ValidationError as err:
                errors[i] = err.messages
        if errors:
            raise ValidationError(errors)
        return out

    def json_schema(self, ref) -> dict:
        return {"anyOf": [{"type": "string"}, {"type": "array", "items": self.item.json_schema(ref)}]}
