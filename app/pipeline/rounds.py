"""The upstream rounds of one chat answer: one for a plain chat, more while the model calls gateway-run tools.

Rounds run until the model answers without gateway tool calls, calls a client tool (those calls go back to
the client), or `max_rounds` is reached; then one last request without tools lets the model answer. Whole
and streamed answers iterate the same rounds; tool failures become tool-message text the model can read.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator

from ..tools.runner import ToolRunner
from ..tools.toolset import Toolset
from ..translate.merge import ReplyMerger
from ..translate.usage import Usage
from ..upstream.lines import UpstreamLines


class Round:
    """One upstream reply. Iterating it gives the lines the client sees (calls of gateway tools taken out);
    afterwards `merged` holds what was shown and `gateway_calls` what the gateway must run."""

    def __init__(self, lines: UpstreamLines, toolset: Toolset):
        self.lines = lines
        self.toolset = toolset
        self.merged = ReplyMerger()
        self.gateway_calls: list[dict] = []
        self.finished = False

    def __iter__(self) -> Iterator[dict]:
        gateway_tools = bool(self.toolset)  # the toolset stays the same for the round: asked once, not per line
        with self.lines:
            for line in self.lines:
                if gateway_tools:
                    line = self._without_gateway_calls(line)
                self.merged.add(line)
                yield line
        self.finished = True

    def drain(self) -> None:
        if not self.finished:
            for _ in self:
                pass

    def _without_gateway_calls(self, line: dict) -> dict:
        message = line.get("message") or {}
        calls = message.get("tool_calls")
        if not calls:
            return line
        ours, theirs = self.toolset.split(calls)
        self.gateway_calls += ours
        return {**line, "message": {**message, "tool_calls": theirs}}

    @property
    def usage(self) -> Usage:
        return Usage.of(self.merged.done)


class Rounds:
    """Iterate for each `Round`, with a None between rounds every keep-alive tick while tools run.

    The first round is opened (and its first line read) on construction, so that an early failure still gets
    a real HTTP status. After the iteration `last` is the round that answered and `usage` sums every round.
    Always `close()` (idempotent): it ends the open upstream request and cancels tool calls not yet started.
    """

    def __init__(self, open_lines: Callable[[dict], UpstreamLines], body: dict, toolset: Toolset,
                 runner: ToolRunner | None, max_rounds: int, request_id: str | None, *, model: str = "",
                 states: dict | None = None):
        self._open = open_lines
        self.toolset = toolset
        self.body = _with_tools(body, toolset) if toolset else body
        self.runner = runner
        self.max_rounds = max_rounds
        self.request_id = request_id
        self.model = model
        self.states = states  # the plugins' contexts of this request, for their on_tool_call
        self.usage = Usage()
        self.last: Round | None = None
        self.first = self._open(self.body)
        self._current = self.first
        self._iterator = self._run()

    def __iter__(self) -> Iterator[Round | None]:
        return self._iterator

    def close(self) -> None:
        self._iterator.close()
        self._current.close()

    def _run(self) -> Iterator[Round | None]:
        calls_made = 0
        number = 0
        while True:
            final = not self.toolset or number == self.max_rounds
            if number:
                self._current = self._open(_without_tools(self.body) if final else self.body)
            current = Round(self._current, self.toolset)
            yield current
            current.drain()
            self.usage += current.usage
            if final or current.merged.tool_calls or not current.gateway_calls:
                self.last = current
                return
            calls, results, ran = yield from self.runner.run_round(current.gateway_calls, self.toolset,  # type: ignore[union-attr]
                                                                   self.request_id, calls_made, self.model, self.states)
            calls_made += ran
            self.body["messages"] += [current.merged.message(tool_calls=calls), *results]
            number += 1


def _with_tools(body: dict, toolset: Toolset) -> dict:
    return {**body, "messages": list(body["messages"]), "tools": [*(body.get("tools") or []), *toolset.openai_tools]}


def _without_tools(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "tools"}
