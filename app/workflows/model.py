"""A loaded workflow as frozen data: its steps, limits and compiled templates (app.workflows.loader makes them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol

STEP_TYPES = ("llm", "tool", "transform", "branch", "foreach", "loop", "workflow")


class Renderable(Protocol):
    """A compiled template (a string with `{{ }}`), or an expression (`when`, `until`, `items`)."""

    source: str

    def render(self, context: Mapping[str, Any]) -> Any:
        """The value: text, or the native value when the template is exactly one `{{ expr }}` (or an expression).

        :raises TemplateError: (app.workflows.templates) when rendering fails (undefined name, sandbox refusal, size).
        """


# A "tree" is a JSON-like value whose strings may be Renderable: render_tree() in app.workflows.templates
# renders every Renderable inside it and keeps the rest as it is.
Tree = Any


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 1  # 1: no retry
    backoff: float = 0.5  # seconds before the 2nd attempt, doubling after each failure
    max_backoff: float = 10.0


@dataclass(frozen=True)
class Case:
    when: Renderable
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Step:
    """One step. Fields not used by its `type` keep their defaults."""

    id: str
    type: str
    path: str  # where it is in the file, e.g. "steps[2].cases[0].steps[1]" (for messages)
    when: Renderable | None = None
    timeout: float | None = None  # None: the workflow's defaults.timeout
    retry: Retry = field(default_factory=Retry)
    on_error: str | None = None  # "stop" | "continue"; None: defaults.on_error
    default: Any = None  # the output when skipped, or failed with on_error: continue
    # llm
    model: str | None = None  # None: defaults.model
    prompt: Renderable | str | None = None  # a user message (or messages below)
    messages: tuple[Mapping[str, Tree], ...] = ()  # [{role, content}] with rendered contents
    options: Mapping[str, Any] = field(default_factory=dict)  # OpenAI sampling fields: temperature, max_tokens...
    response_format: Mapping[str, Any] | None = None  # json_object / json_schema: the output is parsed JSON
    tools: tuple[str, ...] = ()  # globs, a subset of the workflow's tools
    max_tool_rounds: int = 3
    # tool
    tool: str | None = None
    arguments: Tree = field(default_factory=dict)
    # transform
    value: Tree = None
    # branch
    cases: tuple[Case, ...] = ()
    default_steps: tuple[Step, ...] = ()  # the branch's `default:` list of steps
    # foreach
    items: Renderable | None = None
    parallel: int = 1
    step: Step | None = None  # the step run per item (its id is the foreach's)
    # loop
    steps: tuple[Step, ...] = ()
    until: Renderable | None = None
    max_iterations: int = 0
    # workflow
    workflow: str | None = None
    inputs: Tree = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    max_steps: int = 100
    max_runtime: float = 600.0  # seconds
    max_tokens: int = 100000
    max_parallel: int = 4


@dataclass(frozen=True)
class Defaults:
    model: str | None = None
    timeout: float = 60.0
    on_error: str = "stop"


@dataclass(frozen=True)
class ChatBinding:
    """How the workflow answers as the model `workflow:<name>`: the last user message fills input `input`;
    the answer is step `answer`'s output."""

    input: str
    answer: str


@dataclass(frozen=True)
class Workflow:
    name: str
    source: str  # the file
    description: str = ""
    inputs: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})  # JSON Schema
    outputs: Mapping[str, Any] | None = None  # JSON Schema, checked at the end
    tools: tuple[str, ...] = ()  # globs: the only tools any step may call
    limits: Limits = field(default_factory=Limits)
    defaults: Defaults = field(default_factory=Defaults)
    chat: ChatBinding | None = None
    steps: tuple[Step, ...] = ()
    output: Tree = None  # rendered at the end: the run's outputs


@dataclass(frozen=True)
class WorkflowsSettings:
    dirs: tuple[str, ...] = ()
    workflows: Mapping[str, Workflow] = field(default_factory=dict)
    max_runs_kept: int = 1000
