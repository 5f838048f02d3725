"""An asyncio event loop in a daemon thread, and a blocking way for other threads to use it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any
from typing import TypeVar

T = TypeVar("T")


class LoopThread:
    """Owns one event loop running in a daemon thread of the process that created it."""

    def __init__(self, name: str) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait up to ``timeout`` seconds; on timeout it is cancelled.

        :raises TimeoutError: (``concurrent.futures.TimeoutError``) when the wait runs out.
        """
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("blocking on the loop from its own thread would deadlock")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout: float) -> None:
        """Stop the loop, join the thread, close the loop."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()
