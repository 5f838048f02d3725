"""Calling plugin code: on the plugin's own threads, within its timeout, with every failure caught and named."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import APIError
from ..errors import plugin_error
from ..errors import plugin_timeout
from ..errors import plugin_unavailable
from ..errors import type_for_status
from .api import Reject

MAX_CONCURRENCY = 8  # calls of one plugin running at once in a worker


class PluginCaller:
    """Runs one plugin's calls on a small thread pool, so that a timeout can be enforced.

    Python cannot stop a thread: a call past its timeout is abandoned and keeps its thread until it returns.
    When every thread is held by such calls the next call is refused at once (`503 plugin_unavailable`).
    """

    def __init__(self, name: str, timeout: float):
        self.name = name
        self.timeout = timeout
        self.executor = ThreadPoolExecutor(max_workers=MAX_CONCURRENCY, thread_name_prefix=f"plugin-{name}")
        self._free = threading.BoundedSemaphore(MAX_CONCURRENCY)

    def call(self, hook: str, function: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """``function(*args)``'s result.

        :raises Reject: as the plugin raised it.
        :raises APIError: ``plugin_error`` (it raised, even SystemExit), ``plugin_timeout``, ``plugin_unavailable``.
        """
        if not self._free.acquire(blocking=False):
            raise plugin_unavailable(self.name, f"busy: {MAX_CONCURRENCY} calls still running")
        future = self.executor.submit(function, *args)
        future.add_done_callback(lambda _: self._free.release())
        limit = self.timeout if timeout is None else timeout
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError:
            raise plugin_timeout(self.name, hook, limit) from None
        except Reject:
            raise
        except (Exception, SystemExit) as err:  # SystemExit from sys.exit() must not end the worker
            raise plugin_error(self.name, hook, describe(err)) from err

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def rejection(plugin: str, err: Reject) -> APIError:
    """The OpenAI error a plugin asked for with `Reject`."""
    status = err.status if isinstance(err.status, int) and 400 <= err.status <= 599 else 400
    return APIError(err.message, status=status, type=type_for_status(status), code=err.code or "rejected_by_plugin",
                    param=err.param)
