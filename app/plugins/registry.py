"""The plugins of one worker: instances, statuses, the hook table, and running each hook chain by its rules."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from loguru import logger

from ..errors import plugin_error
from ..errors import plugin_unavailable
from .api import HOOKS
from .api import Reject
from .api import Reply
from .api import Tool
from .isolation import PluginCaller
from .isolation import describe
from .isolation import rejection
from .spec import PluginSpec
from .spec import PluginsSettings


@dataclass
class HookContext:
    """What a hook is called with besides its subject; it only ever gains fields."""

    request_id: str | None
    model: str
    stream: bool
    config: Any
    log: Any
    plugin: str = ""
    state: dict = field(default_factory=dict)  # this plugin's, for this request


class LoadedPlugin:
    """One listed plugin in this worker: `ready`, `disabled` (at runtime) or `failed` (import or setup)."""

    def __init__(self, spec: PluginSpec):
        self.spec = spec
        self.name = spec.name
        self.instance: Any = None
        self.status = "failed"
        self.last_error = spec.error
        self.hooks: tuple[str, ...] = ()
        self.tools: tuple[Tool, ...] = ()
        self.caller = PluginCaller(spec.name, spec.timeout)
        if spec.cls is not None:
            self._start()
        else:
            logger.bind(plugin=self.name, source=spec.source, traceback=spec.detail).error(
                "plugin {} failed to load: {}", self.name, spec.error)

    def _start(self) -> None:
        try:
            instance = self.spec.cls()  # type: ignore[misc]
            setup = getattr(instance, "setup", None)
            if callable(setup):
                self.caller.call("setup", setup, self.spec.config)
            tools = instance.tools() if callable(getattr(instance, "tools", None)) else []
            if not isinstance(tools, (list, tuple)) or not all(isinstance(t, Tool) and callable(t.function) for t in tools):
                raise TypeError("tools() must return a list of Tool with a function")
        except Exception as err:  # noqa: BLE001 - the gateway starts; the plugin shows as failed
            self.last_error = getattr(err, "message", None) or describe(err)
            logger.bind(plugin=self.name).opt(exception=err).error("plugin {} failed to start", self.name)
            return
        self.instance = instance
        self.hooks = tuple(h for h in HOOKS if callable(getattr(instance, h, None)))
        self.tools = tuple(tools)
        self.status = "ready"

    @property
    def has_chat(self) -> bool:
        return self.instance is not None and callable(getattr(self.instance, "chat", None))

    def public(self) -> dict:
        return {"name": self.name, "status": self.status, "source": self.spec.source, "priority": self.spec.priority,
                "timeout": self.spec.timeout, "on_error": self.spec.on_error, "hooks": list(self.hooks),
                "tools": [f"{self.name}__{t.name}" for t in self.tools],
                "models": [f"plugin:{self.name}"] if self.has_chat else [], "last_error": self.last_error}


@dataclass(frozen=True)
class HookTable:
    """For each hook, the ready plugins that have it, in the order they run (empty tuples cost one test)."""

    request: tuple[LoadedPlugin, ...] = ()
    response: tuple[LoadedPlugin, ...] = ()
    chunk: tuple[LoadedPlugin, ...] = ()
    tool_call: tuple[LoadedPlugin, ...] = ()

    @classmethod
    def of(cls, plugins: list[LoadedPlugin]) -> HookTable:
        ready = sorted((p for p in plugins if p.status == "ready"), key=lambda p: p.spec.priority)  # stable: ties keep list order

        def having(hook: str, reverse: bool = False) -> tuple[LoadedPlugin, ...]:
            found = [p for p in ready if hook in p.hooks]
            return tuple(reversed(found) if reverse else found)

        # Request hooks in ascending priority; what comes back runs in reverse, so the first plugin to see
        # the request is the last to touch the answer.
        return cls(having("on_request"), having("on_response", True), having("on_chunk", True), having("on_tool_call"))


class PluginRegistry:
    """Every listed plugin of a worker; request threads read `table`, which is swapped whole on a change."""

    def __init__(self, settings: PluginsSettings):
        self.settings = settings
        self.plugins = {spec.name: LoadedPlugin(spec) for spec in settings.items}
        self._lock = threading.Lock()
        self.table = HookTable.of(list(self.plugins.values()))

    def __bool__(self) -> bool:
        return bool(self.plugins)

    def get(self, name: str) -> LoadedPlugin | None:
        return self.plugins.get(name)

    def set_enabled(self, plugin: LoadedPlugin, enabled: bool) -> None:
        """Enable or disable a plugin that started; a failed one stays failed."""
        with self._lock:
            if plugin.instance is not None:
                plugin.status = "ready" if enabled else "disabled"
            self.table = HookTable.of(list(self.plugins.values()))

    def mark_failed(self, plugin: LoadedPlugin, error: str) -> None:
        with self._lock:
            plugin.status, plugin.last_error = "failed", error
            self.table = HookTable.of(list(self.plugins.values()))

    def model_names(self) -> list[str]:
        """`plugin:<name>` for each ready plugin that answers as a model."""
        return [f"plugin:{p.name}" for p in self.plugins.values() if p.status == "ready" and p.has_chat]

    def close(self) -> None:
        for plugin in self.plugins.values():
            close = getattr(plugin.instance, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001
                    logger.bind(plugin=plugin.name).exception("plugin {} failed to close", plugin.name)
            plugin.caller.close()

    # -- the hook chains -------------------------------------------------------------------------

    def context(self, plugin: LoadedPlugin, request_id: str | None, model: str, stream: bool,
                states: dict[str, HookContext]) -> HookContext:
        """The plugin's context for this request (`states`: one per request), made on its first hook call."""
        ctx = states.get(plugin.name)
        if ctx is None:
            ctx = states[plugin.name] = HookContext(request_id, model, stream, plugin.spec.config,
                                                    logger.bind(plugin=plugin.name, request_id=request_id), plugin.name)
        return ctx

    def run_request(self, chain: tuple[LoadedPlugin, ...], req: dict, validate, request_id: str | None,
                    states: dict) -> dict | Reply:
        """`on_request` of each plugin in turn; a replacement is validated (`validate(dict) -> dict`) at once."""
        for plugin in chain:
            ctx = self.context(plugin, request_id, str(req.get("model", "")), bool(req.get("stream")), states)
            try:
                result = plugin.caller.call("on_request", plugin.instance.on_request, ctx, _given(plugin, req))
            except Reject as err:
                raise rejection(plugin.name, err) from None
            except Exception as err:
                if self._skipped(plugin, "on_request", err):
                    continue
                raise
            if isinstance(result, Reply):
                if not isinstance(result.text, str):
                    self._fail(plugin, "on_request", "Reply text must be a string")
                    continue
                return result
            if result is None:
                continue
            if not isinstance(result, dict):
                self._fail(plugin, "on_request", f"returned {type(result).__name__}, expected dict, Reply or None")
                continue
            try:
                req = validate(result)
            except Exception as err:  # noqa: BLE001 - an invalid request is the plugin's fault
                self._fail(plugin, "on_request", f"returned a request that is not valid: {getattr(err, 'message', err)}")
        return req

    def run_response(self, chain: tuple[LoadedPlugin, ...], answer: dict, request_id: str | None, model: str,
                     stream: bool, states: dict, hook: str = "on_response") -> dict:
        """`on_response` (or `on_chunk`) of each plugin in turn; a dict replaces what the next one sees."""
        for plugin in chain:
            ctx = self.context(plugin, request_id, model, stream, states)
            try:
                result = plugin.caller.call(hook, getattr(plugin.instance, hook), ctx, _given(plugin, answer))
            except Reject as err:
                raise rejection(plugin.name, err) from None
            except Exception as err:
                if self._skipped(plugin, hook, err):
                    continue
                raise
            if result is None:
                continue
            if not isinstance(result, dict):
                self._fail(plugin, hook, f"returned {type(result).__name__}, expected dict or None")
                continue
            answer = result
        return answer

    def run_chunks(self, chain: tuple[LoadedPlugin, ...], chunks: Iterator, request_id: str | None, model: str,
                   states: dict) -> Iterator:
        """The stream with every chunk object passed through `on_chunk` (bytes such as keep-alives pass as they are)."""
        try:
            for chunk in chunks:
                if isinstance(chunk, dict):
                    chunk = self.run_response(chain, chunk, request_id, model, True, states, hook="on_chunk")
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def run_tool_call(self, name: str, arguments: dict, request_id: str | None, model: str, states: dict) -> dict:
        """`on_tool_call` of each plugin in turn; a dict replaces the arguments.

        :raises Reject: when a plugin refuses the call (the caller turns it into text for the model).
        """
        for plugin in self.table.tool_call:
            ctx = self.context(plugin, request_id, model, False, states)
            try:
                result = plugin.caller.call("on_tool_call", plugin.instance.on_tool_call, ctx, name,
                                            _given(plugin, arguments))
            except Reject as err:
                raise Reject(f"refused by plugin {plugin.name!r}: {err.message}") from None
            except Exception as err:
                if self._skipped(plugin, "on_tool_call", err):
                    continue
                raise
            if result is None:
                continue
            if not isinstance(result, dict):
                self._fail(plugin, "on_tool_call", f"returned {type(result).__name__}, expected dict or None")
                continue
            arguments = result
        return arguments

    def call_tool(self, plugin_name: str, tool_name: str, arguments: dict, request_id: str | None) -> Any:
        """Run a plugin tool within the plugin's timeout.

        :raises APIError: the plugin is not ready, the tool is unknown, it failed or timed out.
        """
        plugin = self.plugins.get(plugin_name)
        if plugin is None or plugin.status != "ready":
            raise plugin_unavailable(plugin_name, plugin.status if plugin else "not configured")
        tool = next((t for t in plugin.tools if t.name == tool_name), None)
        if tool is None:
            raise plugin_error(plugin_name, "tools", f"it has no tool {tool_name!r}")
        ctx = self.context(plugin, request_id, "", False, {})
        return plugin.caller.call(f"tool {tool_name}", tool.function, arguments, ctx)

    def _skipped(self, plugin: LoadedPlugin, hook: str, err: Exception) -> bool:
        """With fail_open a failing hook is skipped (logged); with fail_closed its error stands."""
        log = logger.bind(plugin=plugin.name, hook=hook).opt(exception=err.__cause__ or err)
        if plugin.spec.on_error == "fail_open":
            log.warning("{} (skipped: on_error is fail_open)", getattr(err, "message", err))
            return True
        log.error("{}", getattr(err, "message", err))
        return False

    def _fail(self, plugin: LoadedPlugin, hook: str, problem: str) -> None:
        err = plugin_error(plugin.name, hook, problem)
        if not self._skipped(plugin, hook, err):
            raise err


def _given(plugin: LoadedPlugin, value):
    """What a hook is handed: a fail_open plugin gets a copy, so that a hook which fails (or runs on past its
    timeout) after changing it in place leaves the request or answer as it was."""
    return copy.deepcopy(value) if plugin.spec.on_error == "fail_open" else value
