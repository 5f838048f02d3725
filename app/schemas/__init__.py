"""Request schemas and the helper that loads a JSON body through one of them."""

from __future__ import annotations

from flask import request
from marshmallow import Schema
from marshmallow import ValidationError

from ..errors import InvalidRequest
from .parsing import parse_json


def load_json(schema: Schema) -> dict:
    """Parse the current request's body as a JSON object and validate it (see `load_body`)."""
    return load_body(schema, request.get_data())


def load_body(schema: Schema, raw: bytes) -> dict:
    """Parse a request body as a JSON object and validate it.

    :raises InvalidRequest: for a body that is not JSON (see `parse_json`), not an object, or breaks the schema.
    """
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return validate_body(schema, body)


def validate_body(schema: Schema, body: dict) -> dict:
    """Validate a parsed body.

    :raises InvalidRequest: naming the first field that breaks the schema.
    """
    try:
        return schema.load(body)
    except ValidationError as err:
        param, message = first_error(err.messages)
        raise InvalidRequest(f"Invalid value for '{param}': {message}", param=param) from None


def first_error(messages, prefix: str = "") -> tuple[str, str]:
    """The dotted path and text of the first problem in marshmallow's nested error dict."""
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        if key == "_schema":  # the object itself (not an object at all, or a rule across its fields)
            path = prefix
        else:
            path = f"{prefix}[{key}]" if isinstance(key, int) else (f"{prefix}.{key}" if prefix else str(key))
        return first_error(value, path)
    if isinstance(messages, list) and messages:
        return first_error(messages[0], prefix) if not isinstance(messages[0], str) else (prefix, messages[0])
    return prefix, str(messages)
