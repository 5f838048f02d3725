"""Ollama's `options` object as a request field: known options by type, numbers anywhere within 64 bits."""

from __future__ import annotations

from marshmallow import ValidationError
from marshmallow import fields

from .fields import StrictFloat
from .fields import strict_int

INT_OPTIONS = frozenset({"seed", "num_predict", "num_ctx", "top_k", "repeat_last_n", "num_keep", "num_batch", "num_gpu",
                         "main_gpu", "num_thread"})
FLOAT_OPTIONS = frozenset({"temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
                           "frequency_penalty"})
BOOL_OPTIONS = frozenset({"use_mmap", "numa"})
_FLOAT = StrictFloat()


class Options(fields.Field):
    """Each option checked and typed as Ollama reads it (a wrong type is a 500 from Ollama); unknown options keep
    their value, but a number must fit where Ollama would put it."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise ValidationError("must be an object")
        out: dict = {}
        errors: dict = {}
        for key, item in value.items():
            try:
                out[key] = _option(key, item)
            except ValidationError as err:
                errors[key] = err.messages
        if errors:
            raise ValidationError(errors)
        return out

    def json_schema(self, ref) -> dict:
        return {"type": "object"}


def _option(key: str, value):
    if key in INT_OPTIONS:
        return strict_int(value)
    if key in FLOAT_OPTIONS:
        return _FLOAT.deserialize(value)
    if key in BOOL_OPTIONS:
        if not isinstance(value, bool):
            raise ValidationError("must be a boolean")
        return value
    if key == "stop":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValidationError("must be a list of strings")
        return value
    for item in value if isinstance(value, list) else (value,):
        if isinstance(item, int) and not isinstance(item, bool):
            strict_int(item)
        elif isinstance(item, (dict, list)):
            raise ValidationError("must be a string, number, boolean or a list of them")
    return value
