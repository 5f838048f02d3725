"""Running one round of the model's calls to gateway tools: concurrently, capped, failures as text for the model."""

from __future__ import annotations

import json
from collections.abc import Generator
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait

from ..errors import APIError
from ..mcp.errors import MCPError
from ..mcp.errors import ToolDenied
from ..mcp.errors import ToolTimeout
from ..mcp.results import truncate_utf8
from ..metrics import count_tool_call
from ..plugins.api import Reject
from ..translate.reply import new_call_id
from .toolset import Toolset


class ToolFailed(Exception):
    """A tool call that did not give a result (its text says why)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ToolRunner:
    """Runs tool calls (MCP servers' and plugins') on a thread pool of its own; one per app, shut down with the
    worker. Plugins' `on_tool_call` hooks run before every call.

    The pool has `max_workers` threads (made only as needed), enough for every request thread to run a
    full round at once, so that one request's slow tools never queue another's.
    """

    def __init__(self, mcp, plugins, settings, *, max_workers: int, tick: float, count_calls: bool = True):
        self.mcp = mcp
        self.plugins = plugins
        self.settings = settings
        self.tick = tick
        self.count_calls = count_calls  # in MCP_TOOL_CALLS (METRICS_ENABLED)
        self.executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tool-call")

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    def run_round(self, calls: list[dict], toolset: Toolset, request_id: str | None, calls_before: int,
                  model: str = "", states: dict | None = None) -> Generator[None, None, tuple[list[dict], list[dict], int]]:
        """Run `calls`; yields None every `tick` seconds while they run; returns (calls with ids, tool messages, calls run).

        At most `max_tool_calls_per_round` calls run, and no more than `max_total_tool_calls` in the whole
        request; the others are answered with an error text. Closing the generator cancels calls not yet started.
        """
        calls = [{**call, "id": call.get("id") or new_call_id()} for call in calls]
        per_round, total = self.settings.max_tool_calls_per_round, self.settings.max_total_tool_calls
        budget = max(0, min(per_round, total - calls_before))
        futures: list[Future | None] = [self.executor.submit(self._call_one, call, toolset, request_id, model,
                                                                   {} if states is None else states)
                                        if i < budget else None for i, call in enumerate(calls)]
        try:
            pending = {f for f in futures if f is not None}
            while pending:
                _, pending = wait(pending, timeout=self.tick)
                if pending:
                    yield None
        finally:
            for future in futures:
                if future is not None:
                    future.cancel()
        messages = []
        for i, (call, future) in enumerate(zip(calls, futures, strict=True)):
            if future is not None:
                text = future.result()
            elif i >= per_round:
                text = f"Error: not run: at most {per_round} tool calls per round"
            else:
                text = f"Error: not run: at most {total} tool calls per request"
            messages.append({"role": "tool", "content": text, "tool_name": call["function"]["name"],
                             "tool_call_id": call["id"]})
        return calls, messages, min(budget, len(calls))

    def _call_one(self, call: dict, toolset: Toolset, request_id: str | None, model: str, states: dict) -> str:
        """One call of the model's, with every failure as text the model reads."""
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                return "Error: the arguments were not valid JSON"
        try:
            return self.run_tool(function.get("name"), arguments, toolset, request_id, model, states)
        except ToolFailed as err:
            return f"Error: {err.message}"

    def run_tool(self, name, arguments, toolset: Toolset, request_id: str | None, model: str = "",
                 states: dict | None = None) -> str:
        """Run one tool of `toolset` (plugins' `on_tool_call` first) and return its text.

        :raises ToolFailed: unknown tool, arguments not an object, a refusal, or the tool's own failure.
        """
        if not isinstance(arguments, dict):
            raise ToolFailed("the arguments must be a JSON object")
        plugin_route = toolset.plugin_routes.get(name)
        pool = self.mcp.pool
        route = None if plugin_route else toolset.routes.get(name) or (pool.resolve(name) if pool is not None else None)
        if plugin_route is None and route is None:
            raise ToolFailed(f"there is no tool named {name!r}")
        outcome = "error"
        try:
            if self.plugins.table.tool_call:
                arguments = self.plugins.run_tool_call(name, arguments, request_id, model, {} if states is None else states)
            if plugin_route is not None:
                text = self._plugin_result(*plugin_route, arguments, request_id)
            else:
                result = pool.call_tool(*route, arguments, request_id=request_id)  # type: ignore[union-attr,misc]
                if result.is_error:  # the tool ran and reported a failure
                    raise ToolFailed(result.text.removeprefix("Error: "))
                text = result.text
            outcome = "ok"
            return text
        except Reject as err:
            outcome = "rejected"
            raise ToolFailed(err.message) from None
        except (MCPError, APIError) as err:
            outcome = _outcome(err)
            raise ToolFailed(str(err)) from None
        finally:
            if self.count_calls:
                count_tool_call(*(plugin_route or route), outcome)  # type: ignore[misc]

    def _plugin_result(self, plugin: str, tool: str, arguments: dict, request_id: str | None) -> str:
        result = self.plugins.call_tool(plugin, tool, arguments, request_id)
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
        return truncate_utf8(text, self.settings.max_tool_result_size)


def _outcome(err: MCPError | APIError) -> str:
    """How a call that raised ended, for MCP_TOOL_CALLS: timeout, rejected (the allow/deny globs) or error."""
    if isinstance(err, ToolTimeout) or getattr(err, "status", None) == 504:
        return "timeout"
    return "rejected" if isinstance(err, ToolDenied) else "error"
