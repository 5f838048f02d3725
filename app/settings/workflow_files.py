"""The schemas of a workflow file (its steps, limits, retries and chat binding), used by app.workflows.loader."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError
from marshmallow import post_load
from marshmallow import validate
from marshmallow import validates_schema
from marshmallow.fields import Field
from marshmallow.fields import List
from marshmallow.fields import Nested
from marshmallow.fields import Raw

from ..workflows.model import ChatBinding
from ..workflows.model import Defaults
from ..workflows.model import Limits
from ..workflows.model import Retry
from .errors import HiddenValue
from .fields import Duration
from .fields import Flag
from .fields import Globs
from .fields import Number
from .fields import Text
from .workflows import StrictSchema
from .workflows import whole_number

WORKFLOW_NAME_RE = re.compile(r"^[a-z0-9_-]{1,64}\Z")
STEP_ID_RE = re.compile(r"^[a-z0-9_]{1,64}\Z")
TOOL_NAME_RE = re.compile(r"^[^\s*?\[\]{}]+\Z")
# The gateway's ceilings for a workflow's `limits`.
MAX_STEPS, MAX_RUNTIME, MAX_PARALLEL = 1000, 3600.0, 16
MAX_ITERATIONS, MAX_ATTEMPTS, MAX_TOOL_ROUNDS = 1000, 10, 50
FOREACH_TYPES = ("llm", "tool", "transform", "workflow")  # what a foreach may run per item
ON_ERROR = ("stop", "continue")

_SECONDS_RULE = "must be a duration of more than 0 and at most 1h, e.g. 90s or 5m"


def _seconds(high: float = MAX_RUNTIME, rule: str = _SECONDS_RULE) -> Duration:
    return Duration(validate=validate.Range(min=0, max=high, min_inclusive=False, error=rule),
                    error_messages={"invalid": rule})


def _choice(options: tuple[str, ...], **kwargs) -> Text:
    rule = "must be one of " + ", ".join(options)
    return Text(strip=False, validate=validate.OneOf(options, error=rule), error_messages={"invalid": rule}, **kwargs)


class Source(Field):
    """A bare expression (`when`, `until`, `items`), kept as text for app.workflows.templates; true/false are allowed."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(value, str):
            raise ValidationError("must be an expression (a string), e.g. \"steps.classify.output == 'bug'\"")
        return value


class JsonSchema(Field):
    """A JSON Schema, checked with its draft's meta-schema (``object_only``: it must describe a mapping)."""

    def __init__(self, *, object_only: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.object_only = object_only

    def _deserialize(self, value, attr, data, **kwargs):
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for

        if not isinstance(value, Mapping):
            raise ValidationError(HiddenValue("must be a JSON Schema (a mapping), e.g. {type: object}"))
        try:
            validator_for(value).check_schema(value)
        except SchemaError as err:
            message: Any = [HiddenValue(f"is not a valid JSON Schema: {err.message[:200]}")]
            for part in reversed(list(err.path)):
                message = {part: message}
            raise ValidationError(message) from None
        if self.object_only and value.get("type") != "object":
            raise ValidationError(HiddenValue("must be a JSON Schema with type: object (the inputs are a mapping)"))
        return dict(value)


class Arguments(Field):
    """A tool's or sub-workflow's inputs: a mapping (its strings may be templates), or one template string."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (Mapping, str)):
            raise ValidationError("must be a mapping, or one \"{{ expression }}\" that gives one")
        return dict(value) if isinstance(value, Mapping) else value


class StopWords(Field):
    """`options.stop`: one string or a list of strings."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise ValidationError("must be a string or a list of strings")


class RetrySchema(StrictSchema):
    max_attempts = whole_number(1, MAX_ATTEMPTS)
    backoff = Duration(validate=validate.Range(min=0, max=60, error="must be a duration from 0 to 1m, e.g. 500ms"))
    max_backoff = Duration(validate=validate.Range(min=0, max=600, error="must be a duration from 0 to 10m"))

    @post_load
    def _retry(self, data, **kwargs) -> Retry:
        return Retry(**data)


class LimitsSchema(StrictSchema):
    max_steps = whole_number(1, MAX_STEPS, f"must be a whole number from 1 to {MAX_STEPS} (the gateway's ceiling)")
    max_runtime = _seconds(rule="must be a duration of more than 0 and at most 1h (the gateway's ceiling), e.g. 90s")
    max_tokens = whole_number(1)
    max_parallel = whole_number(1, MAX_PARALLEL, f"must be a whole number from 1 to {MAX_PARALLEL} (the gateway's ceiling)")

    @post_load
    def _limits(self, data, **kwargs) -> Limits:
        return Limits(**data)


class DefaultsSchema(StrictSchema):
    model = Text(validate=validate.Length(min=1, error="must not be empty"))
    timeout = _seconds()
    on_error = _choice(ON_ERROR)

    @post_load
    def _defaults(self, data, **kwargs) -> Defaults:
        return Defaults(**data)


class ChatSchema(StrictSchema):
    input = Text(required=True)
    answer = Text(required=True)

    @post_load
    def _chat(self, data, **kwargs) -> ChatBinding:
        return ChatBinding(**data)


class MessageSchema(StrictSchema):
    role = _choice(("system", "user", "assistant"), required=True)
    content = Text(strip=False, required=True)


class OptionsSchema(StrictSchema):
    """The OpenAI sampling fields an llm step may set."""

    temperature = Number(validate=validate.Range(min=0, max=2, error="must be from 0 to 2"))
    top_p = Number(validate=validate.Range(min=0, max=1, error="must be from 0 to 1"))
    max_tokens = whole_number(1)
    max_completion_tokens = whole_number(1)
    seed = Number(integer=True)
    stop = StopWords()
    presence_penalty = Number(validate=validate.Range(min=-2, max=2, error="must be from -2 to 2"))
    frequency_penalty = Number(validate=validate.Range(min=-2, max=2, error="must be from -2 to 2"))


class JsonSchemaFormatSchema(StrictSchema):
    name = Text(validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}\Z", error="must be 1-64 letters, digits, '_' or '-'"))
    description = Text(strip=False)
    schema = JsonSchema(required=True)
    strict = Flag()


class ResponseFormatSchema(StrictSchema):
    type = _choice(("text", "json_object", "json_schema"), required=True)
    json_schema = Nested(JsonSchemaFormatSchema)

    @validates_schema
    def _schema_given(self, data, **kwargs):
        if data.get("type") == "json_schema" and "json_schema" not in data:
            raise ValidationError("is required with type json_schema ({name, schema})", "json_schema")


class StepSchema(StrictSchema):
    """The keys every step takes; a subclass per type adds its own (nested steps are built by the loader)."""

    id = Text(strip=False, required=True, validate=validate.Regexp(
        STEP_ID_RE, error="must be 1-64 characters of lower-case letters, digits or '_' (it is used as steps.<id>)"))
    type = Text(strip=False, required=True)
    when = Source()
    timeout = _seconds()
    retry = Nested(RetrySchema)
    on_error = _choice(ON_ERROR)
    default = Raw(allow_none=True)


class LlmStepSchema(StepSchema):
    model = Text(validate=validate.Length(min=1, error="must not be empty"))
    prompt = Text(strip=False)
    messages = List(Nested(MessageSchema), validate=validate.Length(min=1, error="must not be empty"))
    options = Nested(OptionsSchema)
    response_format = Nested(ResponseFormatSchema)
    tools = Globs()
    max_tool_rounds = whole_number(1, MAX_TOOL_ROUNDS)

    @validates_schema
    def _prompt_or_messages(self, data, **kwargs):
        if "prompt" in data and "messages" in data:
            raise ValidationError(HiddenValue("give either prompt or messages, not both"), "messages")
        if "prompt" not in data and "messages" not in data:
            raise ValidationError("is required (or messages: [{role, content}])", "prompt")


class ToolStepSchema(StepSchema):
    tool = Text(strip=False, required=True, validate=validate.Regexp(
        TOOL_NAME_RE, error="must be a tool name such as docs__search (no globs or templates)"))
    arguments = Arguments()


class TransformStepSchema(StepSchema):
    value = Raw(required=True, allow_none=True)


class BranchStepSchema(StepSchema):
    cases = Raw(required=True)
    default = Raw(allow_none=True)  # here: the steps run when no case holds


class ForeachStepSchema(StepSchema):
    items = Source(required=True)
    parallel = whole_number(1)
    step = Raw(required=True)


class LoopStepSchema(StepSchema):
    steps = Raw(required=True)
    until = Source()
    max_iterations = Number(integer=True, required=True, validate=validate.Range(
        min=1, max=MAX_ITERATIONS, error=f"must be a whole number from 1 to {MAX_ITERATIONS}"), error_messages={
        "required": "is required: the most iterations the loop may run", "integer": "must be a whole number"})


class WorkflowStepSchema(StepSchema):
    workflow = Text(strip=False, required=True, validate=validate.Regexp(
        WORKFLOW_NAME_RE, error="must be a workflow name (lower-case letters, digits, '_' or '-')"))
    inputs = Arguments()


class CaseSchema(StrictSchema):
    when = Source(required=True)
    steps = Raw(required=True)


class WorkflowSchema(StrictSchema):
    """A workflow file's top level; `steps` and `output` are built by app.workflows.loader."""

    error_messages = {"type": "a workflow file must be a mapping with at least name and steps"}

    name = Text(strip=False, required=True, validate=validate.Regexp(
        WORKFLOW_NAME_RE, error="must be 1-64 characters of lower-case letters, digits, '_' or '-'"))
    description = Text(load_default="")
    inputs = JsonSchema(object_only=True, load_default=lambda: {"type": "object"})
    outputs = JsonSchema(allow_none=True)
    tools = Globs(load_default=())
    limits = Nested(LimitsSchema, load_default=Limits)
    defaults = Nested(DefaultsSchema, load_default=Defaults)
    chat = Nested(ChatSchema, allow_none=True)
    steps = Raw(required=True)
    output = Raw(allow_none=True)


STEP_SCHEMAS = {"llm": LlmStepSchema(), "tool": ToolStepSchema(), "transform": TransformStepSchema(),
                "branch": BranchStepSchema(), "foreach": ForeachStepSchema(), "loop": LoopStepSchema(),
                "workflow": WorkflowStepSchema()}
WORKFLOW_SCHEMA = WorkflowSchema()


