"""ChatPipeline: a chat completion request through its named stages to a whole answer or a stream of chunks.

    cached by bytes → validate (+ on_request) → prepare (plugin model, resources, tools, Ollama body)
    → cached by key → upstream rounds (app.pipeline.rounds) → translate → respond (+ on_response / on_chunk)

Each stage is one method, and each plugin hook is called from one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from loguru import logger

from ..errors import NotFound
from ..errors import plugin_error
from ..errors import plugin_unavailable
from ..json_codec import dumps
from ..json_codec import loads
from ..keys.models import check_model
from ..keys.models import restricts_models
from ..plugins.api import Reject
from ..plugins.api import Reply
from ..plugins.isolation import rejection
from ..plugins.registry import PluginRegistry
from ..schemas import load_body
from ..schemas import validate_body
from ..schemas.chat import ChatCompletionRequest
from ..services.cache import AnswerCache
from ..services.cache import cache_key
from ..services.mcp_runtime import MCPRuntime
from ..streaming import FLUSH
from ..streaming import HOLD
from ..streaming import KEEP_ALIVE
from ..streaming import sse
from ..tools.catalog import GatewayTools
from ..tools.toolset import NO_TOOLS
from ..tools.toolset import Toolset
from ..translate.merge import ReplyMerger
from ..translate.reply import ChunkTranslator
from ..translate.reply import new_completion_id
from ..translate.reply import to_chat_completion
from ..translate.request import to_ollama_chat
from ..upstream.backends import Backends
from ..upstream.lines import UpstreamLines
from ..upstream.lines import open_lines
from .rounds import Rounds
from .synthetic import lines_of

_SCHEMA = ChatCompletionRequest()
PLUGIN_MODEL_PREFIX = "plugin:"
WORKFLOW_MODEL_PREFIX = "workflow:"


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
    reply: Reply | None = None  # a plugin answered instead of the model
    states: dict = field(default_factory=dict)  # each plugin's HookContext for this request
    framed: bool = False  # a stream goes to sse_events, so it may hold framed events and HOLD / FLUSH

    @property
    def stream(self) -> bool:
        return bool(self.req.get("stream"))

    @property
    def model(self) -> str:
        return str(self.req.get("model", ""))


@dataclass(frozen=True)
class Whole:
    """A whole answer as JSON bytes, and how the cache was used (`HIT`, `MISS` or `BYPASS`)."""

    body: bytes
    cache: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """OpenAI chunk objects and KEEP_ALIVE between tool rounds; raises APIError for a failure mid-way. Asked for
    `framed`, also events framed already (bytes: content deltas no hook reads) and HOLD / FLUSH between them."""

    chunks: Iterator[dict | bytes | object]
    headers: Mapping[str, str] = field(default_factory=dict)


class ChatPipeline:
    """Runs chat completions; one per app, shared by its request threads."""

    def __init__(self, client: Backends, cache: AnswerCache | None, mcp: MCPRuntime, tools: GatewayTools,
                 plugins: PluginRegistry, *, keep_alive: str = "", reasoning_content: bool = False,
                 cache_deterministic_only: bool = False, max_tool_rounds: int = 10):
        self.client = client
        self.cache = cache
        self.mcp = mcp
        self.tools = tools
        self.plugins = plugins
        self.keep_alive = keep_alive
        self.reasoning_content = reasoning_content
        self.cache_deterministic_only = cache_deterministic_only
        self.max_tool_rounds = max_tool_rounds
        self.workflows = None  # the WorkflowEngine, set once it exists (it runs its llm steps through this pipeline)

    def handle(self, raw: bytes, *, request_id: str | None, cache_allowed: bool = True,
               framed: bool = False) -> Whole | Stream:
        """The answer; `framed` when a stream is for `sse_events` (see `Stream`), else it holds chunk objects only
        (and KEEP_ALIVE)."""
        call = ChatCall(raw, request_id, cache_allowed and self.cache is not None, framed=framed)
        hit = self.cached_by_bytes(call)
        if hit is not None:
            return self.respond_whole(call, hit)
        self.validate(call)
        if call.reply is not None or call.model.startswith(PLUGIN_MODEL_PREFIX):
            return self.plugin_answer(call)
        if call.model.startswith(WORKFLOW_MODEL_PREFIX) and self.workflows is not None:
            return self.workflow_answer(call)
        self.prepare(call)
        hit = self.cached_by_key(call)
        if hit is not None:
            return self.respond_whole(call, hit)
        rounds = self.open_rounds(call)
        if call.stream:
            return self.respond_stream(call, self.stream_chunks(call, rounds))
        return self.respond_whole(call, self.whole_answer(call, rounds))

    # -- stages, in order ------------------------------------------------------------------------

    def cached_by_bytes(self, call: ChatCall) -> Whole | None:
        """Request bytes seen before find their answer without parsing. With MCP the same bytes can mean other
        tools or resources over time, and request hooks may change the request, so then there is no shortcut; nor
        for a key limited to some models, whose model must be checked first."""
        if not call.cache_allowed or self.mcp.pool is not None or self.plugins.table.request or restricts_models():
            return None
        return _hit(self.cache.get_by_body(call.raw))  # type: ignore[union-attr]

    def validate(self, call: ChatCall) -> None:
        """The body through the schema and the key's models, then the plugins' `on_request` (a replacement is
        validated again)."""
        call.req = load_body(_SCHEMA, call.raw)
        check_model(call.model)
        chain = self.plugins.table.request
        if chain:
            result = self.plugins.run_request(chain, call.req, lambda body: validate_body(_SCHEMA, body),
                                              call.request_id, call.states)
            if isinstance(result, Reply):
                call.reply = result
            else:
                call.req = result

    def prepare(self, call: ChatCall) -> None:
        """Attach mcp:// resources, choose the gateway's tools, translate to Ollama's body."""
        call.req = self.mcp.with_resources(call.req)
        call.toolset = self.tools.offer(call.req)
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
        return Rounds(lambda body: self.open_lines(body, call.request_id), call.body, call.toolset,
                      self.tools.runner, self.max_tool_rounds, call.request_id, model=call.model, states=call.states)

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
        if call.cache_key is not None:  # stored as the model gave it: response hooks run on hits too
            shortcut = self.mcp.pool is None
            self.cache.put(call.cache_key, answer, call.raw if shortcut else None)  # type: ignore[union-attr]
        return Whole(_dumps(answer), "MISS" if call.cache_key else "BYPASS")

    def stream_chunks(self, call: ChatCall, rounds: Rounds) -> Iterator[dict | bytes | object]:
        """The chunks of the rounds. For `sse_events` (`call.framed`) the events of lines read together are held to
        be written together (HOLD while the next line is in memory already, FLUSH before a read may wait), and
        without on_chunk hooks the usual content delta comes as its framed event."""
        frame = sse if call.framed and not self.plugins.table.chunk else None  # a hook sees every chunk object
        translator = self._translator(call, rounds.first.peek().get("model") or call.model, frame)
        try:
            for item in rounds:
                if item is None:
                    yield KEEP_ALIVE
                    continue
                holding = False
                for line in item:
                    ready = call.framed and item.lines.ready
                    if ready and not holding:
                        yield HOLD
                        holding = True
                    yield from translator.events(line)
                    if holding and not ready:
                        yield FLUSH
                        holding = False
                if holding:
                    yield FLUSH
            if call.framed:
                yield HOLD  # the last chunks and [DONE] are written at once
            yield from translator.finish(rounds.last.merged.done, rounds.usage)  # type: ignore[union-attr]
        finally:
            rounds.close()

    def plugin_answer(self, call: ChatCall) -> Whole | Stream:
        """A plugin's `Reply`, or the answer of the plugin model `plugin:<name>`, made like the model's."""
        if call.reply is not None:
            pieces: Iterator[str] = iter([call.reply.text])
        else:
            pieces = self._plugin_model_pieces(call)
        if call.stream:
            translator = self._translator(call, call.model)
            return self.respond_stream(call, _chunks_of(translator, lines_of(pieces, call.model)))
        merged = ReplyMerger()
        for line in lines_of(pieces, call.model):
            merged.add(line)
        answer = to_chat_completion(merged.reply(), completion_id=new_completion_id(), created=int(time.time()))
        return self.respond_whole(call, Whole(_dumps(answer), "BYPASS"))

    def workflow_answer(self, call: ChatCall) -> Whole | Stream:
        """The answer of the model `workflow:<name>`: a run whose `chat.answer` step is the answer."""
        from ..workflows.as_model import answer_stream
        from ..workflows.as_model import answer_whole

        if call.stream:
            chunks, headers = answer_stream(self.workflows, call, self._translator(call, call.model))
            return self.respond_stream(call, chunks, headers)
        answer, headers = answer_whole(self.workflows, call)
        return self.respond_whole(call, Whole(_dumps(answer), "BYPASS", headers))

    def respond_whole(self, call: ChatCall, whole: Whole) -> Whole:
        """The plugins' `on_response`, on every whole answer (cache hits included)."""
        chain = self.plugins.table.response
        if not chain:
            return whole
        answer = loads(whole.body)
        answer = self.plugins.run_response(chain, answer, call.request_id, call.model or answer.get("model", ""),
                                           False, call.states)
        return Whole(_dumps(answer), whole.cache, whole.headers)

    def respond_stream(self, call: ChatCall, chunks: Iterator[dict | bytes], headers: Mapping[str, str] | None = None) -> Stream:
        """The plugins' `on_chunk`, on every chunk before it is framed."""
        chain = self.plugins.table.chunk
        if chain:
            chunks = self.plugins.run_chunks(chain, chunks, call.request_id, call.model, call.states)
        return Stream(chunks, headers or {})

    # -- plumbing --------------------------------------------------------------------------------

    def _translator(self, call: ChatCall, model: str, frame: Callable[[dict], bytes] | None = None) -> ChunkTranslator:
        return ChunkTranslator(completion_id=new_completion_id(), created=int(time.time()), model=model,
                               include_usage=bool((call.req.get("stream_options") or {}).get("include_usage")),
                               reasoning_content=self.reasoning_content, frame=frame)

    def _plugin_model_pieces(self, call: ChatCall) -> Iterator[str]:
        """The text pieces of a plugin model's answer; the first is fetched now, so an early failure gets a status."""
        name = call.model[len(PLUGIN_MODEL_PREFIX):]
        plugin = self.plugins.get(name)
        if plugin is None or not (plugin.has_chat or plugin.status == "failed"):
            raise NotFound(f"The model {call.model!r} does not exist.", param="model", code="model_not_found")
        if plugin.status != "ready":
            raise plugin_unavailable(name, plugin.status)
        ctx = self.plugins.context(plugin, call.request_id, call.model, call.stream, call.states)
        try:
            result = plugin.caller.call("chat", plugin.instance.chat, ctx, call.req)
        except Reject as err:
            raise rejection(name, err) from None
        if isinstance(result, str):
            return iter([result])
        if isinstance(result, dict):
            content = ((result.get("choices") or [{}])[0].get("message") or {}).get("content")
            if not isinstance(content, str):
                raise plugin_error(name, "chat", "a dict answer must be a chat.completion with a message content")
            return iter([content])
        if not hasattr(result, "__next__"):
            raise plugin_error(name, "chat", f"returned {type(result).__name__}, expected str, dict or an iterator")
        return _pieces(plugin, result)

    def open_lines(self, body: dict, request_id: str | None) -> UpstreamLines:
        """One upstream round: the chat POSTed to Ollama as a stream, its first line read."""
        return open_lines(self.client, "/api/chat", body, request_id)


_END = object()


def _pieces(plugin, iterator) -> Iterator[str]:
    """A plugin model's iterator, each step within the plugin's timeout; the first step is taken at once."""

    def step() -> str | object:
        try:
            piece = plugin.caller.call("chat", next, iterator, _END)
        except Reject as err:
            raise rejection(plugin.name, err) from None
        if piece is not _END and not isinstance(piece, str):
            raise plugin_error(plugin.name, "chat", f"yielded {type(piece).__name__}, expected str")
        return piece

    first = step()

    def rest() -> Iterator[str]:
        piece = first
        try:
            while piece is not _END:
                yield piece  # type: ignore[misc]
                piece = step()
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    return rest()


def _chunks_of(translator: ChunkTranslator, lines: Iterator[dict]) -> Iterator[dict]:
    for line in lines:
        yield from translator.deltas(line)
        if line.get("done"):
            yield from translator.finish(line)


def _dumps(answer: dict) -> bytes:
    return dumps(answer)


def _hit(cached: bytes | None) -> Whole | None:
    if cached is None:
        return None
    logger.debug("cache hit")
    return Whole(cached, "HIT")
