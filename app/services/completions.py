"""Legacy completions through Ollama's `/api/generate`, whole or as a stream of chunks."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..translate.completions import CompletionChunks
from ..translate.completions import new_completion_id
from ..translate.completions import to_completion
from ..translate.completions import to_ollama_generate
from ..upstream.backends import Backends
from ..upstream.lines import UpstreamLines
from ..upstream.lines import open_lines


def complete(client: Backends, req: dict, request_id: str | None, keep_alive: str = "") -> dict:
    """The whole `text_completion`."""
    body = to_ollama_generate(req, stream=True, keep_alive=keep_alive)
    with open_lines(client, "/api/generate", body, request_id) as lines:
        pieces, done = [], {}
        for line in lines:
            pieces.append(line.get("response") or "")
            done = line
    return to_completion({**done, "response": "".join(pieces)}, completion_id=new_completion_id(),
                         created=int(time.time()), model=req["model"])


def stream(client: Backends, req: dict, request_id: str | None, keep_alive: str = "") -> Iterator[dict]:
    """Open the stream now (errors before the first line raise here), then yield its chunks lazily."""
    body = to_ollama_generate(req, stream=True, keep_alive=keep_alive)
    lines = open_lines(client, "/api/generate", body, request_id)
    options = req.get("stream_options") or {}
    chunks = CompletionChunks(completion_id=new_completion_id(), created=int(time.time()),
                              model=lines.peek().get("model") or req["model"],
                              include_usage=bool(options.get("include_usage")))
    return _chunks(lines, chunks)


def _chunks(lines: UpstreamLines, chunks: CompletionChunks) -> Iterator[dict]:
    with lines:
        for line in lines:
            yield from chunks.of_line(line)
