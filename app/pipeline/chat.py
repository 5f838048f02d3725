"""ChatPipeline: a chat completion request through its named stages to a whole answer or a stream of chunks.

    cached by bytes → validate → prepare (resources, tools, Ollama body) → cached by key
    → upstream rounds (app.pipeline.rounds) → translate → respond

Each stage is one method, so that a hook on a stage is one line in one place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

from loguru import logger

from ..schemas import load_body
from ..schemas.chat import ChatCompletionRequest
from ..services.cache import AnswerCache
from ..services.cache import cache_key
from ..services.mcp_runtime import MCPRuntime
from ..streaming import KEEP_ALIVE
from ..tools.toolset import NO_TOOLS
from ..tools.toolset import Toolset
from ..translate.reply import ChunkTranslator
from ..translate.reply import new_completion_id
from ..translate.reply import to_chat_completion
from ..translate.request import to_ollama_chat
from ..upstream.lines import UpstreamLines
from ..upstream.ollama import OllamaClient
from .rounds import Rounds

_SCHEMA = ChatCompletionRequest()


@dataclass
class ChatCall:
    """One request as it moves through the stages."""

    raw: bytes
    request_id: str | None
    cache_allowed: bool  # the client did not send Cache-Control: no-cache / no-store
    req: dict = field(default_factory=dict)  # the validated OpenAI body
    body: dict = field(default_factory=dict)  # the Ollama body
    toolset: Toolset = NO_TOOLS
    cache_key: str | None = None

    @property
    def stream(self) -> bool:
        return bool(self.req.get("stream"))


@dataclass(frozen=True)
class Whole:
    """A whole answer as JSON bytes, and how the cache was used (`HIT`, `MISS` or `BYPASS`)."""

    body: bytes
    cache: str


@dataclass(frozen=True)
class Stream:
    """OpenAI chunk objects (and KEEP_ALIVE between tool rounds); raises APIError for a failure mid-way."""

    chunks: Iterator[dict | bytes]


class ChatPipeline:
    """Runs chat completions; one per app, shared by its request threads."""

    def __init__(self, client: OllamaClient, cache: AnswerCache | None, mcp: MCPRuntime, *, keep_alive: str = "",
                 reasoning_content: bool = False, cache_deterministic_only: bool = False):
        self.client = client
        self.cache = cache
        self.mcp = mcp
        self.keep_alive = keep_alive
        self.reasoning_content = reasoning_content
        self.cache_deterministic_only = cache_deterministic_only

    def handle(self, raw: bytes, *, request_id: str | None, cache_allowed: bool = True) -> Whole | Stream:
        call = ChatCall(raw, request_id, cache_allowed and self.cache is not None)
        hit = self.cached_by_bytes(call)
        if hit is not None:
            return hit
        self.validate(call)
        self.prepare(call)
        hit = self.cached_by_key(call)
        if hit is not None:
            return hit
        rounds = self.open_rounds(call)
        if call.stream:
            return Stream(self.stream_chunks(call, rounds))
        return self.whole_answer(call, rounds)

    # -- stages, in order ------------------------------------------------------------------------

    def cached_by_bytes(self, call: ChatCall) -> Whole | None:
        """Request bytes seen before find their answer without parsing. With MCP the same bytes can mean other
        tools or resources over time, so only chats without an MCP pool take this shortcut."""
        if not call.cache_allowed or self.mcp.pool is not None:
            return None
        return _hit(self.cache.get_by_body(call.raw))  # type: ignore[union-attr]

    def validate(self, call: ChatCall) -> None:
        call.req = load_body(_SCHEMA, call.raw)

    def prepare(self, call: ChatCall) -> None:
        """Attach mcp:// resources, choose the gateway's tools, translate to Ollama's body."""
        call.req, call.toolset = self.mcp.prepare(call.req)
        call.body = to_ollama_chat(call.req, stream=call.stream, keep_alive=self.keep_alive)

    def cached_by_key(self, call: ChatCall) -> Whole | None:
        """Whole answers without gateway tools are cached under a digest of the Ollama body."""
        if not call.cache_allowed or call.stream or call.toolset:
            return None
        options = call.body.get("options") or {}
        if self.cache_deterministic_only and options.get("temperature") != 0 and "seed" not in options:
            return None
        call.cache_key = cache_key(call.body, "reasoning_content" if self.reasoning_content else "")
        return _hit(self.cache.get(call.cache_key))  # type: ignore[union-attr]

    def open_rounds(self, call: ChatCall) -> Rounds:
        return Rounds(lambda body: self._open_lines(body, call.request_id), call.body, call.toolset,
                      self.mcp.runner, self.mcp.settings.max_tool_rounds, call.request_id)

    def whole_answer(self, call: ChatCall, rounds: Rounds) -> Whole:
        try:
            for item in rounds:
                if item is not None:
                    item.drain()
        finally:
            rounds.close()
        answer = to_chat_completion(rounds.last.merged.reply(), completion_id=new_completion_id(),  # type: ignore[union-attr]
                                    created=int(time.time()), usage=rounds.usage,
                                    reasoning_content=self.reasoning_content)
        if call.cache_key is not None:
            shortcut = self.mcp.pool is None
            self.cache.put(call.cache_key, answer, call.raw if shortcut else None)  # type: ignore[union-attr]
        return Whole(json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode(),
                     "MISS" if call.cache_key else "BYPASS")

    def stream_chunks(self, call: ChatCall, rounds: Rounds) -> Iterator[dict | bytes]:
        translator = ChunkTranslator(
            completion_id=new_completion_id(), created=int(time.time()),
            model=rounds.first.peek().get("model") or call.req["model"],  # Ollama echoes the name as it was asked for
            include_usage=bool((call.req.get("stream_options") or {}).get("include_usage")),
            reasoning_content=self.reasoning_content)
        try:
            for item in rounds:
                if item is None:
                    yield KEEP_ALIVE
                    continue
                for line in item:
                    yield from translator.deltas(line)
            yield from translator.finish(rounds.last.merged.done, rounds.usage)  # type: ignore[union-attr]
        finally:
            rounds.close()

    # -- plumbing --------------------------------------------------------------------------------

    def _open_lines(self, body: dict, request_id: str | None) -> UpstreamLines:
        """POST the chat as a stream (Ollama always streams to us, so TIMEOUT is an idle timeout); the first
        line is read before returning, so that an early failure keeps its HTTP status."""
        response = self.client.request("POST", "/api/chat", body={**body, "stream": True}, request_id=request_id,
                                       stream=True)
        lines = UpstreamLines(response)
        try:
            lines.peek()
        except BaseException:
            lines.close()
            raise
        return lines


def _hit(cached: bytes | None) -> Whole | None:
    if cached is None:
        return None
    logger.debug("cache hit")
    return Whole(cached, "HIT")
