"""The chat completion request body: types and ranges of every field the gateway reads."""

from __future__ import annotations

from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates
from marshmallow import validates_schema

from .fields import Anything
from .fields import StrictBool
from .fields import StrictFloat
from .fields import StrictInt
from .fields import StringOrList
from .messages import Open
from .messages import message_field
from .options import Options

_OBJECT = fields.Dict
# What reasoning_effort (or reasoning.effort) may be; app.translate.request maps each to Ollama's think.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "max", "xhigh", "ultra")
_NO_SCHEMA = "must be a JSON Schema object"
_EFFORT = validate.OneOf(REASONING_EFFORTS, error="invalid reasoning value: {input!r}; use one of {choices}")


class StreamOptions(Open):
    include_usage = StrictBool(allow_none=True)
    include_obfuscation = StrictBool(allow_none=True)


class FunctionParameters(Open):
    """A JSON Schema; only the keys Ollama reads into its own types are checked."""

    type = fields.String(allow_none=True)
    properties = _OBJECT(allow_none=True)
    required = fields.List(fields.String(), allow_none=True)


class FunctionDefinition(Open):
    name = fields.String(required=True, validate=validate.Length(min=1, error="Each tool needs function.name."))
    description = fields.String(allow_none=True)
    parameters = fields.Nested(FunctionParameters, allow_none=True)
    strict = StrictBool(allow_none=True)


class ChatTool(Open):
    type = fields.String(required=True, validate=validate.Equal(
        "function", error="Unsupported tool type {input!r}: only 'function' tools are supported."))
    function = fields.Nested(FunctionDefinition, required=True)


class ChosenFunction(Open):
    name = fields.String(required=True)


class ChosenTool(Open):
    type = fields.String(required=True, validate=validate.Equal("function", error="must be 'function'"))
    function = fields.Nested(ChosenFunction, required=True)


class ToolChoice(fields.Field):
    """`none`, `auto`, `required`, or an object naming one function in the shape of `chosen` (chat's
    `{"type": "function", "function": {"name": ...}}` by default; the Responses API's differs)."""

    def __init__(self, chosen: type[Schema] = ChosenTool, **kwargs):
        super().__init__(**kwargs)
        self.chosen = chosen()

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            return self.chosen.load(value)
        if value not in ("none", "auto", "required"):
            raise ValidationError("must be 'none', 'auto', 'required' or a function")
        return value

    def json_schema(self, ref) -> dict:
        return {"anyOf": [{"enum": ["none", "auto", "required"]}, ref(type(self.chosen))]}


class JsonSchemaFormat(Open):
    name = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    schema = _OBJECT(required=True, error_messages={"required": _NO_SCHEMA, "invalid": _NO_SCHEMA})
    strict = StrictBool(allow_none=True)


class ResponseFormat(Open):
    type = fields.String(required=True, validate=validate.OneOf(
        ("text", "json_object", "json_schema"), error="Invalid response_format type {input!r}: use {choices}."))
    json_schema = fields.Nested(JsonSchemaFormat)

    @validates_schema
    def _schema_given(self, data, **kwargs):
        if data.get("type") == "json_schema" and data.get("json_schema") is None:
            raise ValidationError({"schema": [_NO_SCHEMA]}, "json_schema")


class Reasoning(Open):
    effort = fields.String(allow_none=True, validate=_EFFORT)


class McpServers(Open):
    servers = fields.List(fields.String(), allow_none=True)


class McpOption(fields.Field):
    """The gateway's `mcp` extension: true, false, or `{"servers": [...]}`."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return value
        if isinstance(value, dict):
            return McpServers().load(value)
        raise ValidationError('mcp must be true, false or an object such as {"servers": ["time"]}.')

    def json_schema(self, ref) -> dict:
        return {"anyOf": [{"type": "boolean"}, ref(McpServers)]}


class ChatCompletionRequest(Schema):
    """OpenAI's request; unknown fields are ignored as OpenAI clients add them freely."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    messages = fields.List(message_field(), required=True,
                           validate=validate.Length(min=1, error="must contain at least one message"))
    stream = StrictBool(load_default=False, allow_none=True)
    stream_options = fields.Nested(StreamOptions, allow_none=True)
    temperature = StrictFloat(allow_none=True, validate=validate.Range(0, 2))
    top_p = StrictFloat(allow_none=True, validate=validate.Range(0, 1))
    n = StrictInt(allow_none=True, validate=validate.Range(min=1))
    max_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    max_completion_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    stop = StringOrList(allow_none=True)
    seed = StrictInt(allow_none=True)
    frequency_penalty = StrictFloat(allow_none=True, validate=validate.Range(-2, 2))
    presence_penalty = StrictFloat(allow_none=True, validate=validate.Range(-2, 2))
    response_format = fields.Nested(ResponseFormat, allow_none=True)
    tools = fields.List(fields.Nested(ChatTool), allow_none=True)
    tool_choice = ToolChoice(allow_none=True)
    parallel_tool_calls = StrictBool(allow_none=True)
    reasoning_effort = fields.String(allow_none=True, validate=_EFFORT)
    reasoning = fields.Nested(Reasoning, allow_none=True)
    logprobs = StrictBool(allow_none=True)
    top_logprobs = StrictInt(allow_none=True, validate=validate.Range(0, 20))
    logit_bias = _OBJECT(keys=fields.String(), allow_none=True)
    modalities = fields.List(fields.String(), allow_none=True)
    audio = Anything(allow_none=True)
    functions = Anything(allow_none=True)
    function_call = Anything(allow_none=True)
    web_search_options = Anything(allow_none=True)
    user = fields.String(allow_none=True)
    # Ollama extensions, sent with the SDK's extra_body.
    top_k = StrictInt(allow_none=True, validate=validate.Range(min=0))
    min_p = StrictFloat(allow_none=True, validate=validate.Range(0, 1))
    repeat_penalty = StrictFloat(allow_none=True, validate=validate.Range(min=0))
    num_ctx = StrictInt(allow_none=True, validate=validate.Range(min=1))
    options = Options(allow_none=True)
    keep_alive = Anything(allow_none=True)
    think = Anything(allow_none=True)
    mcp = McpOption(allow_none=True)

    @validates("keep_alive")
    def _keep_alive(self, value, **kwargs):
        if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("must be a number of seconds or a duration such as 5m")

    @validates("think")
    def _think(self, value, **kwargs):
        if value is None or isinstance(value, bool) or value in ("low", "medium", "high", "max"):
            return
        raise ValidationError("must be true, false, 'low', 'medium', 'high' or 'max'")
