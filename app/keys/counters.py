"""The counts behind the limits, in the rate-limit storage (RATE_LIMIT_STORAGE_URI): fixed windows aligned to the
clock, tokens per minute and requests in flight; checked and taken together, in one Redis round trip.

Windows are keyed by their start (``<name>:<unix time // period>``), so every worker and instance counts in the same
window and the time to its reset is known without asking the storage. A refused request takes nothing.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from .local_counts import LocalCounts

if TYPE_CHECKING:
    from limits.storage import RedisStorage

# A slot held by a process that died mid-request is freed after this long (Redis); a longer request stops counting.
INFLIGHT_LEASE = 900.0
NOT_REFUSED = 0
BY_TOKENS = -1
BY_CONCURRENCY = -2

# KEYS: the windows' counters, then the token counter, then the in-flight set (those two when ARGV says so).
# ARGV: now, n, then per window: limit (0: count only), expire-at; then has-tokens, token limit, has-in-flight,
# in-flight max, member, lease end. Returns the windows' counts, tokens used, requests in flight, and what refused.
_ADMIT = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local counts = {}
local refused = 0
for i = 1, n do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  local limit = tonumber(ARGV[1 + 2 * i])
  if refused == 0 and limit > 0 and counts[i] >= limit then refused = i end
end
local at = 3 + 2 * n
local k = n
local used = 0
if ARGV[at] == '1' then
  k = k + 1
  used = tonumber(redis.call('GET', KEYS[k]) or '0')
  local limit = tonumber(ARGV[at + 1])
  if refused == 0 and limit > 0 and used >= limit then refused = -1 end
end
local busy = 0
local inflight = nil
if ARGV[at + 2] == '1' then
  k = k + 1
  inflight = KEYS[k]
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
  busy = redis.call('ZCARD', inflight)
  local limit = tonumber(ARGV[at + 3])
  if refused == 0 and limit > 0 and busy >= limit then refused = -2 end
end
if refused == 0 then
  for i = 1, n do
    counts[i] = redis.call('INCR', KEYS[i])
    if counts[i] == 1 then redis.call('EXPIREAT', KEYS[i], ARGV[2 + 2 * i]) end
  end
  if inflight then
    redis.call('ZADD', inflight, ARGV[at + 5], ARGV[at + 4])
    redis.call('EXPIREAT', inflight, math.ceil(tonumber(ARGV[at + 5])))
    busy = busy + 1
  end
end
counts[n + 1] = used
counts[n + 2] = busy
counts[n + 3] = refused
return counts
"""


class Window(NamedTuple):
    """One fixed window to count this request in: its storage key, its limit (0: only counted), when it ends."""

    key: str
    limit: int
    ends_at: int


class Slot(NamedTuple):
    """A request in flight for one key: the set (or counter) it is counted in, and its own member."""

    key: str
    limit: int
    member: str


class Admission(NamedTuple):
    """What the storage said: each window's count (this request included when admitted), the tokens used this minute,
    the requests in flight, and what refused it (NOT_REFUSED, a window's 1-based index, BY_TOKENS, BY_CONCURRENCY)."""

    counts: tuple[int, ...]
    tokens_used: int
    in_flight: int
    refused: int


class Counters:
    """Plain calls on a `limits` storage (any but Redis) or LocalCounts (memory://); requests in flight are counted
    in this process. One lock makes check-then-take exact among this process's threads."""

    shared = False

    def __init__(self, storage: Any):
        self.storage = storage
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    def admit(self, windows: list[Window], tokens: tuple[str, int] | None, slot: Slot | None, now: float) -> Admission:
        with self._lock:
            counts = [self.storage.get(window.key) for window in windows]
            refused = NOT_REFUSED
            for number, (window, count) in enumerate(zip(windows, counts, strict=True), 1):
                if window.limit and count >= window.limit:
                    refused = number
                    break
            used = self.storage.get(tokens[0]) if tokens else 0
            if not refused and tokens and tokens[1] and used >= tokens[1]:
                refused = BY_TOKENS
            busy = self._in_flight.get(slot.key, 0) if slot else 0
            if not refused and slot and slot.limit and busy >= slot.limit:
                refused = BY_CONCURRENCY
            if not refused:
                counts = [self.storage.incr(window.key, window.ends_at - now + 1) for window in windows]
                if slot:
                    busy = self._in_flight[slot.key] = busy + 1
        return Admission(tuple(counts), used, busy, refused)

    def finish(self, tokens: tuple[str, int, int] | None, slot: Slot | None, now: float) -> None:
        """Add a finished request's tokens (key, amount, window end) and free its slot."""
        if tokens:
            self.storage.incr(tokens[0], tokens[2] - now + 1, tokens[1])
        if slot:
            with self._lock:
                left = self._in_flight.get(slot.key, 0) - 1
                if left > 0:
                    self._in_flight[slot.key] = left
                else:
                    self._in_flight.pop(slot.key, None)

    def usage(self, window_key: str, tokens_key: str, slot_key: str, now: float) -> tuple[int, int, int]:
        """Requests and tokens in the current minute, requests in flight."""
        return self.storage.get(window_key), self.storage.get(tokens_key), self._in_flight.get(slot_key, 0)


class RedisCounters(Counters):
    """The same rules in Redis as one script call per check (atomic across every worker and instance), and one
    pipeline when a request finishes."""

    shared = True

    def __init__(self, storage: RedisStorage):
        super().__init__(storage)
        self.client = storage.get_connection()
        self._admit = self.client.register_script(_ADMIT)

    def admit(self, windows: list[Window], tokens: tuple[str, int] | None, slot: Slot | None, now: float) -> Admission:
        keys = [window.key for window in windows]
        args: list[str | int | float] = [now, len(windows)]
        for window in windows:
            args += [window.limit, window.ends_at]
        args += [1 if tokens else 0, tokens[1] if tokens else 0, 1 if slot else 0, slot.limit if slot else 0,
                 slot.member if slot else "", now + INFLIGHT_LEASE]
        if tokens:
            keys.append(tokens[0])
        if slot:
            keys.append(slot.key)
        reply = [int(value) for value in self._admit(keys=keys, args=args)]
        return Admission(tuple(reply[:-3]), reply[-3], reply[-2], reply[-1])

    def finish(self, tokens: tuple[str, int, int] | None, slot: Slot | None, now: float) -> None:
        pipe = self.client.pipeline(transaction=False)
        if tokens:
            pipe.incrby(tokens[0], tokens[1])
            pipe.expireat(tokens[0], tokens[2] + 1)
        if slot:
            pipe.zrem(slot.key, slot.member)
        pipe.execute()

    def usage(self, window_key: str, tokens_key: str, slot_key: str, now: float) -> tuple[int, int, int]:
        pipe = self.client.pipeline(transaction=False)
        pipe.get(window_key)
        pipe.get(tokens_key)
        pipe.zcount(slot_key, now, "+inf")
        requests, tokens, busy = pipe.execute()
        return int(requests or 0), int(tokens or 0), int(busy or 0)


def storage_for(uri: str, **options: Any) -> Any:
    """The storage behind RATE_LIMIT_STORAGE_URI: LocalCounts for memory://, else the `limits` storage (imported
    only then)."""
    if uri.split("://", 1)[0].lower() == "memory":
        return LocalCounts()
    from limits.storage import storage_from_string

    return storage_from_string(uri, **options)


def counters_for(storage: Any) -> Counters:
    """Redis (not Cluster: one script touches keys of several slots) gets the one-round-trip script."""
    if isinstance(storage, LocalCounts):
        return Counters(storage)
    from limits.storage import RedisClusterStorage
    from limits.storage import RedisStorage

    if isinstance(storage, RedisStorage) and not isinstance(storage, RedisClusterStorage):
        return RedisCounters(storage)
    return Counters(storage)


def key_prefix(storage: Any) -> str:
    """Where the gateway's counts live in the storage: under its own prefix (`LIMITS:` for Redis) and ours."""
    prefix = getattr(storage, "key_prefix", "")
    return f"{prefix}:llamagate:" if prefix else "llamagate:"
