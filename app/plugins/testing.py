"""Testing plugins without a gateway: `PluginHarness` runs a plugin class the way a worker does.

    from app.plugins.testing import PluginHarness, chat_request
    harness = PluginHarness(Plugin, config={"mask": "***"})
    assert harness.request(chat_request("mail me at a@b.io"))["messages"][0]["content"] == "mail me at ***"

Config is validated by the class's `Config` schema, `setup` runs, and every hook goes through the same
isolation (own threads, timeout, failures named as the gateway names them) and the same chaining rules.
"""

from __future__ import annotations

from typing import Any

from ..schemas import validate_body
from ..schemas.chat import ChatCompletionRequest
from .api import Reply
from .registry import LoadedPlugin
from .registry import PluginRegistry
from .spec import PluginSpec
from .spec import PluginsSettings

_SCHEMA = ChatCompletionRequest()


def chat_request(content: str, *, model: str = "llama3.2", **extra: Any) -> dict:
    """A validated chat request body with one user message."""
    return validate_body(_SCHEMA, {"model": model, "messages": [{"role": "user", "content": content}], **extra})


def chat_completion(content: str, *, model: str = "llama3.2") -> dict:
    """A whole answer as the gateway makes it."""
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def chunk(content: str, *, model: str = "llama3.2") -> dict:
    """One streamed content chunk as the gateway makes it."""
    return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "delta": {"content": content}, "logprobs": None, "finish_reason": None}]}


class PluginHarness:
    """One plugin, started as a worker starts it; `status` and `last_error` say whether that worked."""

    def __init__(self, cls: type, *, config: dict | None = None, name: str = "plugin", timeout: float = 2.0,
                 on_error: str = "fail_closed", model: str = "llama3.2"):
        config = dict(config or {})
        schema = getattr(cls, "Config", None)
        if schema is not None:
            config = schema().load(config)  # raises marshmallow's ValidationError, as start-up would stop
        spec = PluginSpec(name, "test", cls, priority=0, timeout=timeout, on_error=on_error, config=config)
        self.registry = PluginRegistry(PluginsSettings(items=(spec,)))
        self.plugin: LoadedPlugin = self.registry.plugins[name]
        self.model = model

    @property
    def status(self) -> str:
        return self.plugin.status

    @property
    def last_error(self) -> str | None:
        return self.plugin.last_error

    def request(self, body: dict) -> dict | Reply:
        """`on_request`'s outcome: the (re-validated) request, or a Reply; Reject and failures raise APIError."""
        return self.registry.run_request(self.registry.table.request, body, lambda b: validate_body(_SCHEMA, b),
                                         "test", {})

    def response(self, answer: dict) -> dict:
        return self.registry.run_response(self.registry.table.response, answer, "test", self.model, False, {})

    def chunks(self, chunks: list[dict]) -> list[dict]:
        states: dict = {}
        return list(self.registry.run_chunks(self.registry.table.chunk, iter(chunks), "test", self.model, states))

    def tool(self, name: str, arguments: dict) -> Any:
        """A tool's raw result (before it is turned into text for the model)."""
        return self.registry.call_tool(self.plugin.name, name, arguments, "test")

    def close(self) -> None:
        self.registry.close()
