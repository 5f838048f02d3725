"""OpenAI Responses API ⇄ chat completions: a `responses.create` body as a chat request for the pipeline, and the
pipeline's chat.completion (or its chunks) as a `response` object (or its typed stream events)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any


def new_response_id() -> str:
    return f"resp_{random.getrandbits(128):032x}"


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{random.getrandbits(96):024x}"


def to_chat_request(body: dict, history: list[dict]) -> dict:
    """The chat completion request for a Responses body app.schemas.responses validated; `history` is the earlier
    turns' messages (from `previous_response_id`)."""
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None:
        messages.append({"role": "system", "content": instructions})
    messages += history
    messages += input_messages(body.get("input"))
    req: dict[str, Any] = {"model": body["model"], "messages": messages, "stream": bool(body.get("stream"))}
    for name in ("temperature", "top_p", "metadata"):
        if body.get(name) is not None:
            req[name] = body[name]
    if body.get("max_output_tokens") is not None:
        req["max_completion_tokens"] = body["max_output_tokens"]
    if req["stream"]:
        req["stream_options"] = {"include_usage": True}
    fmt = (body.get("text") or {}).get("format")
    if fmt is not None:
        req["response_format"] = _response_format(fmt)
    effort = (body.get("reasoning") or {}).get("effort")
    if effort is not None:
        req["reasoning_effort"] = effort
    if body.get("tools"):
        req["tools"] = [_tool(tool) for tool in body["tools"]]
    if body.get("tool_choice") is not None:
        req["tool_choice"] = _tool_choice(body["tool_choice"])
    for name in ("mcp", "keep_alive", "options", "think"):  # the gateway's own extensions pass through
        if name in body:
            req[name] = body[name]
    return req


def input_messages(value: str | list[dict]) -> list[dict]:
    """The (validated) `input`, a string or a list of items, as chat messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages: list[dict] = []
    for item in value:
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item["role"], "content": _content(item["content"])})
        elif kind == "function_call":
            call = {"id": item.get("call_id") or item.get("id"), "type": "function",
                    "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"}}
            if messages and messages[-1]["role"] == "assistant" and messages[-1].get("tool_calls") is not None:
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            messages.append({"role": "tool", "tool_call_id": item["call_id"],
                             "content": output if isinstance(output, str) else json.dumps(output)})
        # a "reasoning" item, the model's own earlier thinking, is not sent back
    return messages


def _content(content: str | list[dict]) -> str | list[dict]:
    if isinstance(content, str):
        return content
    return [{"type": "image_url", "image_url": {"url": part["image_url"]}} if part["type"] == "input_image"
            else {"type": "text", "text": part["text"]} for part in content]


def _response_format(fmt: dict) -> dict:
    if fmt["type"] == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": fmt.get("name") or "response", "schema": fmt["schema"],
                                                       "strict": bool(fmt.get("strict"))}}
    return {"type": fmt["type"]}


def _tool(tool: dict) -> dict:
    function = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict) -> str | dict:
    if isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice["name"]}}


# -- answers -------------------------------------------------------------------------------------


def base_response(response_id: str, body: dict, created: int | None = None) -> dict:
    """The `response` object without its output (as sent in `response.created`)."""
    return {"id": response_id, "object": "response", "created_at": created or int(time.time()), "status": "in_progress",
            "model": body.get("model"), "output": [], "instructions": body.get("instructions"),
            "metadata": body.get("metadata") or {}, "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "temperature": body.get("temperature"), "top_p": body.get("top_p"), "tools": body.get("tools") or [],
            "tool_choice": body.get("tool_choice") or "auto", "max_output_tokens": body.get("max_output_tokens"),
            "previous_response_id": body.get("previous_response_id"), "error": None, "incomplete_details": None,
            "text": body.get("text") or {"format": {"type": "text"}}, "usage": None}


def output_items(message: dict) -> list[dict]:
    """The assistant message of a chat completion as Responses output items."""
    items: list[dict] = []
    if message.get("reasoning"):
        items.append({"id": new_item_id("rs"), "type": "reasoning", "status": "completed",
                      "summary": [{"type": "summary_text", "text": message["reasoning"]}]})
    if message.get("content"):
        items.append(_message_item(new_item_id("msg"), message["content"]))
    for call in message.get("tool_calls") or []:
        items.append({"id": new_item_id("fc"), "type": "function_call", "status": "completed", "call_id": call["id"],
                      "name": call["function"]["name"], "arguments": call["function"]["arguments"]})
    return items


def _message_item(item_id: str, text: str) -> dict:
    return {"id": item_id, "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def usage_of(usage: dict | None) -> dict:
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    return {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0),
            "input_tokens_details": {"cached_tokens": details.get("cached_tokens", 0)},
            "output_tokens_details": {"reasoning_tokens": 0}}


def finish(response: dict, finish_reason: str | None, usage: dict | None) -> dict:
    """The response completed (or `incomplete` when the token budget ran out)."""
    if finish_reason == "length":
        response.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    else:
        response["status"] = "completed"
    response["usage"] = usage_of(usage)
    return response


def from_completion(response_id: str, body: dict, completion: dict) -> dict:
    """The `response` object for a whole chat.completion."""
    choice = completion["choices"][0]
    response = base_response(response_id, body, completion.get("created"))
    response["output"] = output_items(choice["message"])
    return finish(response, choice.get("finish_reason"), completion.get("usage"))


class StreamEvents:
    """Chat completion chunks → the Responses stream's typed events, each with a rising `sequence_number`."""

    def __init__(self, response_id: str, body: dict):
        self.response = base_response(response_id, body)
        self.sequence = 0
        self.text_item: dict | None = None
        self.text = ""
        self.reasoning = ""
        self.calls: list[dict] = []
        self.finish_reason: str | None = None
        self.usage: dict | None = None

    def event(self, kind: str, **data: Any) -> dict:
        self.sequence += 1
        return {"type": kind, "sequence_number": self.sequence, **data}

    def start(self) -> Iterator[dict]:
        yield self.event("response.created", response=dict(self.response))
        yield self.event("response.in_progress", response=dict(self.response))

    def chunk(self, chunk: dict) -> Iterator[dict]:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("reasoning"):
                self.reasoning += delta["reasoning"]
            if delta.get("content"):
                yield from self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                self.calls.append(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _text(self, piece: str) -> Iterator[dict]:
        index = len(self.response["output"])
        if self.text_item is None:
            self.text_item = {"id": new_item_id("msg"), "type": "message", "role": "assistant", "status": "in_progress",
                              "content": []}
            self.response["output"].append(self.text_item)
            yield self.event("response.output_item.added", output_index=index, item=dict(self.text_item))
            yield self.event("response.content_part.added", item_id=self.text_item["id"], output_index=index,
                             content_index=0, part={"type": "output_text", "text": "", "annotations": []})
        self.text += piece
        yield self.event("response.output_text.delta", item_id=self.text_item["id"],
                         output_index=self.response["output"].index(self.text_item), content_index=0, delta=piece)

    def end(self) -> Iterator[dict]:
        if self.text_item is not None:
            index = self.response["output"].index(self.text_item)
            done = _message_item(self.text_item["id"], self.text)
            self.response["output"][index] = done
            yield self.event("response.output_text.done", item_id=done["id"], output_index=index, content_index=0,
                             text=self.text)
            yield self.event("response.content_part.done", item_id=done["id"], output_index=index, content_index=0,
                             part=done["content"][0])
            yield self.event("response.output_item.done", output_index=index, item=done)
        if self.reasoning:
            self.response["output"].insert(0, {"id": new_item_id("rs"), "type": "reasoning", "status": "completed",
                                               "summary": [{"type": "summary_text", "text": self.reasoning}]})
        for call in self.calls:
            item = {"id": new_item_id("fc"), "type": "function_call", "status": "in_progress", "call_id": call["id"],
                    "name": call["function"]["name"], "arguments": ""}
            index = len(self.response["output"])
            self.response["output"].append(item)
            yield self.event("response.output_item.added", output_index=index, item=dict(item))
            arguments = call["function"]["arguments"]
            yield self.event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                             delta=arguments)
            yield self.event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                             arguments=arguments)
            item.update(arguments=arguments, status="completed")
            yield self.event("response.output_item.done", output_index=index, item=dict(item))
        finish(self.response, self.finish_reason, self.usage)
        yield self.event("response.completed" if self.response["status"] == "completed" else "response.incomplete",
                         response=self.response)
