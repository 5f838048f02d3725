"""The gateway's Redis connection: short timeouts, no retries, and an outage noticed once, not per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import TypeVar

from loguru import logger

if TYPE_CHECKING:
    import redis

T = TypeVar("T")
# While Redis is down, one call in this many seconds tries again; the others skip it at once.
RETRY_INTERVAL = 1.0


class Outage:
    """Whether a shared dependency is down: one warning when it goes, one info line when it is back.

    `should_try()` is false while down, except once per RETRY_INTERVAL, so a dead server costs one timeout per
    interval instead of one per request.
    """

    def __init__(self, what: str, clock: Callable[[], float] = time.monotonic):
        self.what = what
        self._clock = clock
        self._down_since: float | None = None
        self._next_try = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def should_try(self) -> bool:
        if self._down_since is None:
            return True
        with self._lock:
            now = self._clock()
            if now < self._next_try:
                return False
            self._next_try = now + RETRY_INTERVAL
            return True

    def failed(self, err: BaseException, consequence: str) -> None:
        with self._lock:
            self._next_try = self._clock() + RETRY_INTERVAL
            if self._down_since is not None:
                return
            self._down_since = self._clock()
        logger.bind(dependency=self.what, error=type(err).__name__).warning(
            "{} is unreachable; {} until it is back", self.what, consequence)

    def ok(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            logger.bind(dependency=self.what, outage_seconds=round(self._clock() - since, 1)).info(
                "{} is reachable again", self.what)


class RedisLink:
    """One Redis client for a worker's threads (redis-py pools its connections), with the outage rule applied."""

    def __init__(self, url: str, *, timeout: float = 0.5):
        # Imported here: redis-py (with redis.asyncio and opentelemetry) costs megabytes in workers that have no Redis.
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._errors = redis.RedisError
        self.outage = Outage("Redis")

    def run(self, operation: Callable[[redis.Redis], T], fallback: T) -> T:
        """``operation(client)``, or ``fallback`` while Redis is unreachable (the first failure is logged)."""
        if not self.outage.should_try():
            return fallback
        try:
            result = operation(self.client)
        except self._errors as err:
            self.failed(err)
            return fallback
        self.outage.ok()
        return result

    def failed(self, err: BaseException) -> None:
        self.outage.failed(err, "the answer cache is bypassed and runtime changes are not shared")

    def state(self) -> str:
        """`connected` or `disconnected`, by a live PING (for /health)."""
        alive = self.run(lambda client: bool(client.ping()), False)
        return "connected" if alive else "disconnected"

    def close(self) -> None:
        self.client.close()
