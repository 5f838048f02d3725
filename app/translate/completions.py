"""Legacy completions ⇄ Ollama `/api/generate`: the request body, the whole answer and the stream chunks."""

from __future__ import annotations

import random

from .reply import FINGERPRINT
from .request import keep_alive_of
from .usage import Usage

_OPTIONS = ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty", "stop")


def new_completion_id() -> str:
    return f"cmpl-{random.getrandbits(128):032x}"


def to_ollama_generate(req: dict, *, stream: bool, keep_alive: str = "") -> dict:
    """The `/api/generate` body; only the options the client sent, so the Modelfile's stay in force."""
    prompt = req["prompt"]
    body: dict = {"model": req["model"], "prompt": prompt if isinstance(prompt, str) else prompt[0], "stream": stream}
    if req.get("suffix") is not None:
        body["suffix"] = req["suffix"]
    options = {name: req[name] for name in _OPTIONS if req.get(name) is not None}
    if req.get("max_tokens") is not None:
        options["num_predict"] = req["max_tokens"]
    if options:
        body["options"] = options
    alive = keep_alive_of(req, keep_alive)
    if alive is not None:
        body["keep_alive"] = alive
    return body


def finish_reason(done_reason: str | None) -> str:
    return "length" if done_reason == "length" else "stop"


def to_completion(reply: dict, *, completion_id: str, created: int, model: str) -> dict:
    """A whole `text_completion` from Ollama's non-streamed generate answer."""
    return {"id": completion_id, "object": "text_completion", "created": created,
            "model": reply.get("model") or model, "system_fingerprint": FINGERPRINT,
            "choices": [{"text": reply.get("response") or "", "index": 0, "logprobs": None,
                         "finish_reason": finish_reason(reply.get("done_reason"))}],
            "usage": Usage.of(reply).openai()}


class CompletionChunks:
    """Ollama generate lines → `text_completion` chunks of one stream."""

    def __init__(self, *, completion_id: str, created: int, model: str, include_usage: bool):
        self.base = {"id": completion_id, "object": "text_completion", "created": created, "model": model,
                     "system_fingerprint": FINGERPRINT}
        self.include_usage = include_usage

    def chunk(self, text: str, finish: str | None = None) -> dict:
        chunk = {**self.base, "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def of_line(self, line: dict) -> list[dict]:
        """The chunks for one line: its text, and on the done line the finish (and usage) too."""
        text = line.get("response") or ""
        if not line.get("done"):
            return [self.chunk(text)] if text else []
        chunks = [self.chunk(text, finish=finish_reason(line.get("done_reason")))]
        if self.include_usage:
            chunks.append({**self.base, "choices": [], "usage": Usage.of(line).openai()})
        return chunks
