"""Workflow templates: Jinja2 in an immutable sandbox, checked when a file is loaded and bounded when rendered.

Only workflow files hold templates; the values they see (inputs, step outputs) are data and are never rendered.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

from jinja2 import StrictUndefined
from jinja2 import Undefined
from jinja2 import meta
from jinja2 import nodes
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT = 1024 * 1024  # characters in one rendered value
MAX_RANGE = 1000  # items of one range()
MAX_OPERATIONS = 100_000  # loop items, calls, filters and checked operators in one render
MAX_INT_BITS = 100_000
# The names every template sees; a foreach's step also sees `item`, the steps of a loop `iteration`.
NAMES = frozenset({"inputs", "steps", "range"})
FOREACH_NAMES = frozenset({"item"})
LOOP_NAMES = frozenset({"iteration"})

_ITER = "__bounded_iter"  # the global every `{% for %}` iterates through (templates cannot name it: no `__`)
_REFUSED_TAGS = {nodes.Extends: "extends", nodes.Include: "include", nodes.Import: "import",
                 nodes.FromImport: "from", nodes.Macro: "macro", nodes.CallBlock: "call", nodes.Block: "block"}
_WIDTH_FILTERS = frozenset({"batch", "center", "indent", "slice", "truncate", "wordwrap"})
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_WIDE_FORMAT = re.compile(r"\d{7,}|\{[^{}]*:[^{}]*\{")  # a width of a million or more, or a nested width field
_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("workflow_template_budget", default=None)


class TemplateError(Exception):
    """A template is refused at load (``where`` is its key path) or fails while rendering; ``str()`` is one line."""

    def __init__(self, reason: str, *, where: str = "") -> None:
        reason = " ".join(reason.split())
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.where = where


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget[0] -= 1
        if budget[0] < 0:
            raise TemplateError(f"takes more than {MAX_OPERATIONS} operations (loop items, calls and filters)")


def _check_size(size: int) -> None:
    if size > MAX_OUTPUT:
        raise TemplateError(f"would make a value longer than {MAX_OUTPUT} characters")


def _check_widths(args: Iterable[Any]) -> None:
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool):
            _check_size(arg)


def _check_format(text: Any, values: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise TemplateError("format widths must stay under a million")
    if isinstance(values, Mapping):
        values = values.values()
    _check_widths(values if isinstance(values, (list, tuple)) else (values,))


def _check_replace(text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        _check_size(len(text) + (text.count(old) if old else len(text) + 1) * len(new))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    numbers = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and numbers and right > 0 and left.bit_length() * right > MAX_INT_BITS:
        raise TemplateError(f"the number would have more than {MAX_INT_BITS} bits")
    if operator == "*":
        if numbers and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateError(f"the number would have more than {MAX_INT_BITS} bits")
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                _check_size(len(seq) * times)
    if operator == "%" and isinstance(left, str):
        _check_format(left, right)


def _check_call(obj: Any, args: tuple, kwargs: dict) -> None:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str) and name in _WIDTH_METHODS:
        _check_widths((*args, *kwargs.values()))
        if name == "expandtabs" and args and isinstance(args[0], int):
            _check_size(len(owner) * args[0])
    elif isinstance(owner, str) and name == "replace" and len(args) >= 2:
        _check_replace(owner, args[0], args[1])
    wrapped = getattr(obj, "__wrapped__", None)  # str.format / format_map, as the sandbox hands them out
    if name in ("format", "format_map") and isinstance(getattr(wrapped, "__self__", None), str):
        _check_format(wrapped.__self__, [*args, *kwargs.values()])


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, counting operations and refusing sizes that would not fit in one render."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context, operator, left, right):
        _tick()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context, obj, /, *args, **kwargs):
        _tick()
        _check_call(obj, args, kwargs)
        return super().call(context, obj, *args, **kwargs)


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateError(f"range() is limited to {MAX_RANGE} items")
    return numbers


def _bounded_iter(iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _fromjson(value: Any) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError) as err:
        raise TemplateError(f"fromjson: {err}") from None


def _counted(name: str, function: Any) -> Any:
    @functools.wraps(function)  # keeps Jinja's pass_context / pass_eval_context marker
    def counted(*args: Any, **kwargs: Any) -> Any:
        _tick()
        values = args[1:] if getattr(function, "jinja_pass_arg", None) is not None else args
        if name in _WIDTH_FILTERS:
            _check_widths((*values[1:], *kwargs.values()))
        if name == "indent" and values and isinstance(values[0], str):
            width = values[1] if len(values) > 1 else kwargs.get("width", 4)
            lines = values[0].count("\n") + 1
            _check_size(len(values[0]) + lines * (len(width) if isinstance(width, str) else int(width)))
        elif name == "replace" and len(values) >= 3:
            _check_replace(*values[:3])
        elif name == "format" and values:
            _check_format(values[0], [*values[1:], *kwargs.values()])
        return function(*args, **kwargs)

    return counted


def _environment() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, loader=None, autoescape=False)
    filters = {name: f for name, f in env.filters.items() if name != "attr"}
    filters.update(tojson=_tojson, fromjson=_fromjson)
    env.filters = {name: _counted(name, f) for name, f in filters.items()}
    env.globals.clear()
    env.globals.update({"range": _bounded_range, _ITER: _bounded_iter})
    return env


ENVIRONMENT = _environment()


class _Compiled:
    """A checked, compiled template; ``steps`` and ``names`` are what it refers to (for the loader's checks)."""

    __slots__ = ("source", "where", "steps", "names", "_template")

    def __init__(self, source: str, where: str, tree: nodes.Template, body: nodes.Template) -> None:
        self.source = source
        self.where = where
        self.steps, self.names = _check_tree(tree, where)
        for loop in list(body.find_all(nodes.For)):
            loop.iter = nodes.Call(nodes.Name(_ITER, "load", lineno=loop.lineno), [loop.iter], [], None, None,
                                   lineno=loop.lineno)
        body.set_environment(ENVIRONMENT)
        try:
            code = ENVIRONMENT.compile(body)
        except JinjaError as err:
            raise TemplateError(f"template error: {err}", where=where) from None
        self._template = ENVIRONMENT.template_class.from_code(ENVIRONMENT, code, ENVIRONMENT.make_globals(None))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"

    @contextmanager
    def _rendering(self) -> Iterator[None]:
        token = _budget.set([MAX_OPERATIONS])
        try:
            yield
        except TemplateError as err:
            raise TemplateError(err.reason, where=self.where) from None
        except Exception as err:  # whatever the template did wrong is the template's error
            reason = str(err) if isinstance(err, JinjaError) else f"{type(err).__name__}: {err}"
            raise TemplateError(reason, where=self.where) from None
        finally:
            _budget.reset(token)


class Template(_Compiled):
    """A string with `{{ }}` or `{% %}` and other text: renders to text."""

    __slots__ = ()

    def render(self, context: Mapping[str, Any]) -> str:
        with self._rendering():
            parts: list[str] = []
            size = 0
            for part in self._template.root_render_func(self._template.new_context(dict(context))):
                size += len(part)
                _check_size(size)
                parts.append(part)
            return "".join(parts)


class Expression(_Compiled):
    """A bare expression, or a string that is exactly one `{{ expr }}`: renders to the value itself."""

    __slots__ = ()

    def render(self, context: Mapping[str, Any]) -> Any:
        with self._rendering():
            scope = self._template.new_context(dict(context))
            for _ in self._template.root_render_func(scope):
                pass
            value = scope.vars["result"]
            _check_defined(value)
            if isinstance(value, str):
                _check_size(len(value))
            return value


def _check_defined(value: Any, depth: int = 0) -> None:
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises, naming what is missing
    elif depth < 32 and isinstance(value, (list, tuple)):
        for item in value:
            _check_defined(item, depth + 1)
    elif depth < 32 and isinstance(value, Mapping):
        for item in value.values():
            _check_defined(item, depth + 1)


def _syntax_error(err: JinjaError, text: str, where: str) -> TemplateError:
    line = getattr(err, "lineno", None)
    at = f" (line {line})" if line and "\n" in text.strip() else ""
    return TemplateError(f"template syntax error: {getattr(err, 'message', None) or err}{at}", where=where)


def _expression_template(expr: nodes.Expr) -> nodes.Template:
    return nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr)], lineno=1)


def compile_template(text: str, where: str) -> Template | Expression | str:
    """A string from a workflow file: plain text stays a ``str``; exactly one ``{{ expr }}`` is an Expression
    (rendering gives the value itself); anything else with ``{{``/``{%`` is a Template (rendering gives text).

    :raises TemplateError: a syntax error, or something a workflow template may not do (``where``: its key path).
    """
    if "{{" not in text and "{%" not in text:
        return text
    try:
        tree = ENVIRONMENT.parse(text)
    except JinjaError as err:
        raise _syntax_error(err, text, where) from None
    body = tree.body
    if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1 \
            and not isinstance(body[0].nodes[0], nodes.TemplateData):
        return Expression(text, where, tree, _expression_template(body[0].nodes[0]))
    return Template(text, where, tree, tree)


def compile_expression(text: str, where: str) -> Expression:
    """A bare expression (``when``, ``until``, ``items``), written with or without ``{{ }}`` around it.

    :raises TemplateError: a syntax error, more than one expression, or something a template may not do.
    """
    inner = text.strip()
    if inner.startswith("{{") and inner.endswith("}}") and "{{" not in inner[2:-2] and "}}" not in inner[2:-2]:
        inner = inner[2:-2].strip("-")
    if not inner.strip():
        raise TemplateError("must be an expression, e.g. steps.classify.output == 'bug'", where=where)
    try:
        parser = Parser(ENVIRONMENT, inner, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            parser.fail(f"unexpected {parser.stream.current.value!r} after the expression")
    except JinjaError as err:
        raise _syntax_error(err, inner, where) from None
    tree = nodes.Template([nodes.Output([expr])], lineno=1)
    tree.set_environment(ENVIRONMENT)
    return Expression(text, where, tree, _expression_template(expr))


def _check_tree(tree: nodes.Template, where: str) -> tuple[frozenset[str], frozenset[str]]:
    """The step ids and free names a parsed template uses, after refusing what workflow templates may not do."""

    def refuse(reason: str) -> TemplateError:
        return TemplateError(reason, where=where)

    for kind, tag in _REFUSED_TAGS.items():
        if next(tree.find_all(kind), None) is not None:
            raise refuse(f"{{% {tag} %}} is not allowed in workflow templates")
    if any(loop.recursive for loop in tree.find_all(nodes.For)):
        raise refuse("recursive loops are not allowed in workflow templates")
    steps: set[str] = set()
    direct: set[int] = set()
    for node in tree.find_all(nodes.Node):
        names = []
        if isinstance(node, nodes.Name):
            names.append(node.name)
        elif isinstance(node, nodes.Getattr):
            names.append(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.append(node.arg.value)
        elif isinstance(node, nodes.Keyword):
            names.append(node.key)
            if node.key == "attribute" and isinstance(node.value, nodes.Const) and isinstance(node.value.value, str):
                names.append(node.value.value)
        elif isinstance(node, (nodes.Filter, nodes.Test)) and node.name == "attr":
            raise refuse("the attr filter is not allowed in workflow templates")
        for name in names:
            if "__" in name:
                raise refuse(f"{name!r} is not allowed (names and attributes must not contain '__')")
        if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name) \
                and node.node.name == "steps" and names:
            steps.add(names[0])
            direct.add(id(node.node))
    for name in tree.find_all(nodes.Name):
        if name.name in ("inputs", "steps") and name.ctx != "load":
            raise refuse(f"{name.name!r} cannot be assigned to")
        if name.name == "steps" and id(name) not in direct:
            raise refuse("steps must be followed by a step id, as in steps.classify.output")
    try:
        names = meta.find_undeclared_variables(tree)
    except JinjaError as err:  # an unknown filter or test
        raise refuse(f"template error: {getattr(err, 'message', None) or err}") from None
    return frozenset(steps), frozenset(names)


def referenced_steps(renderable: Any) -> set[str]:
    """The step ids a compiled template refers to as ``steps.<id>`` (none for a plain string)."""
    return set(renderable.steps) if isinstance(renderable, _Compiled) else set()


def referenced_names(renderable: Any) -> set[str]:
    """The names a compiled template reads from its context (``inputs``, ``steps``, ``item``...)."""
    return set(renderable.names) if isinstance(renderable, _Compiled) else set()


def render_tree(tree: Any, context: Mapping[str, Any]) -> Any:
    """``tree`` with every compiled template in it rendered (mappings and lists copied, the rest kept as it is).

    :raises TemplateError: a template failed; the message starts with its key path.
    """
    if isinstance(tree, _Compiled):
        return tree.render(context)
    if isinstance(tree, Mapping):
        return {key: render_tree(value, context) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [render_tree(value, context) for value in tree]
    return tree
