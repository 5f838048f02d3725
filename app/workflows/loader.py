"""Loading workflow files: every `*.yaml` in the workflow dirs, checked and built into app.workflows.model data.

A bad file stops start-up with one line: ``<file>: <key path>: <problem>`` (``steps[2].type``, ``limits.max_steps``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from marshmallow import ValidationError

from ..settings.errors import MISSING
from ..settings.errors import ConfigError
from ..settings.errors import first_problem
from ..settings.errors import got
from ..settings.errors import key_path
from ..settings.errors import value_at
from ..settings.workflow_files import FOREACH_TYPES
from ..settings.workflow_files import STEP_SCHEMAS
from ..settings.workflow_files import WORKFLOW_SCHEMA
from ..settings.workflow_files import CaseSchema
from .model import STEP_TYPES
from .model import Case
from .model import ChatBinding
from .model import Retry
from .model import Step
from .model import Workflow
from .templates import FOREACH_NAMES
from .templates import LOOP_NAMES
from .templates import NAMES
from .templates import TemplateError
from .templates import compile_expression
from .templates import compile_template
from .templates import referenced_names
from .templates import referenced_steps

Path = tuple[str | int, ...]
MAX_DEPTH = 3  # sub-workflow calls below the top workflow
_CASE = CaseSchema()


class _Problem(Exception):
    """The first problem of a file: where it is and what is wrong (turned into a ConfigError naming the file)."""

    def __init__(self, path: Path, problem: str, value: Any = MISSING) -> None:
        super().__init__(problem)
        self.path, self.problem, self.value = path, problem, value


def load_workflows(dirs: tuple[str, ...] | list[str], *, source: str, missing_ok: bool = False) -> dict[str, Workflow]:
    """Every ``*.yaml`` of ``dirs`` (each dir's files sorted by name) as a Workflow, by name.

    ``source`` names the settings file in messages about ``dirs``; ``missing_ok`` lets a dir not exist
    (the default dir, not named in the settings). Sub-workflow calls are checked once every file is read.

    :raises ConfigError: ``<file>: <key path>: <problem>``, with ``param`` the key path in the file.
    """
    found: dict[str, tuple[Workflow, list[tuple[Path, str, Any]]]] = {}
    for index, folder in enumerate(dirs):
        if not os.path.isdir(folder):
            if missing_ok:
                continue
            param = f"workflows.dirs[{index}]"
            problem = f"folder {folder!r} does not exist"
            raise ConfigError(f"{source}: {param}: {problem}", param=param, problem=problem)
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), "*.yaml"))):
            workflow, calls = load_workflow_file(path)
            if workflow.name in found:
                problem = f"workflow {workflow.name!r} is also defined in {found[workflow.name][0].source}"
                raise ConfigError(f"{path}: name: {problem}", param="name", problem=problem)
            found[workflow.name] = (workflow, calls)
    _check_calls(found)
    return {name: workflow for name, (workflow, _) in found.items()}


def load_workflow_file(path: str) -> tuple[Workflow, list[tuple[Path, str, Any]]]:
    """One file as a Workflow, and its sub-workflow calls (step path, workflow name, raw inputs) to check later.

    :raises ConfigError: the file cannot be read or parsed, or is not a valid workflow.
    """
    import yaml  # here: the parser costs a megabyte, and most gateways have no workflow file

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"cannot read workflow file {path}: {err.strerror}", problem=err.strerror) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}{where}: {problem}", problem=problem) from None
    builder = _Builder(os.path.abspath(path))
    try:
        if not isinstance(data, Mapping):
            raise _Problem((), "a workflow file must be a mapping with at least name and steps")
        return builder.workflow(data), builder.calls
    except _Problem as err:
        param = key_path(err.path)
        raise ConfigError(f"{path}: {param or 'file'}: {err.problem}{got(err.problem, err.value)}", param=param,
                          problem=err.problem) from None


def _invalid(err: ValidationError, prefix: Path, data: Any) -> _Problem:
    path, problem = first_problem(err.messages)
    return _Problem((*prefix, *path), problem, value_at(data, path))


class _Builder:
    """Builds one file's Workflow, numbering its steps in document order to check what each template refers to."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.ids: dict[str, tuple[int, str]] = {}  # step id: (document order, path)
        self.checks: list[tuple[Any, Path, int, str | None, frozenset[str]]] = []
        self.calls: list[tuple[Path, str, Any]] = []
        self.next = 0

    def workflow(self, data: Mapping[str, Any]) -> Workflow:
        try:
            head = WORKFLOW_SCHEMA.load(dict(data))
        except ValidationError as err:
            raise _invalid(err, (), data) from None
        self.tools, self.limits, self.defaults = head["tools"], head["limits"], head["defaults"]
        steps = self.steps(head["steps"], ("steps",), NAMES)
        output = self.tree(head.get("output"), ("output",), self.next, None, NAMES)
        chat = head.get("chat")
        if chat is not None:
            self.check_chat(chat, head["inputs"])
        for renderable, path, limit, own, names in self.checks:
            self.check_references(renderable, path, limit, own, names)
        return Workflow(name=head["name"], source=self.source, description=head["description"], inputs=head["inputs"],
                        outputs=head.get("outputs"), tools=self.tools, limits=self.limits, defaults=self.defaults,
                        chat=chat, steps=steps, output=output)

    def steps(self, raw: Any, path: Path, names: frozenset[str]) -> tuple[Step, ...]:
        if not isinstance(raw, list) or not raw:
            raise _Problem(path, "must be a non-empty list of steps")
        return tuple(self.step(item, (*path, index), names) for index, item in enumerate(raw))

    def step(self, raw: Any, path: Path, names: frozenset[str], foreach: tuple[str, int] | None = None) -> Step:
        if not isinstance(raw, Mapping):
            raise _Problem(path, "must be a mapping with at least id and type" if foreach is None else "must be a mapping")
        kind = raw.get("type", MISSING)
        if kind not in STEP_TYPES:
            rule = "one of " + ", ".join(STEP_TYPES)
            raise _Problem((*path, "type"), f"is required: {rule}" if kind is MISSING else f"must be {rule}", kind)
        if foreach is not None:
            if "id" in raw:
                raise _Problem((*path, "id"), "must be left out: a foreach's step takes the foreach's id", raw["id"])
            if kind not in FOREACH_TYPES:
                raise _Problem((*path, "type"), "a foreach runs one " + ", ".join(FOREACH_TYPES) + " step", kind)
            raw = {**raw, "id": foreach[0]}
        try:
            data = STEP_SCHEMAS[kind].load(dict(raw))
        except ValidationError as err:
            raise _invalid(err, path, raw) from None
        step_id = data["id"]
        if foreach is None:
            if step_id in self.ids:
                raise _Problem((*path, "id"), f"duplicate step id (also {self.ids[step_id][1]})", step_id)
            order, self.next = self.next, self.next + 1
            self.ids[step_id] = (order, key_path(path))
        else:
            order = foreach[1]
        fields: dict[str, Any] = {"id": step_id, "type": kind, "path": key_path(path), "retry": data.get("retry", Retry())}
        for key in ("timeout", "on_error"):
            if key in data:
                fields[key] = data[key]
        if kind != "branch":
            fields["default"] = data.get("default")
        if "when" in data:
            fields["when"] = self.expression(data["when"], (*path, "when"), order, step_id, names)
        fields.update(getattr(self, f"_{kind}")(data, path, order, names))
        return Step(**fields)

    def _llm(self, data: dict, path: Path, order: int, names: frozenset[str]) -> dict:
        if data.get("model") is None and self.defaults.model is None:
            raise _Problem((*path, "model"), "is required when defaults.model is not set")
        for index, glob_ in enumerate(data.get("tools", ())):
            self.check_tool((*path, "tools", index), glob_)
        fields = {key: data[key] for key in ("model", "options", "response_format", "max_tool_rounds") if key in data}
        fields["tools"] = data.get("tools", ())
        if "prompt" in data:
            fields["prompt"] = self.tree(data["prompt"], (*path, "prompt"), order, data["id"], names)
        fields["messages"] = tuple(
            {"role": message["role"],
             "content": self.tree(message["content"], (*path, "messages", index, "content"), order, data["id"], names)}
            for index, message in enumerate(data.get("messages", ())))
        return fields

    def _tool(self, data: dict, path: Path, order: int, names: frozenset[str]) -> dict:
        self.check_tool((*path, "tool"), data["tool"])
        return {"tool": data["tool"],
                "arguments": self.tree(data.get("arguments", {}), (*path, "arguments"), order, data["id"], names)}

    def _transform(self, data: dict, path: Path, order: int, names: frozenset[str]) -> dict:
        return {"value": self.tree(data["value"], (*path, "value"), order, data["id"], names)}

    def _branch(self, data: dict, path: Path, order: int, names: frozenset[str]) -> dict:
        raw_cases = data["cases"]
        if not isinstance(raw_cases, list) or not raw_cases:
            raise _Problem((*path, "cases"), "must be a non-empty list of {when, steps}")
        cases = []
        for index, raw in enumerate(raw_cases):
            where = (*path, "cases", index)
            try:
                case = _CASE.load(raw)
            except ValidationError as err:
                raise _invalid(err, where, raw) from None
            when = self.expression(case["when"], (*where, "when"), order, data["id"], names)
            cases.append(Case(when=when, steps=self.steps(case["steps"], (*where, "steps"), names)))
        default = data.get("default")
        default_steps = () if default is None else self.steps(default, (*path, "default"), names)
        return {"cases": tuple(cases), "default_steps": default_steps}

    def _foreach(self, data: dict, path: Path, order: int, names: frozenset[str]) -> dict:
        if data.get("parallel", 1) > self.limits.max_parallel:
            raise _Problem((*path, "parallel"), f"must be at most limits.max_parallel ({self.limits.max_parallel})",
                           data["parallel"])
        items = self.expression(data["items"], (*path, "items"), order, data["id"], names)
        inner = self.step(data["step"], (*path, "step"), names | FOREACH_NAMES, foreach=(data["id"], order))
        return {"items": items, "parallel": data.get("parallel", 1), "step": inner}

    def _loop(self, data: dict, path: Path, order: int, names: frozenset[str]) -> dict:
        names = names | LOOP_NAMES
        steps = self.steps(data["steps"], (*path, "steps"), names)
        fields: dict[str, Any] = {"steps": steps, "max_iterations": data["max_iterations"]}
        if "until" in data:  # it may read the steps inside the loop
            fields["until"] = self.expression(data["until"], (*path, "until"), self.next, data["id"], names)
        return fields

    def _workflow(self, data: dict, path: Path, order: int, names: frozenset[str]) -> dict:
        self.calls.append((path, data["workflow"], data.get("inputs", {})))
        return {"workflow": data["workflow"],
                "inputs": self.tree(data.get("inputs", {}), (*path, "inputs"), order, data["id"], names)}

    def expression(self, text: str, path: Path, limit: int, own: str | None, names: frozenset[str]) -> Any:
        try:
            compiled = compile_expression(text, key_path(path))
        except TemplateError as err:
            raise _Problem(path, err.reason) from None
        self.checks.append((compiled, path, limit, own, names))
        return compiled

    def tree(self, value: Any, path: Path, limit: int, own: str | None, names: frozenset[str]) -> Any:
        """A JSON-like value with its strings compiled (plain text stays a str); mapping keys are kept."""
        if isinstance(value, str):
            try:
                compiled = compile_template(value, key_path(path))
            except TemplateError as err:
                raise _Problem(path, err.reason) from None
            if not isinstance(compiled, str):
                self.checks.append((compiled, path, limit, own, names))
            return compiled
        if isinstance(value, Mapping):
            return {key: self.tree(item, (*path, str(key)), limit, own, names) for key, item in value.items()}
        if isinstance(value, list):
            return [self.tree(item, (*path, index), limit, own, names) for index, item in enumerate(value)]
        return value

    def check_tool(self, path: Path, name: str) -> None:
        if not any(fnmatchcase(name, allowed) for allowed in self.tools):
            allowed = ", ".join(self.tools) if self.tools else "none"
            raise _Problem(path, f"{name!r} is not allowed by the workflow's tools ({allowed})")

    def check_references(self, renderable: Any, path: Path, limit: int, own: str | None, names: frozenset[str]) -> None:
        unknown = sorted(referenced_names(renderable) - names)
        if unknown:
            usable = ", ".join(sorted(names - {"range"}))
            raise _Problem(path, f"unknown name {unknown[0]!r} (templates here can use {usable} and range)")
        for step_id in sorted(referenced_steps(renderable)):
            if step_id not in self.ids:
                raise _Problem(path, f"refers to steps.{step_id}, which is not a step of this workflow")
            order, where = self.ids[step_id]
            if step_id == own or order >= limit:
                later = "it is this step" if step_id == own else f"{where} does not run before this"
                raise _Problem(path, f"refers to steps.{step_id}, which is not an earlier step ({later})")

    def check_chat(self, chat: ChatBinding, inputs: Mapping[str, Any]) -> None:
        properties = inputs.get("properties")
        if not isinstance(properties, Mapping) or chat.input not in properties:
            known = ", ".join(map(str, properties)) if isinstance(properties, Mapping) and properties else "none"
            raise _Problem(("chat", "input"), f"must name one of the inputs' properties ({known})", chat.input)
        if chat.answer not in self.ids:
            raise _Problem(("chat", "answer"), "must be the id of a step of this workflow", chat.answer)


def _check_calls(found: Mapping[str, tuple[Workflow, list[tuple[Path, str, Any]]]]) -> None:
    """Every `workflow` step names a loaded workflow, gives its required inputs, and calls form no cycle and
    nest at most MAX_DEPTH deep."""

    def fail(workflow: Workflow, path: Path, problem: str) -> ConfigError:
        param = key_path(path)
        return ConfigError(f"{workflow.source}: {param}: {problem}", param=param, problem=problem)

    for name in sorted(found):
        workflow, calls = found[name]
        for path, callee, inputs in calls:
            if callee not in found:
                known = ", ".join(sorted(found))
                raise fail(workflow, (*path, "workflow"), f"unknown workflow {callee!r} (loaded: {known})")
            required = found[callee][0].inputs.get("required")
            if isinstance(inputs, Mapping) and isinstance(required, list):
                missing = [key for key in required if key not in inputs]
                if missing:
                    raise fail(workflow, (*path, "inputs"), f"lacks {missing[0]!r}, required by workflow {callee!r}")

    def walk(root: str, chain: tuple[str, ...], first: Path | None, depth_check: bool) -> None:
        for path, callee in ((path, callee) for path, callee, _ in found[chain[-1]][1]):
            call = first or path
            if callee == root and not depth_check:
                raise fail(found[root][0], (*call, "workflow"), "calls itself: " + " → ".join((*chain, callee)))
            if callee in chain:
                continue
            if depth_check and len(chain) > MAX_DEPTH:
                shown = " → ".join((*chain, callee))
                raise fail(found[root][0], (*call, "workflow"),
                           f"nests sub-workflows {len(chain)} deep ({shown}); at most {MAX_DEPTH}")
            walk(root, (*chain, callee), call, depth_check)

    for depth_check in (False, True):  # cycles first: a cycle is also too deep
        for name in sorted(found):
            walk(name, (name,), None, depth_check)
