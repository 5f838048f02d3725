"""Running a workflow: its steps in order, branches, loops, bounded parallel foreach, retries and sub-workflows,
with its limits enforced (steps run, tokens, a deadline that closes the upstream request).

llm steps go through the chat pipeline's upstream rounds (tools in the same tool loop as chat), tool steps
through the same tool runner, so MCP and plugin tools and `on_tool_call` behave as in chat.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING
from typing import Any

from ..errors import APIError
from ..errors import InvalidRequest
from ..errors import NotFound
from ..schemas import validate_body
from ..schemas.chat import ChatCompletionRequest
from ..tools.runner import ToolFailed
from ..tools.toolset import NO_TOOLS
from ..tools.toolset import Toolset
from ..translate.request import to_ollama_chat
from ..translate.usage import Usage
from .model import Step
from .model import Workflow
from .runs import RunRecord
from .runs import RunStore
from .runs import SharedRunStore
from .runs import StepRecord

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaMismatch

_SCHEMA = ChatCompletionRequest()
RETRYABLE = {"timeout", "upstream", "tool_error", "invalid_json"}
RUN_LEVEL = {"workflow_timeout", "workflow_limit_exceeded", "cancelled"}  # never retried, never continued past
MAX_DEPTH = 3


def _mismatch(schema: Mapping, instance: Any) -> SchemaMismatch | None:
    """The most relevant way `instance` fails JSON Schema `schema`, or None when it matches."""
    # Imported on first use: jsonschema (with referencing and attrs) costs megabytes in workers without workflows.
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for

    return best_match(validator_for(schema)(schema).iter_errors(instance))


class WorkflowFailed(Exception):
    """A step (or the run) failed: `code` is one of RETRYABLE, RUN_LEVEL, `template_error`, `invalid_step`,
    `workflow_output_invalid`."""

    def __init__(self, code: str, message: str, *, step_id: str | None = None, param: str | None = None):
        super().__init__(message)
        self.code, self.message, self.step_id, self.param = code, message, step_id, param

    def error(self) -> dict:
        return {"code": self.code, "message": self.message, "step_id": self.step_id, "param": self.param}


class Run:
    """The state of one run: its record, counters and deadline (shared with its sub-workflows)."""

    def __init__(self, workflow: Workflow, record: RunRecord, on_event: Callable[[str, dict], None] | None,
                 on_token: Callable[[str], None] | None, answer_step: str | None):
        self.workflow = workflow
        self.record = record
        self.deadline = time.monotonic() + workflow.limits.max_runtime
        self.steps_run = 0
        self.lock = threading.Lock()
        self.on_event = on_event
        self.on_token = on_token
        self.answer_step = answer_step
        self.cancelled = threading.Event()
        self._stops: set[Callable[[], None]] = set()  # what closes the upstream requests in flight

    def cancel(self) -> None:
        """Stop the run: requests in flight are closed (which stops Ollama), no further step starts."""
        self.cancelled.set()
        with self.lock:
            stops = list(self._stops)
        for stop in stops:
            stop()

    def in_flight(self, stop: Callable[[], None], add: bool) -> None:
        with self.lock:
            (self._stops.add if add else self._stops.discard)(stop)
        if add and self.cancelled.is_set():
            stop()
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def count_step(self, step: Step) -> None:
        with self.lock:
            self.steps_run += 1
            over = self.steps_run > self.workflow.limits.max_steps
        if over:
            raise WorkflowFailed("workflow_limit_exceeded", f"the run reached max_steps "
                                 f"({self.workflow.limits.max_steps})", step_id=step.id, param="limits.max_steps")
        if self.cancelled.is_set():
            raise WorkflowFailed("cancelled", "the run was cancelled", step_id=step.id)
        if self.remaining() <= 0:
            raise WorkflowFailed("workflow_timeout", f"the run passed max_runtime ({self.workflow.limits.max_runtime:g}s)",
                                 step_id=step.id, param="limits.max_runtime")

    def add_usage(self, record: StepRecord, usage: Usage) -> None:
        with self.lock:
            record.usage += usage
            self.record.usage += usage

    def emit(self, kind: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(kind, data)


class WorkflowEngine:
    """Runs the workflows of one app; the records of recent runs are in `store`."""

    def __init__(self, workflows: Mapping[str, Workflow], pipeline, store: RunStore | SharedRunStore, *,
                 keep_alive: float = 10.0):
        self.workflows = workflows
        self.pipeline = pipeline
        self.store = store
        self.keep_alive = keep_alive  # seconds between keep-alive comments of a streamed run

    def model_names(self) -> list[str]:
        """`workflow:<name>` for each workflow that answers as a model (it has a `chat:` binding)."""
        return [f"workflow:{w.name}" for w in self.workflows.values() if w.chat is not None]

    def get(self, name: str) -> Workflow:
        workflow = self.workflows.get(name)
        if workflow is None:
            raise NotFound(f"There is no workflow named {name!r}.", param="name", code="workflow_not_found")
        return workflow

    def check_inputs(self, workflow: Workflow, inputs: Any) -> None:
        """:raises InvalidRequest: `workflow_input_invalid`, `param` naming the input (`inputs.ticket`)."""
        error = _mismatch(workflow.inputs, inputs)
        if error is None:
            return
        path = list(error.absolute_path)
        if error.validator == "required" and not path:
            missing = next((name for name in workflow.inputs.get("required", []) if name not in (inputs or {})), None)
            path = [missing] if missing else []
        param = "inputs" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        raise InvalidRequest(f"Invalid workflow input {param}: {error.message}", param=param,
                             code="workflow_input_invalid")

    def run(self, workflow: Workflow, inputs: dict, request_id: str | None, *,
            on_event: Callable[[str, dict], None] | None = None, on_token: Callable[[str], None] | None = None,
            answer_step: str | None = None, record: RunRecord | None = None,
            cancelled: threading.Event | None = None) -> RunRecord:
        """Run to the end (inputs already checked); the record says how it went and is kept in the store.

        `on_token` gets the text pieces of step `answer_step` as they arrive (the workflow as a streamed model).
        Setting `cancelled` (the client left) stops the run and closes its upstream requests.
        """
        record = record or RunRecord(workflow.name, inputs, request_id)
        self.store.add(record)
        run = Run(workflow, record, on_event, on_token, answer_step)
        watcher = _watch_cancel(cancelled, run) if cancelled is not None else None
        run.emit("run.created", run=record.public())
        scope = {"inputs": inputs, "steps": {}}
        try:
            self._steps(run, workflow, workflow.steps, scope, depth=0)
            outputs = self._outputs(workflow, scope)
        except WorkflowFailed as err:
            record.status, record.error = ("cancelled" if err.code == "cancelled" else "failed"), err.error()
        else:
            record.status, record.outputs = "completed", outputs
        finally:
            if watcher is not None:
                watcher.set()
        record.completed_at = int(time.time())
        self.store.add(record)  # again: a shared store keeps a copy, not the record itself
        run.emit("run.completed" if record.status == "completed" else "run.failed", run=record.public())
        return record

    # -- steps -----------------------------------------------------------------------------------

    def _steps(self, run: Run, workflow: Workflow, steps, scope: dict, depth: int) -> Any:
        output = None
        for step in steps:
            output = self._step(run, workflow, step, scope, depth)
        return output

    def _step(self, run: Run, workflow: Workflow, step: Step, scope: dict, depth: int) -> Any:
        record = StepRecord(step.id, step.type)
        run.record.steps.append(record)
        if step.when is not None and not self._render(step.when, scope, step):
            return self._skip(run, record, step, scope)
        run.emit("step.started", step_id=step.id, step_type=step.type)
        try:
            output = self._attempts(run, workflow, step, scope, record, depth)
        except WorkflowFailed as err:
            err.step_id = err.step_id or step.id
            continues = err.code not in RUN_LEVEL and (step.on_error or workflow.defaults.on_error) == "continue"
            record.status, record.error = "failed", err.error()
            record.output = step.default if continues else None
            record.duration_ms = _ms(record.started)
            run.emit("step.failed", step=record.public())
            if not continues:
                raise
            scope["steps"][step.id] = {"output": step.default, "status": "failed"}
            return step.default
        if record.status == "in_progress":
            record.status = "completed"
        record.output, record.duration_ms = output, _ms(record.started)
        scope["steps"][step.id] = {"output": output, "status": record.status}
        run.emit("step.completed", step=record.public())
        return output

    def _skip(self, run: Run, record: StepRecord, step: Step, scope: dict) -> Any:
        record.status, record.output, record.duration_ms = "skipped", step.default, 0.0
        scope["steps"][step.id] = {"output": step.default, "status": "skipped"}
        run.emit("step.skipped", step=record.public())
        return step.default

    def _attempts(self, run: Run, workflow: Workflow, step: Step, scope: dict, record: StepRecord, depth: int) -> Any:
        """The step's output, retried on retryable failures with exponential backoff within the deadline."""
        delay = step.retry.backoff
        for attempt in range(1, max(1, step.retry.max_attempts) + 1):
            run.count_step(step)
            record.attempts = attempt
            try:
                return self._execute(run, workflow, step, scope, record, depth)
            except WorkflowFailed as err:
                last = attempt >= step.retry.max_attempts or err.code not in RETRYABLE
                if last or run.remaining() <= delay:
                    raise
                run.emit("step.retrying", step_id=step.id, attempt=attempt, error=err.error())
                time.sleep(delay)
                delay = min(delay * 2, step.retry.max_backoff)
        raise AssertionError("unreachable")

    def _execute(self, run: Run, workflow: Workflow, step: Step, scope: dict, record: StepRecord, depth: int) -> Any:
        kind = step.type
        if kind == "llm":
            return self._llm(run, workflow, step, scope, record)
        if kind == "tool":
            return self._tool(run, workflow, step, scope)
        if kind == "transform":
            return self._render(step.value, scope, step)
        if kind == "branch":
            return self._branch(run, workflow, step, scope, depth)
        if kind == "foreach":
            return self._foreach(run, workflow, step, scope, record, depth)
        if kind == "loop":
            return self._loop(run, workflow, step, scope, record, depth)
        if kind == "workflow":
            return self._subworkflow(run, step, scope, depth)
        raise WorkflowFailed("invalid_step", f"unknown step type {kind!r}", step_id=step.id)

    def _branch(self, run: Run, workflow: Workflow, step: Step, scope: dict, depth: int) -> Any:
        taken = next((i for i, case in enumerate(step.cases) if self._render(case.when, scope, step)), None)
        output = None
        for i, case in enumerate(step.cases):
            if i == taken:
                output = self._steps(run, workflow, case.steps, scope, depth)
            else:
                self._skip_all(run, case.steps, scope)
        if taken is None:
            output = self._steps(run, workflow, step.default_steps, scope, depth)
        else:
            self._skip_all(run, step.default_steps, scope)
        return output

    def _skip_all(self, run: Run, steps, scope: dict) -> None:
        """Steps of a branch not taken: recorded as skipped, their output their `default` (else null)."""
        for step in steps:
            record = StepRecord(step.id, step.type)
            run.record.steps.append(record)
            self._skip(run, record, step, scope)
            for case in step.cases:
                self._skip_all(run, case.steps, scope)
            self._skip_all(run, (*step.default_steps, *step.steps), scope)

    def _foreach(self, run: Run, workflow: Workflow, step: Step, scope: dict, record: StepRecord, depth: int) -> list:
        items = self._render(step.items, scope, step)
        if items is None:
            items = []
        if not isinstance(items, (list, tuple)):
            raise WorkflowFailed("invalid_step", f"items must be a list, got {type(items).__name__}", step_id=step.id)
        inner = step.step
        assert inner is not None

        def one(item: Any) -> Any:
            item_record = StepRecord(step.id, inner.type)
            try:
                return self._attempts(run, workflow, inner, {**scope, "item": item}, item_record, depth)
            except WorkflowFailed as err:
                if err.code in RUN_LEVEL or (inner.on_error or workflow.defaults.on_error) != "continue":
                    raise
                return inner.default
            finally:
                with run.lock:  # the run's total has it already (from the item's own llm step)
                    record.usage += item_record.usage

        workers = max(1, min(step.parallel, workflow.limits.max_parallel, len(items) or 1))
        if workers == 1:
            return [one(item) for item in items]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"workflow-{step.id}") as pool:
            futures = [pool.submit(one, item) for item in items]
            try:
                return [future.result() for future in futures]  # in item order
            except BaseException:
                for future in futures:  # the items not started yet are not run
                    future.cancel()
                raise

    def _loop(self, run: Run, workflow: Workflow, step: Step, scope: dict, record: StepRecord, depth: int) -> Any:
        output = None
        for iteration in range(step.max_iterations):
            scope = {**scope, "iteration": iteration}
            output = self._steps(run, workflow, step.steps, scope, depth)
            if step.until is not None and self._render(step.until, scope, step):
                return output
        record.status = "exhausted"  # `until` never held: the last iteration's output stands
        return output

    def _subworkflow(self, run: Run, step: Step, scope: dict, depth: int) -> Any:
        if depth + 1 > MAX_DEPTH:
            raise WorkflowFailed("invalid_step", f"sub-workflows nest at most {MAX_DEPTH} deep", step_id=step.id)
        child = self.get(step.workflow or "")
        inputs = self._render(step.inputs, scope, step)
        try:
            self.check_inputs(child, inputs)
        except InvalidRequest as err:
            raise WorkflowFailed("invalid_step", err.message, step_id=step.id, param=err.param) from None
        child_scope = {"inputs": inputs, "steps": {}}
        self._steps(run, child, child.steps, child_scope, depth + 1)
        return self._outputs(child, child_scope)

    # -- llm and tool steps ------------------------------------------------------------------------

    def _llm(self, run: Run, workflow: Workflow, step: Step, scope: dict, record: StepRecord) -> Any:
        if run.record.usage.prompt + run.record.usage.completion >= workflow.limits.max_tokens:
            raise WorkflowFailed("workflow_limit_exceeded", f"the run reached max_tokens ({workflow.limits.max_tokens})",
                                 step_id=step.id, param="limits.max_tokens")
        if step.messages:
            messages = [{"role": m.get("role", "user"), "content": self._render(m.get("content"), scope, step)}
                        for m in step.messages]
        else:
            messages = [{"role": "user", "content": self._render(step.prompt, scope, step)}]
        for message in messages:
            if not isinstance(message["content"], str):
                message["content"] = json.dumps(message["content"], ensure_ascii=False, default=str)
        body = {"model": step.model or workflow.defaults.model, "messages": messages, **dict(step.options)}
        if step.response_format:
            body["response_format"] = dict(step.response_format)
        try:
            req = validate_body(_SCHEMA, body)
            upstream = to_ollama_chat(req, stream=True, keep_alive=self.pipeline.keep_alive)
        except APIError as err:
            raise WorkflowFailed("invalid_step", err.message, step_id=step.id, param=err.param) from None
        from ..pipeline.rounds import Rounds

        timeout, is_deadline = self._time_for(run, workflow, step)
        closed = threading.Event()
        request_id = run.record.request_id

        def open_lines(payload: dict):
            lines = self.pipeline.open_lines(payload, request_id)
            if closed.is_set():
                lines.close()
            return lines

        stream_tokens = run.on_token if step.id == run.answer_step else None
        try:
            rounds = Rounds(open_lines, upstream, self._toolset(workflow, step.tools), self.pipeline.tools.runner,
                            step.max_tool_rounds, request_id, model=req["model"])
        except APIError as err:
            raise WorkflowFailed("upstream", err.message, step_id=step.id) from None

        def stop() -> None:  # the deadline: closing the upstream response stops Ollama's generation
            closed.set()
            rounds.close()

        timer = threading.Timer(timeout, stop)
        timer.daemon = True
        timer.start()
        run.in_flight(stop, True)
        try:
            for item in rounds:
                if item is None:
                    continue
                for line in item:
                    piece = (line.get("message") or {}).get("content")
                    if piece and stream_tokens is not None:
                        stream_tokens(piece)
        except Exception as err:  # noqa: BLE001 - a closed response raises whatever requests raises
            if run.cancelled.is_set():
                raise WorkflowFailed("cancelled", "the run was cancelled", step_id=step.id) from None
            if closed.is_set():
                raise self._timeout(workflow, step, timeout, is_deadline) from None
            message = err.message if isinstance(err, APIError) else type(err).__name__
            raise WorkflowFailed("upstream", message, step_id=step.id) from None
        finally:
            timer.cancel()
            run.in_flight(stop, False)
            rounds.close()
            run.add_usage(record, rounds.usage)
        if rounds.last is None:
            raise self._timeout(workflow, step, timeout, is_deadline)
        text = rounds.last.merged.message()["content"]
        if step.response_format and step.response_format.get("type") in ("json_object", "json_schema"):
            try:
                return json.loads(text)
            except ValueError:
                raise WorkflowFailed("invalid_json", "the model's answer is not valid JSON", step_id=step.id) from None
        return text

    def _tool(self, run: Run, workflow: Workflow, step: Step, scope: dict) -> Any:
        arguments = self._render(step.arguments, scope, step)
        toolset = self._toolset(workflow, (step.tool or "",))
        runner = self.pipeline.tools.runner
        timeout, is_deadline = self._time_for(run, workflow, step)
        future = runner.executor.submit(runner.run_tool, step.tool, arguments, toolset, run.record.request_id)
        try:
            text = future.result(timeout)
        except FutureTimeout:
            raise self._timeout(workflow, step, timeout, is_deadline) from None
        except ToolFailed as err:
            raise WorkflowFailed("tool_error", err.message, step_id=step.id) from None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def _toolset(self, workflow: Workflow, globs) -> Toolset:
        """The gateway's tools this step may call: allowed by the workflow's `tools` and the step's own globs."""
        if not globs or not workflow.tools:
            return NO_TOOLS
        offered = self.pipeline.tools.offer({"messages": []})

        def allowed(name: str) -> bool:
            return any(fnmatchcase(name, g) for g in workflow.tools) and any(fnmatchcase(name, g) for g in globs)

        routes = {n: r for n, r in offered.routes.items() if allowed(n)}
        plugin_routes = {n: r for n, r in offered.plugin_routes.items() if allowed(n)}
        keep = {*routes, *plugin_routes}
        return Toolset(routes, [t for t in offered.openai_tools if t["function"]["name"] in keep], frozenset(),
                       plugin_routes)

    # -- plumbing ----------------------------------------------------------------------------------

    def _time_for(self, run: Run, workflow: Workflow, step: Step) -> tuple[float, bool]:
        """(seconds this call may take, whether that is the run's deadline rather than the step's timeout)."""
        step_timeout = step.timeout or workflow.defaults.timeout
        remaining = run.remaining()
        return (max(remaining, 0.001), True) if remaining <= step_timeout else (step_timeout, False)

    def _timeout(self, workflow: Workflow, step: Step, seconds: float, is_deadline: bool) -> WorkflowFailed:
        if is_deadline:
            return WorkflowFailed("workflow_timeout", f"the run passed max_runtime ({workflow.limits.max_runtime:g}s)",
                                  step_id=step.id, param="limits.max_runtime")
        return WorkflowFailed("timeout", f"step {step.id!r} took longer than {seconds:g}s", step_id=step.id)

    def _render(self, tree: Any, scope: dict, step: Step) -> Any:
        # Already loaded with the workflow files; a gateway without workflows never loads the Jinja sandbox.
        from .templates import TemplateError
        from .templates import render_tree

        try:
            return render_tree(tree, scope)
        except TemplateError as err:
            raise WorkflowFailed("template_error", str(err), step_id=step.id) from None

    def _outputs(self, workflow: Workflow, scope: dict) -> Any:
        from .templates import TemplateError
        from .templates import render_tree

        if workflow.output is None:
            outputs = {step_id: state["output"] for step_id, state in scope["steps"].items()}
        else:
            try:
                outputs = render_tree(workflow.output, scope)
            except TemplateError as err:
                raise WorkflowFailed("template_error", f"output: {err}") from None
        if workflow.outputs is not None:
            error = _mismatch(workflow.outputs, outputs)
            if error is not None:
                raise WorkflowFailed("workflow_output_invalid", f"the outputs do not match the workflow's outputs "
                                     f"schema: {error.message}", param="outputs")
        return outputs


def _watch_cancel(cancelled: threading.Event, run: Run) -> threading.Event:
    """A thread that cancels the run once `cancelled` is set; set the returned event when the run is over."""
    over = threading.Event()

    def watch() -> None:
        while not over.is_set():
            if cancelled.wait(0.2):
                run.cancel()
                return

    threading.Thread(target=watch, daemon=True, name="workflow-cancel").start()
    return over


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
