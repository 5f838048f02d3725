"""Chat messages, their content parts and tool calls: the shapes OpenAI clients send, checked field by field."""

from __future__ import annotations

from marshmallow import INCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

from .fields import OneOfSchemas
from .parsing import loads


class Open(Schema):
    """Fields the gateway does not read are kept as the client sent them (plugins and Ollama may read them)."""

    class Meta:
        unknown = INCLUDE

    error_messages = {"type": "must be an object"}


_TEXT = fields.String(required=True)


class TextPart(Open):
    type = fields.String(required=True)
    text = _TEXT


class RefusalPart(Open):
    type = fields.String(required=True)
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


class ImagePart(Open):
    type = fields.String(required=True)
    image_url = ImageUrlOrString(required=True)


_TEXT_PARTS = {"text": TextPart(), "refusal": RefusalPart()}
_USER_PARTS = {"text": TextPart(), "image_url": ImagePart()}


class Content(fields.Field):
    """A string, or a list of parts of the `parts` types."""

    def __init__(self, parts: dict, **kwargs):
        super().__init__(**kwargs)
        self.part = OneOfSchemas("type", parts, problem="Unsupported content part type {kind!r}: use "
                                 + " or ".join(parts) + ".")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError("must be a string or a list of content parts")
        out, errors = [], {}
        for j, part in enumerate(value):
            try:
                out.append(self.part.deserialize(part))
            except ValidationError as err:
                errors[j] = err.messages
        if errors:
            raise ValidationError(errors)
        return out


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


class CalledFunction(Open):
    name = fields.String(required=True)
    arguments = ToolArguments(allow_none=True)


class ToolCall(Open):
    id = fields.String(allow_none=True)
    type = fields.String(allow_none=True, validate=validate.Equal("function", error="must be 'function'"))
    function = fields.Nested(CalledFunction, required=True)


class SystemMessage(Open):
    role = fields.String(required=True)
    content = Content(_TEXT_PARTS, required=True)
    name = fields.String(allow_none=True)


class UserMessage(Open):
    role = fields.String(required=True)
    content = Content(_USER_PARTS, required=True)
    name = fields.String(allow_none=True)


class AssistantMessage(Open):
    role = fields.String(required=True)
    content = Content(_TEXT_PARTS, allow_none=True)
    name = fields.String(allow_none=True)
    refusal = fields.String(allow_none=True)
    tool_calls = fields.List(fields.Nested(ToolCall), allow_none=True)


class ToolMessage(Open):
    role = fields.String(required=True)
    content = Content(_TEXT_PARTS, allow_none=True)
    tool_call_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class FunctionMessage(Open):
    role = fields.String(required=True)
    content = Content(_TEXT_PARTS, allow_none=True)
    name = fields.String(allow_none=True)


ROLES = {"system": SystemMessage(), "developer": SystemMessage(), "user": UserMessage(),
         "assistant": AssistantMessage(), "tool": ToolMessage(), "function": FunctionMessage()}


def message_field(**kwargs) -> OneOfSchemas:
    return OneOfSchemas("role", ROLES, problem="Invalid role {kind!r}: use system, developer, user, assistant or tool.",
                        **kwargs)
