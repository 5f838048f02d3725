"""OpenAI chat request → Ollama `/api/chat` request, field by field."""

from __future__ import annotations

import binascii
import json
import re
from base64 import b64decode

from ..errors import InvalidRequest

_IMAGE_PREFIX = re.compile(r"^data:(image/(?:jpeg|jpg|png|webp))?;base64,", re.IGNORECASE)
_THINK_FROM_EFFORT = {"none": False, "minimal": "low", "low": "low", "medium": "medium", "high": "high",
                      "max": "max", "xhigh": "max", "ultra": "max"}
# Sampling fields copied into `options` under the same name (only when the client sent them).
_OPTION_FIELDS = ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty", "top_k", "min_p",
                  "repeat_penalty", "num_ctx")


def to_ollama_chat(req: dict, *, stream: bool, keep_alive: str = "") -> dict:
    """Build the native request from a body app.schemas.chat validated (types and shapes are not checked again).

    :raises InvalidRequest: for anything Ollama cannot do or would misread, naming the field.
    """
    _reject_unsupported(req)
    body: dict = {"model": req["model"], "messages": convert_messages(req["messages"]), "stream": stream}
    tools = _select_tools(req.get("tools"), req.get("tool_choice"))
    if tools:
        body["tools"] = tools
    options = _options(req)
    if options:
        body["options"] = options
    fmt = _format(req.get("response_format"))
    if fmt is not None:
        body["format"] = fmt
    think = _think(req)
    if think is not None:
        body["think"] = think
    if req.get("logprobs"):
        body["logprobs"] = True
        if req.get("top_logprobs") is not None:
            body["top_logprobs"] = req["top_logprobs"]
    alive = keep_alive_of(req, keep_alive)
    if alive is not None:
        body["keep_alive"] = alive
    return body


def keep_alive_of(req: dict, default: str) -> str | None:
    """The request's `keep_alive`, else the gateway's KEEP_ALIVE (None: leave Ollama's own default)."""
    alive = req.get("keep_alive")
    return default or None if alive is None else alive


def _reject_unsupported(req: dict) -> None:
    if (req.get("n") or 1) > 1:
        raise InvalidRequest("Only n=1 is supported: Ollama returns one choice per request.", param="n")
    if req.get("logit_bias"):
        raise InvalidRequest("logit_bias is not supported by Ollama.", param="logit_bias")
    if "audio" in (req.get("modalities") or []) or req.get("audio"):
        raise InvalidRequest("Audio output is not supported by Ollama.", param="modalities")
    if req.get("web_search_options") is not None:
        raise InvalidRequest("Web search is not supported by this gateway.", param="web_search_options")
    if req.get("functions") is not None or req.get("function_call") is not None:
        raise InvalidRequest("The deprecated 'functions' API is not supported; use 'tools'.", param="functions")


def _options(req: dict) -> dict:
    options: dict = dict(req.get("options") or {})  # typed by the schema
    for name in _OPTION_FIELDS:
        if req.get(name) is not None:
            options[name] = req[name]
    limit = req.get("max_completion_tokens") or req.get("max_tokens")
    if limit is not None:
        options["num_predict"] = limit
    if req.get("stop") is not None:
        options["stop"] = req["stop"]
    return options


def _format(response_format: dict | None):
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    return response_format["json_schema"]["schema"]  # json_schema


def _think(req: dict):
    if req.get("think") is not None:
        return req["think"]
    effort = (req.get("reasoning") or {}).get("effort") or req.get("reasoning_effort")
    return _THINK_FROM_EFFORT[effort] if effort else None


def _select_tools(tools: list | None, tool_choice) -> list | None:
    if not tools:
        if isinstance(tool_choice, dict):
            raise InvalidRequest("tool_choice names a function but no tools were given.", param="tool_choice")
        return None
    if tool_choice in (None, "auto", "required"):
        return tools
    if tool_choice == "none":
        return None
    name = tool_choice["function"]["name"]
    chosen = [t for t in tools if t["function"]["name"] == name]
    if not chosen:
        raise InvalidRequest(f"tool_choice names {name!r}, which is not in tools.", param="tool_choice")
    return chosen


def convert_messages(messages: list[dict]) -> list[dict]:
    """Translate every (validated) message; tool results get the name of the call they answer."""
    out: list[dict] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _text_content(message)})
        elif role == "user":
            out.append(_user_message(message, i))
        elif role == "assistant":
            converted = _assistant_message(message)
            for call in converted.get("tool_calls", []):
                if call.get("id"):
                    call_names[call["id"]] = call["function"]["name"]
            out.append(converted)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            tool: dict = {"role": "tool", "content": _text_content(message)}
            name = message.get("name") or call_names.get(call_id or "")
            if name:
                tool["tool_name"] = name
            if call_id:
                tool["tool_call_id"] = call_id
            out.append(tool)
        else:  # function
            out.append({"role": "tool", "content": _text_content(message), "tool_name": message.get("name") or ""})
    return out


def _text_content(message: dict) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text") or part.get("refusal") or "" for part in content)


def _user_message(message: dict, i: int) -> dict:
    content = message.get("content")
    if not isinstance(content, list):
        return {"role": "user", "content": content}
    texts, images = [], []
    for j, part in enumerate(content):
        if part["type"] == "text":
            texts.append(part["text"])
        else:  # image_url
            images.append(_image(part["image_url"], f"messages[{i}].content[{j}].image_url"))
    result: dict = {"role": "user", "content": "\n".join(texts)}
    if images:
        result["images"] = images
    return result


def _image(image_url, param: str) -> str:
    url = image_url["url"] if isinstance(image_url, dict) else image_url
    if url.startswith(("http://", "https://")):
        raise InvalidRequest("image URLs are not currently supported, please use base64 encoded data instead",
                             param=param)
    match = _IMAGE_PREFIX.match(url)
    if not match:
        raise InvalidRequest("invalid image input: use a data:image/(png|jpeg|webp);base64 URL", param=param)
    payload = url[match.end():]
    try:
        b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("invalid image input: the base64 data is malformed", param=param) from None
    return payload


def _assistant_message(message: dict) -> dict:
    result: dict = {"role": "assistant", "content": _text_content(message)}
    thinking = message.get("reasoning") or message.get("reasoning_content")
    if isinstance(thinking, str) and thinking:
        result["thinking"] = thinking
    calls = message.get("tool_calls")
    if calls:
        result["tool_calls"] = [_tool_call(call) for call in calls]
    return result


def _tool_call(call: dict) -> dict:
    function = call["function"]
    arguments = function.get("arguments")
    if isinstance(arguments, str):  # a JSON object (the schema checked), or blank
        arguments = json.loads(arguments) if arguments.strip() else None
    converted: dict = {"function": {"name": function["name"], "arguments": arguments or {}}}
    if call.get("id"):
        converted["id"] = call["id"]
    return converted
