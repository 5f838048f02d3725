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
_INT_OPTIONS = {"seed", "num_predict", "num_ctx", "top_k", "repeat_last_n", "num_keep", "num_batch", "num_gpu",
                "main_gpu", "num_thread"}
_FLOAT_OPTIONS = {"temperature", "top_p", "min_p", "typical_p", "repeat_penalty", "presence_penalty",
                  "frequency_penalty"}
_BOOL_OPTIONS = {"use_mmap", "numa"}


def to_ollama_chat(req: dict, *, stream: bool, keep_alive: str = "") -> dict:
    """Build the native request from a validated OpenAI body.

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
    options: dict = {}
    extra = req.get("options") or {}
    for key, value in extra.items():
        options[key] = _typed_option(key, value)
    for name in _OPTION_FIELDS:
        if req.get(name) is not None:
            options[name] = req[name]
    limit = req.get("max_completion_tokens") or req.get("max_tokens")
    if limit is not None:
        options["num_predict"] = limit
    if req.get("stop") is not None:
        options["stop"] = req["stop"]
    return options


def _typed_option(key: str, value):
    """Check the type of a raw `options` entry; Ollama answers a wrong type with a 500."""
    param = f"options.{key}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key in _INT_OPTIONS:
        if not number or float(value) != int(value):
            raise InvalidRequest(f"Invalid value for '{param}': must be an integer", param=param)
        return int(value)
    if key in _FLOAT_OPTIONS:
        if not number:
            raise InvalidRequest(f"Invalid value for '{param}': must be a number", param=param)
        return float(value)
    if key in _BOOL_OPTIONS and not isinstance(value, bool):
        raise InvalidRequest(f"Invalid value for '{param}': must be a boolean", param=param)
    if key == "stop":
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidRequest(f"Invalid value for '{param}': must be a list of strings", param=param)
    return value


def _format(response_format: dict | None):
    if not response_format:
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("response_format.json_schema.schema must be a JSON Schema object.",
                                 param="response_format.json_schema.schema")
        return schema
    raise InvalidRequest(f"Invalid response_format type {kind!r}: use text, json_object or json_schema.",
                         param="response_format.type")


def _think(req: dict):
    if req.get("think") is not None:
        return req["think"]
    effort = (req.get("reasoning") or {}).get("effort") or req.get("reasoning_effort")
    if not effort:
        return None
    if effort not in _THINK_FROM_EFFORT:
        raise InvalidRequest(f"invalid reasoning value: {effort!r}", param="reasoning_effort")
    return _THINK_FROM_EFFORT[effort]


def _select_tools(tools: list | None, tool_choice) -> list | None:
    if not tools:
        if isinstance(tool_choice, dict):
            raise InvalidRequest("tool_choice names a function but no tools were given.", param="tool_choice")
        return None
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise InvalidRequest(f"Unsupported tool type {tool.get('type')!r}: only 'function' tools are supported.",
                                 param=f"tools[{i}].type")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise InvalidRequest("Each tool needs function.name.", param=f"tools[{i}].function.name")
    if tool_choice in (None, "auto", "required"):
        return tools
    if tool_choice == "none":
        return None
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        name = (tool_choice.get("function") or {}).get("name")
        chosen = [t for t in tools if t["function"]["name"] == name]
        if not chosen:
            raise InvalidRequest(f"tool_choice names {name!r}, which is not in tools.", param="tool_choice")
        return chosen
    raise InvalidRequest("tool_choice must be 'none', 'auto', 'required' or a function.", param="tool_choice")


def convert_messages(messages: list[dict]) -> list[dict]:
    """Translate every message; tool results get the name of the call they answer."""
    out: list[dict] = []
    call_names: dict[str, str] = {}
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _text_content(message, i, allow_null=False)})
        elif role == "user":
            out.append(_user_message(message, i))
        elif role == "assistant":
            converted = _assistant_message(message, i)
            for call in converted.get("tool_calls", []):
                if call.get("id"):
                    call_names[call["id"]] = call["function"]["name"]
            out.append(converted)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            tool: dict = {"role": "tool", "content": _text_content(message, i, allow_null=True)}
            name = message.get("name") or call_names.get(call_id or "")
            if name:
                tool["tool_name"] = name
            if call_id:
                tool["tool_call_id"] = call_id
            out.append(tool)
        elif role == "function":
            out.append({"role": "tool", "content": _text_content(message, i, allow_null=True),
                        "tool_name": message.get("name") or ""})
        else:
            raise InvalidRequest(f"Invalid role {role!r}: use system, developer, user, assistant or tool.",
                                 param=f"messages[{i}].role")
    return out


def _text_content(message: dict, i: int, *, allow_null: bool) -> str:
    content = message.get("content")
    if content is None:
        if allow_null:
            return ""
        raise InvalidRequest("Message content must not be null.", param=f"messages[{i}].content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise InvalidRequest(f"Only text parts are allowed in a {message.get('role')} message.",
                                     param=f"messages[{i}].content[{j}]")
            texts.append(str(part.get("text") or part.get("refusal") or ""))
        return "\n".join(texts)
    raise InvalidRequest("Message content must be a string or a list of parts.", param=f"messages[{i}].content")


def _user_message(message: dict, i: int) -> dict:
    content = message.get("content")
    if not isinstance(content, list):
        return {"role": "user", "content": _text_content(message, i, allow_null=False)}
    texts, images = [], []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest("A text part needs a 'text' string.", param=f"messages[{i}].content[{j}].text")
            texts.append(part["text"])
        elif kind == "image_url":
            images.append(_image(part.get("image_url"), f"messages[{i}].content[{j}].image_url"))
        else:
            raise InvalidRequest(f"Unsupported content part type {kind!r}: use text or image_url.",
                                 param=f"messages[{i}].content[{j}].type")
    result: dict = {"role": "user", "content": "\n".join(texts)}
    if images:
        result["images"] = images
    return result


def _image(image_url, param: str) -> str:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise InvalidRequest("image_url needs a 'url'.", param=param)
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


def _assistant_message(message: dict, i: int) -> dict:
    result: dict = {"role": "assistant", "content": _text_content(message, i, allow_null=True)}
    thinking = message.get("reasoning") or message.get("reasoning_content")
    if isinstance(thinking, str) and thinking:
        result["thinking"] = thinking
    calls = message.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            raise InvalidRequest("tool_calls must be a list.", param=f"messages[{i}].tool_calls")
        result["tool_calls"] = [_tool_call(call, f"messages[{i}].tool_calls[{j}]") for j, call in enumerate(calls)]
    return result


def _tool_call(call, param: str) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest("A tool call needs function.name.", param=f"{param}.function.name")
    arguments = function.get("arguments")
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        parsed = {}
    elif isinstance(arguments, dict):
        parsed = arguments
    else:
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequest("Tool call arguments must be a JSON object encoded as a string.",
                                 param=f"{param}.function.arguments")
    converted: dict = {"function": {"name": function["name"], "arguments": parsed}}
    if call.get("id"):
        converted["id"] = call["id"]
    return converted
