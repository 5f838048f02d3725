"""Ollama stream lines gathered into one whole reply, as Ollama's own non-streamed reply would be."""

from __future__ import annotations


class ReplyMerger:
    """Add each line of one reply; `reply()` is the whole of it (the `done` line's fields, the joined message)."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.thinking: list[str] = []
        self.tool_calls: list[dict] = []
        self.logprobs: list[dict] = []
        self.done: dict = {}

    def add(self, line: dict) -> None:
        message = line.get("message") or {}
        if message.get("content"):
            self.content.append(message["content"])
        if message.get("thinking"):
            self.thinking.append(message["thinking"])
        if message.get("tool_calls"):
            self.tool_calls.extend(message["tool_calls"])
        logprobs = message.get("logprobs") or line.get("logprobs")
        if logprobs:
            self.logprobs.extend(logprobs)
        self.done = line

    def message(self, tool_calls: list[dict] | None = None) -> dict:
        """The assistant message so far; `tool_calls` replaces the calls that were added."""
        message: dict = {"role": "assistant", "content": "".join(self.content)}
        if self.thinking:
            message["thinking"] = "".join(self.thinking)
        calls = self.tool_calls if tool_calls is None else tool_calls
        if calls:
            message["tool_calls"] = calls
        return message

    def reply(self) -> dict:
        merged = {k: v for k, v in self.done.items() if k != "logprobs"}
        merged["message"] = self.message()
        if self.logprobs:
            merged["message"]["logprobs"] = self.logprobs
        return merged
