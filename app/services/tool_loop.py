"""The MCP tool loop: offer MCP tools with the client's, run the MCP calls the model makes, ask again.

Rounds run until the model answers without MCP calls, calls a client tool (those calls go back to the
client), or `max_tool_rounds` is reached; then one last request without tools lets the model answer.
Tool failures become tool-message text the model can read. `usage` sums every round.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from loguru import logger

from ..errors import APIError
from ..errors import InvalidRequest
from ..streaming import DONE
from ..streaming import KEEP_ALIVE
from ..streaming import sse
from ..streaming import sse_error
from .chat import ChatService
from .completion import add_usage
from .completion import new_call_id
from .completion import new_completion_id
from .completion import to_chat_completion
from .completion import usage
from .upstream_lines import UpstreamLines


@dataclass(frozen=True)
class Toolset:
    """The MCP tools offered in one request: exposed name → (server, tool)."""

    routes: dict[str, tuple[str, str]]
    openai_tools: list[dict]
    client_names: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.routes)


def select_tools(pool, option, client_tools: list[dict] | None) -> Toolset:
    """MCP tools for this request after the body's `mcp` field (`false`, or `{"servers": [...]}`).

    A client tool with the same name as an MCP tool hides it.
    :raises InvalidRequest: for a malformed `mcp` field or an unknown server name.
    """
    if option is False or pool is None:
        return Toolset({}, [])
    servers = None
    if isinstance(option, dict):
        servers = option.get("servers")
        if servers is not None and (not isinstance(servers, list) or not all(isinstance(s, str) for s in servers)):
            raise InvalidRequest("mcp.servers must be a list of server names.", param="mcp.servers")
        known = {state["name"] for state in pool.states()}
        unknown = [s for s in servers or [] if s not in known]
        if unknown:
            raise InvalidRequest(f"Unknown MCP server {unknown[0]!r}.", param="mcp.servers")
    elif option not in (None, True):
        raise InvalidRequest("mcp must be true, false or an object such as {\"servers\": [\"time\"]}.", param="mcp")
    taken = {t.get("function", {}).get("name") for t in client_tools or []}
    tools = [t for t in pool.exposed_tools() if (servers is None or t.server in servers) and t.exposed_name not in taken]
    return Toolset({t.exposed_name: (t.server, t.tool) for t in tools}, [t.as_openai_tool() for t in tools],
                   frozenset(taken - {None}))


class ToolLoop:
    """Runs chat completions whose model may call MCP tools; one per app."""

    def __init__(self, chat: ChatService, pool, settings, keep_alive_interval: float = 10.0):
        self.chat = chat
        self.pool = pool
        self.settings = settings
        self.keep_alive_interval = keep_alive_interval
        self.executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="mcp-call")

    # -- whole answers -------------------------------------------------------------------------

    def complete(self, body: dict, toolset: Toolset, request_id: str | None) -> dict:
        body = _with_tools(body, toolset)
        total_usage: dict | None = None
        calls_made = 0
        for round_number in range(self.settings.max_tool_rounds + 1):
            final = round_number == self.settings.max_tool_rounds
            reply = self.chat.complete_upstream(_without_tools(body) if final else body, request_id)
            total_usage = add_usage(total_usage, usage(reply))
            calls = reply["message"].get("tool_calls") or []
            mcp_calls, client_calls = _split(calls, toolset)
            if final or client_calls or not mcp_calls:
                if client_calls:
                    reply["message"]["tool_calls"] = client_calls
                break
            calls_made += len(mcp_calls)
            self._run_round(body["messages"], reply["message"], mcp_calls, toolset, request_id, calls_made)
        answer = to_chat_completion(reply, completion_id=new_completion_id(), created=int(time.time()),
                                    reasoning_content=self.chat.reasoning_content)
        answer["usage"] = total_usage
        return answer

    # -- streams -------------------------------------------------------------------------------

    def stream(self, req: dict, body: dict, toolset: Toolset, request_id: str | None) -> Iterator[bytes]:
        """Open the first round now (early errors keep their status), then stream from a producer thread."""
        body = _with_tools(body, toolset)
        first, translator = self.chat.start_stream(req, body, request_id)
        return self._pump(body, toolset, request_id, first, translator)

    def _pump(self, body, toolset, request_id, first: UpstreamLines, translator) -> Iterator[bytes]:
        events: queue.Queue = queue.Queue()
        cancelled = threading.Event()
        current = {"lines": first}
        producer = threading.Thread(target=self._produce, name="mcp-stream", daemon=True,
                                    args=(body, toolset, request_id, current, translator, events, cancelled))
        producer.start()
        try:
            while True:
                try:
                    item = events.get(timeout=self.keep_alive_interval)
                except queue.Empty:
                    yield KEEP_ALIVE
                    continue
                if item is None:
                    return
                yield item
        finally:
            cancelled.set()
            current["lines"].close()

    def _produce(self, body, toolset, request_id, current, translator, events: queue.Queue, cancelled) -> None:
        total_usage: dict | None = None
        calls_made = 0
        try:
            for round_number in range(self.settings.max_tool_rounds + 1):
                final = round_number == self.settings.max_tool_rounds
                if round_number:
                    if cancelled.is_set():
                        return
                    current["lines"] = self.chat.open_stream(_without_tools(body) if final else body, request_id)
                    if cancelled.is_set():  # the client left while this round was being opened
                        current["lines"].close()
                        return
                mcp_calls, client_calls, content, done = [], [], "", {}
                with current["lines"] as lines:
                    for line in lines:
                        if cancelled.is_set():
                            return
                        message = line.get("message") or {}
                        ours, theirs = _split(message.get("tool_calls") or [], toolset)
                        mcp_calls += ours
                        client_calls += theirs
                        content += message.get("content") or ""
                        shown = {**line, "message": {**message, "tool_calls": theirs}}
                        for chunk in translator.deltas(shown):
                            events.put(sse(chunk))
                        done = line
                total_usage = add_usage(total_usage, usage(done))
                if final or client_calls or not mcp_calls:
                    counts = {"prompt_eval_count": total_usage["prompt_tokens"], "eval_count": total_usage["completion_tokens"]}
                    for chunk in translator.finish({**done, **counts}):
                        events.put(sse(chunk))
                    events.put(DONE)
                    return
                calls_made += len(mcp_calls)
                assistant = {"role": "assistant", "content": content}
                self._run_round(body["messages"], assistant, mcp_calls, toolset, request_id, calls_made)
        except APIError as err:
            logger.bind(request_id=request_id, code=err.code).warning("stream failed after it started: {}", err.message)
            events.put(sse_error(err))
        except Exception:
            logger.bind(request_id=request_id).exception("tool loop failed")
            events.put(sse_error(APIError("The gateway failed while running tools.", code="internal_error")))
        finally:
            events.put(None)

    # -- one round of MCP calls ----------------------------------------------------------------

    def _run_round(self, messages: list, assistant: dict, calls: list[dict], toolset: Toolset,
                   request_id: str | None, calls_made: int) -> None:
        """Append the assistant turn and one tool message per call (run concurrently, capped)."""
        calls = [{**call, "id": call.get("id") or new_call_id()} for call in calls]
        messages.append({"role": "assistant", "content": assistant.get("content") or "",
                         **({"thinking": assistant["thinking"]} if assistant.get("thinking") else {}),
                         "tool_calls": calls})
        limit = self.settings.max_tool_calls_per_round
        over_total = calls_made > self.settings.max_total_tool_calls
        futures = [None if i >= limit or over_total else
                   self.executor.submit(self._call_one, call, toolset, request_id) for i, call in enumerate(calls)]
        for call, future in zip(calls, futures, strict=True):
            if future is None:
                text = (f"Error: not run: at most {limit} tool calls per round" if not over_total else
                        f"Error: not run: at most {self.settings.max_total_tool_calls} tool calls per request")
            else:
                text = future.result()
            messages.append({"role": "tool", "content": text, "tool_name": call["function"]["name"],
                             "tool_call_id": call["id"]})

    def _call_one(self, call: dict, toolset: Toolset, request_id: str | None) -> str:
        from ..mcp import MCPError

        function = call.get("function") or {}
        name = function.get("name")
        route = toolset.routes.get(name) or self.pool.resolve(name)
        if route is None:
            return f"Error: there is no tool named {name!r}"
        server, tool = route
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments or "{}")
            except ValueError:
                return "Error: the arguments were not valid JSON"
        if not isinstance(arguments, dict):
            return "Error: the arguments must be a JSON object"
        try:
            return self.pool.call_tool(server, tool, arguments, request_id=request_id).text
        except MCPError as err:
            return f"Error: {err}"


def _split(calls: list[dict], toolset: Toolset) -> tuple[list[dict], list[dict]]:
    """(calls the gateway runs, calls for the client): only the client's own tool names go back to it."""
    theirs = [c for c in calls if (c.get("function") or {}).get("name") in toolset.client_names]
    return [c for c in calls if c not in theirs], theirs


def _with_tools(body: dict, toolset: Toolset) -> dict:
    return {**body, "messages": list(body["messages"]), "tools": [*(body.get("tools") or []), *toolset.openai_tools]}


def _without_tools(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "tools"}
