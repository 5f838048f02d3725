"""The gateway's Flask class: Flask, with its per-call check for async functions remembered per function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

_REMEMBERED = 4096  # functions whose answer is kept (views, hooks, handlers: a few dozen in practice)


class GatewayFlask(Flask):
    """Flask asks `ensure_sync` about every hook, view and handler on every request, and each answer costs an
    `inspect` call; here it is worked out once per function."""

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
