"""The Responses API request body (`POST /v1/responses`): its own shapes, before it becomes a chat request."""

from __future__ import annotations

from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates_schema

from .chat import FunctionParameters
from .chat import ToolChoice
from .fields import Anything
from .fields import OneOfSchemas
from .fields import StrictBool
from .fields import StrictFloat
from .fields import StrictInt
from .fields import StringOrListOf
from .messages import Open
from .messages import ToolArguments

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


class InputText(Open):
    type = fields.String(required=True)
    text = fields.String(load_default="")


class InputImage(Open):
    type = fields.String(required=True)
    image_url = fields.String(required=True)
    detail = fields.String(allow_none=True)


_PARTS = {"input_text": InputText(), "output_text": InputText(), "text": InputText(), "input_image": InputImage()}
_PART = OneOfSchemas("type", _PARTS, problem="Content parts of type {kind!r} are not supported.")


class MessageItem(Open):
    type = fields.String()
    role = fields.String(required=True, validate=validate.OneOf(("user", "assistant", "system", "developer")))
    content = StringOrListOf(_PART, required=True)


class FunctionCallItem(Open):
    type = fields.String(required=True)
    id = fields.String(allow_none=True)
    call_id = fields.String(allow_none=True)
    name = fields.String(required=True)
    arguments = ToolArguments(allow_none=True)


class FunctionCallOutputItem(Open):
    type = fields.String(required=True)
    call_id = fields.String(required=True)
    output = Anything(required=True)


class ReasoningItem(Open):
    type = fields.String(required=True)


_ITEMS = {"message": MessageItem(), "function_call": FunctionCallItem(), "function_call_output": FunctionCallOutputItem(),
          "reasoning": ReasoningItem()}
_ITEM = OneOfSchemas("type", _ITEMS, default="message", problem="Input items of type {kind!r} are not supported.")


class TextFormat(Open):
    type = fields.String(required=True, validate=validate.OneOf(("text", "json_object", "json_schema"),
                                                                 error="use text, json_object or json_schema"))
    name = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    schema = fields.Dict(allow_none=True)
    strict = StrictBool(allow_none=True)

    @validates_schema
    def _schema_given(self, data, **kwargs):
        if data.get("type") == "json_schema" and data.get("schema") is None:
            raise ValidationError("must be a JSON Schema object", "schema")


class TextOptions(Open):
    format = fields.Nested(TextFormat, allow_none=True)
    verbosity = fields.String(allow_none=True)


class ResponsesReasoning(Open):
    effort = fields.String(allow_none=True, validate=validate.OneOf(EFFORTS, error="one of {choices}"))
    summary = fields.String(allow_none=True)


class ResponsesTool(Open):
    type = fields.String(required=True, validate=validate.Equal("function", error="Only function tools are supported."))
    name = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    description = fields.String(allow_none=True)
    parameters = fields.Nested(FunctionParameters, allow_none=True)
    strict = StrictBool(allow_none=True)


class ChosenResponsesTool(Open):
    type = fields.String(required=True, validate=validate.Equal("function", error="must be 'function'"))
    name = fields.String(required=True)


class ResponsesRequest(Schema):
    """OpenAI's `responses.create` body; unknown fields are ignored. The gateway's own extensions (`mcp`, `options`,
    `keep_alive`, `think`) are checked by the chat request they pass into."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    input = StringOrListOf(_ITEM, required=True)
    instructions = fields.String(allow_none=True)
    previous_response_id = fields.String(allow_none=True)
    store = StrictBool(allow_none=True)
    stream = StrictBool(allow_none=True)
    temperature = StrictFloat(allow_none=True, validate=validate.Range(0, 2))
    top_p = StrictFloat(allow_none=True, validate=validate.Range(0, 1))
    max_output_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    text = fields.Nested(TextOptions, allow_none=True)
    reasoning = fields.Nested(ResponsesReasoning, allow_none=True)
    tools = fields.List(fields.Nested(ResponsesTool), allow_none=True)
    tool_choice = ToolChoice(ChosenResponsesTool, allow_none=True)  # {"type": "function", "name": ...}
    parallel_tool_calls = StrictBool(allow_none=True)
    user = fields.String(allow_none=True)
    mcp = Anything(allow_none=True)
    options = Anything(allow_none=True)
    keep_alive = Anything(allow_none=True)
    think = Anything(allow_none=True)
