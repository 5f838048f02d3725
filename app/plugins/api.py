"""What plugin authors use: the optional `Plugin` base class, `Tool`, `Reject` and `Reply`."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

# The hooks the gateway calls when a plugin has them; every one is optional.
HOOKS = ("on_request", "on_response", "on_chunk", "on_tool_call")


class Plugin:
    """An optional base class: plugins are duck-typed, so any class named `Plugin` with some of these works.

    - ``Config``: a marshmallow ``Schema`` class that validates the YAML ``config`` at start-up.
    - ``setup(config)``: once per worker, with the validated config.
    - ``on_request(ctx, request)``, ``on_response(ctx, response)``, ``on_chunk(ctx, chunk)``: return a dict to
      replace what they were given, or None to leave it; ``on_request`` may also raise `Reject` or return `Reply`.
    - ``on_tool_call(ctx, name, arguments)``: before every tool call the gateway runs; a dict replaces the
      arguments, `Reject` makes the model read an error text instead.
    - ``tools()``: a list of `Tool`, offered to the model as ``<plugin>__<tool name>``.
    - ``blueprint()``: a Flask blueprint mounted under ``/v1/plugins/<name>/``.
    - ``chat(ctx, request)``: answer as the model ``plugin:<name>`` with a string, a chat.completion dict or an
      iterator of strings.
    """


@dataclass(frozen=True)
class Tool:
    """A tool for the model: ``function(arguments, ctx)`` returns text or a JSON-able value."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    function: Callable[..., Any] | None = None


class Reject(Exception):
    """Raised by `on_request` to answer with an OpenAI error, or by `on_tool_call` to refuse a call."""

    def __init__(self, message: str, *, status: int = 400, code: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param


@dataclass(frozen=True)
class Reply:
    """Returned by `on_request` to answer with this text without calling the model (streamed too)."""

    text: str
