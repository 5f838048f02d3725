"""Chat messages, their content parts and tool calls: the shapes OpenAI clients send, checked field by field."""

from __future__ import annotations

from marshmallow import INCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

from .fields import OneOfSchemas
from .fields import StringOrListOf
from .parsing import loads


class Open(Schema):
    """Fields the gateway does not read are kept as the client sent them (plugins and Ollama may read them)."""

    class Meta:
        unknown = INCLUDE

    error_messages = {"type": "must be an object"}


def _role(*roles: str) -> fields.String:
    return fields.String(required=True, validate=validate.OneOf(roles))


def _kind(kind: str) -> fields.String:
    return fields.String(required=True, validate=validate.Equal(kind))


class TextPart(Open):
    type = _kind("text")
    text = fields.String(required=True)


class RefusalPart(Open):
    type = _kind("refusal")
    refusal = fields.String(required=True)


class ImageUrl(Open):
    url = fields.String(required=True)
    detail = fields.String(allow_none=True)


class ImageUrlOrString(fields.Field):
    """`{"url": ...}`, or the URL alone."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if not isinstance(value, dict):
            raise ValidationError("must be an object with a 'url'")
        return ImageUrl().load(value)

    def json_schema(self, ref) -> dict:
        return {"anyOf": [{"type": "string"}, ref(ImageUrl)]}


class ImagePart(Open):
    type = _kind("image_url")
    image_url = ImageUrlOrString(required=True)


_TEXT_PARTS = {"text": TextPart(), "refusal": RefusalPart()}
_USER_PARTS = {"text": TextPart(), "image_url": ImagePart()}


def content(parts: dict, **kwargs) -> StringOrListOf:
    """A string, or a list of parts of the `parts` types."""
    part = OneOfSchemas("type", parts, problem="Unsupported content part type {kind!r}: use " + " or ".join(parts) + ".")
    return StringOrListOf(part, "must be a string or a list of content parts", **kwargs)


class ToolArguments(fields.Field):
    """A JSON object encoded as a string (as OpenAI sends it), the object itself, or nothing; kept as sent."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict) or (isinstance(value, str) and not value.strip()):
            return value
        try:
            parsed = loads(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise ValidationError("Tool call arguments must be a JSON object encoded as a string.")
        return value

    def json_schema(self, ref) -> dict:
        return {"anyOf": [{"type": "string", "contentMediaType": "application/json"}, {"type": "object"}]}


class CalledFunction(Open):
    name = fields.String(required=True)
    arguments = ToolArguments(allow_none=True)


class ToolCall(Open):
    id = fields.String(allow_none=True)
    type = fields.String(allow_none=True, validate=validate.Equal("function", error="must be 'function'"))
    function = fields.Nested(CalledFunction, required=True)


class SystemMessage(Open):
    role = _role("system", "developer")
    content = content(_TEXT_PARTS, required=True)
    name = fields.String(allow_none=True)


class UserMessage(Open):
    role = _role("user")
    content = content(_USER_PARTS, required=True)
    name = fields.String(allow_none=True)


class AssistantMessage(Open):
    role = _role("assistant")
    content = content(_TEXT_PARTS, allow_none=True)
    name = fields.String(allow_none=True)
    refusal = fields.String(allow_none=True)
    tool_calls = fields.List(fields.Nested(ToolCall), allow_none=True)


class ToolMessage(Open):
    role = _role("tool")
    content = content(_TEXT_PARTS, allow_none=True)
    tool_call_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class FunctionMessage(Open):
    role = _role("function")
    content = content(_TEXT_PARTS, allow_none=True)
    name = fields.String(allow_none=True)


ROLES = {"system": SystemMessage(), "developer": SystemMessage(), "user": UserMessage(),
         "assistant": AssistantMessage(), "tool": ToolMessage(), "function": FunctionMessage()}


def message_field(**kwargs) -> OneOfSchemas:
    """A message, by its role."""
    return OneOfSchemas("role", ROLES, problem="Invalid role {kind!r}: use system, developer, user, assistant or tool.",
                        **kwargs)
