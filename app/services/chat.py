"""Chat completions: translate, consult the cache, call Ollama, translate the reply (whole or streamed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from loguru import logger

from ..errors import APIError
from ..streaming import DONE
from ..streaming import sse
from ..streaming import sse_error
from ..upstream.ollama import OllamaClient
from .cache import AnswerCache
from .cache import cache_key
from .completion import ChunkTranslator
from .completion import new_completion_id
from .completion import to_chat_completion
from .translate import to_ollama_chat
from .upstream_lines import UpstreamLines
from .upstream_lines import merge_lines


@dataclass
class ChatService:
    """Everything a chat completion needs from the app; one per app."""

    client: OllamaClient
    cache: AnswerCache | None
    keep_alive: str = ""
    reasoning_content: bool = False
    cache_deterministic_only: bool = False

    def upstream_body(self, req: dict, *, stream: bool) -> dict:
        return to_ollama_chat(req, stream=stream, keep_alive=self.keep_alive)

    def open_stream(self, body: dict, request_id: str | None) -> UpstreamLines:
        """POST the chat upstream as a stream (Ollama always streams to us, so TIMEOUT is an idle timeout)."""
        response = self.client.request("POST", "/api/chat", body={**body, "stream": True},
                                       request_id=request_id, stream=True)
        return UpstreamLines(response)

    def complete_upstream(self, body: dict, request_id: str | None) -> dict:
        """One whole Ollama reply."""
        with self.open_stream(body, request_id) as lines:
            return merge_lines(lines)

    def complete(self, req: dict, request_id: str | None, *, use_cache: bool = True,
                 raw_body: bytes | None = None) -> tuple[bytes, str]:
        """The OpenAI answer as JSON bytes, and the cache outcome (`HIT`, `MISS` or `BYPASS`).

        `raw_body`, when given, also files the answer under the exact request bytes (see AnswerCache).
        """
        body = self.upstream_body(req, stream=False)
        key = self._cache_key(body) if use_cache else None
        if key is not None:
            cached = self.cache.get(key)  # type: ignore[union-attr]
            if cached is not None:
                logger.debug("cache hit")
                return cached, "HIT"
        answer = to_chat_completion(self.complete_upstream(body, request_id), completion_id=new_completion_id(),
                                    created=int(time.time()), reasoning_content=self.reasoning_content)
        if key is not None:
            self.cache.put(key, answer, raw_body)  # type: ignore[union-attr]
        return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode(), "MISS" if key else "BYPASS"

    def cached_by_body(self, raw_body: bytes) -> bytes | None:
        """The cached answer for request bytes seen before, without parsing them."""
        cached = self.cache.get_by_body(raw_body) if self.cache is not None else None
        if cached is not None:
            logger.debug("cache hit")
        return cached

    def _cache_key(self, body: dict) -> str | None:
        if self.cache is None:
            return None
        options = body.get("options") or {}
        if self.cache_deterministic_only and options.get("temperature") != 0 and "seed" not in options:
            return None
        return cache_key(body, "reasoning_content" if self.reasoning_content else "")

    def stream(self, req: dict, request_id: str | None) -> Iterator[bytes]:
        """Open the upstream stream now (early errors raise with a real status), then yield SSE events."""
        lines, translator = self.start_stream(req, self.upstream_body(req, stream=True), request_id)
        return self.stream_events(lines, translator)

    def start_stream(self, req: dict, body: dict, request_id: str | None) -> tuple[UpstreamLines, ChunkTranslator]:
        """The open upstream stream with its first line read, and the translator for the client's chunks."""
        lines = self.open_stream(body, request_id)
        try:
            first = lines.peek()
        except BaseException:
            lines.close()
            raise
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        model = first.get("model") or req["model"]  # Ollama echoes the name as it was asked for
        translator = ChunkTranslator(completion_id=new_completion_id(), created=int(time.time()), model=model,
                                     include_usage=include_usage, reasoning_content=self.reasoning_content)
        return lines, translator

    def stream_events(self, lines: UpstreamLines, translator: ChunkTranslator) -> Iterator[bytes]:
        """SSE events for an open upstream stream; closes it however the stream ends."""
        try:
            for line in lines:
                for chunk in translator.deltas(line):
                    yield sse(chunk)
                if line.get("done"):
                    for chunk in translator.finish(line):
                        yield sse(chunk)
                    yield DONE
        except APIError as err:
            logger.bind(code=err.code).warning("stream failed after it started: {}", err.message)
            yield sse_error(err)
        finally:
            lines.close()
