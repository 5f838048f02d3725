"""The chat completion request body: types and ranges of every field the gateway reads."""

from __future__ import annotations

from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates

from .fields import Anything
from .fields import StrictBool
from .fields import StrictFloat
from .fields import StrictInt
from .fields import StringOrList

_OBJECT = fields.Dict


class ChatCompletionRequest(Schema):
    """OpenAI's request; unknown fields are ignored as OpenAI clients add them freely."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    messages = fields.List(_OBJECT(), required=True, validate=validate.Length(min=1, error="must contain at least one message"))
    stream = StrictBool(load_default=False, allow_none=True)
    stream_options = _OBJECT(allow_none=True)
    temperature = StrictFloat(allow_none=True, validate=validate.Range(0, 2))
    top_p = StrictFloat(allow_none=True, validate=validate.Range(0, 1))
    n = StrictInt(allow_none=True, validate=validate.Range(min=1))
    max_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    max_completion_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    stop = StringOrList(allow_none=True)
    seed = StrictInt(allow_none=True)
    frequency_penalty = StrictFloat(allow_none=True, validate=validate.Range(-2, 2))
    presence_penalty = StrictFloat(allow_none=True, validate=validate.Range(-2, 2))
    response_format = _OBJECT(allow_none=True)
    tools = fields.List(_OBJECT(), allow_none=True)
    tool_choice = Anything(allow_none=True)
    parallel_tool_calls = StrictBool(allow_none=True)
    reasoning_effort = fields.String(allow_none=True)
    reasoning = _OBJECT(allow_none=True)
    logprobs = StrictBool(allow_none=True)
    top_logprobs = StrictInt(allow_none=True, validate=validate.Range(0, 20))
    logit_bias = _OBJECT(allow_none=True)
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
    options = _OBJECT(allow_none=True)
    keep_alive = Anything(allow_none=True)
    think = Anything(allow_none=True)
    mcp = Anything(allow_none=True)

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
