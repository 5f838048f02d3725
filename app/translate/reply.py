"""Ollama `/api/chat` replies → OpenAI `chat.completion` objects and `chat.completion.chunk` deltas."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from json.encoder import encode_basestring

from .usage import Usage

FINGERPRINT = "fp_ollama"
_ALPHANUMERIC = string.ascii_letters + string.digits
_MARK = "\x00"  # a probe content: it is the event's last string, so its encoding is found from the right


def new_completion_id() -> str:
    return f"chatcmpl-{random.getrandbits(128):032x}"


def new_call_id() -> str:
    return "call_" + "".join(random.choices(_ALPHANUMERIC, k=24))


def finish_reason(done_reason: str | None, saw_tool_calls: bool) -> str:
    """OpenAI's finish_reason: `length` wins, tool calls turn a stop into `tool_calls`."""
    if done_reason == "length":
        return "length"
    if done_reason in (None, "", "stop", "load", "unload"):
        return "tool_calls" if saw_tool_calls else "stop"
    return done_reason


def openai_tool_calls(calls: list[dict] | None, *, first_index: int | None = None) -> list[dict]:
    """Ollama's whole tool calls as OpenAI ones: string arguments, an id always, our own stream index."""
    result = []
    for offset, call in enumerate(calls or []):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        item = {
            "id": call.get("id") or new_call_id(),
            "type": "function",
            "function": {"name": function.get("name", ""),
                         "arguments": arguments if isinstance(arguments, str)
                         else json.dumps(arguments or {}, ensure_ascii=False, separators=(",", ":"))},
        }
        if first_index is not None:
            item = {"index": first_index + offset, **item}
        result.append(item)
    return result


def openai_logprobs(entries: list[dict] | None) -> list[dict]:
    result = []
    for entry in entries or []:
        token = entry.get("token", "")
        result.append({
            "token": token,
            "logprob": entry.get("logprob", 0.0),
            "bytes": entry.get("bytes") or list(token.encode()),
            "top_logprobs": [{"token": t.get("token", ""), "logprob": t.get("logprob", 0.0),
                              "bytes": t.get("bytes") or list(t.get("token", "").encode())}
                             for t in entry.get("top_logprobs") or []],
        })
    return result


def to_chat_completion(data: dict, *, completion_id: str, created: int, usage: Usage | None = None,
                       reasoning_content: bool = False) -> dict:
    """The OpenAI answer for one whole Ollama reply; `usage` (else the reply's own counts) may sum several rounds."""
    message = data.get("message") or {}
    calls = openai_tool_calls(message.get("tool_calls"))
    content = message.get("content") or ""
    out_message: dict = {"role": "assistant", "content": None if (calls and not content) else content,
                         "refusal": None}
    if message.get("thinking"):
        out_message["reasoning"] = message["thinking"]
        if reasoning_content:
            out_message["reasoning_content"] = message["thinking"]
    if calls:
        out_message["tool_calls"] = calls
    logprobs = openai_logprobs(message.get("logprobs") or data.get("logprobs"))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": data.get("model", ""),
        "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "message": out_message, "logprobs": {"content": logprobs} if logprobs else None,
                     "finish_reason": finish_reason(data.get("done_reason"), bool(calls))}],
        "usage": (usage or Usage.of(data)).openai(),
    }


class ChunkTranslator:
    """Turns Ollama stream lines into OpenAI chunk objects for one completion.

    With `frame` (how the stream frames a chunk object as an event: compact JSON, UTF-8), `events()` makes the
    usual lone content delta from the pre-encoded parts of this stream's event: only its content is encoded.
    """

    def __init__(self, *, completion_id: str, created: int, model: str, include_usage: bool,
                 reasoning_content: bool = False, frame: Callable[[dict], bytes] | None = None):
        self.base = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                     "system_fingerprint": FINGERPRINT}
        self.include_usage = include_usage
        self.reasoning_content = reasoning_content
        self.sent_first = False
        self.next_tool_index = 0
        self.frame = frame
        self._content_event: tuple[bytes, bytes] | None = None  # an event of content delta: what comes before and after

    def chunk(self, delta: dict, finish: str | None = None, logprobs: list | None = None) -> dict:
        if not self.sent_first:
            delta = {"role": "assistant", "content": delta.pop("content", ""), **delta}
            self.sent_first = True
        return self._shape(delta, finish, logprobs)

    def _shape(self, delta: dict, finish: str | None = None, logprobs: list | None = None) -> dict:
        chunk = {**self.base, "choices": [{"index": 0, "delta": delta,
                                           "logprobs": {"content": logprobs} if logprobs else None,
                                           "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def events(self, line: dict) -> list[dict] | list[bytes]:
        """`deltas(line)`, a lone content delta as its framed event (bytes) when this translator has a `frame`."""
        message = line.get("message") or {}
        content = message.get("content")
        if (self.frame is None or not self.sent_first or not isinstance(content, str) or message.get("thinking")
                or message.get("tool_calls") or message.get("logprobs") or line.get("logprobs")):
            return self.deltas(line)
        if not content:
            return []
        if self._content_event is None:  # made once the first event is out, not before it
            head, mark, tail = self.frame(self._shape({"content": _MARK})).rpartition(encode_basestring(_MARK).encode())
            if not mark:  # a frame that does not show the content as compact JSON: every chunk goes as an object
                self.frame = None
                return self.deltas(line)
            self._content_event = (head, tail)
        head, tail = self._content_event
        return [head + encode_basestring(content).encode() + tail]

    def deltas(self, line: dict) -> list[dict]:
        """The content chunks for one Ollama line (none for an empty trailer)."""
        message = line.get("message") or {}
        thinking = message.get("thinking") or ""
        content = message.get("content") or ""
        calls = openai_tool_calls(message.get("tool_calls"), first_index=self.next_tool_index)
        self.next_tool_index += len(calls)
        logprobs = openai_logprobs(message.get("logprobs") or line.get("logprobs")) or None
        chunks = []
        if thinking:
            reasoning = {"reasoning": thinking}
            if self.reasoning_content:
                reasoning["reasoning_content"] = thinking
            chunks.append(self.chunk(reasoning, logprobs=logprobs))
            logprobs = None
        if content or calls:
            delta: dict = {"content": content} if content else {}
            if calls:
                delta["tool_calls"] = calls
            chunks.append(self.chunk(delta, logprobs=logprobs))
        return chunks

    @property
    def saw_tool_calls(self) -> bool:
        return self.next_tool_index > 0

    def finish(self, done: dict, usage: Usage | None = None) -> list[dict]:
        """The finish chunk, then the usage chunk (`usage`, else the line's own counts) when the client asked for one."""
        chunks = []
        if not self.sent_first:
            chunks.append(self.chunk({"content": ""}))
        chunks.append(self.chunk({}, finish=finish_reason(done.get("done_reason"), self.saw_tool_calls)))
        if self.include_usage:
            chunks.append({**self.base, "choices": [], "usage": (usage or Usage.of(done)).openai()})
        return chunks
