"""The answer cache: whole chat answers in an LRU store with a TTL, in-process (one worker's threads) or in Redis
(`app.store.bounded.RedisLRU`: every worker and instance)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict

from ..translate.reply import new_completion_id

# Fields of the upstream body that do not change the answer.
_NOT_IN_KEY = ("stream", "keep_alive")


def cache_key(upstream_body: dict, *variant: str) -> str:
    """A digest of everything that changes the answer, independent of key order and spelling."""
    relevant = {k: v for k, v in upstream_body.items() if k not in _NOT_IN_KEY}
    text = json.dumps([relevant, variant], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class TTLCache:
    """Least-recently-used entries expire after `ttl` seconds; at most `max_entries` are kept."""

    def __init__(self, max_entries: int, ttl: float, clock=time.monotonic):
        self.max_entries = max_entries
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: object) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class AnswerCache:
    """Whole chat answers, kept serialized without `id` and `created`, found by canonical key.

    A request body seen before also finds its answer by its exact bytes, which skips parsing,
    validation and translation on a hit; that second entry is only stored after a validated, cached answer,
    and holds the answer itself so that a hit is one lookup (one Redis round trip).
    """

    def __init__(self, store):
        self.store = store

    @staticmethod
    def body_key(raw: bytes) -> str:
        return "body:" + hashlib.sha256(raw).hexdigest()

    def get(self, key: str) -> bytes | None:
        tail = self.store.get(key)
        return None if tail is None else _with_identity(tail)

    def get_by_body(self, raw: bytes) -> bytes | None:
        return self.get(self.body_key(raw))

    def put(self, key: str, answer: dict, raw: bytes | None = None) -> None:
        rest = {k: v for k, v in answer.items() if k not in ("id", "created")}
        tail = json.dumps(rest, ensure_ascii=False, separators=(",", ":")).encode()
        self.store.put(key, tail)
        if raw is not None:
            self.store.put(self.body_key(raw), tail)


def _with_identity(tail: bytes) -> bytes:
    """A cached answer with a fresh id and creation time in front."""
    return f'{{"id":"{new_completion_id()}","created":{int(time.time())},'.encode() + tail[1:]
