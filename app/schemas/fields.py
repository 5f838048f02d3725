"""Strict JSON field types: OpenAI rejects `"0.5"` for a number and `true` for an integer, and so do we."""

from __future__ import annotations

from marshmallow import ValidationError
from marshmallow import fields


class StrictFloat(fields.Field):
    """A JSON number (int or float, never bool or text), returned as float."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        return float(value)


class StrictInt(fields.Field):
    """A JSON integer; `3.0` is accepted as 3, `3.5`, bools and text are not."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("must be an integer")
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
