"""The legacy completions request body (`POST /v1/completions`)."""

from __future__ import annotations

from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates

from .chat import StreamOptions
from .fields import Anything
from .fields import StrictBool
from .fields import StrictFloat
from .fields import StrictInt
from .fields import StringOrList


class CompletionRequest(Schema):
    """OpenAI's request; what Ollama's `/api/generate` cannot do is refused naming the field."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    prompt = Anything(required=True)
    suffix = fields.String(allow_none=True)
    max_tokens = StrictInt(allow_none=True, validate=validate.Range(min=1))
    temperature = StrictFloat(allow_none=True, validate=validate.Range(0, 2))
    top_p = StrictFloat(allow_none=True, validate=validate.Range(0, 1))
    stop = StringOrList(allow_none=True)
    seed = StrictInt(allow_none=True)
    frequency_penalty = StrictFloat(allow_none=True, validate=validate.Range(-2, 2))
    presence_penalty = StrictFloat(allow_none=True, validate=validate.Range(-2, 2))
    stream = StrictBool(load_default=False, allow_none=True)
    stream_options = fields.Nested(StreamOptions, allow_none=True)
    echo = StrictBool(allow_none=True)
    best_of = StrictInt(allow_none=True)
    n = StrictInt(allow_none=True)
    logprobs = Anything(allow_none=True)
    user = fields.String(allow_none=True)
    keep_alive = Anything(allow_none=True)

    @validates("prompt")
    def _prompt(self, value, **kwargs):
        if isinstance(value, str):
            return
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            return
        if isinstance(value, list) and len(value) > 1:
            raise ValidationError("only one prompt per request is supported; send a string or a list of one")
        raise ValidationError("must be a string or a list of exactly one string")

    @validates("echo")
    def _echo(self, value, **kwargs):
        if value:
            raise ValidationError("echo is not supported")

    @validates("best_of")
    def _best_of(self, value, **kwargs):
        if value is not None and value != 1:
            raise ValidationError("only best_of 1 is supported")

    @validates("n")
    def _n(self, value, **kwargs):
        if value is not None and value != 1:
            raise ValidationError("only n 1 is supported")

    @validates("logprobs")
    def _logprobs(self, value, **kwargs):
        if value is not None:
            raise ValidationError("logprobs is not supported for completions")
