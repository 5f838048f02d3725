"""The embeddings request body."""

from __future__ import annotations

from marshmallow import EXCLUDE
from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate
from marshmallow import validates

from .fields import Anything
from .fields import StrictBool
from .fields import StrictInt
from .options import Options


class EmbeddingsRequest(Schema):
    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, error="must not be empty"))
    input = Anything(required=True)
    dimensions = StrictInt(allow_none=True, validate=validate.Range(min=1))
    encoding_format = fields.String(load_default="float", allow_none=True)
    user = fields.String(allow_none=True)
    truncate = StrictBool(allow_none=True)
    keep_alive = Anything(allow_none=True)
    options = Options(allow_none=True)

    @validates("input")
    def _input(self, value, **kwargs):
        if isinstance(value, str):
            return
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            return
        if isinstance(value, list) and value and all(isinstance(item, (int, list)) for item in value):
            raise ValidationError("token arrays are not supported by Ollama; send text")
        raise ValidationError("must be a string or a non-empty list of strings")

    @validates("encoding_format")
    def _encoding(self, value, **kwargs):
        if value is not None and value.lower() not in ("float", "base64"):
            raise ValidationError(f"Invalid value {value!r}. Supported values: ['float', 'base64'].")
