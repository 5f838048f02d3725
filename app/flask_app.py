"""The gateway's Flask class: Flask with its per-call check for async functions remembered per function, and URL
rules that compile their URL-building code only when a URL is first built (only a plugin's route may build one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

_REMEMBERED = 4096  # functions whose answer is kept (views, hooks, handlers: a few dozen in practice)


class LazyBuildRule(Rule):
    """A Rule that compiles its two URL builders on first use (`url_for`): werkzeug writes and compiles Python source
    for both as each rule is added: some 15 ms of a worker's start for the gateway's fifty routes, on a 2-core machine."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        compiled: Callable[..., tuple[str, str]] | None = None

        def build(rule: Rule, *args: Any, **kwargs: Any) -> tuple[str, str]:
            nonlocal compiled
            if compiled is None:  # two threads may both compile it: the same code, no harm
                compiled = Rule._compile_builder(rule, append_unknown)
            return compiled(rule, *args, **kwargs)

        return build


class GatewayFlask(Flask):
    """Flask asks `ensure_sync` about every hook, view and handler on every request, and each answer costs an
    `inspect` call; here it is worked out once per function."""

    url_rule_class = LazyBuildRule

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable, Callable] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            pass
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)
        sync = super().ensure_sync(func)
        if len(self._sync) < _REMEMBERED:
            self._sync[func] = sync
        return sync
